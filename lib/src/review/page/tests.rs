use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Map, json};

use super::*;
use crate::hubspot::crm::{BatchRead, BatchUpdate, Company, CompanyPage, CompanyUpdate};
use crate::mapping::conflict::FieldState;
use crate::reconcile::ports::RateStats;
use crate::review::token::sign;
use crate::store::StoreError;
use crate::store::memory_sync::MemorySyncStore;
use crate::store::sync::{Resolution, SyncLogEntry};
use crate::warp::Customer;

const NOW: i64 = 1_764_100_000;
const RECIPIENT: &str = "ana@finance.example";
const RAISED_AT: i64 = 1_764_000_000_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// WARP in memory: customers as WARP's JSON, `If-Match` honoured, writes
/// counted.
#[derive(Default)]
struct Warp {
    customers: Mutex<HashMap<String, Value>>,
    puts: Mutex<u32>,
    down: Mutex<bool>,
}

impl Warp {
    fn value(&self, id: &str, field: &str) -> Value {
        lock(&self.customers)[id][field].clone()
    }

    fn puts(&self) -> u32 {
        *lock(&self.puts)
    }
}

impl WarpApi for Warp {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        if *lock(&self.down) {
            return Err(WarpError::Transient("503 Service Unavailable".into()));
        }
        let c = lock(&self.customers)
            .get(id)
            .cloned()
            .ok_or(WarpError::NotFound)?;
        Customer::from_json(c, None)
    }

    async fn by_ban(&self, _ban: &str) -> Result<Customer, WarpError> {
        Err(WarpError::NotFound)
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        let mut all = lock(&self.customers);
        let c = all.get_mut(id).ok_or(WarpError::NotFound)?;
        if if_match.is_some_and(|tag| c["etag"] != tag) {
            return Err(WarpError::PreconditionFailed);
        }
        for (k, v) in body {
            c[k] = v.clone();
        }
        let n: u64 = c["etag"]
            .as_str()
            .unwrap_or("\"1\"")
            .trim_matches('"')
            .parse()
            .unwrap_or(1);
        c["etag"] = json!(format!("\"{}\"", n + 1));
        c["updated_at"] = json!("2026-11-26T00:00:00Z");
        *lock(&self.puts) += 1;
        Customer::from_json(c.clone(), None)
    }
}

/// HubSpot in memory: companies' properties, updates counted.
#[derive(Default)]
struct Hubspot {
    companies: Mutex<BTreeMap<String, HashMap<String, Option<String>>>>,
    updates: Mutex<u32>,
}

impl Hubspot {
    fn property(&self, id: &str, p: &str) -> Option<String> {
        lock(&self.companies)
            .get(id)
            .and_then(|c| c.get(p).cloned().flatten())
    }

    fn updates(&self) -> u32 {
        *lock(&self.updates)
    }
}

impl HubspotCompanies for Hubspot {
    async fn list_page(
        &self,
        _properties: &[&str],
        _after: Option<&str>,
        _limit: u32,
    ) -> Result<CompanyPage, HubspotError> {
        unreachable!("the page reads companies by id")
    }

    async fn bridge_page(
        &self,
        _properties: &[&str],
        _after_id: Option<&str>,
    ) -> Result<crate::reconcile::ports::MarkedPage, HubspotError> {
        unreachable!("the page reads companies by id")
    }

    async fn batch_read(&self, ids: &[String], _p: &[&str]) -> Result<BatchRead, HubspotError> {
        let all = lock(&self.companies);
        let mut out = BatchRead::default();
        for id in ids {
            match all.get(id) {
                Some(props) => out.found.push(Company {
                    id: id.clone(),
                    properties: props.clone(),
                    archived: false,
                    updated_at: None,
                }),
                None => out.missing.push(id.clone()),
            }
        }
        Ok(out)
    }

    async fn batch_update(&self, inputs: &[CompanyUpdate]) -> Result<BatchUpdate, HubspotError> {
        *lock(&self.updates) += 1;
        let mut all = lock(&self.companies);
        for input in inputs {
            let c = all.entry(input.id.clone()).or_default();
            for (k, v) in &input.properties {
                c.insert(k.clone(), (!v.is_empty()).then(|| v.clone()));
            }
        }
        Ok(BatchUpdate::default())
    }

    fn rate_stats(&self) -> RateStats {
        RateStats::default()
    }
}

/// The in-memory store, and how each conflict was closed (what the
/// conflicts table keeps in its items' state).
#[derive(Default)]
struct Store {
    inner: MemorySyncStore,
    resolutions: Mutex<HashMap<String, Resolution>>,
}

impl ConflictQueue for Store {
    async fn put_conflict(&self, conflict: &ConflictRecord) -> Result<(), StoreError> {
        self.inner.put_conflict(conflict).await
    }

    async fn open_conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        self.inner.open_conflicts().await
    }
}

impl ConflictReview for Store {
    async fn resolve_conflict(
        &self,
        conflict: &ConflictRecord,
        resolution: &Resolution,
    ) -> Result<bool, StoreError> {
        let done = self.inner.resolve_conflict(conflict, resolution).await?;
        if done {
            lock(&self.resolutions).insert(conflict.id(), resolution.clone());
        }
        Ok(done)
    }
}

impl FieldStateStore for Store {
    async fn field_states(
        &self,
        customer_id: &str,
    ) -> Result<HashMap<String, FieldState>, StoreError> {
        self.inner.field_states(customer_id).await
    }

    async fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> Result<(), StoreError> {
        self.inner.put_field_state(customer_id, field, state).await
    }
}

impl SyncLog for Store {
    async fn append(&self, entries: &[SyncLogEntry]) -> Result<(), StoreError> {
        self.inner.append(entries).await
    }
}

impl ClosedConflicts for Store {
    async fn closed_conflict(&self, id: &str) -> Result<Option<Closed>, StoreError> {
        if let Some(r) = lock(&self.resolutions).get(id) {
            return Ok(Some(Closed::Resolved(r.clone())));
        }
        let open = self.inner.open_conflicts().await?;
        Ok(self
            .inner
            .conflicts()
            .iter()
            .find(|c| c.id() == id && !open.iter().any(|o| o.id() == id))
            .map(|_| Closed::Superseded))
    }
}

struct Rig {
    warp: Warp,
    hubspot: Hubspot,
    store: Store,
    mappings: MappingSet,
    key: ReviewKey,
    conflict: ConflictRecord,
}

impl Rig {
    /// One customer whose name WARP and HubSpot both changed since the
    /// conflict was raised: the page must show the values of now.
    async fn new(warp_name: &str, hubspot_name: &str) -> Self {
        let warp = Warp::default();
        lock(&warp.customers).insert(
            "cus_1".into(),
            json!({
                "id": "cus_1", "ban": "ZT-0001", "company_name": warp_name,
                "status": "ACTIVE",
                "external_ids": {"hubspot_company_id": "1001"},
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2026-11-20T00:00:00Z",
                "etag": "\"1\"",
            }),
        );
        let hubspot = Hubspot::default();
        lock(&hubspot.companies).insert(
            "1001".into(),
            HashMap::from([
                ("name".to_string(), Some(hubspot_name.to_string())),
                (
                    "hs_lastmodifieddate".to_string(),
                    Some("2026-11-25T00:00:00Z".to_string()),
                ),
            ]),
        );
        let conflict = ConflictRecord {
            customer_id: "cus_1".into(),
            field: "company_name".into(),
            property: "name".into(),
            hubspot_value: "Recorded HubSpot name".into(),
            hubspot_occurred_at: RAISED_AT,
            warp_value: "\"Recorded WARP name\"".into(),
            warp_updated_at: None,
            dedup_key: "run:nightly-20261125T070000Z".into(),
        };
        let store = Store::default();
        store.put_conflict(&conflict).await.unwrap();
        Self {
            warp,
            hubspot,
            store,
            mappings: MappingSet::default_mapping().unwrap(),
            key: ReviewKey::new([7u8; 32].to_vec()).unwrap(),
            conflict,
        }
    }

    fn ports(&self) -> Ports<'_, Warp, Hubspot, Store> {
        Ports {
            warp: &self.warp,
            hubspot: &self.hubspot,
            store: &self.store,
            mappings: &self.mappings,
        }
    }

    fn token_for(&self, id: &str, take: Take, recipient: &str, expires_at: i64) -> String {
        sign(
            &self.key,
            &Claims::new(id, take, recipient, expires_at).unwrap(),
        )
    }

    fn token(&self, take: Take) -> String {
        self.token_for(&self.conflict.id(), take, RECIPIENT, NOW + 72 * 3600)
    }

    async fn get(&self, token: &str) -> Page {
        let page = get(&self.ports(), &self.key, token, NOW).await;
        assert_headers(&page);
        page
    }

    async fn post(&self, token: &str) -> Page {
        let page = post(&self.ports(), &self.key, token, NOW).await;
        assert_headers(&page);
        page
    }

    /// Everything a write would change: WARP's and HubSpot's writes, the
    /// sync log, the baselines, the open conflicts.
    async fn writes(&self) -> (u32, u32, usize, usize, usize) {
        (
            self.warp.puts(),
            self.hubspot.updates(),
            self.store.inner.log_entries().len(),
            self.store.field_states("cus_1").await.unwrap().len(),
            self.store.open_conflicts().await.unwrap().len(),
        )
    }
}

/// The headers every answer carries, and a page that loads and runs
/// nothing.
fn assert_headers(page: &Page) {
    let headers: HashMap<&str, String> = page.headers().into_iter().collect();
    assert_eq!(headers["Content-Type"], "text/html; charset=utf-8");
    assert_eq!(headers["Cache-Control"], "no-store");
    assert_eq!(headers["Referrer-Policy"], "no-referrer");
    assert_eq!(headers["X-Content-Type-Options"], "nosniff");
    let csp = &headers["Content-Security-Policy"];
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.html.to_ascii_lowercase();
    for banned in ["<script", "src=", "href=", "<link", "style=\"", "action="] {
        assert!(!html.contains(banned), "{banned} in {}", page.html);
    }
}

#[tokio::test]
async fn a_get_shows_both_values_as_they_are_now_and_writes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let before = rig.writes().await;
    let page = rig.get(&rig.token(Take::Hubspot)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Acme Telecom Inc"), "{}", page.html);
    assert!(page.html.contains("<td class=\"v\">Acme Telecom</td>"));
    assert!(
        !page.html.contains("Recorded"),
        "the values of now, not those recorded when it was raised"
    );
    assert!(page.html.contains(RECIPIENT), "who is asking");
    assert!(page.html.contains("take HubSpot's value"), "the choice");
    assert_eq!(page.html.matches("<form method=\"post\">").count(), 1);
    assert_eq!(page.html.matches("<button").count(), 1);
    assert_eq!(rig.writes().await, before);
    assert_eq!(before, (0, 0, 0, 0, 1));
    // Opened again (a scanner, then the person): still nothing written.
    assert_eq!(rig.get(&rig.token(Take::Warp)).await.status, 200);
    assert_eq!(rig.writes().await, before);
}

#[tokio::test]
async fn a_post_takes_hubspots_value_through_resolve_and_the_used_link_then_says_who_and_when() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let token = rig.token(Take::Hubspot);
    let page = rig.post(&token).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("WARP was updated"), "{}", page.html);
    assert!(page.html.contains("<code>Acme Telecom Inc</code>"));
    assert!(page.html.contains(RECIPIENT));
    assert_eq!(rig.warp.value("cus_1", "company_name"), "Acme Telecom Inc");
    assert_eq!(rig.warp.puts(), 1);
    assert_eq!(rig.hubspot.updates(), 0);
    assert!(rig.store.open_conflicts().await.unwrap().is_empty());
    let resolution = lock(&rig.store.resolutions)[&rig.conflict.id()].clone();
    assert_eq!(resolution.by, RECIPIENT);
    assert_eq!(resolution.take, "hubspot");
    assert_eq!(
        resolution.note.as_deref(),
        Some("resolved by ana@finance.example via e-mail link")
    );
    let log = rig.store.inner.log_entries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, "resolved-take-hubspot");
    assert_eq!(log[0].dedup_key, format!("conflict:{}", rig.conflict.id()));
    assert!(
        log[0].reason.contains("via e-mail link"),
        "{}",
        log[0].reason
    );
    let baseline = rig.store.field_states("cus_1").await.unwrap();
    assert_eq!(
        baseline["company_name"].synced_value,
        Some(json!("Acme Telecom Inc"))
    );

    let after = rig.writes().await;
    let when = crate::time::iso(resolution.at_ms);
    for again in [rig.get(&token).await, rig.post(&token).await] {
        assert_eq!(again.status, 409, "{}", again.html);
        assert!(
            again.html.contains(&format!(
                "Resolved by <strong>{RECIPIENT}</strong> at {when}: took HubSpot's value"
            )),
            "{}",
            again.html
        );
        assert!(!again.html.contains("<form"));
    }
    // The other choice's link of the same conflict is used up too.
    assert_eq!(rig.post(&rig.token(Take::Warp)).await.status, 409);
    assert_eq!(rig.writes().await, after, "a used link writes nothing");
}

#[tokio::test]
async fn a_post_keeping_warps_value_writes_hubspot() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let page = rig.post(&rig.token(Take::Warp)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("HubSpot was updated"), "{}", page.html);
    assert_eq!(
        rig.hubspot.property("1001", "name").as_deref(),
        Some("Acme Telecom")
    );
    assert_eq!((rig.warp.puts(), rig.hubspot.updates()), (0, 1));
    assert!(rig.store.open_conflicts().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_tampered_malformed_or_foreign_link_is_400_and_changes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let token = rig.token(Take::Hubspot);
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = sign(
        &ReviewKey::new([9u8; 32].to_vec()).unwrap(),
        &Claims::new(rig.conflict.id(), Take::Hubspot, RECIPIENT, NOW + 3600).unwrap(),
    );
    let before = rig.writes().await;
    for bad in [
        tampered.as_str(),
        foreign.as_str(),
        "",
        "not a token",
        &token[..40],
    ] {
        for page in [rig.get(bad).await, rig.post(bad).await] {
            assert_eq!(page.status, 400, "{bad:?}: {}", page.html);
            assert!(page.html.contains("This link is not valid"));
            assert!(!page.html.contains("<form"));
        }
    }
    assert_eq!(rig.writes().await, before);
}

#[tokio::test]
async fn an_expired_link_is_410_says_when_and_changes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let expired = rig.token_for(&rig.conflict.id(), Take::Hubspot, RECIPIENT, NOW);
    let before = rig.writes().await;
    for page in [rig.get(&expired).await, rig.post(&expired).await] {
        assert_eq!(page.status, 410, "{}", page.html);
        assert!(
            page.html.contains(&crate::time::iso(NOW * 1000)),
            "{}",
            page.html
        );
        assert!(page.html.contains("hubwarp conflicts"));
        assert!(page.html.contains("Tonight's e-mail"));
    }
    assert_eq!(rig.writes().await, before);
}

#[tokio::test]
async fn a_superseded_conflicts_link_is_409_and_changes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let token = rig.token(Take::Hubspot);
    let newer = ConflictRecord {
        hubspot_occurred_at: RAISED_AT + 86_400_000,
        ..rig.conflict.clone()
    };
    rig.store.put_conflict(&newer).await.unwrap();
    let before = rig.writes().await;
    for page in [rig.get(&token).await, rig.post(&token).await] {
        assert_eq!(page.status, 409, "{}", page.html);
        assert!(page.html.contains("replaced"), "{}", page.html);
        assert!(!page.html.contains("<form"));
    }
    assert_eq!(rig.writes().await, before);
    assert_eq!(
        rig.store.open_conflicts().await.unwrap()[0].id(),
        newer.id(),
        "the newer one stays open"
    );
    assert_eq!(rig.warp.value("cus_1", "company_name"), "Acme Telecom");
}

#[tokio::test]
async fn a_link_to_no_conflict_is_404() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let before = rig.writes().await;
    for id in ["0badc0de", "not-hex"] {
        let token = rig.token_for(id, Take::Hubspot, RECIPIENT, NOW + 3600);
        for page in [rig.get(&token).await, rig.post(&token).await] {
            assert_eq!(page.status, 404, "{}", page.html);
        }
    }
    assert_eq!(rig.writes().await, before);
}

#[tokio::test]
async fn hostile_values_appear_as_text() {
    let hostile = "<script>alert(\"x\")</script> & 'Sons'";
    let rig = Rig::new(hostile, &format!("{hostile} Inc")).await;
    let recipient = "<b>\"o'k\"&@example.com";
    let token = rig.token_for(&rig.conflict.id(), Take::Hubspot, recipient, NOW + 3600);
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Sons&#39;";
    let shown = rig.get(&token).await;
    let done = rig.post(&token).await;
    let used = rig.get(&token).await;
    assert_eq!((shown.status, done.status, used.status), (200, 200, 409));
    for page in [&shown, &done, &used] {
        assert!(!page.html.contains("<script"), "{}", page.html);
        assert!(!page.html.contains("<b>"), "{}", page.html);
        assert!(
            page.html
                .contains("&lt;b&gt;&quot;o&#39;k&quot;&amp;@example.com"),
            "{}",
            page.html
        );
    }
    assert!(shown.html.contains(escaped), "{}", shown.html);
    assert!(done.html.contains(escaped), "{}", done.html);
    assert!(used.html.contains(escaped), "{}", used.html);
    assert_eq!(
        rig.warp.value("cus_1", "company_name"),
        format!("{hostile} Inc").as_str()
    );
}

#[tokio::test]
async fn warp_down_is_a_503_that_says_try_again_and_changes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    *lock(&rig.warp.down) = true;
    let before = rig.writes().await;
    for page in [
        rig.get(&rig.token(Take::Hubspot)).await,
        rig.post(&rig.token(Take::Hubspot)).await,
    ] {
        assert_eq!(page.status, 503, "{}", page.html);
        assert!(page.html.contains("WARP did not answer"), "{}", page.html);
        assert!(!page.html.contains("Service Unavailable"), "no internals");
    }
    assert_eq!(rig.writes().await, before);
}

#[tokio::test]
async fn a_customer_gone_from_warp_is_409_and_changes_nothing() {
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    lock(&rig.warp.customers).clear();
    let page = rig.get(&rig.token(Take::Hubspot)).await;
    assert_eq!(page.status, 409, "a customer gone from WARP: {}", page.html);
    assert!(page.html.contains("no longer exists"), "{}", page.html);
    let page = rig.post(&rig.token(Take::Hubspot)).await;
    assert_eq!(page.status, 409, "{}", page.html);
    assert!(page.html.contains("no longer exists"), "{}", page.html);
    assert_eq!(rig.store.open_conflicts().await.unwrap().len(), 1);
}

#[test]
fn the_policy_allows_the_pages_one_style_sheet_by_its_hash_and_nothing_else() {
    let page = Page::new(200, "t", "<p>x</p>");
    let headers: HashMap<&str, String> = page.headers().into_iter().collect();
    let csp = &headers["Content-Security-Policy"];
    let sheet = page
        .html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(sheet, _)| sheet)
        .unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(sheet));
    assert!(
        csp.contains(&format!("style-src 'sha256-{hash}';")),
        "{csp}"
    );
    assert_eq!(page.html.matches("<style>").count(), 1);
}

#[test]
fn logs_name_the_recipients_domain_only() {
    assert_eq!(domain("ana@finance.example"), "finance.example");
    assert_eq!(domain("no-at"), "");
}

/// Log lines written under a test, as the function's JSON subscriber
/// writes them.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records nothing, and is asked at every event.
struct AskEveryTime;

impl tracing::Subscriber for AskEveryTime {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn each_decision_is_one_json_line_naming_the_token_by_its_fingerprint() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Other tests' threads meet these callsites with no subscriber anywhere
    // and would cache "never" for them: a global subscriber that is asked
    // every time keeps them asking this test's one.
    let _ = tracing::subscriber::set_global_default(AskEveryTime);
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let rig = Rig::new("Acme Telecom", "Acme Telecom Inc").await;
    let token = rig.token(Take::Hubspot);
    rig.get(&token).await;
    rig.post(&token).await;
    rig.post(&token).await;
    rig.get("garbage").await;
    let text = String::from_utf8(lock(&lines.0).clone()).unwrap();
    let review: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["target"] == "hubwarp::review")
        .collect();
    let decisions: Vec<(&str, u64)> = review
        .iter()
        .map(|l| {
            (
                l["decision"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("shown", 200),
            ("resolved", 200),
            ("already-resolved", 409),
            ("malformed", 400)
        ]
    );
    for l in &review[..3] {
        assert_eq!(l["conflict_id"], rig.conflict.id());
        assert_eq!(l["token"], fingerprint(&token));
        assert_eq!(l["recipient_domain"], "finance.example");
    }
    assert!(!text.contains(&token), "never the token");
    assert!(!text.contains(&token[token.len() - 43..]), "nor its MAC");
    assert!(
        !review.iter().any(|l| l.to_string().contains(RECIPIENT)),
        "the recipient's domain only"
    );
}
