//! The consumer's state adapters against DynamoDB (moto).

use std::time::Duration;

use hubwarp::mapping::conflict::FieldState;
use hubwarp::store::sync::{
    ConflictQueue, ConflictRecord, ConflictReview, DecisionDetail, FieldStateStore, Link,
    LinkState, LinkStore, Resolution, SyncLog, SyncLogEntry, SyncLogReader,
};
use hubwarp::store::{DynamoSyncStore, EventLog, EventStatus, MemorySyncStore};
use integration_tests::moto::MotoServer;
use integration_tests::resources::{self, Names};
use serde_json::json;

use crate::utils::Harness;

#[tokio::test]
async fn links_field_state_log_and_conflicts_round_trip() {
    let aws = MotoServer::shared().sdk_config().await;
    let names = Names::unique("syncstore");
    resources::ensure(&aws, &names).await.unwrap();
    let store = DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        names.sync_tables(),
        Duration::from_secs(86_400),
    );

    assert_eq!(store.link("987654").await.unwrap(), None);
    let link = Link {
        company_id: "987654".into(),
        customer_id: "c-1".into(),
        ban: "ZT-1".into(),
        state: LinkState::Merged,
        merged_into: Some("987655".into()),
        updated_at_ms: 1_763_700_000_000,
    };
    store.put_link(&link).await.unwrap();
    assert_eq!(store.link("987654").await.unwrap(), Some(link));

    let state = FieldState {
        synced_value: Some(json!({"voice": true, "data": false})),
        hubspot_occurred_at: Some(1_763_700_000_000),
        warp_updated_at: Some(1_763_700_000_500),
    };
    store
        .put_field_state("c-1", "services", &state)
        .await
        .unwrap();
    store
        .put_field_state("c-1", "credit_limit", &FieldState::default())
        .await
        .unwrap();
    store.put_field_state("c-2", "tier", &state).await.unwrap();
    let states = store.field_states("c-1").await.unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states["services"], state);
    assert_eq!(states["credit_limit"], FieldState::default());

    let entries: Vec<SyncLogEntry> = (0..30)
        .map(|i| SyncLogEntry {
            customer_id: "c-1".into(),
            at_ms: 1_763_700_000_000 + i,
            dedup_key: format!("k{i}"),
            property: "name".into(),
            field: Some("company_name".into()),
            outcome: "applied".into(),
            reason: "HubSpot change applied".into(),
            // Odd entries as the first release wrote them: no detail.
            detail: if i % 2 == 0 {
                DecisionDetail {
                    warp_value: Some(serde_json::json!("Acme")),
                    hubspot_value: Some(format!("Acme {i}")),
                    baseline: None,
                    rule: Some("changed".into()),
                }
            } else {
                DecisionDetail::default()
            },
        })
        .collect();
    store.append(&entries).await.unwrap();
    // Read back newest first, the detail intact, old entries without it.
    let back = store.entries("c-1", 100).await.unwrap();
    assert_eq!(back.len(), 30);
    let mut expected = entries.clone();
    expected.reverse();
    assert_eq!(back, expected);
    assert_eq!(store.entries("c-1", 3).await.unwrap(), expected[..3]);
    let logged = aws_sdk_dynamodb::Client::new(&aws)
        .query()
        .table_name(names.sync_tables().sync_log)
        .key_condition_expression("customer_id = :c")
        .expression_attribute_values(
            ":c",
            aws_sdk_dynamodb::types::AttributeValue::S("c-1".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logged.count, 30, "more than one BatchWriteItem of 25");
    let first = &logged.items.unwrap()[0];
    assert!(first.contains_key("expires_at"));

    store
        .put_conflict(&ConflictRecord {
            customer_id: "c-1".into(),
            field: "credit_limit".into(),
            property: "warp_credit_limit".into(),
            hubspot_value: "7000".into(),
            hubspot_occurred_at: 1_763_700_000_000,
            warp_value: "\"6000\"".into(),
            warp_updated_at: Some(1_763_700_000_100),
            dedup_key: "k".into(),
        })
        .await
        .unwrap();
}

fn conflict(field: &str, at: i64) -> ConflictRecord {
    ConflictRecord {
        customer_id: "c-1".into(),
        field: field.into(),
        property: format!("warp_{field}"),
        hubspot_value: format!("hub {at}"),
        hubspot_occurred_at: at,
        warp_value: format!("\"warp {at}\""),
        warp_updated_at: Some(at),
        dedup_key: format!("k{at}"),
    }
}

/// What both stores promise: one open conflict per customer field, the
/// newest by HubSpot time. The consumer and the nightly run each find a
/// lasting MANUAL disagreement, so without it the review queue held one
/// record per finding, and resolving one left the others open.
async fn one_open_conflict_per_field<S: ConflictQueue + ConflictReview>(store: &S) {
    let open = || async {
        let mut keys: Vec<String> = store
            .open_conflicts()
            .await
            .unwrap()
            .iter()
            .map(|c| c.key())
            .collect();
        keys.sort();
        keys
    };
    let key = |field: &str, at: i64| conflict(field, at).key();
    store.put_conflict(&conflict("tier", 100)).await.unwrap();
    assert_eq!(open().await, [key("tier", 100)]);
    // A newer finding supersedes the open one.
    store.put_conflict(&conflict("tier", 200)).await.unwrap();
    assert_eq!(open().await, [key("tier", 200)]);
    // An older one (a late webhook) does not take its place.
    store.put_conflict(&conflict("tier", 150)).await.unwrap();
    assert_eq!(open().await, [key("tier", 200)]);
    // The same finding again stays one.
    store.put_conflict(&conflict("tier", 200)).await.unwrap();
    // Fields are apart.
    store
        .put_conflict(&conflict("credit_limit", 50))
        .await
        .unwrap();
    assert_eq!(open().await, [key("credit_limit", 50), key("tier", 200)]);
    let resolution = Resolution {
        take: "warp".into(),
        value: "\"warp 200\"".into(),
        by: "ops@example.com".into(),
        note: None,
        at_ms: 300,
    };
    // A superseded conflict is no longer open to resolve; the open one is.
    assert!(
        !store
            .resolve_conflict(&conflict("tier", 100), &resolution)
            .await
            .unwrap()
    );
    assert!(
        store
            .resolve_conflict(&conflict("tier", 200), &resolution)
            .await
            .unwrap()
    );
    assert_eq!(open().await, [key("credit_limit", 50)]);
    // A disagreement found again after the resolution is open again.
    store.put_conflict(&conflict("tier", 400)).await.unwrap();
    assert_eq!(open().await, [key("credit_limit", 50), key("tier", 400)]);
}

#[tokio::test]
async fn one_open_conflict_per_field_in_dynamodb() {
    let aws = MotoServer::shared().sdk_config().await;
    let names = Names::unique("conflicts");
    resources::ensure(&aws, &names).await.unwrap();
    let store = DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        names.sync_tables(),
        Duration::from_secs(86_400),
    );
    one_open_conflict_per_field(&store).await;
}

/// The unit tests' twin keeps the same promise.
#[tokio::test]
async fn one_open_conflict_per_field_in_memory() {
    one_open_conflict_per_field(&MemorySyncStore::new()).await;
}

#[tokio::test]
async fn the_consumer_settles_event_records() {
    let h = Harness::new("settle").await;
    let (status, _) = h
        .deliver(
            &integration_tests::fixtures::property_changes(1, 0),
            integration_tests::fixtures::Signing::V1,
        )
        .await;
    assert_eq!(status, 200);
    let key = h.drain_queue().await[0]["dedupKey"]
        .as_str()
        .unwrap()
        .to_string();
    let log = h.log();
    assert_eq!(log.status(&key).await.unwrap(), Some(EventStatus::Queued));
    log.settle(&key, &EventStatus::Applied, "applied to WARP")
        .await
        .unwrap();
    assert_eq!(log.status(&key).await.unwrap(), Some(EventStatus::Applied));
    // Unknown keys are not created by settling.
    log.settle("nope", &EventStatus::Applied, "x")
        .await
        .unwrap();
    assert_eq!(log.status("nope").await.unwrap(), None);
}
