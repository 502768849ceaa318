//! Wall-clock time in the units HubSpot and DynamoDB use.
//!
//! Tests that replay histories (tests/model) set a clock of their own, so
//! that leases, HubSpot's `occurredAt`, WARP's `updated_at` and the
//! reconciler's times all follow one model time and a seed replays exactly.
//! Nothing in a function ever sets it.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::{SystemTime, UNIX_EPOCH};

/// The set time in epoch ms; `i64::MIN`: none (the wall clock).
static SET_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    let set = SET_MS.load(Ordering::Relaxed);
    if set != i64::MIN {
        return set;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Makes [`now_ms`] answer `ms` (process-wide) until set again; `None`
/// restores the wall clock. For test binaries that model time; a process
/// that sets it must not run anything that needs the real time.
pub fn set_clock_ms(ms: Option<i64>) {
    SET_MS.store(ms.unwrap_or(i64::MIN), Ordering::Relaxed);
}

/// Epoch ms as RFC 3339 UTC, to the second (`2026-11-25T07:00:00Z`).
pub fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `20261125T070000Z`: sortable, and safe in S3 keys, file names and run
/// ids.
pub fn compact(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
        .replace(['-', ':'], "")
}
