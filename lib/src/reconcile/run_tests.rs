//! The run driver over in-memory doubles of WARP, HubSpot and the stores.
//! The real clients, DynamoDB, SQS and S3 are exercised in tests/it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::warp::merge_patch as merge;

use super::ReconcileRequest;
use super::ports::{HubspotCompanies, MarkedPage, RateStats, RunStore, WarpCustomers};
use super::run::{Outcome, Reconciler, RunSettings};
use crate::hubspot::crm::{
    BatchFailure, BatchRead, BatchUpdate, Company, CompanyPage, CompanyUpdate, HubspotError,
};
use crate::mapping::MappingSet;
use crate::queue::MemoryQueue;
use crate::reconcile::ports::NoAlerts;
use crate::reconcile::report::{self, Report};
use crate::reconcile::run_store::MemoryRunStore;
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore};
use crate::store::{
    EventLog, EventStatus, Lease, MemoryEventLog, MemoryReportStore, MemorySyncStore, NewEvent,
};
use crate::warp::WarpApi;
use crate::warp::{Customer, Page, WarpError};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// WARP in memory: list pages, partial PUT, ETags, `updated_at` per write.
#[derive(Default)]
struct Warp {
    customers: Mutex<Vec<Value>>,
    puts: Mutex<u32>,
    clock: Mutex<i64>,
    /// A WARP user's edit that lands between the run's read and its write.
    edit_before_next_put: Mutex<Option<(String, Value)>>,
}

impl Warp {
    fn insert(&self, c: Value) {
        lock(&self.customers).push(c);
    }

    fn customer(&self, id: &str) -> Value {
        lock(&self.customers)
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn puts(&self) -> u32 {
        *lock(&self.puts)
    }

    fn stamp(&self) -> String {
        let mut t = lock(&self.clock);
        *t += 1000;
        chrono::DateTime::from_timestamp_millis(1_764_000_000_000 + *t)
            .unwrap_or_default()
            .to_rfc3339()
    }

    fn edit(&self, id: &str, patch: Value) {
        let stamp = self.stamp();
        let mut all = lock(&self.customers);
        if let Some(c) = all.iter_mut().find(|c| c["id"] == id) {
            merge(c, &patch);
            let n: u64 = c["etag"]
                .as_str()
                .unwrap_or("\"1\"")
                .trim_matches('"')
                .parse()
                .unwrap_or(1);
            c["etag"] = json!(format!("\"{}\"", n + 1));
            c["updated_at"] = json!(stamp);
        }
    }

    fn parse(c: &Value) -> Customer {
        Customer {
            id: c["id"].as_str().unwrap_or_default().into(),
            ban: c["ban"].as_str().unwrap_or_default().into(),
            updated_at_ms: c["updated_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis()),
            etag: c["etag"].as_str().unwrap_or_default().into(),
            hubspot_company_id: c
                .pointer("/external_ids/hubspot_company_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw: c.clone(),
        }
    }
}

impl WarpApi for Warp {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        let c = self.customer(id);
        if c.is_null() {
            return Err(WarpError::NotFound);
        }
        Ok(Self::parse(&c))
    }

    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        lock(&self.customers)
            .iter()
            .find(|c| c["ban"] == ban)
            .map(Self::parse)
            .ok_or(WarpError::NotFound)
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        if let Some((who, patch)) = lock(&self.edit_before_next_put).take() {
            self.edit(&who, patch);
        }
        let current = self.customer(id);
        if current.is_null() {
            return Err(WarpError::NotFound);
        }
        if if_match.is_some_and(|tag| current["etag"] != tag) {
            return Err(WarpError::PreconditionFailed);
        }
        *lock(&self.puts) += 1;
        self.edit(id, Value::Object(body.clone()));
        Ok(Self::parse(&self.customer(id)))
    }
}

impl WarpCustomers for Warp {
    async fn list_page(&self, page: u32, per_page: u32) -> Result<Page, WarpError> {
        let all = lock(&self.customers);
        let per = per_page.max(1) as usize;
        let total_pages = all.len().div_ceil(per).max(1) as u32;
        let items = all
            .iter()
            .skip((page as usize - 1) * per)
            .take(per)
            .map(Self::parse)
            .collect();
        Ok(Page {
            items,
            page,
            total_pages,
            total: all.len() as u64,
        })
    }
}

/// HubSpot in memory: companies with string properties and a modification
/// time; a daily limit that can be switched on.
#[derive(Default)]
struct Hubspot {
    companies: Mutex<BTreeMap<String, BTreeMap<String, Option<String>>>>,
    calls: Mutex<HashMap<&'static str, u32>>,
    daily_after: Mutex<Option<u32>>,
}

impl Hubspot {
    fn upsert(&self, id: &str, props: &[(&str, &str)], modified: &str) {
        let mut all = lock(&self.companies);
        let c = all.entry(id.to_string()).or_default();
        for (k, v) in props {
            c.insert(k.to_string(), Some(v.to_string()));
        }
        c.insert("hs_lastmodifieddate".into(), Some(modified.to_string()));
    }

    fn property(&self, id: &str, p: &str) -> Option<String> {
        lock(&self.companies)
            .get(id)
            .and_then(|c| c.get(p).cloned().flatten())
    }

    fn count(&self, kind: &'static str) -> Result<(), HubspotError> {
        let mut calls = lock(&self.calls);
        let total: u32 = calls.values().sum();
        if lock(&self.daily_after).is_some_and(|n| total >= n) {
            return Err(daily());
        }
        *calls.entry(kind).or_default() += 1;
        Ok(())
    }

    fn calls(&self, kind: &str) -> u32 {
        lock(&self.calls).get(kind).copied().unwrap_or_default()
    }

    fn company(&self, id: &str, c: &BTreeMap<String, Option<String>>) -> Company {
        Company {
            id: id.to_string(),
            properties: c.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            archived: false,
            updated_at: None,
        }
    }
}

fn daily() -> HubspotError {
    HubspotError::DailyLimit {
        retry_at_ms: 1_764_028_800_000,
    }
}

impl HubspotCompanies for Hubspot {
    async fn list_page(
        &self,
        _properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<CompanyPage, HubspotError> {
        self.count("list")?;
        let all = lock(&self.companies);
        let mut results: Vec<Company> = all
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .take(limit as usize + 1)
            .map(|(id, c)| self.company(id, c))
            .collect();
        let next_after = (results.len() > limit as usize).then(|| {
            results.truncate(limit as usize);
            results.last().map(|c| c.id.clone()).unwrap_or_default()
        });
        Ok(CompanyPage {
            results,
            next_after,
        })
    }

    async fn batch_read(&self, ids: &[String], _p: &[&str]) -> Result<BatchRead, HubspotError> {
        assert!(ids.len() <= 100);
        self.count("batch_read")?;
        let all = lock(&self.companies);
        let mut out = BatchRead::default();
        for id in ids {
            match all.get(id) {
                Some(c) => out.found.push(self.company(id, c)),
                None => out.missing.push(id.clone()),
            }
        }
        Ok(out)
    }

    async fn batch_update(&self, inputs: &[CompanyUpdate]) -> Result<BatchUpdate, HubspotError> {
        assert!(inputs.len() <= 100);
        self.count("batch_update")?;
        let mut all = lock(&self.companies);
        let mut out = BatchUpdate::default();
        for input in inputs {
            match all.get_mut(&input.id) {
                Some(c) => {
                    for (k, v) in &input.properties {
                        c.insert(k.clone(), (!v.is_empty()).then(|| v.clone()));
                    }
                    c.insert(
                        "hs_lastmodifieddate".into(),
                        Some("2026-11-24T12:00:00Z".into()),
                    );
                    out.updated.push(self.company(&input.id, c));
                }
                None => out.failed.push(BatchFailure {
                    ids: vec![input.id.clone()],
                    category: "OBJECT_NOT_FOUND".into(),
                    message: "not found".into(),
                }),
            }
        }
        Ok(out)
    }

    async fn bridge_page(
        &self,
        _properties: &[&str],
        after_id: Option<&str>,
    ) -> Result<MarkedPage, HubspotError> {
        self.count("search")?;
        let all = lock(&self.companies);
        let numeric = |id: &str| id.parse::<u64>().unwrap_or(u64::MAX);
        let mut marked: Vec<(&String, _)> = all
            .iter()
            .filter(|(_, c)| {
                c.get(super::run::WARP_BAN_PROPERTY)
                    .is_some_and(|b| b.as_ref().is_some_and(|b| !b.is_empty()))
            })
            .filter(|(id, _)| after_id.is_none_or(|a| numeric(id) > numeric(a)))
            .collect();
        marked.sort_by_key(|(id, _)| numeric(id));
        let more = marked.len() > 200;
        let total = marked.len() as u64;
        let results: Vec<Company> = marked
            .into_iter()
            .take(200)
            .map(|(id, c)| self.company(id, c))
            .collect();
        let next = more.then(|| results.last().map(|c| c.id.clone())).flatten();
        Ok(MarkedPage::new(results, next, total))
    }

    fn rate_stats(&self) -> RateStats {
        RateStats::default()
    }
}

/// The test plays the platform: it invokes again with each handover.
type Handovers = super::ports::RecordedHandovers;

type Rec = Reconciler<
    Warp,
    Hubspot,
    MemorySyncStore,
    MemoryEventLog,
    MemoryQueue,
    MemoryRunStore,
    MemoryReportStore,
>;

const SCHEDULED: &str = "2026-11-25T07:00:00Z";

fn customer(n: usize) -> Value {
    json!({
        "id": format!("cust-{n}"), "ban": format!("ZT-{n:04}"),
        "company_name": format!("Company {n}"), "status": "ACTIVE",
        "credit_limit": "5000.00", "current_balance": "10.00",
        "payment_terms": "NET30", "tier": "GOLD",
        "services": {"voice": true, "messaging": false, "data": true},
        "contact": {"email": format!("ops{n}@example.com")},
        "address": {"city": "Denver", "state": "CO", "postal_code": "80202", "country": "US"},
        "external_ids": {"hubspot_company_id": format!("{}", 1000 + n)},
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-11-20T00:00:00Z",
        "etag": "\"1\"",
    })
}

fn company_props(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("warp_ban", format!("ZT-{n:04}")),
        ("name", format!("Company {n}")),
        ("warp_status", "ACTIVE".into()),
        ("warp_credit_limit", "5000".into()),
        ("warp_current_balance", "10".into()),
        ("warp_payment_terms", "NET30".into()),
        ("warp_tier", "GOLD".into()),
        ("warp_services", "voice;data".into()),
        ("warp_contact_email", format!("ops{n}@example.com")),
        ("city", "Denver".into()),
        ("state", "CO".into()),
        ("zip", "80202".into()),
        ("country", "US".into()),
    ]
}

fn reconciler(customers: usize, page_size: u32) -> Rec {
    reconciler_with(customers, page_size, |n| 1000 + n)
}

/// `customers` pairs; customer n's company has id `company(n)`.
fn reconciler_with(customers: usize, page_size: u32, company: impl Fn(usize) -> usize) -> Rec {
    let warp = Warp::default();
    let hubspot = Hubspot::default();
    for n in 0..customers {
        let mut c = customer(n);
        c["external_ids"]["hubspot_company_id"] = json!(company(n).to_string());
        warp.insert(c);
        let props = company_props(n);
        let props: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
        hubspot.upsert(&company(n).to_string(), &props, "2025-11-19T00:00:00Z");
    }
    Reconciler {
        warp,
        hubspot,
        store: MemorySyncStore::new(),
        events: MemoryEventLog::new(),
        queue: MemoryQueue::default(),
        runs: MemoryRunStore::default(),
        reports: MemoryReportStore::default(),
        mappings: MappingSet::default_mapping().unwrap(),
        settings: RunSettings {
            page_size,
            ..RunSettings::default()
        },
    }
}

fn scheduled() -> ReconcileRequest {
    ReconcileRequest {
        scheduled_time: Some(SCHEDULED.into()),
        ..Default::default()
    }
}

const FAR: i64 = i64::MAX / 2;

async fn run(r: &Rec, request: &ReconcileRequest) -> Outcome {
    r.invoke(request, FAR, &Handovers::default(), &NoAlerts)
        .await
        .unwrap()
}

/// Runs to the end the way Lambda would: each handover starts a fresh
/// invocation with the continuation payload.
async fn run_to_end(r: &Rec, request: &ReconcileRequest) -> (Outcome, u32) {
    let handovers = Handovers::default();
    let mut outcome = r.invoke(request, FAR, &handovers, &NoAlerts).await.unwrap();
    let mut invocations = 1;
    while outcome.status == "continued" {
        let run_id = handovers.take_last().unwrap();
        let next = ReconcileRequest {
            continue_run: Some(run_id),
            ..Default::default()
        };
        outcome = r.invoke(&next, FAR, &handovers, &NoAlerts).await.unwrap();
        invocations += 1;
        assert!(invocations < 1000, "the run never ends");
    }
    (outcome, invocations)
}

fn report(r: &Rec, outcome: &Outcome) -> Report {
    let key = outcome.report_json_key.as_deref().unwrap();
    serde_json::from_slice(&r.reports.object(key).unwrap()).unwrap()
}

/// Seeds drift in both directions on three customers.
fn drift(r: &Rec) {
    // WARP-owned field edited in WARP: flows to HubSpot.
    r.warp.edit("cust-1", json!({"status": "SUSPENDED"}));
    // HubSpot-owned field edited in HubSpot: flows to WARP.
    r.hubspot
        .upsert("1002", &[("warp_tier", "PLATINUM")], "2025-11-19T00:00:00Z");
    // WARP-owned field edited in HubSpot: WARP's value repairs it.
    r.hubspot.upsert(
        "1003",
        &[("warp_current_balance", "0")],
        "2025-11-19T00:00:00Z",
    );
}

#[tokio::test]
async fn drift_is_repaired_both_ways_and_a_second_run_writes_nothing() {
    let r = reconciler(5, 100);
    drift(&r);
    let outcome = run(&r, &ReconcileRequest::default()).await;
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    assert_eq!(
        r.hubspot.property("1001", "warp_status").as_deref(),
        Some("SUSPENDED")
    );
    assert_eq!(r.warp.customer("cust-2")["tier"], "PLATINUM");
    assert_eq!(
        r.hubspot
            .property("1003", "warp_current_balance")
            .as_deref(),
        Some("10.00")
    );
    let rep = report(&r, &outcome);
    assert_eq!(rep.summary.pairs_compared, 5);
    assert_eq!(rep.summary.pairs_in_sync, 2);
    assert_eq!(rep.summary.fixed_in_warp, 1);
    assert_eq!(rep.summary.fixed_in_hubspot, 2);
    assert_eq!(rep.summary.warp_writes, 1);
    assert_eq!(
        rep.summary.hubspot_calls.batch_update, 1,
        "one batch for both"
    );
    assert_eq!(rep.writes.len(), 3);
    let tier = rep.writes.iter().find(|w| w.field == "tier").unwrap();
    assert_eq!(
        (tier.before.clone(), tier.after.clone()),
        (json!("GOLD"), json!("PLATINUM"))
    );
    // Field state now holds the agreed value, for tomorrow's baseline.
    let states = r.store.field_states("cust-2").await.unwrap();
    assert_eq!(states["tier"].synced_value, Some(json!("PLATINUM")));

    let puts = r.warp.puts();
    let updates = r.hubspot.calls("batch_update");
    let again = run(&r, &ReconcileRequest::default()).await;
    let rep = report(&r, &again);
    assert_eq!(rep.summary.pairs_in_sync, 5, "{:?}", rep.differences);
    assert_eq!(
        (r.warp.puts(), r.hubspot.calls("batch_update")),
        (puts, updates)
    );
}

#[tokio::test]
async fn a_dry_run_decides_everything_and_writes_nothing_but_its_report() {
    let r = reconciler(5, 100);
    drift(&r);
    r.warp
        .insert(json!({"id": "lonely", "ban": "ZT-9999", "etag": "\"1\""}));
    r.hubspot
        .upsert("5000", &[("warp_ban", "ZT-9999")], "2025-11-19T00:00:00Z");
    let outcome = run(
        &r,
        &ReconcileRequest {
            dry_run: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(r.warp.puts(), 0);
    assert_eq!(r.hubspot.calls("batch_update"), 0);
    assert_eq!(
        r.hubspot.property("1001", "warp_status").as_deref(),
        Some("ACTIVE")
    );
    assert!(r.store.field_states("cust-2").await.unwrap().is_empty());
    assert!(
        r.store.link("5000").await.unwrap().is_none(),
        "no link written"
    );
    let rep = report(&r, &outcome);
    assert!(rep.dry_run);
    assert_eq!(
        rep.writes.len(),
        3,
        "the linked pair agrees already: its link is no field write"
    );
    assert!(rep.writes.iter().all(|w| w.status == "dry-run"));
    assert_eq!(rep.summary.linked, 1);
}

#[tokio::test]
async fn the_same_scheduled_time_twice_runs_once() {
    let r = reconciler(3, 100);
    let first = run(&r, &scheduled()).await;
    assert_eq!(first.run_id, "nightly-2026-11-25");
    assert_eq!(first.status, "completed");
    drift(&r);
    let second = run(&r, &scheduled()).await;
    assert_eq!(second.status, "already ran");
    assert_eq!(second.report_json_key, first.report_json_key);
    assert_eq!(r.warp.puts(), 0, "the second delivery did nothing");
}

/// Europe/Berlin's clocks go back from 03:00 to 02:00 on 2026-10-25: a
/// schedule at 02:00 there could be delivered at 00:00Z and again at 01:00Z.
/// The second delivery is the same night, and finds the run done.
#[tokio::test]
async fn a_repeated_two_oclock_runs_once() {
    let mut r = reconciler(3, 100);
    r.settings.timezone = chrono_tz::Europe::Berlin;
    let at = |t: &str| ReconcileRequest {
        scheduled_time: Some(t.into()),
        ..Default::default()
    };
    let first = run(&r, &at("2026-10-25T00:00:00Z")).await;
    assert_eq!(first.run_id, "nightly-2026-10-25");
    assert_eq!(first.status, "completed");
    drift(&r);
    let second = run(&r, &at("2026-10-25T01:00:00Z")).await;
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(second.status, "already ran");
    assert_eq!(r.warp.puts(), 0, "the repeated hour wrote nothing");
    // The next night is a run of its own.
    let next = run(&r, &at("2026-10-26T01:00:00Z")).await;
    assert_eq!(next.run_id, "nightly-2026-10-26");
    assert_eq!(next.status, "completed");
}

#[tokio::test]
async fn a_run_split_over_many_invocations_ends_like_one() {
    let one = reconciler(25, 5);
    drift(&one);
    let (single, n) = run_to_end(&one, &scheduled()).await;
    assert_eq!(n, 1);

    let split = reconciler(25, 5);
    drift(&split);
    let mut split = split;
    split.settings.invocation_budget = Some(std::time::Duration::ZERO);
    let (multi, n) = run_to_end(&split, &scheduled()).await;
    assert!(n >= 3, "{n} invocations");
    let (a, b) = (report(&one, &single), report(&split, &multi));
    assert_eq!(b.invocations, n);
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.differences, b.differences);
    assert_eq!(a.writes, b.writes);
    for n in 0..25 {
        let id = format!("cust-{n}");
        let (x, y) = (one.warp.customer(&id), split.warp.customer(&id));
        assert_eq!(x["tier"], y["tier"]);
        let c = format!("{}", 1000 + n);
        assert_eq!(
            one.hubspot.property(&c, "warp_status"),
            split.hubspot.property(&c, "warp_status")
        );
    }
}

#[tokio::test]
async fn a_failed_invocation_resumes_from_its_checkpoint() {
    let mut r = reconciler(12, 5);
    drift(&r);
    r.settings.invocation_budget = Some(std::time::Duration::ZERO);
    let handovers = Handovers::default();
    let first = r
        .invoke(&scheduled(), FAR, &handovers, &NoAlerts)
        .await
        .unwrap();
    assert_eq!(first.status, "continued");
    // The continuation is lost; the scheduler's retry of the same night
    // takes over (the lease was released) and finishes the run.
    r.settings.invocation_budget = None;
    let retry = run(&r, &scheduled()).await;
    assert_eq!(retry.status, "completed");
    let rep = report(&r, &retry);
    assert_eq!(rep.summary.pairs_compared, 12);
    assert_eq!(rep.invocations, 2);
}

#[tokio::test]
async fn the_daily_limit_stops_the_run_cleanly_with_a_report() {
    let r = reconciler(12, 5);
    drift(&r);
    // The night's one read (the index's search page) goes through; its
    // HubSpot fixes find the day's cap reached.
    *lock(&r.hubspot.daily_after) = Some(1);
    let outcome = run(&r, &scheduled()).await;
    assert_eq!(outcome.status, "stopped", "{outcome:?}");
    let rep = report(&r, &outcome);
    assert!(
        rep.stop_reason
            .as_deref()
            .unwrap_or_default()
            .contains("daily")
    );
    // Every pair compared (the one read came before the cap); HubSpot's
    // fixes wait for the next night, which finds the same differences.
    assert_eq!(rep.summary.pairs_compared, 12);
    assert_eq!(r.hubspot.calls("batch_update"), 0);
    assert_eq!(r.hubspot.calls("search"), 1);
    let record = r.runs.get("nightly-2026-11-25").await.unwrap().unwrap();
    assert_eq!(record.status, super::checkpoint::RunStatus::Stopped);
    // A second delivery of the night does not start over.
    assert_eq!(run(&r, &scheduled()).await.status, "already ran");
}

#[tokio::test]
async fn unmatched_on_each_side_and_an_exact_ban_match_linked() {
    let r = reconciler(3, 100);
    // A WARP customer with no company, whose BAN a HubSpot company carries.
    r.warp.insert(
        json!({"id": "new", "ban": "ZT-7777", "company_name": "Newco",
        "etag": "\"1\"", "updated_at": "2025-11-20T00:00:00Z"}),
    );
    r.hubspot.upsert(
        "7777",
        &[("warp_ban", "ZT-7777"), ("name", "Newco")],
        "2025-11-19T00:00:00Z",
    );
    // One with no company anywhere, and a company whose BAN WARP does not know.
    r.warp
        .insert(json!({"id": "alone", "ban": "ZT-8888", "etag": "\"1\""}));
    r.hubspot
        .upsert("9999", &[("warp_ban", "ZT-0000X")], "2025-11-19T00:00:00Z");
    // A company with no warp_ban is not a WARP customer's: not reported.
    r.hubspot
        .upsert("4242", &[("name", "Prospect")], "2025-11-19T00:00:00Z");
    let outcome = run(&r, &ReconcileRequest::default()).await;
    let rep = report(&r, &outcome);
    assert_eq!(rep.linked.len(), 1);
    assert_eq!(
        r.warp.customer("new")["external_ids"]["hubspot_company_id"],
        "7777"
    );
    assert_eq!(
        r.store.link("7777").await.unwrap().unwrap().customer_id,
        "new"
    );
    assert_eq!(rep.unmatched_warp.len(), 1, "{:?}", rep.unmatched_warp);
    assert_eq!(rep.unmatched_warp[0].customer_id.as_deref(), Some("alone"));
    assert_eq!(rep.unmatched_hubspot.len(), 1);
    assert_eq!(rep.unmatched_hubspot[0].company_id.as_deref(), Some("9999"));
    assert_eq!(
        rep.summary.pairs_compared, 4,
        "the linked pair is reconciled too"
    );
}

#[tokio::test]
async fn a_manual_conflict_is_reported_queued_and_left_alone() {
    let mut r = reconciler(2, 100);
    let text = crate::mapping::config::DEFAULT_MAPPING.replace(
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"HUBSPOT_WINS\"",
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"MANUAL\"",
    );
    r.mappings = MappingSet::parse(&text).unwrap();
    r.hubspot.upsert(
        "1001",
        &[("warp_credit_limit", "9000")],
        "2025-11-19T00:00:00Z",
    );
    let outcome = run(&r, &ReconcileRequest::default()).await;
    assert_eq!(r.warp.customer("cust-1")["credit_limit"], "5000.00");
    assert_eq!(
        r.hubspot.property("1001", "warp_credit_limit").as_deref(),
        Some("9000")
    );
    let rep = report(&r, &outcome);
    assert_eq!(rep.summary.conflicts_for_review, 1);
    assert_eq!(rep.open_conflicts.len(), 1);
    assert_eq!(r.store.open_conflicts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_stuck_event_is_swept_onto_the_queue_once() {
    let r = reconciler(1, 100);
    let body = r#"{"dedupKey":"k1","receivedAt":1,"event":{}}"#;
    let event: crate::hubspot::webhook::WebhookEvent<'_> = serde_json::from_str(
        r#"{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":4,"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":5,"propertyName":"name","propertyValue":"x"}"#,
    )
    .unwrap();
    let lease = Lease {
        owner: "crashed-delivery".into(),
        until_ms: 1,
    };
    r.events
        .claim(
            &NewEvent {
                dedup_key: "k1",
                event: &event,
                message: body,
            },
            &lease,
            0,
            0,
        )
        .await
        .unwrap();
    let outcome = run(&r, &ReconcileRequest::default()).await;
    assert_eq!(report(&r, &outcome).summary.swept, 1);
    assert_eq!(r.queue.bodies().len(), 1);
    assert_eq!(
        r.events.status("k1").await.unwrap(),
        Some(EventStatus::Queued)
    );
    let again = run(&r, &ReconcileRequest::default()).await;
    assert_eq!(report(&r, &again).summary.swept, 0);
    assert_eq!(r.queue.bodies().len(), 1, "queued once");
}

/// Records what would go to SNS.
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, String)>>);

impl super::ports::Alerts for Recorded {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), String> {
        lock(&self.0).push((subject.to_string(), message.to_string()));
        Ok(())
    }
}

#[tokio::test]
async fn a_person_is_alerted_only_when_the_run_needs_one() {
    let r = reconciler(3, 100);
    let alerts = Recorded::default();
    r.invoke(
        &ReconcileRequest::default(),
        FAR,
        &Handovers::default(),
        &alerts,
    )
    .await
    .unwrap();
    assert!(lock(&alerts.0).is_empty(), "all in sync: no alert");

    r.hubspot.upsert(
        "7000",
        &[("warp_ban", "ZT-UNKNOWN")],
        "2025-11-19T00:00:00Z",
    );
    r.invoke(
        &ReconcileRequest::default(),
        FAR,
        &Handovers::default(),
        &alerts,
    )
    .await
    .unwrap();
    let sent = lock(&alerts.0).clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.contains("needs review"), "{:?}", sent[0]);
    assert!(
        sent[0].1.contains("1 unmatched in HubSpot"),
        "{:?}",
        sent[0]
    );
    assert!(
        sent[0].1.contains("report.html"),
        "the alert names the report"
    );
}

#[tokio::test]
async fn a_412_reads_the_customer_again_and_decides_again() {
    let r = reconciler(3, 100);
    drift(&r);
    // While the run writes customer 2's tier, someone changes its email in
    // WARP: the PUT meets a 412, the run reads again and decides again.
    *lock(&r.warp.edit_before_next_put) = Some((
        "cust-2".into(),
        json!({"contact": {"email": "new@example.com"}}),
    ));
    let outcome = run(&r, &ReconcileRequest::default()).await;
    let c = r.warp.customer("cust-2");
    assert_eq!(c["tier"], "PLATINUM", "HubSpot's edit still applied");
    assert_eq!(
        c["contact"]["email"], "new@example.com",
        "the WARP edit kept"
    );
    let rep = report(&r, &outcome);
    assert_eq!(rep.summary.errors, 0, "{:?}", rep.errors);
    assert_eq!(rep.summary.warp_calls.get, 1, "one read after the 412");
    // The email now differs: no baseline, LATEST_WINS, WARP newer: HubSpot
    // takes WARP's email in the same run.
    assert_eq!(
        r.hubspot.property("1002", "warp_contact_email").as_deref(),
        Some("new@example.com")
    );
}

#[tokio::test]
async fn an_unreadable_report_piece_is_an_error_in_the_report_not_a_silent_gap() {
    use super::ports::ReportStore;
    let mut r = reconciler(12, 5);
    r.settings.invocation_budget = Some(std::time::Duration::ZERO);
    let handovers = Handovers::default();
    let first = r
        .invoke(&scheduled(), FAR, &handovers, &NoAlerts)
        .await
        .unwrap();
    assert_eq!(first.status, "continued");
    r.reports
        .put(
            "reports/nightly-2026-11-25/pieces/0-000001.json",
            b"not json".to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    r.settings.invocation_budget = None;
    let done = run(&r, &scheduled()).await;
    let rep = report(&r, &done);
    assert_eq!(rep.summary.errors, 1);
    assert!(
        rep.errors[0].message.contains("0-000001"),
        "{:?}",
        rep.errors
    );
}

/// WARP's order is not HubSpot's: customer n's company id is a permutation
/// of n, so every WARP page names companies all over the index.
fn shuffled(n: usize) -> usize {
    1000 + (n * 7919) % 1000
}

#[tokio::test]
async fn phase_1_decides_what_the_index_has_read_and_takes_up_the_rest_later() {
    let r = reconciler_with(1000, 100, shuffled);
    r.warp.edit("cust-7", json!({"status": "SUSPENDED"}));
    r.hubspot.upsert(
        &shuffled(913).to_string(),
        &[("warp_tier", "PLATINUM")],
        "2025-11-19T00:00:00Z",
    );
    let outcome = run(&r, &scheduled()).await;
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    let rep = report(&r, &outcome);
    let s = &rep.summary;
    // Every pair decided once, none unmatched, none read twice.
    assert_eq!(s.pairs_compared, 1000);
    assert_eq!((s.unmatched_warp, s.unmatched_hubspot, s.errors), (0, 0, 0));
    assert_eq!(r.hubspot.calls("search"), 5, "the index read once");
    assert_eq!(r.hubspot.calls("batch_read"), 0);
    // Phase 1 began before the index was whole: some customers waited
    // for a later pass, and fewer than all of them.
    assert!(
        s.deferred > 0 && s.deferred < 1000,
        "{} deferred",
        s.deferred
    );
    assert_eq!(
        r.hubspot
            .property(&shuffled(7).to_string(), "warp_status")
            .as_deref(),
        Some("SUSPENDED")
    );
    assert_eq!(r.warp.customer("cust-913")["tier"], "PLATINUM");
    assert_eq!((s.fixed_in_hubspot, s.fixed_in_warp), (1, 1));

    // The same night one step an invocation ends alike.
    let mut split = reconciler_with(1000, 100, shuffled);
    split.warp.edit("cust-7", json!({"status": "SUSPENDED"}));
    split.hubspot.upsert(
        &shuffled(913).to_string(),
        &[("warp_tier", "PLATINUM")],
        "2025-11-19T00:00:00Z",
    );
    split.settings.invocation_budget = Some(std::time::Duration::ZERO);
    let (multi, n) = run_to_end(&split, &scheduled()).await;
    assert!(n > 10, "{n} invocations");
    let b = report(&split, &multi);
    assert_eq!(b.summary.pairs_compared, 1000);
    assert_eq!(
        (b.summary.fixed_in_hubspot, b.summary.fixed_in_warp),
        (1, 1)
    );
    assert_eq!(b.summary.unmatched_warp + b.summary.unmatched_hubspot, 0);
    // The same findings; their order follows the passes, which follow
    // how far the index had come at each step.
    let by_customer = |mut d: Vec<report::PairDiff>| {
        d.sort_by(|x, y| x.customer_id.cmp(&y.customer_id));
        d
    };
    assert_eq!(
        by_customer(b.differences),
        by_customer(rep.differences.clone())
    );
    assert_eq!(b.writes.len(), rep.writes.len());
}
