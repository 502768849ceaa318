//! A circuit breaker per dependency (WARP, HubSpot), so that an outage
//! costs one probe now and then instead of every message's timeouts.
//!
//! Closed: calls go through, and each instance counts its transient
//! failures in a row. At `BREAKER_FAILURES` the circuit opens for
//! everyone (the open state lives in DynamoDB, `store::breakers`): calls
//! are refused at once with a transient error, so the consumer hands the
//! message back with its backoff without waiting on a dead peer. After the
//! open period one call, on one instance, goes through (half-open): success
//! closes the circuit, failure opens it again for twice as long, up to
//! `BREAKER_MAX_OPEN_S`. Refused messages come back spread by their own
//! backoff, so the backlog after an outage drains without a herd.
//!
//! The breaker never stops the sync by itself: when its own table cannot be
//! read or written it lets the call through and logs why.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::{info, warn};

use super::ports::CompanyDirectory;
use crate::hubspot::crm::HubspotError;
use crate::settings::{Env, SettingError};
use crate::store::breakers::{BreakerStore, OpenCircuit};
use crate::warp::WarpApi;
use crate::warp::{Customer, WarpError};

/// A dependency with a circuit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Warp,
    Hubspot,
}

impl Dependency {
    /// The breaker item's key and the metrics' `Dependency` dimension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warp => "warp",
            Self::Hubspot => "hubspot",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Warp => "WARP",
            Self::Hubspot => "HubSpot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Transient failures in a row, on one instance, that open the circuit
    /// (`BREAKER_FAILURES`). Each is a call that already spent the
    /// client's own retries.
    pub failures: u32,
    /// The first open period (`BREAKER_OPEN_S`).
    pub open: Duration,
    /// The longest open period (`BREAKER_MAX_OPEN_S`).
    pub max_open: Duration,
    /// How long an instance trusts what it last read of the shared state
    /// before reading it again: one read per batch or so, not per call.
    pub refresh: Duration,
    /// How long a probe holds the circuit before another instance may
    /// probe (the consumer's timeout: a probe cannot outlive it).
    pub probe_lease: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open: Duration::from_secs(30),
            max_open: Duration::from_secs(300),
            refresh: Duration::from_secs(2),
            probe_lease: Duration::from_secs(30),
        }
    }
}

/// An item is swept this long after its open period ends if nobody closed
/// it (the consumer went idle with the circuit open).
const FORGET_AFTER_S: i64 = 3600;

impl BreakerSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let d = Self::default();
        let failures = env.parse_in_range("BREAKER_FAILURES", d.failures, 1..=1000)?;
        let open = env.parse_in_range("BREAKER_OPEN_S", d.open.as_secs(), 1..=3600)?;
        let max_open =
            env.parse_in_range("BREAKER_MAX_OPEN_S", d.max_open.as_secs(), 1..=43_200)?;
        if max_open < open {
            return Err(SettingError::malformed(
                "BREAKER_MAX_OPEN_S",
                format!("{max_open} is below BREAKER_OPEN_S ({open})"),
            ));
        }
        Ok(Self {
            failures,
            open: Duration::from_secs(open),
            max_open: Duration::from_secs(max_open),
            ..d
        })
    }

    /// The open period after the `opens`-th opening of one outage.
    pub fn open_for(&self, opens: u32) -> Duration {
        let doublings = opens.saturating_sub(1).min(20);
        self.open
            .saturating_mul(1u32 << doublings)
            .min(self.max_open)
    }
}

/// What [`Breaker::admit`] decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed (or unreadable): call.
    Call,
    /// The one probe of an open circuit: call, and its outcome decides.
    Probe,
    /// Open: do not call. How long the dependency has been down, and until
    /// when no call goes through.
    Refused { down_ms: i64, open_until_ms: i64 },
}

#[derive(Debug, Default)]
struct Local {
    /// Transient failures in a row on this instance.
    failures: u32,
    /// The shared state as last read or written here.
    circuit: Option<OpenCircuit>,
    /// When it was read (epoch ms); `None`: read it before the next call.
    read_at_ms: Option<i64>,
}

/// Epoch milliseconds: [`crate::time::now_ms`], or a test's own clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// One dependency's breaker on one consumer instance.
pub struct Breaker<S> {
    dependency: Dependency,
    settings: BreakerSettings,
    store: S,
    local: Mutex<Local>,
    clock: Clock,
}

impl<S> std::fmt::Debug for Breaker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("dependency", &self.dependency)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: BreakerStore> Breaker<S> {
    pub fn new(dependency: Dependency, settings: BreakerSettings, store: S) -> Self {
        Self {
            dependency,
            settings,
            store,
            local: Mutex::new(Local::default()),
            clock: Arc::new(crate::time::now_ms),
        }
    }

    /// The same breaker on another clock (unit tests step time by hand).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub fn dependency(&self) -> Dependency {
        self.dependency
    }

    fn local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> R {
        let mut guard = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Whether the next call may go out.
    pub async fn admit(&self) -> Admission {
        let dep = self.dependency.as_str();
        let now = self.now_ms();
        let refresh_ms = self.settings.refresh.as_millis() as i64;
        let (known, fresh) = self.local(|l| {
            let fresh = l.read_at_ms.is_some_and(|at| now - at < refresh_ms);
            (l.circuit.clone(), fresh)
        });
        let circuit = if fresh {
            known
        } else {
            match self.store.circuit(dep).await {
                Ok(c) => {
                    let c = c.filter(|c| !c.expired(now));
                    self.local(|l| {
                        l.circuit = c.clone();
                        l.read_at_ms = Some(now);
                    });
                    c
                }
                Err(e) => {
                    warn!(dependency = dep, error = %crate::error::error_chain(&e), "circuit state unreadable; calling as if closed");
                    self.local(|l| l.read_at_ms = Some(now));
                    known
                }
            }
        };
        let Some(open) = circuit else {
            return Admission::Call;
        };
        let refused = Admission::Refused {
            down_ms: now - open.opened_at_ms,
            open_until_ms: open.open_until_ms,
        };
        if now < open.open_until_ms {
            crate::metrics::breaker_refused(dep, now - open.opened_at_ms);
            return refused;
        }
        let lease_until = now + self.settings.probe_lease.as_millis() as i64;
        match self.store.take_probe(dep, now, lease_until).await {
            Ok(true) => {
                info!(
                    dependency = dep,
                    state = "half-open",
                    down_s = (now - open.opened_at_ms) / 1000,
                    opens = open.opens,
                    "circuit half-open: one probe goes through"
                );
                crate::metrics::breaker_transition(dep, "half-open");
                Admission::Probe
            }
            Ok(false) => {
                // Another instance holds the probe (or closed the circuit
                // meanwhile): refuse here until the next read of the table
                // rather than try the probe again on every call.
                let retry_at = now + refresh_ms;
                self.local(|l| {
                    l.circuit = Some(OpenCircuit {
                        open_until_ms: retry_at,
                        ..open.clone()
                    });
                    l.read_at_ms = Some(now);
                });
                crate::metrics::breaker_refused(dep, now - open.opened_at_ms);
                Admission::Refused {
                    down_ms: now - open.opened_at_ms,
                    open_until_ms: retry_at,
                }
            }
            Err(e) => {
                warn!(dependency = dep, error = %crate::error::error_chain(&e), "probe not taken; calling anyway");
                Admission::Probe
            }
        }
    }

    /// The call went through and the dependency answered (a 404 or a 412
    /// is an answer).
    pub async fn succeeded(&self, admission: Admission) {
        self.local(|l| l.failures = 0);
        if admission != Admission::Probe {
            return;
        }
        let dep = self.dependency.as_str();
        let now = self.now_ms();
        match self.store.close(dep).await {
            Ok(closed) => {
                self.local(|l| {
                    l.circuit = None;
                    l.read_at_ms = Some(now);
                });
                if let Some(was) = closed {
                    let down_ms = now - was.opened_at_ms;
                    info!(
                        dependency = dep,
                        state = "closed",
                        down_s = down_ms / 1000,
                        opens = was.opens,
                        "circuit closed: the probe succeeded"
                    );
                    crate::metrics::breaker_transition(dep, "closed");
                    crate::metrics::dependency_down(dep, down_ms);
                }
            }
            Err(e) => {
                warn!(dependency = dep, error = %crate::error::error_chain(&e), "circuit not closed; it reopens its probe after the lease");
            }
        }
    }

    /// The call failed transiently (timeouts, 5xx, 429 past the client's
    /// own waiting).
    pub async fn failed(&self, admission: Admission) {
        let (failures, previous) = self.local(|l| {
            l.failures += 1;
            (l.failures, l.circuit.clone())
        });
        if admission != Admission::Probe && failures < self.settings.failures {
            return;
        }
        let dep = self.dependency.as_str();
        let now = self.now_ms();
        let opens = previous.as_ref().map_or(0, |c| c.opens) + 1;
        let period = self.settings.open_for(opens);
        let until = now + period.as_millis() as i64;
        let expires_at_s = until / 1000 + FORGET_AFTER_S;
        match self.store.open(dep, now, until, expires_at_s).await {
            Ok(open) => {
                warn!(
                    dependency = dep,
                    state = "open",
                    failures,
                    probe = admission == Admission::Probe,
                    open_s = period.as_secs(),
                    down_s = (now - open.opened_at_ms) / 1000,
                    opens = open.opens,
                    "circuit open: calls refused until the next probe"
                );
                crate::metrics::breaker_transition(dep, "open");
                crate::metrics::dependency_down(dep, now - open.opened_at_ms);
                self.local(|l| {
                    l.failures = 0;
                    l.circuit = Some(open);
                    l.read_at_ms = Some(now);
                });
            }
            Err(e) => {
                warn!(dependency = dep, error = %crate::error::error_chain(&e), "circuit not opened; calls go on");
            }
        }
    }

    /// Runs `call` through the breaker: refused at once while open, its
    /// outcome counted.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        E: Weather,
        F: Future<Output = Result<T, E>>,
    {
        let admission = self.admit().await;
        if let Admission::Refused {
            down_ms,
            open_until_ms,
        } = admission
        {
            return Err(E::refused(format!(
                "{} not called: its circuit is open (down {} s, next probe in {} s)",
                self.dependency.label(),
                down_ms.max(0) / 1000,
                (open_until_ms - self.now_ms()).max(0) / 1000
            )));
        }
        let result = call.await;
        match &result {
            Err(e) if e.is_weather() => self.failed(admission).await,
            _ => self.succeeded(admission).await,
        }
        result
    }
}

/// An error that may mean the dependency is down.
pub trait Weather {
    /// Down, slow or rate-limiting (what the breaker counts).
    fn is_weather(&self) -> bool;
    /// The transient error of a call the breaker refused.
    fn refused(why: String) -> Self;
}

impl Weather for WarpError {
    fn is_weather(&self) -> bool {
        self.is_transient()
    }

    fn refused(why: String) -> Self {
        WarpError::Transient(why)
    }
}

impl Weather for HubspotError {
    fn is_weather(&self) -> bool {
        self.is_transient()
    }

    fn refused(why: String) -> Self {
        HubspotError::Transient(why)
    }
}

/// A port behind its dependency's breaker.
#[derive(Debug)]
pub struct Guarded<T, S> {
    pub inner: T,
    pub breaker: Arc<Breaker<S>>,
}

impl<T, S> Guarded<T, S> {
    pub fn new(inner: T, breaker: Arc<Breaker<S>>) -> Self {
        Self { inner, breaker }
    }
}

impl<T: WarpApi, S: BreakerStore> WarpApi for Guarded<T, S> {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        self.breaker.call(self.inner.get(id)).await
    }

    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        self.breaker.call(self.inner.by_ban(ban)).await
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        self.breaker
            .call(self.inner.update(id, body, if_match))
            .await
    }
}

impl<T: CompanyDirectory, S: BreakerStore> CompanyDirectory for Guarded<T, S> {
    async fn warp_ban(&self, company_id: &str) -> Result<Option<String>, HubspotError> {
        self.breaker.call(self.inner.warp_ban(company_id)).await
    }
}

#[cfg(test)]
mod tests;
