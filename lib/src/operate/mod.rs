//! The operator's questions, answered by `hubwarp` (src/bin/hubwarp): one
//! module per question, written over the same ports as the functions so
//! each is tested against moto and the sandboxes with the real clients.
//!
//! - [`explain`]: why did (or didn't) this field sync; the whole story of a
//!   customer from the sync log, and both sides now.
//! - [`events`]: what the receiver recorded and what became of each event.
//! - [`replay`]: recorded events back through the normal queue.
//! - [`dlq`]: what sits in the dead-letter queue and why; moving it back.
//! - [`conflicts`]: MANUAL conflicts, and a person's choice applied through
//!   the normal write paths.
//! - [`setup`]: what the mapping needs, created in a new HubSpot portal.
//! - [`link`]: customers and companies that exist on both sides, joined.
//! - [`doctor`]: a checklist of everything the bridge needs, with fixes.
//! - [`properties`]: the company properties the mapping needs, against
//!   the portal's (`setup`, `doctor`).
//! - [`reconcile`]: a run now, in the function or in-process.
//! - [`runs`]: past runs, their counters and reports.
//! - [`undo`]: the writes of one run reverted where nothing changed since.

pub mod conflicts;
pub mod dlq;
pub mod doctor;
pub mod events;
pub mod explain;
pub mod link;
pub mod properties;
pub mod reconcile;
pub mod replay;
pub mod runs;
pub mod setup;
pub mod undo;

use chrono::{DateTime, NaiveDate};

use crate::error::error_chain;
use crate::hubspot::crm::HubspotError;
use crate::store::StoreError;
use crate::warp::WarpError;

/// Why a question could not be answered. `NotFound` and `Invalid` are the
/// operator's input (the command exits 2); the rest are the systems'.
#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{}", error_chain(.0))]
    Store(#[from] StoreError),
    #[error("WARP: {0}")]
    Warp(#[from] WarpError),
    #[error("HubSpot: {0}")]
    Hubspot(#[from] HubspotError),
    #[error("SQS: {0}")]
    Queue(String),
    #[error("Lambda: {0}")]
    Lambda(String),
    #[error("the run failed: {0}")]
    Run(String),
}

impl OperateError {
    /// Whether the operator's input is at fault (rather than a system).
    pub fn is_input(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::Invalid(_))
    }
}

/// An instant as the operator types it: RFC 3339 (`2026-11-25T07:00:00Z`),
/// a UTC date (`2026-11-25`), epoch milliseconds, or an age (`90m`, `24h`,
/// `7d`: that long before `now_ms`).
pub fn parse_when(text: &str, now_ms: i64) -> Result<i64, OperateError> {
    let t = text.trim();
    let bad = || {
        OperateError::Invalid(format!(
            "{text:?} is not a time: use RFC 3339 (2026-11-25T07:00:00Z), a date (2026-11-25), \
             epoch milliseconds, or an age such as 90m, 24h, 7d"
        ))
    };
    if let Some((n, unit)) = t
        .char_indices()
        .last()
        .filter(|(i, c)| *i > 0 && c.is_ascii_alphabetic())
        .map(|(i, c)| (&t[..i], c))
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        let n: i64 = n.parse().map_err(|_| bad())?;
        let unit_ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        return n
            .checked_mul(unit_ms)
            .map(|ago| now_ms - ago)
            .ok_or_else(bad);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or_default());
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form_the_operator_types() {
        let now = 1_764_054_000_000;
        assert_eq!(parse_when("2025-11-25T07:00:00Z", now).unwrap(), now);
        assert_eq!(
            parse_when("2025-11-25T02:00:00-05:00", now).unwrap(),
            now,
            "an offset is the same instant"
        );
        assert_eq!(parse_when("2025-11-25", now).unwrap(), now - 7 * 3_600_000);
        assert_eq!(parse_when("1764054000000", now).unwrap(), now);
        assert_eq!(parse_when("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_when("90m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_when("7d", now).unwrap(), now - 7 * 86_400_000);
        for bad in ["yesterday", "", "5w", "h", "2025-13-01"] {
            let e = parse_when(bad, now).unwrap_err();
            assert!(
                e.is_input() && e.to_string().contains("is not a time"),
                "{bad}: {e}"
            );
        }
        assert_eq!(crate::time::iso(now), "2025-11-25T07:00:00Z");
    }
}
