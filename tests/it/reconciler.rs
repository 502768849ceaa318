//! The nightly reconciler against DynamoDB, SQS and S3 on moto and both
//! sandboxes: drift repaired both ways, dry runs, the run id rule, a run
//! split over invocations, HubSpot's rate limits, unmatched records and
//! the sweep of stuck events.

use std::sync::Mutex;
use std::time::Duration;

use hubwarp::aws::Caller;
use hubwarp::mapping::MappingSet;
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::checkpoint::RunStatus;
use hubwarp::reconcile::ports::{ReportStore, RunStore};
use hubwarp::reconcile::report::Report;
use hubwarp::reconcile::run::Outcome;
use hubwarp::store::sync::{ConflictQueue, LinkStore};
use integration_tests::fixtures::Signing;
use integration_tests::hubspot_sandbox::{HubspotSandbox, Throttle};
use integration_tests::seed;
use integration_tests::warp_sandbox::{WarpSandbox, demo_customer, shuffled_company_id};
use lambda_runtime::{Context, LambdaEvent};
use nightly_reconciler::{Config, Function};
use serde_json::{Map, Value, json};

use integration_tests::moto::MotoServer;

use crate::utils::{Harness, Options, missing_queue};

const SCHEDULED: &str = "2026-11-25T07:00:00Z";

/// The test plays Lambda: it invokes again with each handover.
type Handovers = hubwarp::reconcile::ports::RecordedHandovers;

struct Rig {
    h: Harness,
    warp: WarpSandbox,
    hubspot: HubspotSandbox,
    f: Function,
    config: Config,
}

/// Whether WARP lists its customers in their companies' id order (as when
/// the bridge created the companies from WARP's list) or in another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Aligned,
    Shuffled,
}

fn far() -> i64 {
    hubwarp::time::now_ms() + 15 * 60_000
}

impl Rig {
    async fn new(test: &str, customers: usize) -> Self {
        Self::with(
            test,
            customers,
            MappingSet::default_mapping().unwrap(),
            None,
            100,
        )
        .await
    }

    async fn with(
        test: &str,
        customers: usize,
        mappings: MappingSet,
        budget: Option<Duration>,
        page_size: u32,
    ) -> Self {
        Self::on(
            MotoServer::shared(),
            test,
            customers,
            mappings,
            budget,
            page_size,
            Order::Aligned,
        )
        .await
    }

    /// As [`Rig::with`], on the moto server given (a night of a thousand
    /// pairs sends moto tens of thousands of calls: on a server of its own
    /// it leaves the other tests' alone).
    async fn on(
        server: &MotoServer,
        test: &str,
        customers: usize,
        mappings: MappingSet,
        budget: Option<Duration>,
        page_size: u32,
        order: Order,
    ) -> Self {
        let h = Harness::on(server, test, Options::default()).await;
        let warp = WarpSandbox::start().await;
        let hubspot = HubspotSandbox::start().await;
        // The bridge's properties, as `hubwarp setup` creates them, before
        // anything is seeded (the first eight demo customers hold every tier
        // and payment term).
        integration_tests::hubspot_setup::install_bridge_properties(
            &hubspot,
            &(0..customers.max(8)).map(demo_customer).collect::<Vec<_>>(),
        );
        for n in 0..customers {
            let mut c = demo_customer(n);
            if order == Order::Shuffled {
                c["external_ids"]["hubspot_company_id"] =
                    json!(shuffled_company_id(n, 0, customers));
            }
            let c = warp.insert(c);
            let id = seed::company_id_of(&c).unwrap();
            hubspot.upsert_company(&id, seed::company_properties(&c, &mappings));
        }
        let mut run = hubwarp::reconcile::run::RunSettings {
            page_size,
            invocation_budget: budget,
            reserve: Duration::ZERO,
            ..Default::default()
        };
        run.timezone = chrono_tz::America::New_York;
        let config =
            crate::utils::reconciler_config(&h, &warp.base_url, &hubspot.base_url, mappings, run);
        let f = nightly_reconciler::build(&config, &h.aws_as(Caller::NightlyReconciler))
            .await
            .unwrap();
        Self {
            h,
            warp,
            hubspot,
            f,
            config,
        }
    }

    async fn invoke(&self, request: &ReconcileRequest) -> Outcome {
        self.f
            .reconciler
            .invoke(request, far(), &Handovers::default(), &self.f.alerts)
            .await
            .unwrap_or_else(|e| panic!("invocation failed: {e}"))
    }

    /// Invokes until the run ends, as Lambda would after each handover.
    async fn run_to_end(&self, request: &ReconcileRequest) -> (Outcome, u32) {
        let handovers = Handovers::default();
        let mut outcome = self
            .f
            .reconciler
            .invoke(request, far(), &handovers, &self.f.alerts)
            .await
            .unwrap();
        let mut n = 1;
        while outcome.status == "continued" {
            let run_id = handovers.take_last().unwrap();
            let next = ReconcileRequest {
                continue_run: Some(run_id),
                ..Default::default()
            };
            outcome = self
                .f
                .reconciler
                .invoke(&next, far(), &handovers, &self.f.alerts)
                .await
                .unwrap();
            n += 1;
            assert!(n < 200, "the run never ends");
        }
        (outcome, n)
    }

    async fn report(&self, outcome: &Outcome) -> Report {
        let key = outcome.report_json_key.as_deref().expect("a report");
        let body = self.f.reconciler.reports.get(key).await.unwrap().unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn customer(&self, n: usize) -> Value {
        self.warp
            .customer(demo_customer(n)["id"].as_str().unwrap())
            .unwrap()
    }

    fn company(&self, n: usize) -> Map<String, Value> {
        let id = seed::company_id_of(&demo_customer(n)).unwrap();
        self.hubspot.company(&id).unwrap()
    }

    fn company_id(n: usize) -> String {
        seed::company_id_of(&demo_customer(n)).unwrap()
    }

    /// Drift in each direction, on customers 1, 2 and 3.
    fn drift(&self) {
        // WARP-owned, edited in WARP (no webhook exists for it).
        let id1 = demo_customer(1)["id"].as_str().unwrap().to_string();
        self.warp.edit(&id1, json!({"status": "SUSPENDED"}));
        // HubSpot-owned, edited in HubSpot and its webhook lost.
        let mut p = Map::new();
        p.insert("warp_payment_terms".into(), json!("NET90"));
        self.hubspot.upsert_company(&Self::company_id(2), p);
        // WARP-owned, edited in HubSpot: WARP's value repairs it.
        let mut p = Map::new();
        p.insert("warp_current_balance".into(), json!("0"));
        self.hubspot.upsert_company(&Self::company_id(3), p);
    }
}

fn scheduled() -> ReconcileRequest {
    ReconcileRequest {
        scheduled_time: Some(SCHEDULED.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn drift_in_each_direction_is_repaired_and_a_second_run_writes_nothing() {
    let r = Rig::new("rec_drift", 6).await;
    r.drift();
    let outcome = r.invoke(&scheduled()).await;
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
    assert_eq!(r.customer(2)["payment_terms"], "NET90");
    let balance = hubwarp::mapping::ValueType::Decimal
        .warp_to_hubspot(&r.customer(3)["current_balance"])
        .unwrap();
    assert_eq!(r.company(3)["warp_current_balance"], balance);
    let report = r.report(&outcome).await;
    assert_eq!(report.summary.pairs_compared, 6);
    assert_eq!(report.summary.fixed_in_warp, 1);
    assert_eq!(report.summary.fixed_in_hubspot, 2);
    assert_eq!(report.summary.hubspot_calls.batch_update, 1);
    assert_eq!(report.summary.hubspot_calls.search, 1, "HubSpot read once");
    assert_eq!(report.summary.hubspot_calls.batch_read, 0);
    // The HTML page sits beside the JSON, and the run record names both.
    let html_key = outcome.report_html_key.clone().unwrap();
    let html =
        r.f.reconciler
            .reports
            .get(&html_key)
            .await
            .unwrap()
            .unwrap();
    assert!(String::from_utf8_lossy(&html).contains("fixed in WARP"));
    let record =
        r.f.reconciler
            .runs
            .get(&outcome.run_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    assert_eq!(record.report_html_key, Some(html_key));
    // Every pair is linked now, for the consumer as well.
    let link =
        r.f.reconciler
            .store
            .link(&Rig::company_id(2))
            .await
            .unwrap();
    assert!(link.is_some());

    let puts = r.warp.calls().put;
    let updates = r.hubspot.call_counts().batch_update;
    let again = r.invoke(&ReconcileRequest::default()).await;
    let report = r.report(&again).await;
    assert_eq!(report.summary.pairs_in_sync, 6, "{:?}", report.differences);
    assert_eq!(r.warp.calls().put, puts, "no WARP write");
    assert_eq!(
        r.hubspot.call_counts().batch_update,
        updates,
        "no HubSpot write"
    );
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_still_reports() {
    let r = Rig::new("rec_dry", 4).await;
    r.drift();
    let outcome = r
        .invoke(&ReconcileRequest {
            dry_run: true,
            ..Default::default()
        })
        .await;
    assert_eq!(r.warp.calls().put, 0);
    assert_eq!(r.hubspot.call_counts().batch_update, 0);
    assert_eq!(r.company(1)["warp_status"], "ACTIVE");
    let report = r.report(&outcome).await;
    assert!(report.dry_run);
    assert_eq!(report.writes.len(), 3);
    assert!(report.writes.iter().all(|w| w.status == "dry-run"));
    assert!(
        r.f.reconciler
            .store
            .link(&Rig::company_id(1))
            .await
            .unwrap()
            .is_none(),
        "no link written"
    );
}

#[tokio::test]
async fn the_scheduler_event_fixture_runs_once_per_night() {
    let r = Rig::new("rec_once", 3).await;
    let path = integration_tests::workspace_root().join("events/reconcile-scheduled.json");
    let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut ctx = Context::default();
    ctx.deadline = far() as u64;
    let first = nightly_reconciler::handle(&r.f, LambdaEvent::new(payload.clone(), ctx.clone()))
        .await
        .unwrap();
    assert_eq!(first.status, "completed");
    r.drift();
    // A repeated delivery (or a repeated 02:00 on a daylight-saving night
    // carries the same scheduled time) does nothing.
    let second = nightly_reconciler::handle(&r.f, LambdaEvent::new(payload, ctx.clone()))
        .await
        .unwrap();
    assert_eq!(second.status, "already ran");
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(r.warp.calls().put, 0);

    let dry: Value = serde_json::from_str(
        &std::fs::read_to_string(
            integration_tests::workspace_root().join("events/reconcile-manual-dry-run.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let manual = nightly_reconciler::handle(&r.f, LambdaEvent::new(dry, ctx))
        .await
        .unwrap();
    assert!(manual.run_id.starts_with("manual-") && manual.dry_run);
}

/// `cargo lambda watch` gives every invocation the deadline 600000 (ten
/// minutes after the epoch): read literally, the run would hand over after
/// its first page to an invoke watch cannot serve. It runs in one.
#[tokio::test]
async fn a_deadline_already_past_runs_the_whole_run_in_one_invocation() {
    let r = Rig::with(
        "rec_watch_deadline",
        6,
        MappingSet::default_mapping().unwrap(),
        None,
        2,
    )
    .await;
    r.drift();
    let mut ctx = Context::default();
    ctx.deadline = 600_000;
    let outcome = nightly_reconciler::handle(&r.f, LambdaEvent::new(json!({}), ctx))
        .await
        .unwrap();
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    assert_eq!(r.report(&outcome).await.invocations, 1);
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
}

#[tokio::test]
async fn a_run_forced_across_invocations_ends_like_one() {
    let mappings = MappingSet::default_mapping().unwrap();
    let one = Rig::with("rec_one", 12, mappings.clone(), None, 5).await;
    let split = Rig::with("rec_split", 12, mappings, Some(Duration::ZERO), 5).await;
    one.drift();
    split.drift();
    let (a, n) = one.run_to_end(&scheduled()).await;
    assert_eq!(n, 1);
    let (b, n) = split.run_to_end(&scheduled()).await;
    assert!(n >= 3, "{n} invocations");
    let (ra, rb) = (one.report(&a).await, split.report(&b).await);
    assert_eq!(rb.invocations, n);
    assert_eq!(ra.summary, rb.summary);
    assert_eq!(ra.differences, rb.differences);
    assert_eq!(ra.writes.len(), rb.writes.len());
    for n in 0..12 {
        let (x, y) = (one.customer(n), split.customer(n));
        for f in ["status", "payment_terms", "current_balance", "tier"] {
            assert_eq!(x[f], y[f], "customer {n} {f}");
        }
        let (x, y) = (one.company(n), split.company(n));
        for p in ["warp_status", "warp_payment_terms", "warp_current_balance"] {
            assert_eq!(x.get(p), y.get(p), "company {n} {p}");
        }
    }
}

/// One invoke as received: function, `X-Amz-Invocation-Type`, payload.
type Invoke = (String, Option<String>, Value);

/// Lambda's Invoke API as far as a handover needs it: records each invoke
/// and answers 202 at once, as Lambda does for an asynchronous one.
#[derive(Clone, Default)]
struct LambdaInvokes(std::sync::Arc<Mutex<Vec<Invoke>>>);

impl LambdaInvokes {
    async fn serve(&self) -> String {
        async fn invoke(
            axum::extract::State(log): axum::extract::State<LambdaInvokes>,
            axum::extract::Path(name): axum::extract::Path<String>,
            headers: axum::http::HeaderMap,
            body: axum::body::Bytes,
        ) -> axum::http::StatusCode {
            let kind = headers
                .get("x-amz-invocation-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.0.lock().unwrap().push((name, kind, payload));
            axum::http::StatusCode::ACCEPTED
        }
        let app = axum::Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(invoke),
            )
            .with_state(self.clone());
        let (url, _server) = integration_tests::serve(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            app,
            "Lambda",
        )
        .await
        .unwrap();
        url
    }

    fn take(&self) -> Vec<Invoke> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The handover as deployed, over the wire: the function invokes itself
/// asynchronously (`Event`) at `AWS_ENDPOINT_URL_LAMBDA` with
/// `{"continue_run": id}`, and each delivery of that payload carries the
/// run on. The demo cannot show this under `cargo lambda watch`, which
/// ignores the invocation type and answers only when the function does.
#[tokio::test]
async fn a_run_hands_over_through_asynchronous_invokes_of_itself() {
    let r = Rig::with(
        "rec_self_invoke",
        6,
        MappingSet::default_mapping().unwrap(),
        Some(Duration::ZERO),
        2,
    )
    .await;
    r.drift();
    let lambda = LambdaInvokes::default();
    let mut config = r.config.clone();
    config.lambda_endpoint = Some(lambda.serve().await);
    let f = nightly_reconciler::build(&config, &r.h.aws_as(Caller::NightlyReconciler))
        .await
        .unwrap();
    let mut ctx = Context::default();
    ctx.deadline = far() as u64;
    let mut payload = json!({ "scheduled_time": SCHEDULED });
    let mut invocations = 0;
    let outcome = loop {
        invocations += 1;
        assert!(invocations < 50, "the run never ends");
        let outcome = nightly_reconciler::handle(&f, LambdaEvent::new(payload, ctx.clone()))
            .await
            .unwrap();
        let mut invokes = lambda.take();
        if outcome.status != "continued" {
            assert!(invokes.is_empty(), "{invokes:?}");
            break outcome;
        }
        assert_eq!(invokes.len(), 1, "one handover per invocation");
        let (name, kind, next) = invokes.remove(0);
        assert_eq!(name, "nightly-reconciler");
        assert_eq!(kind.as_deref(), Some("Event"));
        let asked: ReconcileRequest = serde_json::from_value(next.clone()).unwrap();
        assert_eq!(
            asked,
            ReconcileRequest {
                continue_run: Some(outcome.run_id.clone()),
                ..Default::default()
            }
        );
        payload = next;
    };
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    assert!(invocations >= 3, "{invocations} invocations");
    let report = r.report(&outcome).await;
    assert_eq!(report.invocations, invocations);
    assert_eq!(report.summary.pairs_compared, 6);
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
    assert_eq!(r.customer(2)["payment_terms"], "NET90");
}

#[tokio::test]
async fn a_429_storm_slows_the_run_and_loses_nothing() {
    let r = Rig::new("rec_storm", 5).await;
    r.drift();
    r.hubspot.throttle_next(Throttle::TenSecondly, 12);
    let outcome = r.invoke(&ReconcileRequest::default()).await;
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    let report = r.report(&outcome).await;
    assert!(report.summary.throttled >= 12, "{:?}", report.summary);
    assert_eq!(report.summary.errors, 0);
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
    assert_eq!(r.customer(2)["payment_terms"], "NET90");
}

#[tokio::test]
async fn hubspots_daily_limit_ends_the_run_cleanly_with_a_report() {
    let r = Rig::new("rec_daily", 5).await;
    r.drift();
    r.hubspot.throttle_next(Throttle::Daily, 1);
    let outcome = r.invoke(&scheduled()).await;
    assert_eq!(outcome.status, "stopped", "{outcome:?}");
    let report = r.report(&outcome).await;
    assert!(
        report
            .stop_reason
            .as_deref()
            .unwrap_or_default()
            .contains("daily"),
        "{:?}",
        report.stop_reason
    );
    let record =
        r.f.reconciler
            .runs
            .get(&outcome.run_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(record.status, RunStatus::Stopped);
    assert_eq!(r.warp.calls().put, 0, "nothing was decided without HubSpot");
}

#[tokio::test]
async fn a_manual_conflict_is_reported_and_left_alone() {
    let text = hubwarp::mapping::config::DEFAULT_MAPPING.replace(
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"HUBSPOT_WINS\"",
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"MANUAL\"",
    );
    let r = Rig::with(
        "rec_manual",
        3,
        MappingSet::parse(&text).unwrap(),
        None,
        100,
    )
    .await;
    let mut p = Map::new();
    p.insert("warp_credit_limit".into(), json!("123456"));
    r.hubspot.upsert_company(&Rig::company_id(1), p);
    let before = r.customer(1)["credit_limit"].clone();
    let outcome = r.invoke(&ReconcileRequest::default()).await;
    assert_eq!(r.customer(1)["credit_limit"], before);
    assert_eq!(r.company(1)["warp_credit_limit"], "123456");
    let report = r.report(&outcome).await;
    assert_eq!(report.summary.conflicts_for_review, 1);
    assert_eq!(report.open_conflicts.len(), 1);
    let open = r.f.reconciler.store.open_conflicts().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].hubspot_value, "123456");
}

#[tokio::test]
async fn unmatched_each_side_and_an_exact_ban_match_linked() {
    let r = Rig::new("rec_unmatched", 3).await;
    // WARP customer 10 has no company id; a HubSpot company carries its BAN.
    let mut lonely = demo_customer(10);
    lonely["external_ids"] = json!({"hubspot_company_id": null});
    let lonely = r.warp.insert(lonely);
    let mut props = seed::company_properties(&lonely, &MappingSet::default_mapping().unwrap());
    props.insert("name".into(), json!("Renamed in HubSpot"));
    r.hubspot.upsert_company("777000", props);
    // WARP customer 11 has no company anywhere.
    let mut alone = demo_customer(11);
    alone["external_ids"] = json!({"hubspot_company_id": null});
    r.warp.insert(alone);
    // A company whose warp_ban no WARP customer has.
    let mut p = Map::new();
    p.insert("warp_ban".into(), json!("ZT-00000000"));
    r.hubspot.upsert_company("888000", p);

    let outcome = r.invoke(&ReconcileRequest::default()).await;
    let report = r.report(&outcome).await;
    assert_eq!(report.linked.len(), 1, "{:?}", report.linked);
    let linked = r.warp.customer(lonely["id"].as_str().unwrap()).unwrap();
    assert_eq!(linked["external_ids"]["hubspot_company_id"], "777000");
    assert!(r.f.reconciler.store.link("777000").await.unwrap().is_some());
    assert_eq!(
        report.unmatched_warp.len(),
        1,
        "{:?}",
        report.unmatched_warp
    );
    assert_eq!(
        report.unmatched_warp[0].customer_id.as_deref(),
        demo_customer(11)["id"].as_str()
    );
    assert_eq!(report.unmatched_hubspot.len(), 1);
    assert_eq!(
        report.unmatched_hubspot[0].company_id.as_deref(),
        Some("888000")
    );
    assert_eq!(
        report.summary.pairs_compared, 4,
        "the new pair is reconciled too"
    );
}

#[tokio::test]
async fn a_stuck_received_event_is_swept_onto_the_queue_once() {
    let r = Rig::new("rec_sweep", 1).await;
    // A delivery whose SQS send failed: recorded RECEIVED, lease released,
    // and HubSpot never retried.
    let broken = r.h.receiver(Options {
        queue_url: Some(missing_queue(&r.h.res.sync_queue_url)),
        ..Options::default()
    });
    let body = json!([{
        "eventId": 1, "subscriptionId": 2, "portalId": 3, "appId": 4,
        "occurredAt": 1_764_000_000_000i64, "subscriptionType": "company.propertyChange",
        "attemptNumber": 0, "objectId": 18_476_215_990u64, "propertyName": "name",
        "propertyValue": "Swept Inc", "changeSource": "CRM_UI"
    }])
    .to_string();
    let (status, _) = Harness::deliver_with(&broken, &r.h.event(&body, Signing::V1)).await;
    assert_eq!(status, 503);
    assert!(r.h.drain_queue().await.is_empty());

    let outcome = r.invoke(&ReconcileRequest::default()).await;
    assert_eq!(r.report(&outcome).await.summary.swept, 1);
    let queued = r.h.drain_queue().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["event"]["propertyValue"], "Swept Inc");
    let records = r.h.records().await;
    assert_eq!(crate::utils::s(&records[0], "status"), "QUEUED");

    let again = r.invoke(&ReconcileRequest::default()).await;
    assert_eq!(r.report(&again).await.summary.swept, 0);
    assert!(r.h.drain_queue().await.is_empty(), "swept once");
}

/// The formula at 1,000 pairs: a night's HubSpot calls stay within
/// ceil(customers / 100) + ceil(HubSpot fixes / 100) + a handful, with twice
/// as many other companies in the portal (prospects, partners: no
/// `warp_ban`) that the night never reads, and 1% of the pairs drifted.
#[tokio::test]
async fn a_night_reads_hubspot_once_and_never_the_companies_no_customer_has() {
    const CUSTOMERS: u64 = 1_000;
    let server: &'static MotoServer = Box::leak(Box::new(MotoServer::start().unwrap()));
    let r = Rig::on(
        server,
        "rec_calls",
        CUSTOMERS as usize,
        MappingSet::default_mapping().unwrap(),
        None,
        100,
        // WARP's pages name companies all over the index, so phase 1,
        // which begins with a third of the index read, defers customers
        // to later passes through the bucket.
        Order::Shuffled,
    )
    .await;
    for k in 0..2 * CUSTOMERS {
        let mut p = Map::new();
        p.insert("name".into(), json!(format!("Prospect {k}")));
        p.insert("domain".into(), json!(format!("prospect{k}.example")));
        r.hubspot
            .upsert_company(&format!("{}", 90_000_000_000 + k), p);
    }
    // 1%: ten customers' balances change in WARP (WARP-owned: HubSpot fixes).
    for n in (0..CUSTOMERS as usize).step_by(100) {
        let id = demo_customer(n)["id"].as_str().unwrap().to_string();
        r.warp.edit(&id, json!({"current_balance": "4242.42"}));
    }
    r.hubspot.reset_calls();
    let outcome = r.invoke(&scheduled()).await;
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    let report = r.report(&outcome).await;
    let s = report.summary;
    assert_eq!(s.errors, 0, "{:?}", report.errors);
    assert_eq!(s.pairs_compared, CUSTOMERS);
    assert_eq!(s.fixed_in_hubspot, 10, "{s:?}");
    assert_eq!(
        s.unmatched_hubspot, 0,
        "the prospects are no one's: not reported"
    );
    let bound = CUSTOMERS.div_ceil(100) + s.hubspot_updates.div_ceil(100) + 5;
    let made = s.hubspot_calls.total();
    assert!(
        made <= bound,
        "{made} HubSpot calls > {bound}: {:?}",
        s.hubspot_calls
    );
    // What the sandbox served: five search pages of 200, one batch update,
    // and no list of the portal (3,000 companies).
    let served = r.hubspot.call_counts();
    assert_eq!(
        (served.search, served.list, served.batch_read),
        (5, 0, 0),
        "{served:?}"
    );
    assert_eq!(served.batch_update, 1);
    assert!(
        s.deferred > 0 && s.deferred < CUSTOMERS * 2,
        "{} customers deferred",
        s.deferred
    );
}
