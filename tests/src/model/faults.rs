//! Faults at every step: wrappers that implement the same ports as the
//! real adapters (event log, queue sender, sync store, WARP, HubSpot) and,
//! at calls the seeded plan picks, fail, time out after the call took
//! effect, answer 429/5xx, race a concurrent WARP editor into a 412, or
//! crash the invocation (its future is dropped at that call, as a Lambda
//! killed mid-batch or between pages).
//!
//! Effects that happen inside an invocation that then fails (a write that
//! "timed out" after it landed, the writes before a crash) are noted as
//! observations, so the model can follow what the world really holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hubwarp::hubspot::crm::{BatchRead, BatchUpdate, CompanyPage, CompanyUpdate, HubspotError};
use hubwarp::hubspot::webhook::Unhandled;
use hubwarp::mapping::conflict::FieldState;
use hubwarp::queue::{Outgoing, QueueError, SyncQueue};
use hubwarp::reconcile::ports::{HubspotCompanies, MarkedPage, RateStats, WarpCustomers};
use hubwarp::store::sync::{
    ConflictQueue, ConflictRecord, FieldStateStore, Link, LinkStore, SyncLog, SyncLogEntry,
};
use hubwarp::store::{
    ClaimOutcome, EventLog, EventStatus, Lease, NewEvent, StoreError, StuckEvent, StuckEvents,
};
use hubwarp::sync::ports::CompanyDirectory;
use hubwarp::warp::WarpApi;
use hubwarp::warp::{Customer, Page, WarpError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

/// Where a fault can strike: every call of every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    Claim,
    MarkQueued,
    Release,
    RecordUnhandled,
    Send,
    Status,
    Settle,
    StuckPage,
    TakeStuck,
    Link,
    PutLink,
    FieldStates,
    PutFieldState,
    Append,
    PutConflict,
    OpenConflicts,
    WarpGet,
    WarpByBan,
    WarpPut,
    WarpList,
    HubBan,
    HubList,
    HubRead,
    HubUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The call fails and has no effect.
    Error,
    /// The call takes effect, then the caller sees a timeout.
    TimeoutAfter,
    RateLimited,
    ServerError,
    /// Another WARP user writes the customer just before this PUT (412).
    Race,
    /// The invocation dies at this call.
    Crash,
}

/// A dependency down for a span of model time: every WARP call answers
/// 5xx, or HubSpot refuses every call with 429. Weather, not a fault of a
/// call: the consumer must ride it out without sending a change to the DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub what: Down,
    pub from_ms: i64,
    pub until_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    Warp,
    HubspotThrottling,
}

impl Outage {
    /// What the soak's figures call it: `WARP down 6 h`, ...
    pub fn label(&self) -> String {
        let minutes = (self.until_ms - self.from_ms) / 60_000;
        let span = if minutes % 1440 == 0 {
            format!("{} days", minutes / 1440)
        } else if minutes % 60 == 0 {
            format!("{} h", minutes / 60)
        } else {
            format!("{minutes} min")
        };
        match self.what {
            Down::Warp => format!("WARP down {span}"),
            Down::HubspotThrottling => format!("HubSpot 429 {span}"),
        }
    }

    fn covers(&self, site: Site, now: i64) -> Option<Fault> {
        if now < self.from_ms || now >= self.until_ms {
            return None;
        }
        match (self.what, site) {
            (Down::Warp, Site::WarpGet | Site::WarpByBan | Site::WarpPut | Site::WarpList) => {
                Some(Fault::ServerError)
            }
            (
                Down::HubspotThrottling,
                Site::HubBan | Site::HubList | Site::HubRead | Site::HubUpdate,
            ) => Some(Fault::RateLimited),
            _ => None,
        }
    }
}

/// What the world did inside invocations that did not finish cleanly.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// (customer id, body) of WARP writes that landed.
    pub warp_puts: Vec<(String, Map<String, Value>)>,
    pub field_states: Vec<(String, String, FieldState)>,
    pub conflicts: Vec<(String, String)>,
    pub links: Vec<Link>,
    pub settled: Vec<String>,
    /// (company id, properties) of HubSpot batch updates that landed.
    pub hub_updates: Vec<(String, BTreeMap<String, String>)>,
    /// Concurrent WARP edits the plan made: (customer id, patch).
    pub race_edits: Vec<(String, Value)>,
}

impl Observed {
    pub fn absorb(&mut self, o: Observed) {
        self.warp_puts.extend(o.warp_puts);
        self.field_states.extend(o.field_states);
        self.conflicts.extend(o.conflicts);
        self.links.extend(o.links);
        self.settled.extend(o.settled);
        self.hub_updates.extend(o.hub_updates);
        self.race_edits.extend(o.race_edits);
    }
}

/// A concurrent WARP user: edits a customer, returns the patch it wrote.
pub type Editor = Box<dyn Fn(&str, &mut StdRng) -> Option<Value> + Send + Sync>;

pub struct FaultPlan {
    rng: Mutex<StdRng>,
    /// Probability that a call is faulted.
    rate: Mutex<f64>,
    crashes: Mutex<bool>,
    races: Mutex<bool>,
    pub fired: AtomicU64,
    counts: Mutex<BTreeMap<(Site, Fault), u64>>,
    observed: Mutex<Observed>,
    kill: tokio::sync::Notify,
    editor: Mutex<Option<Editor>>,
    /// Calls under way past their fault check.
    in_flight: AtomicUsize,
    /// HubSpot calls still to be refused by the 429 storm under way.
    storm: Mutex<u32>,
    pub storms: AtomicU64,
    outages: Mutex<Vec<Outage>>,
}

/// One call under way; counted until it ends or its future is dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultPlan {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xfa17)),
            rate: Mutex::new(0.0),
            crashes: Mutex::new(false),
            races: Mutex::new(true),
            fired: AtomicU64::new(0),
            counts: Mutex::default(),
            observed: Mutex::default(),
            kill: tokio::sync::Notify::new(),
            editor: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            storm: Mutex::new(0),
            storms: AtomicU64::new(0),
            outages: Mutex::default(),
        })
    }

    /// Schedules an outage (in model time; it holds whatever the fault
    /// rate, recovery included).
    pub fn add_outage(&self, outage: Outage) {
        lock(&self.outages).push(outage);
    }

    /// When the last scheduled outage ends.
    pub fn outages_end_ms(&self) -> Option<i64> {
        lock(&self.outages).iter().map(|o| o.until_ms).max()
    }

    pub fn set_editor(&self, editor: Editor) {
        *lock(&self.editor) = Some(editor);
    }

    /// Faults every call with probability `rate`; crashes only when allowed
    /// (the harness can only drop invocations it runs under `run_killable`).
    pub fn set(&self, rate: f64, crashes: bool) {
        *lock(&self.rate) = rate;
        *lock(&self.crashes) = crashes;
    }

    /// Whether a WARP PUT may race a concurrent editor. Off in nightly
    /// runs: every write of a run lands at one model instant, so which of
    /// the run's HubSpot write and the editor's WARP write is "later" for
    /// LATEST_WINS is an accident of call order the model cannot know.
    pub fn set_races(&self, races: bool) {
        *lock(&self.races) = races;
    }

    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    pub fn counts(&self) -> BTreeMap<(Site, Fault), u64> {
        lock(&self.counts).clone()
    }

    pub fn take_observed(&self) -> Observed {
        std::mem::take(&mut *lock(&self.observed))
    }

    fn observe(&self, f: impl FnOnce(&mut Observed)) {
        f(&mut lock(&self.observed));
    }

    /// Awaits a port's own call, counted as in flight.
    async fn call<R>(&self, call: impl std::future::Future<Output = R>) -> R {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _counted = InFlight(&self.in_flight);
        call.await
    }

    /// Whether `site` fails this time, and how.
    ///
    /// A crash strikes only while no other call is under way. In process
    /// that is always so (a call ends when first polled); over the network
    /// a killed invocation's request in flight may or may not land, which
    /// no observer could tell the model. A request that landed for a
    /// caller that then failed is `TimeoutAfter`, and a kill between calls
    /// is `Crash`, so together they still cover it.
    pub fn pick(&self, site: Site) -> Option<Fault> {
        let now = hubwarp::time::now_ms();
        let down = lock(&self.outages).iter().find_map(|o| o.covers(site, now));
        if let Some(fault) = down {
            self.fired.fetch_add(1, Ordering::Relaxed);
            *lock(&self.counts).entry((site, fault)).or_default() += 1;
            return Some(fault);
        }
        let rate = *lock(&self.rate);
        if rate <= 0.0 {
            return None;
        }
        let crashes = *lock(&self.crashes) && self.in_flight.load(Ordering::SeqCst) == 0;
        let races = *lock(&self.races);
        let mut rng = lock(&self.rng);
        if matches!(
            site,
            Site::HubBan | Site::HubList | Site::HubRead | Site::HubUpdate
        ) {
            // A 429 storm: every HubSpot call refused for a while (longer
            // than a client waits out), now and then.
            let mut storm = lock(&self.storm);
            if *storm == 0 && rng.random_bool((rate / 10.0).min(1.0)) {
                *storm = rng.random_range(5..=40);
                self.storms.fetch_add(1, Ordering::Relaxed);
            }
            if *storm > 0 {
                *storm -= 1;
                drop(storm);
                drop(rng);
                self.fired.fetch_add(1, Ordering::Relaxed);
                *lock(&self.counts)
                    .entry((site, Fault::RateLimited))
                    .or_default() += 1;
                return Some(Fault::RateLimited);
            }
        }
        if !rng.random_bool(rate.min(1.0)) {
            return None;
        }
        use Fault::*;
        let choices: &[Fault] = match site {
            Site::Claim | Site::MarkQueued | Site::Send => &[Error, TimeoutAfter],
            Site::Release | Site::RecordUnhandled | Site::StuckPage | Site::TakeStuck => &[Error],
            Site::Status | Site::Link | Site::FieldStates | Site::OpenConflicts => &[Error, Crash],
            Site::Settle
            | Site::PutLink
            | Site::PutFieldState
            | Site::Append
            | Site::PutConflict => &[Error, TimeoutAfter, Crash],
            Site::WarpGet | Site::WarpByBan => &[ServerError, RateLimited, Crash],
            Site::WarpPut => &[ServerError, RateLimited, TimeoutAfter, Race, Race, Crash],
            Site::WarpList => &[ServerError, Crash, Crash],
            Site::HubBan | Site::HubRead | Site::HubUpdate => &[ServerError, RateLimited, Crash],
            Site::HubList => &[ServerError, RateLimited, Crash],
        };
        let allowed: Vec<Fault> = choices
            .iter()
            .copied()
            .filter(|f| (crashes || *f != Crash) && (races || *f != Race))
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let fault = allowed[rng.random_range(0..allowed.len())];
        drop(rng);
        self.fired.fetch_add(1, Ordering::Relaxed);
        *lock(&self.counts).entry((site, fault)).or_default() += 1;
        Some(fault)
    }

    /// Dies here: wakes the harness, which drops the invocation's future.
    async fn crash<T>(&self) -> T {
        self.kill.notify_one();
        std::future::pending::<T>().await
    }

    /// Runs `fut` as one invocation that a `Crash` fault may kill:
    /// `None` when it was killed.
    pub async fn run_killable<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        // `biased`: the invocation is polled first, so a crash's
        // notification (stored as a permit when nobody waits yet) is
        // consumed by this select and never kills a later invocation.
        tokio::select! {
            biased;
            out = fut => Some(out),
            () = self.kill.notified() => None,
        }
    }

    fn race_edit(&self, customer_id: &str) {
        let editor = lock(&self.editor);
        let Some(edit) = editor.as_ref() else {
            return;
        };
        let mut rng = lock(&self.rng);
        if let Some(patch) = edit(customer_id, &mut rng) {
            drop(rng);
            self.observe(|o| o.race_edits.push((customer_id.to_string(), patch)));
        }
    }
}

fn store_error(site: Site) -> StoreError {
    StoreError::Aws {
        operation: "injected",
        table: format!("{site:?}"),
        source: "injected fault".into(),
    }
}

fn warp_error(fault: Fault) -> WarpError {
    WarpError::Transient(match fault {
        Fault::RateLimited => "429 RATE_LIMITED (injected)".into(),
        Fault::TimeoutAfter => "timeout (injected)".into(),
        _ => "500 INTERNAL_ERROR (injected)".into(),
    })
}

fn hubspot_error(fault: Fault) -> HubspotError {
    HubspotError::Transient(match fault {
        Fault::RateLimited => "429 TEN_SECONDLY_ROLLING (injected)".into(),
        _ => "502 (injected)".into(),
    })
}

/// A port with faults in front of it; clones share the inner adapter.
pub struct Faulty<T> {
    pub inner: Arc<T>,
    pub plan: Arc<FaultPlan>,
}

impl<T> Clone for Faulty<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            plan: self.plan.clone(),
        }
    }
}

impl<T> Faulty<T> {
    pub fn new(inner: Arc<T>, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }

    /// A store call: `Error` fails before, `TimeoutAfter` after the effect.
    async fn store<R>(
        &self,
        site: Site,
        call: impl std::future::Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        match self.plan.pick(site) {
            None => self.plan.call(call).await,
            Some(Fault::Crash) => self.plan.crash().await,
            Some(Fault::TimeoutAfter) => {
                self.plan.call(call).await?;
                Err(store_error(site))
            }
            Some(_) => Err(store_error(site)),
        }
    }
}

impl<T: EventLog> EventLog for Faulty<T> {
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.store(
            Site::Claim,
            self.inner.claim(event, lease, now_ms, expires_at_s),
        )
        .await
    }

    async fn mark_queued(&self, key: &str, owner: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.store(Site::MarkQueued, self.inner.mark_queued(key, owner, now_ms))
            .await
    }

    async fn status(&self, key: &str) -> Result<Option<EventStatus>, StoreError> {
        self.store(Site::Status, self.inner.status(key)).await
    }

    async fn settle(
        &self,
        key: &str,
        status: &EventStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store(Site::Settle, async {
            let r = self.inner.settle(key, status, reason).await;
            if r.is_ok() {
                self.plan.observe(|o| o.settled.push(key.to_string()));
            }
            r
        })
        .await
    }

    async fn record_unhandled(
        &self,
        event: &Unhandled,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<bool, StoreError> {
        self.store(
            Site::RecordUnhandled,
            self.inner.record_unhandled(event, now_ms, expires_at_s),
        )
        .await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.store(Site::Release, self.inner.release(key, owner))
            .await
    }

    /// Not a fault site: the consumer's note of its last failure is best
    /// effort, and its own failure changes no outcome the model checks.
    async fn note_failure(&self, key: &str, error: &str, now_ms: i64) -> Result<(), StoreError> {
        self.plan
            .call(self.inner.note_failure(key, error, now_ms))
            .await
    }
}

impl<T: StuckEvents> StuckEvents for Faulty<T> {
    async fn stuck_page(
        &self,
        lapsed_before_ms: i64,
        start: Option<String>,
    ) -> Result<(Vec<StuckEvent>, Option<String>), StoreError> {
        self.store(
            Site::StuckPage,
            self.inner.stuck_page(lapsed_before_ms, start),
        )
        .await
    }

    async fn take_stuck(
        &self,
        key: &str,
        owner: &str,
        lapsed_before_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        self.store(
            Site::TakeStuck,
            self.inner
                .take_stuck(key, owner, lapsed_before_ms, lease_until_ms),
        )
        .await
    }
}

impl<T: SyncQueue> SyncQueue for Faulty<T> {
    async fn send_all(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), QueueError>> {
        let failed = || QueueError::Aws {
            operation: "SendMessageBatch",
            message: "injected fault".into(),
        };
        match self.plan.pick(Site::Send) {
            None => self.plan.call(self.inner.send_all(messages)).await,
            Some(Fault::TimeoutAfter) => {
                self.plan.call(self.inner.send_all(messages)).await;
                messages.iter().map(|_| Err(failed())).collect()
            }
            Some(_) => messages.iter().map(|_| Err(failed())).collect(),
        }
    }
}

impl<T: LinkStore> LinkStore for Faulty<T> {
    async fn link(&self, company_id: &str) -> Result<Option<Link>, StoreError> {
        self.store(Site::Link, self.inner.link(company_id)).await
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        self.store(Site::PutLink, async {
            let r = self.inner.put_link(link).await;
            if r.is_ok() {
                self.plan.observe(|o| o.links.push(link.clone()));
            }
            r
        })
        .await
    }
}

impl<T: FieldStateStore> FieldStateStore for Faulty<T> {
    async fn field_states(
        &self,
        customer_id: &str,
    ) -> Result<HashMap<String, FieldState>, StoreError> {
        self.store(Site::FieldStates, self.inner.field_states(customer_id))
            .await
    }

    async fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> Result<(), StoreError> {
        self.store(Site::PutFieldState, async {
            let r = self.inner.put_field_state(customer_id, field, state).await;
            if r.is_ok() {
                self.plan.observe(|o| {
                    o.field_states
                        .push((customer_id.to_string(), field.to_string(), state.clone()))
                });
            }
            r
        })
        .await
    }
}

impl<T: SyncLog> SyncLog for Faulty<T> {
    async fn append(&self, entries: &[SyncLogEntry]) -> Result<(), StoreError> {
        self.store(Site::Append, self.inner.append(entries)).await
    }
}

impl<T: ConflictQueue> ConflictQueue for Faulty<T> {
    async fn put_conflict(&self, conflict: &ConflictRecord) -> Result<(), StoreError> {
        self.store(Site::PutConflict, async {
            let r = self.inner.put_conflict(conflict).await;
            if r.is_ok() {
                self.plan.observe(|o| {
                    o.conflicts
                        .push((conflict.customer_id.clone(), conflict.field.clone()))
                });
            }
            r
        })
        .await
    }

    async fn open_conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        self.store(Site::OpenConflicts, self.inner.open_conflicts())
            .await
    }
}

impl<T> Faulty<T> {
    async fn warp_read<R>(
        &self,
        site: Site,
        call: impl std::future::Future<Output = Result<R, WarpError>>,
    ) -> Result<R, WarpError> {
        match self.plan.pick(site) {
            None => self.plan.call(call).await,
            Some(Fault::Crash) => self.plan.crash().await,
            Some(f) => Err(warp_error(f)),
        }
    }

    async fn hubspot<R>(
        &self,
        site: Site,
        call: impl std::future::Future<Output = Result<R, HubspotError>>,
    ) -> Result<R, HubspotError> {
        match self.plan.pick(site) {
            None => self.plan.call(call).await,
            Some(Fault::Crash) => self.plan.crash().await,
            Some(f) => Err(hubspot_error(f)),
        }
    }
}

impl<T: WarpApi> WarpApi for Faulty<T> {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        self.warp_read(Site::WarpGet, self.inner.get(id)).await
    }

    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        self.warp_read(Site::WarpByBan, self.inner.by_ban(ban))
            .await
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        let fault = self.plan.pick(Site::WarpPut);
        match fault {
            Some(Fault::Crash) => self.plan.crash().await,
            Some(Fault::Race) => self.plan.race_edit(id),
            Some(f @ (Fault::ServerError | Fault::RateLimited)) => return Err(warp_error(f)),
            _ => {}
        }
        let out = self.plan.call(self.inner.update(id, body, if_match)).await;
        if out.is_ok() {
            self.plan
                .observe(|o| o.warp_puts.push((id.to_string(), body.clone())));
        }
        match fault {
            Some(Fault::TimeoutAfter) => Err(warp_error(Fault::TimeoutAfter)),
            _ => out,
        }
    }
}

impl<T: WarpCustomers> WarpCustomers for Faulty<T> {
    async fn list_page(&self, page: u32, per_page: u32) -> Result<Page, WarpError> {
        self.warp_read(Site::WarpList, self.inner.list_page(page, per_page))
            .await
    }
}

impl<T: CompanyDirectory> CompanyDirectory for Faulty<T> {
    async fn warp_ban(&self, company_id: &str) -> Result<Option<String>, HubspotError> {
        self.hubspot(Site::HubBan, self.inner.warp_ban(company_id))
            .await
    }
}

impl<T: HubspotCompanies> HubspotCompanies for Faulty<T> {
    async fn list_page(
        &self,
        properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<CompanyPage, HubspotError> {
        self.hubspot(
            Site::HubList,
            self.inner.list_page(properties, after, limit),
        )
        .await
    }

    async fn batch_read(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> Result<BatchRead, HubspotError> {
        self.hubspot(Site::HubRead, self.inner.batch_read(ids, properties))
            .await
    }

    async fn bridge_page(
        &self,
        properties: &[&str],
        after_id: Option<&str>,
    ) -> Result<MarkedPage, HubspotError> {
        // A search read fails as a list read does.
        self.hubspot(Site::HubList, self.inner.bridge_page(properties, after_id))
            .await
    }

    async fn batch_update(&self, inputs: &[CompanyUpdate]) -> Result<BatchUpdate, HubspotError> {
        let out = self
            .hubspot(Site::HubUpdate, self.inner.batch_update(inputs))
            .await;
        if let Ok(done) = &out {
            self.plan.observe(|o| {
                for c in &done.updated {
                    if let Some(input) = inputs.iter().find(|i| i.id == c.id) {
                        o.hub_updates.push((c.id.clone(), input.properties.clone()));
                    }
                }
            });
        }
        out
    }

    fn rate_stats(&self) -> RateStats {
        self.inner.rate_stats()
    }
}
