//! How long a message handed back for a transient reason stays hidden
//! before its next receive: exponential in its receive count, capped, with
//! full jitter (a uniform draw below the ceiling), so that during an outage
//! retries thin out instead of burning receives, and a backlog comes back
//! spread out rather than all at once.
//!
//! The queue's redrive policy is chosen with these numbers
//! (`infra/template.yaml`, `SyncQueue`): with the defaults a message is
//! retried for days before it can reach the DLQ, and reaches it well inside
//! the queue's retention, so no change is dropped by expiry either.

use std::time::Duration;

use crate::settings::{Env, SettingError};

/// SQS's longest visibility timeout (12 hours).
pub const MAX_VISIBILITY_S: u64 = 12 * 3600;

/// An unreadable message is not waiting for anything: it comes back at
/// once (a second later), so it reaches the DLQ after its receives within
/// the hour instead of days, unless the other release's consumer reads it
/// first (during a deploy).
pub const UNREADABLE_RETRY_S: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first receive (`SYNC_RETRY_BASE_S`).
    pub base: Duration,
    /// The ceiling never grows past this (`SYNC_RETRY_CAP_S`).
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(20),
            cap: Duration::from_secs(900),
        }
    }
}

impl Backoff {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let d = Self::default();
        let base = env.parse_in_range("SYNC_RETRY_BASE_S", d.base.as_secs(), 1..=3600)?;
        let cap = env.parse_in_range("SYNC_RETRY_CAP_S", d.cap.as_secs(), 1..=MAX_VISIBILITY_S)?;
        if cap < base {
            return Err(SettingError::malformed(
                "SYNC_RETRY_CAP_S",
                format!("{cap} is below SYNC_RETRY_BASE_S ({base})"),
            ));
        }
        Ok(Self {
            base: Duration::from_secs(base),
            cap: Duration::from_secs(cap),
        })
    }

    /// The most a message is hidden after its `receive_count`-th receive:
    /// base, 2 base, 4 base, ... up to the cap.
    pub fn ceiling(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// The hiding after the `receive_count`-th receive for a draw `unit` in
    /// [0, 1): full jitter, at least a second (SQS's unit).
    pub fn delay(&self, receive_count: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(receive_count).as_secs_f64();
        Duration::from_secs_f64((ceiling * unit.clamp(0.0, 1.0)).max(1.0))
    }

    /// [`Backoff::delay`] in whole seconds, as SQS takes a visibility.
    pub fn delay_seconds(&self, receive_count: u32, unit: f64) -> i32 {
        let secs = self.delay(receive_count, unit).as_secs();
        secs.clamp(1, MAX_VISIBILITY_S) as i32
    }

    /// [`Backoff::delay_seconds`] with a fresh draw.
    pub fn draw_seconds(&self, receive_count: u32) -> i32 {
        self.delay_seconds(receive_count, rand::random::<f64>())
    }

    /// The expected time a message is retried before its `receives`-th
    /// receive (half of each ceiling, full jitter's mean) and the least
    /// (every draw at its one-second floor): the arithmetic beside the
    /// redrive policy.
    pub fn expected_and_least(&self, receives: u32) -> (Duration, Duration) {
        let mut expected = Duration::ZERO;
        for n in 1..receives {
            expected += self.ceiling(n) / 2;
        }
        let least = Duration::from_secs(u64::from(receives.saturating_sub(1)));
        (expected, least)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_the_base_to_the_cap() {
        let b = Backoff::default();
        let ceilings: Vec<u64> = (1..=8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(b.ceiling(1_000).as_secs(), 900);
        assert_eq!(b.ceiling(0).as_secs(), 20, "no receive count: the base");
    }

    #[test]
    fn a_delay_is_a_draw_below_its_ceiling_and_at_least_a_second() {
        let b = Backoff::default();
        assert_eq!(b.delay(7, 0.0).as_secs(), 1);
        assert_eq!(b.delay(7, 0.5).as_secs(), 450);
        assert!(b.delay(7, 0.999_999) <= b.ceiling(7));
        for n in [1, 2, 5, 50, 999] {
            let s = b.draw_seconds(n);
            assert!(s >= 1 && s as u64 <= b.ceiling(n).as_secs(), "{n}: {s}");
        }
    }

    /// The redrive policy's arithmetic (template, `SyncQueue`): with 1,000
    /// receives a message is retried about 5.2 days on average, and at
    /// least 4 days but with odds below 1e-30 (a sum of 993 uniform draws
    /// on [0, 900 s] falls 12 standard deviations short of its mean); at
    /// most 1,000 x (900 s + a 30 s invocation) = 10.8 days, inside the
    /// queue's 14-day retention, so an outage longer than that ends in the
    /// DLQ, never in expiry.
    #[test]
    fn the_defaults_retry_for_days_and_reach_the_dlq_inside_the_retention() {
        let b = Backoff::default();
        let (expected, _) = b.expected_and_least(1_000);
        let days = expected.as_secs_f64() / 86_400.0;
        assert!((5.0..5.4).contains(&days), "{days}");
        let at_cap = 1_000 - 7;
        let sd = 900.0 / 12f64.sqrt() * f64::from(at_cap).sqrt();
        let short = (expected.as_secs_f64() - 4.0 * 86_400.0) / sd;
        assert!(short > 12.0, "{short} sd");
        let most = 1_000.0 * (900.0 + 30.0) / 86_400.0;
        assert!(most < 14.0, "{most}");
    }

    #[test]
    fn settings_are_checked_and_named() {
        let env = Env::from_pairs([("SYNC_RETRY_BASE_S", "60"), ("SYNC_RETRY_CAP_S", "30")]);
        let e = Backoff::from_env(&env).unwrap_err().to_string();
        assert!(e.contains("SYNC_RETRY_CAP_S"), "{e}");
        let env = Env::from_pairs([("SYNC_RETRY_CAP_S", "50000")]);
        assert!(Backoff::from_env(&env).is_err());
        let env = Env::from_pairs([("SYNC_RETRY_BASE_S", "5"), ("SYNC_RETRY_CAP_S", "60")]);
        let b = Backoff::from_env(&env).unwrap();
        assert_eq!((b.base.as_secs(), b.cap.as_secs()), (5, 60));
    }
}
