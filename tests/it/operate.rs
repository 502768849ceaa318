//! The operator's command (`hubwarp`) against DynamoDB, SQS and S3 on moto
//! and both sandboxes, through the library functions the binary calls;
//! then the binary itself as a process: `--help`, `--json`, and a missing
//! setting named with exit code 2.

use std::sync::Arc;
use std::time::Duration;

use hubwarp::aws::Caller;
use hubwarp::mapping::MappingSet;
use hubwarp::operate::conflicts::{self, Choice, Take};
use hubwarp::operate::replay::{self, Selection};
use hubwarp::operate::undo::{self, Sides, UndoSettings};
use hubwarp::operate::{OperateError, dlq, events, explain, reconcile, runs};
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::report::Report;
use hubwarp::reconcile::run::Outcome;
use hubwarp::store::records::{EventQuery, EventRecords};
use hubwarp::store::sync::{ConflictQueue, FieldStateStore, Source};
use integration_tests::fixtures::Signing;
use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::seed;
use integration_tests::warp_sandbox::{Fault, WarpSandbox, demo_customer};
use serde_json::{Map, Value, json};

use crate::binary::hubwarp;
use crate::consumer::{SyncHarness, company_id};
use crate::utils::{Harness, Options};

const T: i64 = 1_763_700_000_000;

/// Both functions on one set of tables and queues, both sandboxes seeded
/// with agreeing pairs.
struct Rig {
    s: SyncHarness,
    f: nightly_reconciler::Function,
    /// What `hubwarp` reaches, signed as the operator (judged against the
    /// template's operator policy by `make iam-check`).
    ops: hubwarp::reconcile::aws::AwsReconciler,
    config: nightly_reconciler::Config,
    mappings: MappingSet,
}

impl Rig {
    async fn new(test: &str, customers: usize) -> Self {
        Self::with(test, customers, MappingSet::default_mapping().unwrap()).await
    }

    async fn with(test: &str, customers: usize, mappings: MappingSet) -> Self {
        Self::build(test, customers, mappings, Options::default()).await
    }

    async fn build(test: &str, customers: usize, mappings: MappingSet, options: Options) -> Self {
        let h = Harness::with(test, options).await;
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
            let c = warp.insert(demo_customer(n));
            hubspot.upsert_company(&company_id(n), seed::company_properties(&c, &mappings));
        }
        let api = crate::utils::sandbox_api(&warp.base_url, &hubspot.base_url);
        let consumer_config = sync_consumer::Config {
            metrics_namespace: hubwarp::metrics::DEFAULT_NAMESPACE.into(),
            events_table: h.res.names.events_table(),
            tables: h.res.names.sync_tables(),
            breakers_table: h.res.names.breakers_table(),
            breaker: crate::utils::quick_breaker(),
            api: api.clone(),
            mappings: mappings.clone(),
            sync_log_retention_days: 90,
            retry: hubwarp::sync::backoff::Backoff::default(),
            hubspot_rate: Arc::new(hubwarp::hubspot::rate::RateLimiter::new(100, 4)),
        };
        let consumer = sync_consumer::build(&consumer_config, &h.aws_as(Caller::SyncConsumer))
            .await
            .unwrap();
        let config = crate::utils::reconciler_config(
            &h,
            &warp.base_url,
            &hubspot.base_url,
            mappings.clone(),
            hubwarp::reconcile::run::RunSettings {
                reserve: Duration::ZERO,
                ..Default::default()
            },
        );
        let f = nightly_reconciler::build(&config, &h.aws_as(Caller::NightlyReconciler))
            .await
            .unwrap();
        let ops = hubwarp::reconcile::aws::build(&config, &h.aws_as(Caller::Operator))
            .await
            .unwrap();
        Self {
            s: SyncHarness {
                h,
                warp,
                hubspot,
                consumer,
                config: consumer_config,
            },
            f,
            ops,
            config,
            mappings,
        }
    }

    fn customer_id(n: usize) -> String {
        demo_customer(n)["id"].as_str().unwrap().to_string()
    }

    fn ban(n: usize) -> String {
        demo_customer(n)["ban"].as_str().unwrap().to_string()
    }

    fn customer(&self, n: usize) -> Value {
        self.s.warp.customer(&Self::customer_id(n)).unwrap()
    }

    fn company(&self, n: usize) -> Map<String, Value> {
        self.s.hubspot.company(&company_id(n)).unwrap()
    }

    fn set_company(&self, n: usize, property: &str, value: &str) {
        let mut p = Map::new();
        p.insert(property.into(), json!(value));
        self.s.hubspot.upsert_company(&company_id(n), p);
    }

    async fn deliver(&self, events: &[Value]) {
        let body = Value::Array(events.to_vec()).to_string();
        let (status, answer) = self.s.h.deliver(&body, Signing::V1).await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn reconcile(&self, request: &ReconcileRequest) -> Outcome {
        reconcile::run_here(&self.f.reconciler, request)
            .await
            .unwrap()
    }

    async fn report(&self, outcome: &Outcome) -> Report {
        let key = outcome.report_json_key.as_deref().expect("a report");
        runs::load_report(&self.ops.reports, key)
            .await
            .unwrap()
            .unwrap()
    }

    async fn explain(&self, target: &str, field: Option<&str>) -> explain::Explanation {
        let r = &self.ops;
        explain::explain(
            &r.warp,
            &r.hubspot,
            &r.store,
            &self.mappings,
            target,
            field,
            explain::DEFAULT_LIMIT,
        )
        .await
        .unwrap()
    }

    async fn key_of(&self, company: usize, property: &str) -> String {
        let log = self.s.h.log_as(Caller::Operator);
        let records = log
            .records(&EventQuery {
                company_id: Some(company_id(company)),
                ..Default::default()
            })
            .await
            .unwrap();
        records
            .into_iter()
            .find(|r| r.property.as_deref() == Some(property))
            .map(|r| r.dedup_key)
            .expect("a recorded event")
    }

    async fn status_of(&self, key: &str) -> String {
        self.s
            .h
            .log_as(Caller::Operator)
            .record(key)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    fn undo_sides(
        &self,
    ) -> Sides<
        '_,
        hubwarp::warp::WarpClient,
        hubwarp::hubspot::crm::HubspotClient,
        hubwarp::store::DynamoSyncStore,
        hubwarp::reconcile::run_store::DynamoRunStore,
        hubwarp::store::S3ReportStore,
    > {
        let r = &self.ops;
        Sides {
            warp: &r.warp,
            hubspot: &r.hubspot,
            store: &r.store,
            runs: &r.runs,
            reports: &r.reports,
            mappings: &self.mappings,
        }
    }
}

#[tokio::test]
async fn explain_says_which_rule_skipped_a_field_and_how_both_sides_stand_now() {
    let r = Rig::new("ops_explain", 2).await;
    r.deliver(&[
        // WARP-owned: HubSpot's edit is skipped, by the owner rule.
        SyncHarness::change(0, 10, "warp_status", "CLOSED", T),
        SyncHarness::change(0, 11, "warp_credit_limit", "7500", T + 1),
    ])
    .await;
    r.s.pump().await;
    // HubSpot holds what its webhook announced.
    r.set_company(0, "warp_credit_limit", "7500");
    // Drift for the nightly run: HubSpot-owned tier edited in HubSpot.
    r.set_company(0, "warp_tier", "PLATINUM");
    let run = r.reconcile(&ReconcileRequest::default()).await;

    let x = r.explain(&Rig::ban(0), Some("status")).await;
    assert_eq!(x.customer_id.as_deref(), Some(Rig::customer_id(0).as_str()));
    assert_eq!(x.company_id.as_deref(), Some(company_id(0).as_str()));
    assert_eq!(x.history.len(), 1, "{:?}", x.history);
    let skipped = &x.history[0];
    assert_eq!(skipped.outcome, "skipped-direction");
    assert_eq!(skipped.rule.as_deref(), Some("owner:WARP_TO_HUBSPOT"));
    assert!(skipped.reason.contains("WARP-owned"), "{}", skipped.reason);
    assert_eq!(skipped.hubspot_value.as_deref(), Some("CLOSED"));
    assert_eq!(skipped.warp_value, Some(json!("ACTIVE")));
    // The event's key names the change (company, type, time, property).
    assert!(
        matches!(&skipped.source, Source::Event { dedup_key, event_id: None }
            if dedup_key.starts_with(&format!("62515:{}:company.propertyChange:", company_id(0)))
                && dedup_key.ends_with(":warp_status")),
        "{:?}",
        skipped.source
    );
    assert_eq!(x.now.len(), 1);
    assert!(x.now[0].agree, "{:?}", x.now[0]);

    // The whole story by company id, newest first: the run's decision on
    // tier, then the applied credit limit.
    let all = r.explain(&company_id(0), None).await;
    let tier = all
        .history
        .iter()
        .position(|d| d.field.as_deref() == Some("tier"))
        .expect("the run's decision is logged");
    assert_eq!(
        all.history[tier].source,
        Source::Run {
            run_id: run.run_id.clone()
        }
    );
    assert_eq!(all.history[tier].outcome, "write-warp");
    assert_eq!(
        all.history[tier].rule.as_deref(),
        Some("owner:HUBSPOT_TO_WARP")
    );
    let credit = all
        .history
        .iter()
        .position(|d| d.field.as_deref() == Some("credit_limit"))
        .unwrap();
    assert!(tier < credit, "newest first");
    assert_eq!(all.history[credit].outcome, "applied");
    assert_eq!(all.history[credit].rule.as_deref(), Some("changed"));
    // Both sides now, after conversion ("7500" in HubSpot, "7500.00" in
    // WARP); a field edited on one side alone differs.
    let now = |f: &str| all.now.iter().find(|n| n.field == f).unwrap();
    assert!(now("tier").agree && now("status").agree && now("credit_limit").agree);
    r.set_company(0, "city", "Boulder");
    let city = r.explain(&company_id(0), Some("city")).await;
    assert!(!city.now[0].agree && city.now[0].state.starts_with("differ"));
    // A run that found the pair in sync logs nothing for it.
    let again = r.reconcile(&ReconcileRequest::default()).await;
    let after = r.explain(&Rig::customer_id(1), None).await;
    assert!(after.history.iter().all(|d| d.source
        != Source::Run {
            run_id: again.run_id.clone()
        }));

    for (target, field, input) in [
        ("ZT-00000000", None, "no WARP customer"),
        (Rig::ban(0).as_str(), Some("nonsense"), "neither a mapped"),
    ] {
        let r = &r.ops;
        let e = explain::explain(
            &r.warp,
            &r.hubspot,
            &r.store,
            &MappingSet::default_mapping().unwrap(),
            target,
            field,
            10,
        )
        .await
        .unwrap_err();
        assert!(e.is_input() && e.to_string().contains(input), "{e}");
    }
}

#[tokio::test]
async fn replay_of_an_applied_event_changes_nothing_and_an_unmatched_one_applies_once_matched() {
    let r = Rig::new("ops_replay", 1).await;
    r.deliver(&[SyncHarness::change(0, 20, "warp_credit_limit", "8100", T)])
        .await;
    r.s.pump().await;
    let applied = r.key_of(0, "warp_credit_limit").await;
    assert_eq!(r.status_of(&applied).await, "APPLIED");
    let before = r.customer(0);

    let log = r.s.h.log_as(Caller::Operator);
    let queue = hubwarp::queue::SqsQueue::new(
        aws_sdk_sqs::Client::new(&r.s.h.aws_as(Caller::Operator)),
        r.s.h.res.sync_queue_url.clone(),
    );
    let now = hubwarp::time::now_ms();
    let done = replay::replay(&log, &queue, &Selection::Event(applied.clone()), now)
        .await
        .unwrap();
    // An applied event keeps no message (it carried a customer's value), and
    // sending it again would change nothing: it is left, with the reason.
    assert!(done.requeued.is_empty(), "{done:?}");
    assert_eq!(done.skipped.len(), 1);
    assert_eq!(done.skipped[0].status, "APPLIED");
    assert!(done.skipped[0].why.contains("already applied"), "{done:?}");
    r.s.warp.reset_calls();
    let stats = r.s.pump().await;
    assert_eq!(stats.batches, 0, "nothing was sent");
    assert_eq!(r.s.warp.calls().put, 0, "no WARP write");
    assert_eq!(r.customer(0), before);
    assert_eq!(r.status_of(&applied).await, "APPLIED");

    // A change for a company nobody links yet: UNMATCHED. Once the pair
    // exists, replaying the company applies it, once.
    r.deliver(&[SyncHarness::change(1, 21, "warp_tier", "PLATINUM", T + 5)])
        .await;
    r.s.pump().await;
    let unmatched = r.key_of(1, "warp_tier").await;
    assert_eq!(r.status_of(&unmatched).await, "UNMATCHED");
    let c = r.s.warp.insert(demo_customer(1));
    r.s.hubspot
        .upsert_company(&company_id(1), seed::company_properties(&c, &r.mappings));
    let done = replay::replay(&log, &queue, &Selection::Company(company_id(1)), now)
        .await
        .unwrap();
    assert_eq!(done.requeued.len(), 1, "{done:?}");
    assert_eq!(done.requeued[0].was, "UNMATCHED");
    r.s.warp.reset_calls();
    r.s.pump().await;
    assert_eq!(r.customer(1)["tier"], "PLATINUM");
    assert_eq!(r.s.warp.calls().put, 1, "applied once");
    assert_eq!(r.status_of(&unmatched).await, "APPLIED");

    // The whole window again: both are settled, nothing is written.
    let done = replay::replay(
        &log,
        &queue,
        &Selection::Window {
            since_ms: now - 3_600_000,
            until_ms: None,
        },
        now,
    )
    .await
    .unwrap();
    assert!(done.requeued.is_empty(), "{done:?}");
    assert_eq!(done.skipped.len(), 2);
    r.s.warp.reset_calls();
    r.s.pump().await;
    assert_eq!(r.s.warp.calls().put, 0);

    // Events is the same log, read whole and filtered.
    let listed = events::list(
        &log,
        &EventQuery {
            status: Some("applied".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 2);
    let e = replay::replay(&log, &queue, &Selection::Event("nope".into()), now)
        .await
        .unwrap_err();
    assert!(matches!(e, OperateError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn the_dlq_says_why_each_message_is_there_and_redrive_moves_them_back() {
    // Five receives (the template's 1,000 are days of backoff).
    let r = Rig::build(
        "ops_dlq",
        1,
        MappingSet::default_mapping().unwrap(),
        Options {
            max_receives: 5,
            ..Options::default()
        },
    )
    .await;
    r.deliver(&[SyncHarness::change(0, 30, "warp_credit_limit", "6400", T)])
        .await;
    let sqs = aws_sdk_sqs::Client::new(&r.s.h.aws_as(Caller::Operator));
    sqs.send_message()
        .queue_url(&r.s.h.res.sync_queue_url)
        .message_body("garbage{")
        .send()
        .await
        .unwrap();
    // WARP down for longer than the redrive policy's receives.
    r.s.warp.set_fault(Fault::ServerError { times: 1_000 });
    r.s.pump().await;
    r.s.warp.set_fault(Fault::None);

    let source = &r.s.h.res.sync_queue_url;
    let dlq_url = dlq::dlq_url(&sqs, source).await.unwrap();
    assert_eq!(dlq_url, r.s.h.res.sync_dlq_url);
    let log = r.s.h.log_as(Caller::Operator);
    let mut dead = dlq::list(&sqs, &dlq_url, &log, 10).await.unwrap();
    dead.sort_by_key(|d| d.dedup_key.is_some());
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead[0].why.starts_with("the consumer cannot read it"),
        "{}",
        dead[0].why
    );
    assert!(
        dead[1].why.contains("WARP unavailable") && dead[1].why.contains("5 failures"),
        "{}",
        dead[1].why
    );
    assert_eq!(dead[1].event_status.as_deref(), Some("QUEUED"));
    // Listing left them there.
    assert_eq!(dlq::list(&sqs, &dlq_url, &log, 10).await.unwrap().len(), 2);

    let moved = dlq::redrive(&sqs, &dlq_url, source, 100).await.unwrap();
    assert_eq!(moved.moved, 2);
    assert!(
        dlq::list(&sqs, &dlq_url, &log, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The outage opened WARP's circuit: as after a real outage, its next
    // probe (once the open period is over) finds WARP back. The pump hands
    // refused messages back at once, so pumping inside the open period
    // would burn their receives.
    tokio::time::sleep(crate::utils::quick_breaker().open + std::time::Duration::from_millis(200))
        .await;
    r.s.pump().await;
    assert_eq!(r.customer(0)["credit_limit"], "6400");
}

/// The default mapping with the credit limit a person's call (MANUAL).
pub(crate) fn manual_credit_limit() -> MappingSet {
    MappingSet::parse(&hubwarp::mapping::config::DEFAULT_MAPPING.replace(
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"HUBSPOT_WINS\"",
        "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"MANUAL\"",
    ))
    .unwrap()
}

#[tokio::test]
async fn a_resolved_conflict_writes_the_chosen_side_once_and_leaves_the_list() {
    let r = Rig::with("ops_conflicts", 3, manual_credit_limit()).await;
    r.set_company(1, "warp_credit_limit", "123456");
    r.set_company(2, "warp_credit_limit", "654321");
    r.reconcile(&ReconcileRequest::default()).await;
    let store = &r.ops.store;
    let open = conflicts::list(store).await.unwrap();
    assert_eq!(open.len(), 2, "{open:?}");
    let one = open
        .iter()
        .find(|c| c.customer_id == Rig::customer_id(1))
        .unwrap()
        .clone();
    assert_eq!(one.id.len(), 8);
    assert_eq!(one.hubspot_value, "123456");

    let (warp, hubspot) = (&r.ops.warp, &r.ops.hubspot);
    r.s.warp.reset_calls();
    r.s.hubspot.reset_calls();
    let done = conflicts::resolve(
        warp,
        hubspot,
        store,
        &r.mappings,
        &one.id,
        &Choice {
            take: Take::Hubspot,
            by: "ana",
            note: Some("customer asked by phone"),
        },
    )
    .await
    .unwrap();
    assert_eq!(done.wrote, "warp");
    assert_eq!(r.s.warp.calls().put, 1, "the chosen value written once");
    assert_eq!(r.s.hubspot.call_counts().batch_update, 0);
    assert_eq!(
        hubwarp::mapping::ValueType::Decimal
            .warp_to_hubspot(&r.customer(1)["credit_limit"])
            .unwrap(),
        "123456"
    );
    let left: Vec<String> = conflicts::list(store)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&one.id));
    // The baseline is the chosen value, the choice is in the sync log.
    let states = store.field_states(&Rig::customer_id(1)).await.unwrap();
    assert_eq!(states["credit_limit"].synced_value, Some(json!("123456")));
    let x = r.explain(&Rig::customer_id(1), Some("credit_limit")).await;
    assert_eq!(x.history[0].outcome, "resolved-take-hubspot");
    assert!(x.history[0].reason.contains("ana") && x.history[0].reason.contains("by phone"));
    assert!(x.now[0].agree);

    // Taking WARP's side writes HubSpot, once.
    let other = &left[0];
    r.s.warp.reset_calls();
    let done = conflicts::resolve(
        warp,
        hubspot,
        store,
        &r.mappings,
        &other[..5],
        &Choice {
            take: Take::Warp,
            by: "ana",
            note: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(done.wrote, "hubspot");
    assert_eq!(r.s.hubspot.call_counts().batch_update, 1);
    assert_eq!(r.s.warp.calls().put, 0);
    assert_eq!(
        r.company(2)["warp_credit_limit"],
        hubwarp::mapping::ValueType::Decimal
            .warp_to_hubspot(&r.customer(2)["credit_limit"])
            .unwrap()
    );
    assert!(conflicts::list(store).await.unwrap().is_empty());

    // Resolved is resolved: a second try writes nothing; the next run finds
    // both fields in sync and raises nothing.
    let e = conflicts::resolve(
        warp,
        hubspot,
        store,
        &r.mappings,
        &one.id,
        &Choice {
            take: Take::Warp,
            by: "bo",
            note: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, OperateError::NotFound(_)), "{e}");
    r.s.warp.reset_calls();
    r.s.hubspot.reset_calls();
    let run = r.reconcile(&ReconcileRequest::default()).await;
    let report = r.report(&run).await;
    assert_eq!(
        report.summary.conflicts_for_review, 0,
        "{:?}",
        report.differences
    );
    assert_eq!(r.s.warp.calls().put, 0);
    assert_eq!(r.s.hubspot.call_counts().batch_update, 0);
    assert!(store.open_conflicts().await.unwrap().is_empty());
}

#[tokio::test]
async fn undo_restores_both_sides_and_leaves_alone_a_field_edited_after_the_run() {
    let r = Rig::new("ops_undo", 5).await;
    let original_terms = r.customer(2)["payment_terms"].clone();
    let original_balance = r.company(3)["warp_current_balance"].clone();
    // WARP-owned status edited in WARP (flows to HubSpot), HubSpot-owned
    // terms edited in HubSpot (flows to WARP), WARP-owned balance edited in
    // HubSpot (repaired from WARP).
    r.s.warp
        .edit(&Rig::customer_id(1), json!({"status": "SUSPENDED"}));
    r.set_company(2, "warp_payment_terms", "NET90");
    r.set_company(3, "warp_current_balance", "0");
    let run = r.reconcile(&ReconcileRequest::default()).await;
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
    assert_eq!(r.customer(2)["payment_terms"], "NET90");

    // runs list / show: the run, its counters, its writes.
    let listed = runs::list(&r.ops.runs, 10).await.unwrap();
    assert_eq!(listed[0].run_id, run.run_id);
    assert_eq!(listed[0].counters.fixed_in_warp, 1);
    let shown = runs::show(&r.ops.runs, &r.ops.reports, &run.run_id)
        .await
        .unwrap();
    assert_eq!(shown.writes.len(), 3, "{:?}", shown.writes);

    // Edited after the run: company 1's status.
    r.set_company(1, "warp_status", "CLOSED");

    let dry = undo::undo(&r.undo_sides(), &UndoSettings::default(), &run.run_id, true)
        .await
        .unwrap();
    assert_eq!(dry.restored.len(), 2);
    assert!(dry.restored.iter().all(|w| w.status == "dry-run"));
    assert_eq!(
        r.customer(2)["payment_terms"],
        "NET90",
        "a dry run writes nothing"
    );

    let done = undo::undo(
        &r.undo_sides(),
        &UndoSettings::default(),
        &run.run_id,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        r.customer(2)["payment_terms"],
        original_terms,
        "WARP restored"
    );
    assert_eq!(
        r.company(3)["warp_current_balance"],
        json!("0"),
        "HubSpot restored"
    );
    assert_eq!(
        r.company(1)["warp_status"],
        "CLOSED",
        "the later edit stands"
    );
    assert_eq!(done.restored.len(), 2);
    assert_eq!(done.left_alone.len(), 1);
    assert_eq!(done.left_alone[0].diff.field, "status");
    assert!(
        done.left_alone[0]
            .diff
            .reason
            .contains("changed since the run"),
        "{}",
        done.left_alone[0].diff.reason
    );
    // The baseline the run decided against is back (none: a first run).
    let states = r
        .ops
        .store
        .field_states(&Rig::customer_id(2))
        .await
        .unwrap();
    assert_eq!(states["payment_terms"].synced_value, None);
    // The undo is a run, with its report.
    let undo_id = done.undo_run_id.clone().unwrap();
    assert!(undo_id.starts_with(&format!("undo-{}-", run.run_id)));
    let record = runs::show(&r.ops.runs, &r.ops.reports, &undo_id)
        .await
        .unwrap();
    assert_eq!(record.writes.len(), 2);
    assert_eq!(record.run.counters.kept, 1);
    assert_eq!(
        runs::list(&r.ops.runs, 10).await.unwrap()[0].run_id,
        undo_id
    );

    // Again: everything already holds its earlier value.
    let again = undo::undo(
        &r.undo_sides(),
        &UndoSettings::default(),
        &run.run_id,
        false,
    )
    .await
    .unwrap();
    assert!(again.restored.is_empty());
    assert_eq!(again.left_alone.len(), 3);
    // The undo of the undo puts the run's writes back.
    let redo = undo::undo(&r.undo_sides(), &UndoSettings::default(), &undo_id, false)
        .await
        .unwrap();
    assert_eq!(redo.restored.len(), 2, "{redo:?}");
    assert_eq!(r.customer(2)["payment_terms"], "NET90");
    let _ = original_balance;

    // A dry run wrote nothing to undo; an unknown run is an input error.
    let dry_run = r
        .reconcile(&ReconcileRequest {
            dry_run: true,
            ..Default::default()
        })
        .await;
    let nothing = undo::undo(
        &r.undo_sides(),
        &UndoSettings::default(),
        &dry_run.run_id,
        false,
    )
    .await
    .unwrap();
    assert!(nothing.undo_run_id.is_none() && nothing.message.contains("dry run"));
    let e = undo::undo(
        &r.undo_sides(),
        &UndoSettings::default(),
        "nightly-19700101T000000Z",
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, OperateError::NotFound(_)), "{e}");
}

/// Lambda's Invoke API serving the real function handler, as
/// `RequestResponse` does: the answer is the run's outcome.
async fn serve_function(f: Arc<nightly_reconciler::Function>) -> String {
    async fn invoke(
        axum::extract::State(f): axum::extract::State<Arc<nightly_reconciler::Function>>,
        axum::extract::Path(name): axum::extract::Path<String>,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, String) {
        if name != "nightly-reconciler" {
            return (
                axum::http::StatusCode::NOT_FOUND,
                json!({"Type": "User", "Message": format!("Function not found: {name}")})
                    .to_string(),
            );
        }
        let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = (hubwarp::time::now_ms() + 60_000) as u64;
        match nightly_reconciler::handle(&f, lambda_runtime::LambdaEvent::new(payload, ctx)).await {
            Ok(outcome) => (
                axum::http::StatusCode::OK,
                serde_json::to_string(&outcome).unwrap(),
            ),
            Err(e) => (
                axum::http::StatusCode::OK,
                json!({"errorMessage": e.to_string()}).to_string(),
            ),
        }
    }
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(invoke),
        )
        .with_state(f);
    integration_tests::serve(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        app,
        "Lambda",
    )
    .await
    .unwrap()
    .0
}

#[tokio::test]
async fn reconcile_invokes_the_function_or_runs_in_process() {
    let r = Rig::new("ops_reconcile", 3).await;
    r.s.warp
        .edit(&Rig::customer_id(1), json!({"status": "SUSPENDED"}));
    let f = Arc::new(
        nightly_reconciler::build(&r.config, &r.s.h.aws_as(Caller::NightlyReconciler))
            .await
            .unwrap(),
    );
    let endpoint = serve_function(f).await;
    let lambda = hubwarp::aws::lambda(&r.s.h.aws, Some(&endpoint));
    let dry = reconcile::invoke(
        &lambda,
        "nightly-reconciler",
        &ReconcileRequest {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(dry.status, "completed", "{dry:?}");
    assert!(dry.dry_run && dry.report_json_key.is_some());
    assert_eq!(dry.summary.unwrap().pairs_compared, 3);
    assert_eq!(r.company(1)["warp_status"], "ACTIVE");
    let e = reconcile::invoke(&lambda, "nope", &ReconcileRequest::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Function not found"), "{e}");

    // In-process, for one customer by BAN, split into invocations by the
    // settings: carried on here to the end.
    let mut config = r.config.clone();
    config.run.invocation_budget = Some(Duration::ZERO);
    config.run.page_size = 1;
    let local = hubwarp::reconcile::aws::build(&config, &r.s.h.aws_as(Caller::Operator))
        .await
        .unwrap();
    let outcome = reconcile::run_here(
        &local,
        &ReconcileRequest {
            customers: Some(vec![Rig::ban(1), Rig::customer_id(2)]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, "completed", "{outcome:?}");
    let report = r.report(&outcome).await;
    assert_eq!(report.summary.pairs_compared, 2);
    assert!(report.invocations >= 2);
    assert_eq!(r.company(1)["warp_status"], "SUSPENDED");
    let e = reconcile::run_here(
        &local,
        &ReconcileRequest {
            customers: Some(Vec::new()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.is_input(), "{e}");
}

// --- the binary --------------------------------------------------------

#[tokio::test]
async fn the_binary_answers_help_json_and_names_a_missing_setting() {
    for sub in [
        vec!["--help"],
        vec!["explain", "--help"],
        vec!["events", "--help"],
        vec!["replay", "--help"],
        vec!["dlq", "list", "--help"],
        vec!["dlq", "redrive", "--help"],
        vec!["conflicts", "list", "--help"],
        vec!["conflicts", "resolve", "--help"],
        vec!["reconcile", "--help"],
        vec!["runs", "list", "--help"],
        vec!["runs", "show", "--help"],
        vec!["undo", "--help"],
        vec!["setup", "--help"],
        vec!["doctor", "--help"],
        vec!["link", "--help"],
    ] {
        let out = hubwarp(&sub, &[]);
        assert!(out.status.success(), "{sub:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: hubwarp"),
            "{sub:?}"
        );
    }
    let out = hubwarp(&["events"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("setting WEBHOOK_EVENTS_TABLE is required"),
        "{err}"
    );
    // Bad input is refused before anything is called.
    let out = hubwarp(&["conflicts", "resolve", "abc", "--take", "both"], &[]);
    assert_eq!(out.status.code(), Some(2));

    let r = Rig::with("ops_binary", 2, manual_credit_limit()).await;
    r.set_company(1, "warp_credit_limit", "42");
    r.reconcile(&ReconcileRequest::default()).await;
    r.deliver(&[SyncHarness::change(0, 40, "warp_tier", "GOLD", T)])
        .await;
    let names = &r.s.h.res.names;
    let tables = names.sync_tables();
    let endpoint = r.s.h.aws.endpoint_url().unwrap().to_string();
    // The local defaults fill what the environment lacks, as for the functions.
    let defaults = format!(
        "LINKS_TABLE={}\nFIELD_STATE_TABLE={}\nSYNC_LOG_TABLE={}\nCONFLICTS_TABLE={}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing",
        tables.links, tables.field_state, tables.sync_log, tables.conflicts
    );
    let vars = [
        ("HUBWARP_LOCAL_DEFAULTS", defaults),
        ("AWS_ENDPOINT_URL", endpoint),
        ("WEBHOOK_EVENTS_TABLE", names.events_table()),
    ];
    let out = hubwarp(&["conflicts", "list", "--json"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["hubspot_value"], "42");
    let out = hubwarp(&["--json", "events", "--company", &company_id(0)], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events[0]["status"], "QUEUED", "{events}");
    assert_eq!(events[0]["property"], "warp_tier");
    let out = hubwarp(&["conflicts", "list"], &vars);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ID ") && text.contains("1 open conflict(s)"),
        "{text}"
    );
    // A command whose settings are incomplete names what is missing.
    let out = hubwarp(&["explain", &Rig::ban(0)], &vars);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WARP_API_URL"), "{err}");
}
