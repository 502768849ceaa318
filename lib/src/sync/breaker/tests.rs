use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use super::*;
use crate::store::StoreError;
use crate::store::breakers::MemoryBreakers;

const T0: i64 = 1_796_000_000_000;

/// A clock the test moves by hand.
#[derive(Clone)]
struct Time(Arc<AtomicI64>);

impl Time {
    fn new() -> Self {
        Self(Arc::new(AtomicI64::new(T0)))
    }
    fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    }
    fn pass(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

/// WARP as the breaker sees it: down or up, and how often it was asked.
#[derive(Default)]
struct Peer {
    down: AtomicBool,
    calls: AtomicU32,
}

impl Peer {
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl WarpApi for Peer {
    async fn get(&self, _id: &str) -> Result<Customer, WarpError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(WarpError::Transient("503".into()))
        } else {
            // An answer: WARP is up.
            Err(WarpError::NotFound)
        }
    }
    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        self.get(ban).await
    }
    async fn update(
        &self,
        id: &str,
        _body: &Map<String, Value>,
        _if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        self.get(id).await
    }
}

fn settings() -> BreakerSettings {
    BreakerSettings {
        failures: 3,
        open: Duration::from_secs(30),
        max_open: Duration::from_secs(100),
        refresh: Duration::from_secs(2),
        probe_lease: Duration::from_secs(30),
    }
}

type Instance = Guarded<Arc<Peer>, Arc<MemoryBreakers>>;

/// `n` consumer instances in front of one WARP, sharing one table.
fn instances(n: usize, time: &Time) -> (Arc<Peer>, Arc<MemoryBreakers>, Vec<Instance>) {
    let peer = Arc::new(Peer::default());
    let table = Arc::new(MemoryBreakers::default());
    let guards = (0..n)
        .map(|_| {
            let breaker =
                Breaker::new(Dependency::Warp, settings(), table.clone()).with_clock(time.clock());
            Guarded::new(peer.clone(), Arc::new(breaker))
        })
        .collect();
    (peer, table, guards)
}

fn refused(r: &Result<Customer, WarpError>) -> bool {
    matches!(r, Err(WarpError::Transient(m)) if m.contains("circuit is open"))
}

#[tokio::test]
async fn failures_in_a_row_open_the_circuit_and_calls_are_then_refused_without_asking() {
    let time = Time::new();
    let (peer, table, guards) = instances(1, &time);
    let warp = &guards[0];
    peer.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(!refused(&warp.get("c1").await));
    }
    assert!(
        table.circuit("warp").await.unwrap().is_none(),
        "two of three"
    );
    assert!(!refused(&warp.get("c1").await));
    let open = table
        .circuit("warp")
        .await
        .unwrap()
        .expect("open after three");
    assert_eq!(
        (open.opened_at_ms, open.open_until_ms, open.opens),
        (T0, T0 + 30_000, 1)
    );
    assert_eq!(peer.calls(), 3);
    for _ in 0..10 {
        let r = warp.update("c1", &Map::new(), Some("e")).await;
        assert!(refused(&r), "{r:?}");
    }
    assert_eq!(peer.calls(), 3, "an open circuit asks nobody");
}

#[tokio::test]
async fn an_answer_between_failures_starts_the_count_again() {
    let time = Time::new();
    let (peer, table, guards) = instances(1, &time);
    for _ in 0..5 {
        peer.down.store(true, Ordering::SeqCst);
        guards[0].get("c").await.ok();
        guards[0].get("c").await.ok();
        peer.down.store(false, Ordering::SeqCst);
        // 404 is WARP answering.
        assert!(matches!(guards[0].get("c").await, Err(WarpError::NotFound)));
    }
    assert!(table.circuit("warp").await.unwrap().is_none());
}

#[tokio::test]
async fn five_instances_see_one_opening_and_probe_a_dead_peer_once_per_period() {
    let time = Time::new();
    let (peer, table, guards) = instances(5, &time);
    peer.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        guards[0].get("c").await.ok();
    }
    assert_eq!(peer.calls(), 3);
    // The others read the shared state before their first call.
    for g in &guards[1..] {
        assert!(refused(&g.get("c").await));
    }
    assert_eq!(peer.calls(), 3);

    // The period is over: every instance tries, one probes.
    time.pass(Duration::from_secs(31));
    let mut answers = Vec::new();
    for g in &guards {
        answers.push(refused(&g.get("c").await));
    }
    assert_eq!(answers.iter().filter(|r| !**r).count(), 1, "{answers:?}");
    assert_eq!(peer.calls(), 4, "one probe");
    let open = table.circuit("warp").await.unwrap().unwrap();
    assert_eq!(open.opens, 2, "the failed probe opened it again");
    assert_eq!(open.opened_at_ms, T0, "the outage keeps its start");
    assert_eq!(open.open_until_ms - (T0 + 31_000), 60_000, "twice as long");

    // Twice more: the period doubles to its cap.
    time.pass(Duration::from_secs(61));
    for g in &guards {
        g.get("c").await.ok();
    }
    let open = table.circuit("warp").await.unwrap().unwrap();
    assert_eq!(
        (open.opens, open.open_until_ms - time_now(&time)),
        (3, 100_000)
    );
    assert_eq!(peer.calls(), 5);

    // WARP is back: the next probe closes the circuit for everyone.
    peer.down.store(false, Ordering::SeqCst);
    time.pass(Duration::from_secs(101));
    for g in &guards {
        g.get("c").await.ok();
    }
    assert!(table.circuit("warp").await.unwrap().is_none());
    let before = peer.calls();
    time.pass(Duration::from_secs(3));
    for g in &guards {
        assert!(matches!(g.get("c").await, Err(WarpError::NotFound)));
    }
    assert_eq!(peer.calls(), before + 5, "closed: every instance calls");
}

fn time_now(time: &Time) -> i64 {
    (time.clock())()
}

#[tokio::test]
async fn a_probe_holds_the_circuit_until_its_lease_lapses() {
    let time = Time::new();
    let (peer, table, guards) = instances(2, &time);
    peer.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        guards[0].get("c").await.ok();
    }
    time.pass(Duration::from_secs(31));
    // Instance 0 takes the probe and (as if it timed out) never reports.
    assert_eq!(guards[0].breaker.admit().await, Admission::Probe);
    assert!(matches!(
        guards[1].breaker.admit().await,
        Admission::Refused { .. }
    ));
    time.pass(Duration::from_secs(31));
    assert_eq!(
        guards[1].breaker.admit().await,
        Admission::Probe,
        "the lease lapsed"
    );
    assert!(table.circuit("warp").await.unwrap().is_some());
}

#[tokio::test]
async fn an_item_past_its_ttl_is_closed_even_before_dynamodb_sweeps_it() {
    let time = Time::new();
    let (peer, table, guards) = instances(1, &time);
    table
        .open("warp", T0, T0 + 1_000, T0 / 1000 + 10)
        .await
        .unwrap();
    time.pass(Duration::from_secs(11));
    assert!(matches!(guards[0].get("c").await, Err(WarpError::NotFound)));
    assert_eq!(peer.calls(), 1);
}

/// A table that always fails.
struct Broken;

fn broken() -> StoreError {
    StoreError::Malformed {
        table: "breakers".into(),
        key: "warp".into(),
        reason: "unreachable".into(),
    }
}

impl BreakerStore for Broken {
    async fn circuit(&self, _: &str) -> Result<Option<OpenCircuit>, StoreError> {
        Err(broken())
    }
    async fn open(&self, _: &str, _: i64, _: i64, _: i64) -> Result<OpenCircuit, StoreError> {
        Err(broken())
    }
    async fn take_probe(&self, _: &str, _: i64, _: i64) -> Result<bool, StoreError> {
        Err(broken())
    }
    async fn close(&self, _: &str) -> Result<Option<OpenCircuit>, StoreError> {
        Err(broken())
    }
}

#[tokio::test]
async fn a_breaker_whose_table_fails_lets_every_call_through() {
    let peer = Arc::new(Peer::default());
    peer.down.store(true, Ordering::SeqCst);
    let warp = Guarded::new(
        peer.clone(),
        Arc::new(Breaker::new(Dependency::Warp, settings(), Broken)),
    );
    for _ in 0..10 {
        assert!(!refused(&warp.get("c").await));
    }
    assert_eq!(peer.calls(), 10);
}

#[test]
fn open_periods_double_to_their_cap() {
    let s = settings();
    let secs: Vec<u64> = (1..=5).map(|n| s.open_for(n).as_secs()).collect();
    assert_eq!(secs, [30, 60, 100, 100, 100]);
    assert_eq!(BreakerSettings::default().open_for(40).as_secs(), 300);
}

#[test]
fn settings_have_defaults_and_a_bad_one_is_named() {
    let d = BreakerSettings::from_env(&Env::from_pairs([])).unwrap();
    assert_eq!(d, BreakerSettings::default());
    let s = BreakerSettings::from_env(&Env::from_pairs([
        ("BREAKER_FAILURES", "2"),
        ("BREAKER_OPEN_S", "10"),
        ("BREAKER_MAX_OPEN_S", "600"),
    ]))
    .unwrap();
    assert_eq!(
        (s.failures, s.open.as_secs(), s.max_open.as_secs()),
        (2, 10, 600)
    );
    for (name, value) in [
        ("BREAKER_FAILURES", "0"),
        ("BREAKER_OPEN_S", "ten"),
        ("BREAKER_MAX_OPEN_S", "5"),
    ] {
        let e = BreakerSettings::from_env(&Env::from_pairs([(name, value)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
    }
}
