//! What a client and its clones share: call counters for the run's report,
//! and the daily cap once HubSpot has said it is reached.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::transport::Kind;

/// Requests sent (retries included) per kind, and how the rate limits
/// weighed on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub get: u64,
    pub list: u64,
    pub batch_read: u64,
    pub batch_update: u64,
    pub search: u64,
    /// Property definitions, groups and the token's own description
    /// (`hubwarp setup` and `doctor`; never the nightly run).
    pub schema: u64,
    /// 429 answers received, of any policy.
    pub rate_limited_429s: u64,
    /// Times a request waited before it was sent: for the limiter's budget,
    /// a pause HubSpot's headers asked for, or a 429 waited out.
    pub rate_limit_waits: u64,
    pub waited_ms: u64,
}

impl CallCounts {
    /// Requests sent, all kinds together.
    pub fn requests(&self) -> u64 {
        self.get + self.list + self.batch_read + self.batch_update + self.search + self.schema
    }
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    get: AtomicU64,
    list: AtomicU64,
    batch_read: AtomicU64,
    batch_update: AtomicU64,
    search: AtomicU64,
    schema: AtomicU64,
    rate_limited_429s: AtomicU64,
    rate_limit_waits: AtomicU64,
    waited_ms: AtomicU64,
    /// Epoch ms before which the daily cap holds; 0 when not reached.
    daily_until_ms: AtomicI64,
}

impl Shared {
    pub(super) fn sent(&self, kind: Kind) {
        let counter = match kind {
            Kind::Get => &self.get,
            Kind::List => &self.list,
            Kind::BatchRead => &self.batch_read,
            Kind::BatchUpdate => &self.batch_update,
            Kind::Search => &self.search,
            Kind::Schema | Kind::TokenInfo => &self.schema,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        crate::metrics::hubspot_call();
    }

    pub(super) fn throttled(&self) {
        self.rate_limited_429s.fetch_add(1, Ordering::Relaxed);
        crate::metrics::hubspot_rate_limited();
    }

    pub(super) fn waited(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
        self.waited_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        crate::metrics::rate_limit_wait(wait.as_millis() as u64);
    }

    pub(super) fn daily_limit_until(&self, retry_at_ms: i64) {
        self.daily_until_ms
            .fetch_max(retry_at_ms, Ordering::Relaxed);
    }

    /// The daily cap's end while it still holds at `now_ms`.
    pub(super) fn daily_limit(&self, now_ms: i64) -> Option<i64> {
        let until = self.daily_until_ms.load(Ordering::Relaxed);
        (until > now_ms).then_some(until)
    }

    pub(super) fn counts(&self) -> CallCounts {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CallCounts {
            get: n(&self.get),
            list: n(&self.list),
            batch_read: n(&self.batch_read),
            batch_update: n(&self.batch_update),
            search: n(&self.search),
            schema: n(&self.schema),
            rate_limited_429s: n(&self.rate_limited_429s),
            rate_limit_waits: n(&self.rate_limit_waits),
            waited_ms: n(&self.waited_ms),
        }
    }
}
