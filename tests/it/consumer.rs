//! Receiver and consumer together: signed webhooks in, WARP (sandbox)
//! updated, against DynamoDB and SQS on moto.

use std::collections::HashMap;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use hubwarp::aws::Caller;
use hubwarp::hubspot::rate::RateLimiter;
use hubwarp::mapping::MappingSet;
use hubwarp::store::EventLog;
use hubwarp::store::sync::{LinkState, LinkStore, SyncLogReader};
use hubwarp::sync::backoff::Backoff;
use hubwarp::sync::breaker::BreakerSettings;
use integration_tests::fixtures::Signing;
use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::warp_sandbox::{Fault, WarpSandbox, demo_customer};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Map, Value, json};
use sync_consumer::{AwsConsumer, Config};

use crate::utils::{Harness, Options};

pub struct SyncHarness {
    pub h: Harness,
    pub warp: WarpSandbox,
    pub hubspot: HubspotSandbox,
    pub consumer: AwsConsumer,
    /// What `consumer` was built from, to build more instances.
    pub config: Config,
}

pub use integration_tests::warp_sandbox::demo_company_id as company_id;

impl SyncHarness {
    pub async fn new(test: &str, customers: usize) -> Self {
        Self::with_mappings(test, customers, MappingSet::default_mapping().unwrap()).await
    }

    pub async fn with_mappings(test: &str, customers: usize, mappings: MappingSet) -> Self {
        Self::build(test, customers, mappings, Options::default()).await
    }

    pub async fn build(
        test: &str,
        customers: usize,
        mappings: MappingSet,
        options: Options,
    ) -> Self {
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
            let mut props = Map::new();
            props.insert("warp_ban".into(), c["ban"].clone());
            props.insert("name".into(), c["company_name"].clone());
            hubspot.upsert_company(&company_id(n), props);
        }
        let config = Config {
            metrics_namespace: hubwarp::metrics::DEFAULT_NAMESPACE.into(),
            events_table: h.res.names.events_table(),
            tables: h.res.names.sync_tables(),
            breakers_table: h.res.names.breakers_table(),
            breaker: crate::utils::quick_breaker(),
            api: crate::utils::sandbox_api(&warp.base_url, &hubspot.base_url),
            mappings,
            sync_log_retention_days: 90,
            retry: Backoff::default(),
            hubspot_rate: Arc::new(RateLimiter::new(100, 4).with_max_throttled_retries(3)),
        };
        let consumer = sync_consumer::build(&config, &h.aws_as(Caller::SyncConsumer))
            .await
            .unwrap();
        Self {
            h,
            warp,
            hubspot,
            consumer,
            config,
        }
    }

    /// Another consumer instance on the same tables (another Lambda
    /// execution environment), with its own breaker settings.
    pub async fn instance(&self, breaker: BreakerSettings) -> AwsConsumer {
        let config = Config {
            breaker,
            ..self.config.clone()
        };
        sync_consumer::build(&config, &self.h.aws_as(Caller::SyncConsumer))
            .await
            .unwrap()
    }

    /// [`SyncHarness::invoke_hiding`] on another instance.
    pub async fn invoke_on(
        &self,
        consumer: &AwsConsumer,
        event: SqsEvent,
        backoff: &Backoff,
    ) -> sync_consumer::Handled {
        let receipts = sync_consumer::Receipt::of(&event);
        let handled = sync_consumer::handle_batch(
            consumer,
            backoff,
            LambdaEvent::new(event, Context::default()),
        )
        .await;
        let sqs = aws_sdk_sqs::Client::new(&self.h.aws_as(Caller::SyncConsumer));
        sync_consumer::hide(&sqs, &receipts, &handled.hide).await;
        handled
    }

    /// Runs the consumer over the queue the way Lambda's SQS trigger does:
    /// batches of up to 10; reported failures become visible again.
    /// Returns the number of batches whose messages all succeeded.
    pub async fn pump(&self) -> PumpStats {
        let sqs = aws_sdk_sqs::Client::new(&self.h.aws);
        let url = &self.h.res.sync_queue_url;
        let mut stats = PumpStats::default();
        loop {
            let resp = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let msgs = resp.messages.unwrap_or_default();
            if msgs.is_empty() {
                return stats;
            }
            let mut event = SqsEvent::default();
            event.records = msgs
                .iter()
                .map(|m| {
                    let mut r = SqsMessage::default();
                    r.message_id = m.message_id.clone();
                    r.body = m.body.clone();
                    r
                })
                .collect();
            let response =
                sync_consumer::handle(&self.consumer, LambdaEvent::new(event, Context::default()))
                    .await
                    .unwrap();
            let failed: Vec<&str> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect();
            stats.batches += 1;
            stats.retried += failed.len();
            for m in msgs {
                let handle = m.receipt_handle.unwrap_or_default();
                if failed.contains(&m.message_id.as_deref().unwrap_or_default()) {
                    if stats.retried > 1_000 {
                        panic!("messages keep failing");
                    }
                    stats.pending_retry = true;
                    sqs.change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                } else {
                    sqs.delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap();
                }
            }
            if stats.pending_retry && stats.stop_on_retry {
                return stats;
            }
        }
    }

    /// Every message on the dead-letter queue, received until it answers
    /// none (each hidden for the queue's visibility timeout meanwhile).
    pub async fn dlq_bodies(&self) -> Vec<String> {
        let sqs = aws_sdk_sqs::Client::new(&self.h.aws);
        let mut dead = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.h.res.sync_dlq_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                return dead;
            }
            dead.extend(got.into_iter().filter_map(|m| m.body));
        }
    }

    /// One batch as the deployed function handles it: the consumer's
    /// answer, and every message handed back hidden for its backoff with
    /// `ChangeMessageVisibility` (signed as the consumer).
    pub async fn invoke_as_lambda(&self, event: SqsEvent) -> SqsBatchResponse {
        self.invoke_with(event, &Backoff::default()).await
    }

    pub async fn invoke_with(&self, event: SqsEvent, backoff: &Backoff) -> SqsBatchResponse {
        self.invoke_hiding(event, backoff).await.response
    }

    pub async fn invoke_hiding(
        &self,
        event: SqsEvent,
        backoff: &Backoff,
    ) -> sync_consumer::Handled {
        self.invoke_on(&self.consumer, event, backoff).await
    }

    /// One receive from the sync queue (visibility `visibility_s`), shaped as
    /// Lambda's SQS trigger hands it over: receipt handles and the queue's
    /// ARN included. Also returns how many messages came.
    pub async fn receive_as_lambda(&self, visibility_s: i32) -> (SqsEvent, usize) {
        use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
        let sqs = aws_sdk_sqs::Client::new(&self.h.aws);
        let url = &self.h.res.sync_queue_url;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_s)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let mut event = SqsEvent::default();
        event.records = received
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = m.message_id.clone();
                r.receipt_handle = m.receipt_handle.clone();
                r.body = m.body.clone();
                r.event_source_arn = Some(arn.clone());
                for (name, value) in m.attributes.iter().flatten() {
                    r.attributes
                        .insert(name.as_str().to_string(), value.clone());
                }
                r
            })
            .collect();
        (event, received.len())
    }

    pub fn customer(&self, n: usize) -> Value {
        let id = demo_customer(n)["id"].as_str().unwrap().to_string();
        self.warp.customer(&id).unwrap()
    }

    pub fn change(company: usize, event_id: usize, property: &str, value: &str, at: i64) -> Value {
        json!({"eventId": event_id, "subscriptionId": 2951763, "portalId": 62515, "appId": 1160452,
            "occurredAt": at, "subscriptionType": "company.propertyChange", "attemptNumber": 0,
            "objectId": company_id(company).parse::<u64>().unwrap(), "changeSource": "CRM_UI",
            "propertyName": property, "propertyValue": value})
    }
}

#[derive(Debug, Default)]
pub struct PumpStats {
    pub batches: usize,
    pub retried: usize,
    pub pending_retry: bool,
    pub stop_on_retry: bool,
}

const T: i64 = 1_763_700_000_000;

fn body(events: &[Value]) -> String {
    Value::Array(events.to_vec()).to_string()
}

#[tokio::test]
async fn a_signed_credit_limit_change_ends_in_warp() {
    let s = SyncHarness::new("e2e_credit", 1).await;
    let (status, _) =
        s.h.deliver(
            &body(&[SyncHarness::change(0, 1, "warp_credit_limit", "7500.00", T)]),
            Signing::V3(hubwarp::time::now_ms()),
        )
        .await;
    assert_eq!(status, 200);
    s.pump().await;
    assert_eq!(s.customer(0)["credit_limit"], "7500.00");
    let link = s
        .consumer
        .store
        .link(&company_id(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.state, LinkState::Active);
    let log = s.h.log();
    let records = s.h.records().await;
    let key = crate::utils::s(&records[0], "dedup_key").to_string();
    assert_eq!(
        log.status(&key).await.unwrap(),
        Some(hubwarp::store::EventStatus::Applied)
    );
    // Applied, its queue body (the customer's value) is no longer kept.
    assert!(!records[0].contains_key("message"), "{:?}", records[0]);
    assert_eq!(
        crate::utils::s(&records[0], "property_name"),
        "warp_credit_limit"
    );
}

/// v1 signs no time, so a captured v1 delivery verifies for ever (the
/// receiver's default minimum is v3; this is the opt-in). Once its dedup
/// record has expired it is recorded and queued again like a new event, and
/// the consumer's stale check is what keeps it harmless: WARP is not written.
#[tokio::test]
async fn a_captured_v1_delivery_replayed_after_its_dedup_record_expired_writes_nothing() {
    let s = SyncHarness::new("replay_v1", 1).await;
    let captured = s.h.event(
        &body(&[SyncHarness::change(0, 1, "warp_credit_limit", "7000.00", T)]),
        Signing::V1,
    );
    let (status, _) = Harness::deliver_with(&s.h.receiver, &captured).await;
    assert_eq!(status, 200);
    s.pump().await;
    assert_eq!(s.customer(0)["credit_limit"], "7000.00");
    // A newer change, then the captured one's record expires (TTL).
    let (status, _) =
        s.h.deliver(
            &body(&[SyncHarness::change(
                0,
                2,
                "warp_credit_limit",
                "8000",
                T + 60_000,
            )]),
            Signing::V3(hubwarp::time::now_ms()),
        )
        .await;
    assert_eq!(status, 200);
    s.pump().await;
    assert_eq!(s.customer(0)["credit_limit"], "8000");
    let records = s.h.records().await;
    let old = records
        .iter()
        .find(|r| r.get("occurred_at").and_then(|v| v.as_n().ok()) == Some(&T.to_string()))
        .map(|r| crate::utils::s(r, "dedup_key").to_string())
        .expect("the first event's record");
    aws_sdk_dynamodb::Client::new(&s.h.aws)
        .delete_item()
        .table_name(s.h.res.names.events_table())
        .key("dedup_key", AttributeValue::S(old.clone()))
        .send()
        .await
        .unwrap();

    s.warp.reset_calls();
    let (status, _) = Harness::deliver_with(&s.h.receiver, &captured).await;
    assert_eq!(
        status, 200,
        "a v1 replay verifies: the signature has no time"
    );
    s.pump().await;
    assert_eq!(s.warp.calls().put, 0, "the replay wrote WARP");
    assert_eq!(s.customer(0)["credit_limit"], "8000");
    assert_eq!(
        s.h.log().status(&old).await.unwrap(),
        Some(hubwarp::store::EventStatus::Applied),
        "the replay is settled"
    );
    let customer = demo_customer(0)["id"].as_str().unwrap().to_string();
    // Read back as the harness: the consumer never reads its log, and its
    // role (judged by `make iam-check`) does not let it.
    let log = hubwarp::store::DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(&s.h.aws),
        s.h.res.names.sync_tables(),
        std::time::Duration::from_secs(90 * 24 * 3600),
    );
    let entries = log.entries(&customer, 10).await.unwrap();
    let replayed = entries
        .iter()
        .find(|e| e.dedup_key == old && e.outcome == "skipped-stale");
    assert!(replayed.is_some(), "no stale skip logged: {entries:?}");
}

#[tokio::test]
async fn ten_messages_for_three_customers_make_at_most_three_warp_writes() {
    let s = SyncHarness::new("writes", 3).await;
    let props = [
        ("name", "Renamed"),
        ("city", "Boulder"),
        ("warp_tier", "PLATINUM"),
        ("zip", "80301"),
    ];
    let events: Vec<Value> = (0..10)
        .map(|i| {
            let (p, v) = props[i % props.len()];
            SyncHarness::change(i % 3, 100 + i, p, &format!("{v} {i}"), T + i as i64)
        })
        .collect();
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    s.warp.reset_calls();
    let stats = s.pump().await;
    assert_eq!(stats.batches, 1);
    let calls = s.warp.calls();
    assert!(calls.put <= 3, "{calls:?}");
    assert_eq!(calls.put, 3, "one PUT per customer");
}

#[tokio::test]
async fn a_shuffled_duplicated_stream_of_1000_changes_ends_with_the_newest_values() {
    let s = SyncHarness::new("stream", 50).await;
    let props = [
        ("name", "string"),
        ("city", "string"),
        ("warp_credit_limit", "decimal"),
        ("warp_tier", "enum"),
        ("warp_contact_email", "string"),
    ];
    let mut events = Vec::new();
    let mut newest: HashMap<(usize, &str), (i64, String)> = HashMap::new();
    // A deterministic shuffle: a linear congruential sequence.
    let mut seed: u64 = 42;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for i in 0..1000 {
        let company = next() % 50;
        let (p, kind) = props[next() % props.len()];
        let at = T + (next() % 100_000) as i64;
        let value = match kind {
            "decimal" => format!("{}.{:02}", 1000 + next() % 9000, next() % 100),
            "enum" => ["BRONZE", "SILVER", "GOLD", "PLATINUM"][next() % 4].to_string(),
            _ => format!("{p}-{i}"),
        };
        let entry = newest
            .entry((company, p))
            .or_insert((i64::MIN, String::new()));
        if at > entry.0 {
            *entry = (at, value.clone());
        }
        events.push(SyncHarness::change(company, 10_000 + i, p, &value, at));
    }
    // Every change delivered twice, in shuffled deliveries of up to 100.
    let mut all: Vec<Value> = events.iter().chain(events.iter()).cloned().collect();
    for i in (1..all.len()).rev() {
        all.swap(i, next() % (i + 1));
    }
    for chunk in all.chunks(100) {
        let (status, report) = s.h.deliver(&body(chunk), Signing::V1).await;
        assert_eq!(status, 200, "{report}");
        // Interleave consumption with delivery, as in production.
        s.pump().await;
    }
    s.pump().await;
    let field_of = |p: &str| match p {
        "name" => "/company_name",
        "city" => "/address/city",
        "warp_credit_limit" => "/credit_limit",
        "warp_tier" => "/tier",
        _ => "/contact/email",
    };
    for ((company, p), (_, value)) in &newest {
        let c = s.customer(*company);
        assert_eq!(
            c.pointer(field_of(p)).and_then(Value::as_str),
            Some(value.as_str()),
            "company {company} {p}"
        );
    }
}

#[tokio::test]
async fn a_warp_outage_mid_batch_loses_nothing_and_applies_nothing_twice() {
    let s = SyncHarness::new("outage", 3).await;
    let events: Vec<Value> = (0..3)
        .map(|i| SyncHarness::change(i, 200 + i, "city", &format!("Town {i}"), T))
        .collect();
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    // WARP fails the next several requests (more than the client's retries).
    s.warp.set_fault(Fault::ServerError { times: 8 });
    s.warp.reset_calls();
    let first = s.pump().await;
    assert!(first.retried > 0, "{first:?}");
    let puts_after_recovery = s.warp.calls().put;
    let c0 = s.customer(0);
    // Recovered: everything applied exactly once.
    for n in 0..3 {
        assert_eq!(s.customer(n)["address"]["city"], format!("Town {n}"));
    }
    assert!(puts_after_recovery <= 3 + 8, "bounded attempts");
    // A later redelivery of the same webhook changes nothing.
    s.warp.reset_calls();
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    s.pump().await;
    assert_eq!(s.warp.calls().put, 0);
    assert_eq!(s.customer(0), c0);
}

#[tokio::test]
async fn a_permanent_failure_is_acknowledged_while_its_neighbours_succeed() {
    let s = SyncHarness::new("permanent", 2).await;
    let events = [
        SyncHarness::change(0, 300, "warp_credit_limit", "a lot", T),
        SyncHarness::change(1, 301, "warp_credit_limit", "9100.00", T),
    ];
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    let stats = s.pump().await;
    assert_eq!(stats.retried, 0);
    assert_eq!(s.customer(1)["credit_limit"], "9100.00");
    assert_ne!(s.customer(0)["credit_limit"], "a lot");
    let failed: Vec<_> =
        s.h.records()
            .await
            .into_iter()
            .filter(|r| crate::utils::s(r, "status") == "FAILED")
            .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        crate::utils::s(&failed[0], "settle_reason").contains("decimal"),
        "{:?}",
        failed[0]
    );
}

#[tokio::test]
async fn a_merge_relinks_and_a_deletion_leaves_the_customer_untouched() {
    let s = SyncHarness::new("merge", 1).await;
    assert_eq!(
        s.h.deliver(
            &body(&[SyncHarness::change(0, 400, "city", "Aspen", T)]),
            Signing::V1
        )
        .await
        .0,
        200
    );
    s.pump().await;
    let merge = json!({"eventId": 401, "subscriptionId": 7, "portalId": 62515, "occurredAt": T + 1,
        "subscriptionType": "company.merge", "objectId": 99_000_001u64, "primaryObjectId": 99_000_001u64,
        "mergedObjectIds": [company_id(0).parse::<u64>().unwrap()], "numberOfPropertiesMoved": 3});
    let deletion = json!({"eventId": 402, "subscriptionId": 8, "portalId": 62515, "occurredAt": T + 2,
        "subscriptionType": "company.deletion", "objectId": company_id(0).parse::<u64>().unwrap()});
    assert_eq!(
        s.h.deliver(&body(&[merge, deletion]), Signing::V1).await.0,
        200
    );
    let before = s.customer(0);
    s.pump().await;
    let after = s.customer(0);
    assert_eq!(after["external_ids"]["hubspot_company_id"], "99000001");
    assert_eq!(
        s.consumer
            .store
            .link("99000001")
            .await
            .unwrap()
            .unwrap()
            .state,
        LinkState::Active
    );
    assert_eq!(
        s.consumer
            .store
            .link(&company_id(0))
            .await
            .unwrap()
            .unwrap()
            .state,
        LinkState::Merged
    );

    // Deleting the surviving company leaves the customer as it is.
    let del = json!({"eventId": 403, "subscriptionId": 8, "portalId": 62515, "occurredAt": T + 3,
        "subscriptionType": "company.deletion", "objectId": 99_000_001u64});
    assert_eq!(s.h.deliver(&body(&[del]), Signing::V1).await.0, 200);
    s.pump().await;
    assert_eq!(s.customer(0), after);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(
        s.consumer
            .store
            .link("99000001")
            .await
            .unwrap()
            .unwrap()
            .state,
        LinkState::Deleted
    );
}

#[tokio::test]
async fn unknown_companies_are_unmatched_and_hubspot_rate_limits_are_waited_out() {
    let s = SyncHarness::new("unmatched", 2).await;
    // A company without warp_ban, and one HubSpot does not know.
    s.hubspot.upsert_company("555", Map::new());
    let events = [
        json!({"eventId": 500, "subscriptionId": 2951763, "portalId": 62515, "occurredAt": T,
            "subscriptionType": "company.propertyChange", "objectId": 555u64, "propertyName": "name", "propertyValue": "X"}),
        json!({"eventId": 501, "subscriptionId": 2951763, "portalId": 62515, "occurredAt": T,
            "subscriptionType": "company.propertyChange", "objectId": 556u64, "propertyName": "name", "propertyValue": "Y"}),
    ];
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    s.pump().await;
    let unmatched =
        s.h.records()
            .await
            .into_iter()
            .filter(|r| crate::utils::s(r, "status") == "UNMATCHED")
            .count();
    assert_eq!(unmatched, 2);

    // The link lookup meets a few of HubSpot's 429s: waited out inside the
    // invocation (Retry-After, the 10-second window), as the reconciler does.
    s.hubspot.set_rate_limited(2);
    let change = SyncHarness::change(0, 502, "city", "Telluride", T + 5);
    assert_eq!(s.h.deliver(&body(&[change]), Signing::V1).await.0, 200);
    let stats = s.pump().await;
    assert_eq!(stats.retried, 0, "{stats:?}");
    assert_eq!(s.customer(0)["address"]["city"], "Telluride");

    // A storm longer than one invocation waits out: the message is handed
    // back (to its backoff, never failed) until it passes.
    s.hubspot.set_rate_limited(40);
    let change = SyncHarness::change(1, 503, "city", "Ouray", T + 6);
    assert_eq!(s.h.deliver(&body(&[change]), Signing::V1).await.0, 200);
    let stats = s.pump().await;
    assert!(stats.retried >= 1, "{stats:?}");
    assert_eq!(s.customer(1)["address"]["city"], "Ouray");
}

/// The default mapping plus, per customer, `company_name` mapped with the
/// given direction and strategy.
fn mapping_with_overrides(overrides: &[(usize, &str, &str)]) -> MappingSet {
    let mut text = hubwarp::mapping::config::DEFAULT_MAPPING.to_string();
    for (n, direction, conflict) in overrides {
        text.push_str(&format!(
            "\n[[customer]]\nmatch = \"{}\"\n[[customer.field]]\nwarp = \"company_name\"\nhubspot = \"name\"\ndirection = \"{direction}\"\nconflict = \"{conflict}\"\ntype = \"string\"\n",
            demo_customer(*n)["ban"].as_str().unwrap()
        ));
    }
    MappingSet::parse(&text).unwrap()
}

#[tokio::test]
async fn each_direction_and_each_strategy_with_a_real_conflict() {
    let cases = [
        (0, "BIDIRECTIONAL", "HUBSPOT_WINS"),
        (1, "BIDIRECTIONAL", "WARP_WINS"),
        (2, "BIDIRECTIONAL", "LATEST_WINS"),
        (3, "BIDIRECTIONAL", "LATEST_WINS"),
        (4, "BIDIRECTIONAL", "MANUAL"),
        (5, "NONE", "HUBSPOT_WINS"),
        (6, "WARP_TO_HUBSPOT", "WARP_WINS"),
        (7, "HUBSPOT_TO_WARP", "HUBSPOT_WINS"),
    ];
    let s = SyncHarness::with_mappings("strategies", 8, mapping_with_overrides(&cases)).await;
    // 1. A first sync of each name.
    let first: Vec<Value> = (0..8)
        .map(|n| SyncHarness::change(n, 600 + n, "name", &format!("Synced {n}"), T))
        .collect();
    assert_eq!(s.h.deliver(&body(&first), Signing::V1).await.0, 200);
    s.pump().await;
    for n in [0, 1, 2, 3, 4, 7] {
        assert_eq!(
            s.customer(n)["company_name"],
            format!("Synced {n}"),
            "customer {n}"
        );
    }
    for n in [5, 6] {
        assert_eq!(
            s.customer(n)["company_name"],
            demo_customer(n)["company_name"],
            "direction keeps WARP's for {n}"
        );
    }
    // 2. WARP edits every name (now, 2026)...
    for n in 0..8 {
        let id = demo_customer(n)["id"].as_str().unwrap().to_string();
        s.warp
            .edit(&id, json!({"company_name": format!("WARP edit {n}")}));
    }
    // 3. ...and HubSpot edits them too: older than WARP's edit, except for
    //    customer 3, whose HubSpot edit is the newest.
    let second: Vec<Value> = (0..8)
        .map(|n| {
            let at = if n == 3 {
                hubwarp::time::now_ms() + 60_000
            } else {
                T + 10
            };
            SyncHarness::change(n, 700 + n, "name", &format!("HubSpot edit {n}"), at)
        })
        .collect();
    assert_eq!(s.h.deliver(&body(&second), Signing::V1).await.0, 200);
    s.pump().await;
    let name = |n: usize| s.customer(n)["company_name"].as_str().unwrap().to_string();
    assert_eq!(name(0), "HubSpot edit 0", "HUBSPOT_WINS");
    assert_eq!(name(1), "WARP edit 1", "WARP_WINS");
    assert_eq!(name(2), "WARP edit 2", "LATEST_WINS, WARP newer");
    assert_eq!(name(3), "HubSpot edit 3", "LATEST_WINS, HubSpot newer");
    assert_eq!(name(4), "WARP edit 4", "MANUAL changes nothing");
    assert_eq!(name(5), "WARP edit 5", "NONE");
    assert_eq!(name(6), "WARP edit 6", "WARP_TO_HUBSPOT");
    // HUBSPOT_TO_WARP with HUBSPOT_WINS: HubSpot's value stands.
    assert_eq!(name(7), "HubSpot edit 7", "HUBSPOT_TO_WARP");

    let conflicts = aws_sdk_dynamodb::Client::new(&s.h.aws)
        .scan()
        .table_name(s.h.res.names.sync_tables().conflicts)
        .send()
        .await
        .unwrap();
    assert_eq!(conflicts.count, 1, "one MANUAL conflict for review");
    let item = &conflicts.items.unwrap()[0];
    assert_eq!(crate::utils::s(item, "hubspot_value"), "HubSpot edit 4");
    assert_eq!(crate::utils::s(item, "warp_value"), "\"WARP edit 4\"");
}

#[tokio::test]
async fn the_committed_sqs_batch_fixture_runs_through_the_consumer() {
    let s = SyncHarness::new("sqsfixture", 5).await;
    let path = integration_tests::workspace_root().join("events/sqs-batch.json");
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = sync_consumer::handle(&s.consumer, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.customer(1)["credit_limit"], "7500.00");
    assert_eq!(s.customer(1)["address"]["city"], "Boulder");
    assert_eq!(s.customer(2)["company_name"], "Globex Telecom Inc");
    assert_eq!(
        s.customer(3)["status"],
        demo_customer(3)["status"],
        "WARP-owned field untouched"
    );
    assert_eq!(
        s.customer(4)["credit_limit"],
        demo_customer(4)["credit_limit"],
        "bad value not applied"
    );
}

#[tokio::test]
async fn hubspots_daily_limit_holds_messages_back_until_it_resets() {
    let s = SyncHarness::new("dailyhold", 2).await;
    s.hubspot
        .throttle_next(integration_tests::hubspot_sandbox::Throttle::Daily, 1);
    let changes = [SyncHarness::change(0, 900, "warp_credit_limit", "7777", T)];
    assert_eq!(s.h.deliver(&body(&changes), Signing::V1).await.0, 200);
    let sqs = aws_sdk_sqs::Client::new(&s.h.aws);
    let url = &s.h.res.sync_queue_url;
    let (event, received) = s.receive_as_lambda(1).await;
    assert_eq!(received, 1);
    let response = s.invoke_as_lambda(event).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "handed back, not dropped"
    );
    // Past the 1 s visibility the receive used, the message stays hidden:
    // it waits for the daily cap instead of burning its receives.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let again = sqs
        .receive_message()
        .queue_url(url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(again.is_empty(), "held back until the cap resets");
    assert_eq!(s.hubspot.call_counts().total, 1, "one call, then none");
}

/// Puts `bodies` on the sync queue as they are, the way another release's
/// receiver (or anything else) might.
async fn send_raw(s: &SyncHarness, bodies: &[String]) {
    let sqs = aws_sdk_sqs::Client::new(&s.h.aws);
    for b in bodies {
        sqs.send_message()
            .queue_url(&s.h.res.sync_queue_url)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn both_releases_writing_during_a_deploy_apply_every_event_once() {
    let s = SyncHarness::new("versions", 4).await;
    let events: Vec<Value> = (0..4)
        .map(|i| {
            let value = format!("{}.00", 8100 + i);
            SyncHarness::change(i, 1100 + i, "warp_credit_limit", &value, T)
        })
        .collect();
    assert_eq!(s.h.deliver(&body(&events), Signing::V1).await.0, 200);
    // What this release's receiver wrote...
    let current = s.h.drain_queue().await;
    assert_eq!(current.len(), 4);
    assert!(current.iter().all(|m| m["v"] == 1), "{current:?}");
    // ...and the same events as the previous release's receiver wrote them
    // (no `v`), both in flight at once, as during a deploy.
    let mut bodies: Vec<String> = current.iter().map(Value::to_string).collect();
    for m in &current {
        let mut old = m.clone();
        old.as_object_mut().unwrap().remove("v");
        bodies.push(old.to_string());
    }
    s.warp.reset_calls();
    send_raw(&s, &bodies).await;
    let stats = s.pump().await;
    assert_eq!(stats.retried, 0, "{stats:?}");
    for n in 0..4 {
        assert_eq!(s.customer(n)["credit_limit"], format!("{}.00", 8100 + n));
    }
    assert_eq!(s.warp.calls().put, 4, "one write per event, not two");
    let records = s.h.records().await;
    assert!(
        records
            .iter()
            .all(|r| crate::utils::s(r, "status") == "APPLIED"),
        "{records:?}"
    );
    // Another round of both formats changes nothing.
    s.warp.reset_calls();
    send_raw(&s, &bodies).await;
    assert_eq!(s.pump().await.retried, 0);
    assert_eq!(s.warp.calls().put, 0);
}

#[tokio::test]
async fn unreadable_messages_reach_the_dlq_after_the_configured_receives() {
    use hubwarp::sync::QueuedMessage;
    // Five receives here (the template's 1,000 are days of backoff): the
    // redrive policy's mechanics are the same.
    const MAX_RECEIVE_COUNT: u32 = 5;
    let s = SyncHarness::build(
        "dlq",
        1,
        MappingSet::default_mapping().unwrap(),
        Options {
            max_receives: MAX_RECEIVE_COUNT,
            ..Options::default()
        },
    )
    .await;
    let change = SyncHarness::change(0, 1200, "warp_credit_limit", "6100.00", T);
    assert_eq!(s.h.deliver(&body(&[change]), Signing::V1).await.0, 200);
    let good = s.h.drain_queue().await.remove(0);
    let mut future = good.clone();
    future["v"] = json!(99);
    let mut partial = good.clone();
    partial.as_object_mut().unwrap().remove("dedupKey");
    let bad = vec![
        "garbage{".to_string(),
        future.to_string(),
        partial.to_string(),
    ];

    // Each comes back with its reason.
    let batch: Vec<QueuedMessage> = bad
        .iter()
        .enumerate()
        .map(|(i, b)| QueuedMessage {
            message_id: format!("bad-{i}"),
            body: b.clone(),
            receive_count: None,
        })
        .collect();
    let report = s.consumer.handle_batch(&batch).await;
    assert_eq!(report.retry, ["bad-0", "bad-1", "bad-2"]);
    let reasons: Vec<&str> = report
        .unreadable
        .iter()
        .map(|u| u.reason.as_str())
        .collect();
    assert!(reasons[0].starts_with("body is not JSON"), "{reasons:?}");
    assert_eq!(
        reasons[1],
        "format version 99 is not one this consumer reads"
    );
    assert!(reasons[2].contains("dedupKey"), "{reasons:?}");

    // On the queue with a good neighbour: the neighbour is applied, the bad
    // ones go back on every receive until the redrive policy moves them.
    let mut all = bad.clone();
    all.push(good.to_string());
    send_raw(&s, &all).await;
    let stats = s.pump().await;
    assert_eq!(s.customer(0)["credit_limit"], "6100.00");
    assert_eq!(
        stats.retried,
        bad.len() * MAX_RECEIVE_COUNT as usize,
        "handed back on each of the configured receives: {stats:?}"
    );
    let mut dead = s.dlq_bodies().await;
    dead.sort();
    let mut expected = bad;
    expected.sort();
    assert_eq!(dead, expected, "every unreadable message, and only those");
}

#[tokio::test]
async fn an_unreadable_message_is_not_held_back_with_hubspots_daily_cap() {
    let s = SyncHarness::new("dailyhold_unreadable", 2).await;
    s.hubspot
        .throttle_next(integration_tests::hubspot_sandbox::Throttle::Daily, 1);
    let changes = [SyncHarness::change(0, 901, "warp_credit_limit", "7778", T)];
    assert_eq!(s.h.deliver(&body(&changes), Signing::V1).await.0, 200);
    send_raw(&s, &["garbage{".to_string()]).await;
    let sqs = aws_sdk_sqs::Client::new(&s.h.aws);
    let url = &s.h.res.sync_queue_url;
    let (event, received) = s.receive_as_lambda(1).await;
    assert_eq!(received, 2);
    let response = s.invoke_as_lambda(event).await;
    assert_eq!(response.batch_item_failures.len(), 2, "both handed back");
    // Past the 1 s visibility the receive used, only the unreadable one is
    // back: it goes on towards the DLQ while the change waits for the cap.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let again: Vec<String> = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    assert_eq!(again, ["garbage{"]);
}

/// A WARP outage on the real queue and redrive policy (moto): each message
/// handed back is hidden for its backoff, so receives thin out (the gaps
/// measured below); once WARP is back every change is applied once and the
/// DLQ holds only the poison message, which was sent on at once.
#[tokio::test]
async fn a_warp_outage_backs_messages_off_then_applies_each_once_and_only_poison_reaches_the_dlq() {
    use integration_tests::warp_sandbox::Fault;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    // Seconds instead of minutes, and 8 receives instead of 1,000: the
    // same arithmetic, shrunk to a test.
    let backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(8),
    };
    let s = SyncHarness::build(
        "outage",
        3,
        MappingSet::default_mapping().unwrap(),
        Options {
            max_receives: 8,
            ..Options::default()
        },
    )
    .await;
    s.warp.set_fault(Fault::ServerError { times: 100_000 });
    let changes: Vec<Value> = (0..3)
        .map(|n| SyncHarness::change(n, 1300 + n, "warp_credit_limit", "4321.00", T + n as i64))
        .collect();
    assert_eq!(s.h.deliver(&body(&changes), Signing::V1).await.0, 200);
    send_raw(&s, &["garbage{".to_string()]).await;

    // message id -> (receive count, when received, hidden for)
    let mut seen: BTreeMap<String, Vec<(u32, Instant, i32)>> = BTreeMap::new();
    let mut poison = std::collections::HashSet::new();
    let started = Instant::now();
    let mut warp_back = false;
    let mut applied = 0;
    while started.elapsed() < Duration::from_secs(180) {
        let (event, n) = s.receive_as_lambda(30).await;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            let at = Instant::now();
            let counts: Vec<(String, u32)> = event
                .records
                .iter()
                .map(|r| {
                    let id = r.message_id.clone().unwrap_or_default();
                    if r.body.as_deref() == Some("garbage{") {
                        poison.insert(id.clone());
                    }
                    let n = r.attributes["ApproximateReceiveCount"].parse().unwrap_or(0);
                    (id, n)
                })
                .collect();
            let handled = s.invoke_hiding(event, &backoff).await;
            for (id, n) in counts {
                let hidden = handled
                    .hide
                    .iter()
                    .find(|h| h.message_id == id)
                    .map_or(0, |h| h.seconds);
                seen.entry(id).or_default().push((n, at, hidden));
            }
        }
        // Jitter draws each message its own pace: the first to reach four
        // receives brings WARP back, while every message is at least four
        // receives short of the DLQ (CI once waited for the slowest, and
        // the fastest had used all six of its receives by then).
        let most_receives = seen
            .iter()
            .filter(|(id, _)| !poison.contains(*id))
            .map(|(_, r)| r.len())
            .max()
            .unwrap_or(0);
        if !warp_back && most_receives >= 4 {
            // Four receives into the outage: WARP comes back.
            s.warp.set_fault(Fault::None);
            warp_back = true;
        }
        applied = (0..3)
            .filter(|&n| s.customer(n)["credit_limit"] == "4321.00")
            .count();
        if warp_back
            && applied == 3
            && s.h
                .records()
                .await
                .iter()
                .all(|r| crate::utils::s(r, "status") == "APPLIED")
        {
            break;
        }
    }
    assert!(warp_back, "the outage part did not finish: {seen:?}");
    assert_eq!(applied, 3, "{seen:?}");
    assert_eq!(s.warp.calls().put, 3, "each change applied once");

    // The receive times: each gap at least what the message was hidden for,
    // each hiding under its doubling ceiling.
    for (id, receives) in &seen {
        for pair in receives.windows(2) {
            let ((n, at, hidden), (next_n, next_at, _)) = (pair[0], pair[1]);
            assert_eq!(next_n, n + 1, "{id}: {receives:?}");
            assert!(
                hidden >= 1 && hidden as u64 <= backoff.ceiling(n).as_secs(),
                "{id}: {receives:?}"
            );
            let gap = next_at.duration_since(at).as_secs_f64();
            assert!(
                gap + 0.3 >= f64::from(hidden),
                "{id}: receive {n} hidden {hidden} s, back after {gap:.1} s"
            );
            eprintln!(
                "{id}: receive {n} hidden {hidden} s (ceiling {} s), next receive after {gap:.1} s",
                backoff.ceiling(n).as_secs()
            );
        }
    }

    // The poison went on at once, through its receives, to the DLQ; the
    // changes did not.
    let mut dead = Vec::new();
    for _ in 0..20 {
        dead.extend(s.dlq_bodies().await);
        if !dead.is_empty() {
            break;
        }
        // Moved on its next receive after the eighth.
        let (event, n) = s.receive_as_lambda(30).await;
        if n > 0 {
            s.invoke_hiding(event, &backoff).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(dead, ["garbage{"]);
    assert!(
        s.h.drain_queue().await.is_empty(),
        "nothing left on the queue"
    );
}

/// The breaker's open state on the real table (moto), shared by five
/// consumer instances as five Lambda environments share it: one instance
/// finds WARP down and opens the circuit; the other four then refuse their
/// batches without a request to WARP, each message handed back with its
/// backoff; when the open period ends, the five together send one probe;
/// once WARP is back the probe closes the circuit and every change is
/// applied once.
#[tokio::test]
async fn five_instances_share_one_circuit_and_probe_a_dead_warp_once() {
    use futures::future::join_all;
    use hubwarp::store::breakers::{BreakerStore, DynamoBreakers};
    use std::time::Duration;

    let s = SyncHarness::new("breaker", 10).await;
    let settings = BreakerSettings {
        failures: 3,
        // Long enough that four instances, sharing out messages that come
        // back over a second, still act inside it on a loaded 2-core
        // machine (3 s was not, once, beside a 1,000-pair night on moto).
        open: Duration::from_secs(6),
        max_open: Duration::from_secs(12),
        refresh: Duration::ZERO,
        probe_lease: Duration::from_secs(20),
    };
    let mut instances = Vec::new();
    for _ in 0..5 {
        instances.push(s.instance(settings).await);
    }
    let table = DynamoBreakers::new(
        hubwarp::aws::dynamodb(&s.h.aws),
        s.h.res.names.breakers_table(),
    );
    let backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
    };
    s.warp.set_fault(Fault::ServerError { times: 100_000 });
    let changes: Vec<Value> = (0..10)
        .map(|n| SyncHarness::change(n, 1400 + n, "warp_credit_limit", "5150.00", T + n as i64))
        .collect();
    assert_eq!(s.h.deliver(&body(&changes), Signing::V1).await.0, 200);
    let requests = || s.warp.calls().rejected;

    // Instance 0: three calls fail (each with the client's own retries),
    // the circuit opens, the rest of its batch is not sent.
    let mut event = SqsEvent::default();
    while event.records.len() < 10 {
        let (more, _) = receive_when_visible(&s, 10 - event.records.len()).await;
        event.records.extend(more.records);
    }
    let handled = s.invoke_on(&instances[0], event, &backoff).await;
    assert_eq!(handled.response.batch_item_failures.len(), 10);
    assert_eq!(handled.hide.len(), 10, "every message backs off");
    let per_call = requests() / 3;
    assert_eq!(requests(), 3 * per_call, "three failed calls, then none");
    let open = table.circuit("warp").await.unwrap().expect("open");
    assert_eq!(open.opens, 1);

    // Instances 1-4, while it is open, a share of the messages each: not
    // one request.
    let before = requests();
    // The ten come back over about a second (each hidden when its own
    // invocation ended): gather them all before sharing them out.
    let mut all = Vec::new();
    while all.len() < 10 {
        let (event, _) = receive_when_visible(&s, 10 - all.len()).await;
        all.extend(event.records);
    }
    for (consumer, records) in instances[1..].iter().zip(all.chunks(3)) {
        let mut event = SqsEvent::default();
        event.records = records.to_vec();
        let handled = s.invoke_on(consumer, event, &backoff).await;
        assert_eq!(handled.response.batch_item_failures.len(), records.len());
    }
    assert_eq!(requests(), before, "an open circuit asks nobody");
    assert!(
        table.circuit("warp").await.unwrap().unwrap().open_until_ms > hubwarp::time::now_ms(),
        "the test ran inside the open period"
    );

    // The period is over: five instances at once send one probe, which
    // fails and opens the circuit again for twice as long.
    tokio::time::sleep(Duration::from_millis(6_100)).await;
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(receive_when_visible(&s, 2).await.0);
    }
    let before = requests();
    join_all(
        instances
            .iter()
            .zip(events)
            .map(|(c, e)| s.invoke_on(c, e, &backoff)),
    )
    .await;
    assert_eq!(requests() - before, per_call, "one probe among five");
    let open = table.circuit("warp").await.unwrap().expect("open again");
    assert_eq!(open.opens, 2);
    assert!(open.open_until_ms - open.opened_at_ms >= 12_000, "{open:?}");

    // WARP is back: after the period the probe closes it for everyone and
    // the backlog is applied, each change once.
    s.warp.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(12_100)).await;
    let started = std::time::Instant::now();
    let mut turn = 0;
    while (0..10).any(|n| s.customer(n)["credit_limit"] != "5150.00") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "backlog not applied"
        );
        let (event, n) = s.receive_as_lambda(30).await;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        s.invoke_on(&instances[turn % 5], event, &backoff).await;
        turn += 1;
    }
    assert!(table.circuit("warp").await.unwrap().is_none(), "closed");
    assert_eq!(s.warp.calls().put, 10, "each change applied once");
}

/// Receives up to `max` messages, waiting for hidden ones to come back.
async fn receive_when_visible(s: &SyncHarness, max: usize) -> (SqsEvent, usize) {
    for _ in 0..100 {
        let (mut event, n) = s.receive_as_lambda(30).await;
        if n > 0 {
            // Hand the surplus back at once for the next instance.
            if n > max {
                let surplus = event.records.split_off(max);
                let sqs = aws_sdk_sqs::Client::new(&s.h.aws);
                for r in surplus {
                    sqs.change_message_visibility()
                        .queue_url(&s.h.res.sync_queue_url)
                        .receipt_handle(r.receipt_handle.unwrap_or_default())
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                }
            }
            let n = event.records.len();
            return (event, n);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no message came back within 10 s");
}

/// `event` (a legacy `company.*` event) as the same app's generic
/// subscription sends the same change: `object.*` with `objectTypeId`
/// `0-2`, its own subscription and event id.
fn generic(event: &Value) -> Value {
    let mut e = event.clone();
    let ty = e["subscriptionType"].as_str().unwrap_or_default();
    e["subscriptionType"] = json!(ty.replacen("company.", "object.", 1));
    e["objectTypeId"] = json!("0-2");
    e["subscriptionId"] = json!(4417890);
    e["eventId"] = json!(e["eventId"].as_u64().unwrap_or_default() + 9_000_000);
    e
}

/// An app subscribed to the same changes in both formats (legacy and
/// generic): each change reaches WARP once, with one sync-log decision,
/// whether its two copies come in one delivery or two; a contact event
/// in the generic format is recorded IGNORED.
#[tokio::test]
async fn a_change_sent_in_both_formats_is_applied_once() {
    let s = SyncHarness::new("both_formats", 2).await;
    let credit = SyncHarness::change(0, 700, "warp_credit_limit", "6400.00", T);
    let city = SyncHarness::change(1, 701, "city", "Golden", T + 1);
    let contact = json!({"eventId": 702, "subscriptionId": 4417891, "portalId": 62515,
        "occurredAt": T + 2, "subscriptionType": "object.propertyChange", "objectTypeId": "0-1",
        "attemptNumber": 0, "objectId": 77, "propertyName": "email", "propertyValue": "x@example.com"});
    // One delivery: customer 0's change in both formats, customer 1's in
    // the generic one only, and the contact.
    let one = body(&[credit.clone(), generic(&credit), generic(&city), contact]);
    s.warp.reset_calls();
    let (status, report) =
        s.h.deliver(&one, Signing::V3(hubwarp::time::now_ms()))
            .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["new"], 2, "{report}");
    assert_eq!(report["duplicate"], 1, "{report}");
    assert_eq!(report["ignored"], 1, "{report}");
    s.pump().await;
    assert_eq!(s.customer(0)["credit_limit"], "6400.00");
    assert_eq!(s.customer(1)["address"]["city"], "Golden");
    assert_eq!(s.warp.calls().put, 2, "one PUT per customer");

    // Separate deliveries: customer 1's change again in the legacy format,
    // then customer 0's deletion in both formats, one after the other.
    let deletion = json!({"eventId": 703, "subscriptionId": 8, "portalId": 62515,
        "appId": 1160452, "occurredAt": T + 3, "subscriptionType": "company.deletion",
        "attemptNumber": 0, "objectId": company_id(0).parse::<u64>().unwrap(),
        "changeSource": "CRM_UI"});
    for delivery in [
        body(std::slice::from_ref(&city)),
        body(&[generic(&deletion)]),
        body(std::slice::from_ref(&deletion)),
    ] {
        let (status, report) =
            s.h.deliver(&delivery, Signing::V3(hubwarp::time::now_ms()))
                .await;
        assert_eq!(status, 200, "{report}");
        s.pump().await;
    }
    assert_eq!(s.warp.calls().put, 2, "nothing written twice");
    assert_eq!(
        s.consumer
            .store
            .link(&company_id(0))
            .await
            .unwrap()
            .unwrap()
            .state,
        LinkState::Deleted
    );

    // One decision per change in the sync log: no second `applied`, no
    // `skipped-stale` for a copy.
    let log = hubwarp::store::DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(&s.h.aws),
        s.h.res.names.sync_tables(),
        std::time::Duration::from_secs(90 * 24 * 3600),
    );
    let outcomes = |n: usize| {
        let log = &log;
        async move {
            let customer = demo_customer(n)["id"].as_str().unwrap().to_string();
            let mut entries: Vec<(String, String)> = log
                .entries(&customer, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.property, e.outcome))
                .collect();
            entries.sort();
            entries
        }
    };
    assert_eq!(
        outcomes(0).await,
        [
            ("deletion".to_string(), "link-deleted".to_string()),
            ("warp_credit_limit".to_string(), "applied".to_string()),
        ]
    );
    assert_eq!(
        outcomes(1).await,
        [("city".to_string(), "applied".to_string())]
    );

    // The records: one per change, each settled; the contact IGNORED.
    let records = s.h.records().await;
    let status_of = |r: &HashMap<String, AttributeValue>| crate::utils::s(r, "status").to_string();
    let mut statuses: Vec<String> = records.iter().map(status_of).collect();
    statuses.sort();
    assert_eq!(statuses, ["APPLIED", "APPLIED", "APPLIED", "IGNORED"]);
}
