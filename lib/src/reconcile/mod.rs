//! The nightly reconciler: every WARP customer against its HubSpot company,
//! every mapped field through the same three-way decision the consumer uses
//! ([`crate::mapping::conflict::decide`]), drift repaired in whichever
//! direction the mapping says, and a report people read.
//!
//! - [`plan`] is the pure diff engine: one pair in, the differences, the
//!   decisions and the writes out.
//! - [`run`] drives a run over the ports: pages, checkpoints, continuation
//!   in a fresh invocation, the sweep of stuck events, the report.
//! - [`report`] is the report: its pieces (one per page, so a page redone
//!   after a crash replaces its own piece) and the JSON and HTML assembled
//!   from them.

pub mod aws;
pub mod checkpoint;
pub mod config;
pub mod email;
mod hubspot_batch;
pub mod index;
pub mod mail;
mod pair;
mod phase;
mod pieces;
pub mod plan;
pub mod ports;
pub mod report;
pub mod run;
pub mod run_store;
mod step;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What one invocation is asked to do.
///
/// - EventBridge Scheduler sends `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`
///   (the template's target input); an EventBridge rule's `{"time": ...}` is
///   read the same way. The scheduled time is the run's id, so a second
///   delivery for the same night does nothing.
/// - A manual invocation has no scheduled time: `{}`, `{"dry_run": true}`,
///   `{"customers": ["<id or BAN>", ...]}`.
/// - A run that ran out of time invokes itself with `{"continue_run": "<id>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRequest {
    #[serde(default, alias = "time", skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_run: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("scheduled_time is not an RFC 3339 time")]
    BadScheduledTime,
    #[error("customers must list at least one customer id or BAN")]
    EmptyCustomers,
    #[error("a scheduled run reconciles everyone: customers is for manual runs")]
    ScheduledWithCustomers,
}

impl ReconcileRequest {
    /// The run's id: `nightly-<local date>` for a scheduled run, the date of
    /// the scheduled time in the schedule's zone, so every delivery of the
    /// same night gives the same id (a retried delivery, and the second
    /// 02:00 of a night whose clocks go back at 03:00); `manual-<now>-<random>`
    /// otherwise.
    pub fn run_id(&self, now_ms: i64, zone: chrono_tz::Tz) -> Result<String, RequestError> {
        if let Some(id) = &self.continue_run {
            return Ok(id.clone());
        }
        if let Some(t) = &self.scheduled_time {
            if self.customers.is_some() {
                return Err(RequestError::ScheduledWithCustomers);
            }
            let at = DateTime::parse_from_rfc3339(t.trim())
                .map_err(|_| RequestError::BadScheduledTime)?
                .with_timezone(&Utc);
            let prefix = if self.dry_run {
                "nightly-dry"
            } else {
                "nightly"
            };
            let night = at.with_timezone(&zone).date_naive();
            return Ok(format!("{prefix}-{}", night.format("%Y-%m-%d")));
        }
        if self.customers.as_ref().is_some_and(Vec::is_empty) {
            return Err(RequestError::EmptyCustomers);
        }
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        Ok(format!("manual-{}-{suffix}", crate::time::compact(now)))
    }

    /// The scheduled time as epoch ms, when there is one.
    pub fn scheduled_ms(&self) -> Option<i64> {
        self.scheduled_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: chrono_tz::Tz = chrono_tz::America::New_York;

    fn scheduled(at: &str) -> ReconcileRequest {
        serde_json::from_value(serde_json::json!({ "scheduled_time": at })).unwrap()
    }

    #[test]
    fn the_scheduled_night_is_the_run_id() {
        let r = scheduled("2026-11-25T07:00:00Z");
        assert_eq!(r.run_id(0, NEW_YORK).unwrap(), "nightly-2026-11-25");
        // The same instant written with an offset is the same night.
        let r: ReconcileRequest =
            serde_json::from_str(r#"{"time":"2026-11-25T02:00:00-05:00"}"#).unwrap();
        assert_eq!(r.run_id(0, NEW_YORK).unwrap(), "nightly-2026-11-25");
        let manual = ReconcileRequest::default();
        let (a, b) = (
            manual.run_id(0, NEW_YORK).unwrap(),
            manual.run_id(0, NEW_YORK).unwrap(),
        );
        assert!(
            a.starts_with("manual-19700101T000000Z-") && a != b,
            "{a} {b}"
        );
        let bad: ReconcileRequest =
            serde_json::from_str(r#"{"scheduled_time":"tonight"}"#).unwrap();
        assert_eq!(bad.run_id(0, NEW_YORK), Err(RequestError::BadScheduledTime));
        let empty: ReconcileRequest = serde_json::from_str(r#"{"customers":[]}"#).unwrap();
        assert_eq!(empty.run_id(0, NEW_YORK), Err(RequestError::EmptyCustomers));
    }

    /// Europe/Berlin goes back from 03:00 to 02:00 on 2026-10-25, so 02:00
    /// happens twice: at 00:00Z (CEST) and at 01:00Z (CET). Were both
    /// delivered, both are the same night and the second finds the run.
    #[test]
    fn a_repeated_two_oclock_is_one_night() {
        let berlin = chrono_tz::Europe::Berlin;
        let first = scheduled("2026-10-25T00:00:00Z").run_id(0, berlin).unwrap();
        let second = scheduled("2026-10-25T01:00:00Z").run_id(0, berlin).unwrap();
        assert_eq!(first, "nightly-2026-10-25");
        assert_eq!(first, second);
        // The nights around it keep their own ids.
        assert_eq!(
            scheduled("2026-10-24T00:00:00Z").run_id(0, berlin).unwrap(),
            "nightly-2026-10-24"
        );
        assert_eq!(
            scheduled("2026-10-26T01:00:00Z").run_id(0, berlin).unwrap(),
            "nightly-2026-10-26"
        );
    }

    /// New York springs forward at 02:00 on 2026-03-08: that 02:00 does not
    /// exist and EventBridge Scheduler skips the night. The nights either
    /// side are one day apart in their ids even though 23 hours separate
    /// their 02:00s on one side and 24 on the other.
    #[test]
    fn the_nights_around_a_skipped_two_oclock_keep_their_dates() {
        // 02:00 EST = 07:00Z; 02:00 EDT = 06:00Z.
        assert_eq!(
            scheduled("2026-03-07T07:00:00Z")
                .run_id(0, NEW_YORK)
                .unwrap(),
            "nightly-2026-03-07"
        );
        assert_eq!(
            scheduled("2026-03-09T06:00:00Z")
                .run_id(0, NEW_YORK)
                .unwrap(),
            "nightly-2026-03-09"
        );
        // A retry of the Saturday night's delivery that arrives late (the
        // schedule's retry window is an hour) is still the Saturday night.
        assert_eq!(
            scheduled("2026-03-07T07:00:00Z").run_id(0, NEW_YORK),
            scheduled("2026-03-07T02:00:00-05:00").run_id(0, NEW_YORK)
        );
    }
}

#[cfg(test)]
mod run_tests;
