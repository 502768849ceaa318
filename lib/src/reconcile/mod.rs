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
pub mod config;
pub mod plan;
pub mod ports;
pub mod report;
pub mod run;

use chrono::{DateTime, SecondsFormat, Utc};
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
    /// The run's id: `nightly-<scheduled time>` for a scheduled run (the same
    /// night always gives the same id), `manual-<now>-<random>` otherwise.
    pub fn run_id(&self, now_ms: i64) -> Result<String, RequestError> {
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
            return Ok(format!("{prefix}-{}", compact(at)));
        }
        if self.customers.as_ref().is_some_and(Vec::is_empty) {
            return Err(RequestError::EmptyCustomers);
        }
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        Ok(format!("manual-{}-{suffix}", compact(now)))
    }

    /// The scheduled time as epoch ms, when there is one.
    pub fn scheduled_ms(&self) -> Option<i64> {
        self.scheduled_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.timestamp_millis())
    }
}

/// `20261125T070000Z`: sortable, and safe in S3 keys and file names.
fn compact(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduled_time_is_the_run_id() {
        let r: ReconcileRequest =
            serde_json::from_str(r#"{"scheduled_time":"2026-11-25T07:00:00Z"}"#).unwrap();
        assert_eq!(r.run_id(0).unwrap(), "nightly-20261125T070000Z");
        // The same instant written with an offset is the same night.
        let r: ReconcileRequest =
            serde_json::from_str(r#"{"time":"2026-11-25T02:00:00-05:00"}"#).unwrap();
        assert_eq!(r.run_id(0).unwrap(), "nightly-20261125T070000Z");
        let manual = ReconcileRequest::default();
        let (a, b) = (manual.run_id(0).unwrap(), manual.run_id(0).unwrap());
        assert!(
            a.starts_with("manual-19700101T000000Z-") && a != b,
            "{a} {b}"
        );
        let bad: ReconcileRequest =
            serde_json::from_str(r#"{"scheduled_time":"tonight"}"#).unwrap();
        assert_eq!(bad.run_id(0), Err(RequestError::BadScheduledTime));
        let empty: ReconcileRequest = serde_json::from_str(r#"{"customers":[]}"#).unwrap();
        assert_eq!(empty.run_id(0), Err(RequestError::EmptyCustomers));
    }
}

#[cfg(test)]
mod run_tests;
