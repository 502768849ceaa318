//! HubSpot's request budget, kept on our side so a run never meets a 429 it
//! could have avoided.
//!
//! HubSpot counts a private app's requests in a *rolling* 10 s window (100,
//! 190 or 250 by plan), and search requests apart, at a few per second. A
//! token bucket or GCRA (the `governor` crate) allows a burst of the whole
//! budget right after a steady stream, which a rolling window refuses; it
//! would have to be de-rated to about half the budget to be safe. A log of
//! the requests of the last window is exact instead, and small: at most
//! `budget` instants per lane.
//!
//! Each entry is stamped when the answer has arrived, not when the request
//! left: HubSpot saw the request somewhere in between, so the stamp is an
//! upper bound of HubSpot's own, and a request sent a full window after it
//! can never share HubSpot's window with it, whatever the latency. Requests
//! still in flight count as taking a place.
//!
//! That safety costs a lane a round trip per place: a place is held from
//! the send to a window after the answer, so a lane of `n` places serves
//! `n` requests per window plus latency. For the ten-secondly window that
//! is a few per cent; for search's one second it is a fifth at 200 ms a
//! search, and search is what a night's floor is made of. So search is
//! paced apart from its ceiling: HubSpot's own limit of five a second
//! (`SEARCH_PER_S_MAX`) is the ceiling, stamped at the answer as above and
//! never exceeded whatever the latency, and the setting (default 4) is the
//! pace, counted when requests leave. The pace is then what a run gets.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::settings::{Env, SettingError};

/// HubSpot's plans: Free/Starter, Professional/Enterprise, and with the
/// API limit increase. Anything else is a typo that would either waste the
/// budget or meet 429s.
pub const PLAN_BUDGETS_PER_10S: [u32; 3] = [100, 190, 250];
pub const PER_10S_SETTING: &str = "HUBSPOT_RATE_LIMIT_PER_10S";
pub const SEARCH_PER_S_SETTING: &str = "HUBSPOT_SEARCH_RATE_LIMIT_PER_S";
/// HubSpot documents "about 4-5" search requests per second per token.
const SEARCH_PER_S_MAX: u32 = 5;
const DEFAULT_SEARCH_PER_S: u32 = 4;
/// How many 429s one call waits out before it gives up as transient: a
/// storm slows a run down, it must not drop calls, yet a limit that never
/// lifts must end the run some day.
const DEFAULT_MAX_THROTTLED_RETRIES: u32 = 50;

/// The two budgets HubSpot keeps per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Everything but search: the ten-secondly rolling window.
    General,
    /// Search: exempt from the ten-secondly window, under its own secondly one.
    Search,
}

/// One lane's rolling-window log.
#[derive(Debug)]
struct Window {
    /// What the setting asked for; `budget` may drop below it when HubSpot's
    /// headers say the account has less.
    configured: u32,
    budget: u32,
    /// Answers in a window never exceed this (HubSpot's limit); `budget`
    /// is then a pace counted at the send, when `sent` is kept.
    ceiling: u32,
    /// When the requests of the last window left (a paced lane's only).
    sent: Option<VecDeque<Instant>>,
    interval: Duration,
    in_flight: u32,
    /// When answers arrived, oldest first.
    done: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Window {
    fn new(budget: u32, interval: Duration) -> Self {
        let budget = budget.max(1);
        Self {
            configured: budget,
            budget,
            ceiling: budget,
            sent: None,
            interval,
            in_flight: 0,
            done: VecDeque::with_capacity(budget as usize),
            paused_until: None,
        }
    }

    /// `budget` a window, counted as requests leave, under a `ceiling` of
    /// answers a window.
    fn paced(budget: u32, ceiling: u32, interval: Duration) -> Self {
        let mut w = Self::new(budget, interval);
        w.ceiling = ceiling.max(w.budget);
        w.sent = Some(VecDeque::with_capacity(w.budget as usize));
        w
    }

    /// Takes a place and says how many are taken now, this one included;
    /// or says until when (`None`: until an in-flight request ends) there
    /// is none.
    fn try_take(&mut self, now: Instant) -> Result<u32, Option<Instant>> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(Some(until));
            }
            self.paused_until = None;
        }
        self.purge(now);
        let interval = self.interval;
        let limit = if self.sent.is_some() {
            self.ceiling
        } else {
            self.budget
        };
        if self.taken() >= limit {
            return Err(self.done.front().map(|&t| t + interval));
        }
        if let Some(sent) = &mut self.sent {
            if sent.len() >= self.budget as usize {
                return Err(sent.front().map(|&t| t + interval));
            }
            sent.push_back(now);
        }
        self.in_flight += 1;
        Ok(self.taken())
    }

    /// Lets go of the answers (and sends) older than the interval.
    fn purge(&mut self, now: Instant) {
        let old = |t: &Instant| *t + self.interval <= now;
        while self.done.front().is_some_and(old) {
            self.done.pop_front();
        }
        if let Some(sent) = &mut self.sent {
            while sent.front().is_some_and(old) {
                sent.pop_front();
            }
        }
    }

    /// Places in use: requests in flight and answers of the last interval
    /// (as of the last purge).
    fn taken(&self) -> u32 {
        self.in_flight
            .saturating_add(u32::try_from(self.done.len()).unwrap_or(u32::MAX))
    }

    fn release(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.done.push_back(now);
    }

    fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

#[derive(Debug)]
struct Lanes {
    general: Window,
    search: Window,
}

impl Lanes {
    fn get(&mut self, lane: Lane) -> &mut Window {
        match lane {
            Lane::General => &mut self.general,
            Lane::Search => &mut self.search,
        }
    }
}

/// What HubSpot's `X-HubSpot-RateLimit-*` headers said about a lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub max: Option<u32>,
    pub remaining: Option<u32>,
    pub interval: Option<Duration>,
}

impl RateHeaders {
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Self {
            max: number("x-hubspot-ratelimit-max").map(|n| n.min(u64::from(u32::MAX)) as u32),
            remaining: number("x-hubspot-ratelimit-remaining")
                .map(|n| n.min(u64::from(u32::MAX)) as u32),
            interval: number("x-hubspot-ratelimit-interval-milliseconds")
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
        }
    }
}

/// One per run, shared by every clone of the client (`Arc`).
#[derive(Debug)]
pub struct RateLimiter {
    lanes: Mutex<Lanes>,
    freed: Notify,
    max_throttled_retries: u32,
}

/// A place in a lane's window, held while the request is in flight.
/// Dropping it (answer read, or the call abandoned) stamps the window.
#[must_use = "the place is given back when the permit drops"]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    lane: Lane,
    taken: u32,
}

impl Permit<'_> {
    /// Places of the lane's window in use when this one was given, itself
    /// included: what [`RateLimiter::observe_answer`] compares HubSpot's
    /// `Remaining` with.
    pub fn taken(&self) -> u32 {
        self.taken
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.lock().get(self.lane).release(Instant::now());
        self.limiter.freed.notify_waiters();
    }
}

impl RateLimiter {
    /// `per_10s` requests in any rolling 10 s, and `search_per_s` searches
    /// sent in any rolling second under HubSpot's five answered; zero is
    /// read as one. [`RateLimiter::from_env`]
    /// is the checked way in; this one lets tests use small budgets.
    pub fn new(per_10s: u32, search_per_s: u32) -> Self {
        Self {
            lanes: Mutex::new(Lanes {
                general: Window::new(per_10s, Duration::from_secs(10)),
                search: Window::paced(search_per_s, SEARCH_PER_S_MAX, Duration::from_secs(1)),
            }),
            freed: Notify::new(),
            max_throttled_retries: DEFAULT_MAX_THROTTLED_RETRIES,
        }
    }

    /// `HUBSPOT_RATE_LIMIT_PER_10S` (100, 190 or 250; default 100, the
    /// smallest plan, so a missing setting costs speed, never 429s) and
    /// `HUBSPOT_SEARCH_RATE_LIMIT_PER_S` (1 to 5; default 4).
    pub fn from_env(env: &Env) -> Result<RateLimiter, SettingError> {
        let per_10s = env.parse_or(PER_10S_SETTING, PLAN_BUDGETS_PER_10S[0])?;
        if !PLAN_BUDGETS_PER_10S.contains(&per_10s) {
            return Err(SettingError::malformed(
                PER_10S_SETTING,
                format!("{per_10s} is not a HubSpot plan's budget (100, 190 or 250)"),
            ));
        }
        let search = env.parse_in_range(
            SEARCH_PER_S_SETTING,
            DEFAULT_SEARCH_PER_S,
            1..=SEARCH_PER_S_MAX,
        )?;
        Ok(Self::new(per_10s, search))
    }

    /// How many 429s one call waits out (default 50).
    pub fn with_max_throttled_retries(mut self, n: u32) -> Self {
        self.max_throttled_retries = n;
        self
    }

    pub fn max_throttled_retries(&self) -> u32 {
        self.max_throttled_retries
    }

    /// The lane's budget in force: the configured one, or less when
    /// HubSpot's headers said so.
    pub fn budget(&self, lane: Lane) -> u32 {
        self.lock().get(lane).budget
    }

    pub fn interval(&self, lane: Lane) -> Duration {
        self.lock().get(lane).interval
    }

    /// Waits for a place in `lane`; returns it and how long it waited
    /// (zero when a place was free at once, so only real waits count).
    pub async fn acquire(&self, lane: Lane) -> (Permit<'_>, Duration) {
        let started = Instant::now();
        let mut waited = false;
        loop {
            // Created before the check: a place freed in between still wakes it.
            let freed = self.freed.notified();
            let wait = match self.lock().get(lane).try_take(Instant::now()) {
                Ok(taken) => {
                    let permit = Permit {
                        limiter: self,
                        lane,
                        taken,
                    };
                    let waited = if waited {
                        started.elapsed()
                    } else {
                        Duration::ZERO
                    };
                    return (permit, waited);
                }
                Err(wait) => wait,
            };
            waited = true;
            match wait {
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = freed => {}
                    }
                }
                None => freed.await,
            }
        }
    }

    /// Nobody takes a place in `lane` for `wait` (HubSpot said 429).
    pub fn pause(&self, lane: Lane, wait: Duration) {
        self.lock().get(lane).pause_until(Instant::now() + wait);
    }

    /// Learns from HubSpot's headers: a smaller `Max` than configured means
    /// the account's plan is smaller, and `Remaining: 0` while our own log
    /// still has room means someone else spends the same budget (another
    /// run, another app of the account), so the lane waits out the
    /// interval. With our log full, the log already waits exactly as long
    /// as needed, and pausing the whole interval on every answer of a run
    /// at full budget would halve it.
    pub fn observe(&self, lane: Lane, headers: RateHeaders) {
        let mut lanes = self.lock();
        let window = lanes.get(lane);
        let now = Instant::now();
        window.purge(now);
        let ours = window.taken();
        Self::learn(window, lane, headers, ours, now);
    }

    /// [`RateLimiter::observe`] for the answer to a request whose permit
    /// said `taken`. HubSpot's `Remaining` is as of when it received the
    /// request, so it is compared with our log as of when the request
    /// left: by the time the answer is read, our log may already have let
    /// an old entry go that HubSpot still counted, and a window we fill
    /// ourselves would look shared. (It did: a run at full budget paused
    /// ten seconds for nothing every few windows.)
    pub fn observe_answer(&self, lane: Lane, headers: RateHeaders, taken: u32) {
        let mut lanes = self.lock();
        Self::learn(lanes.get(lane), lane, headers, taken, Instant::now());
    }

    /// `ours`: the places our own requests held in HubSpot's window.
    fn learn(window: &mut Window, lane: Lane, headers: RateHeaders, ours: u32, now: Instant) {
        if let Some(max) = headers.max.filter(|&m| m > 0 && m < window.budget) {
            warn!(
                lane = ?lane,
                configured = window.configured,
                hubspot_max = max,
                "HubSpot reports a smaller rate limit than configured; using HubSpot's"
            );
            window.budget = max;
            window.ceiling = window.ceiling.min(max);
        }
        if headers.remaining == Some(0) && ours < window.budget {
            let wait = headers.interval.unwrap_or(window.interval);
            debug!(lane = ?lane, wait_ms = wait.as_millis() as u64, ours, "HubSpot says no requests remain in its window; pausing");
            window.pause_until(now + wait);
        }
    }

    /// A poisoned lock still holds a consistent log: every change is made
    /// whole under it.
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
