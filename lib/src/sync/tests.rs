//! The consumer's domain with in-memory doubles for WARP, HubSpot and the
//! stores. The real clients and DynamoDB are exercised in tests/it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::warp::merge_patch as merge;

use super::ports::CompanyDirectory;
use super::*;
use crate::hubspot::crm::HubspotError;
use crate::store::EventLog;
use crate::store::EventStatus;
use crate::store::sync::{FieldStateStore, LinkState, LinkStore};
use crate::store::{MemoryEventLog, MemorySyncStore};
use crate::warp::Customer;
use crate::warp::WarpApi;

/// WARP in memory: partial PUT with nested merge, ETags, and injectable
/// failures.
#[derive(Default)]
struct FakeWarp {
    customers: Mutex<HashMap<String, Value>>,
    writes: Mutex<u32>,
    fail_next: Mutex<Vec<WarpError>>,
    /// Simulates a WARP-side edit landing between our read and our write.
    edit_before_next_write: Mutex<Option<(String, Value)>>,
    /// The next update is refused with this error.
    refuse_next_update: Mutex<Option<WarpError>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeWarp {
    fn insert(&self, c: Value) {
        let id = c["id"].as_str().unwrap().to_string();
        lock(&self.customers).insert(id, c);
    }

    fn customer(&self, id: &str) -> Value {
        lock(&self.customers)[id].clone()
    }

    fn writes(&self) -> u32 {
        *lock(&self.writes)
    }

    fn bump(c: &mut Value) {
        let n: u64 = c["etag"]
            .as_str()
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap();
        c["etag"] = json!(format!("\"{}\"", n + 1));
        let at = chrono::DateTime::parse_from_rfc3339(c["updated_at"].as_str().unwrap()).unwrap();
        c["updated_at"] = json!(
            (at + chrono::Duration::seconds(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }

    fn edit(&self, id: &str, patch: Value) {
        let mut all = lock(&self.customers);
        let c = all.get_mut(id).unwrap();
        merge(c, &patch);
        Self::bump(c);
    }

    fn to_customer(v: Value) -> Customer {
        Customer {
            id: v["id"].as_str().unwrap().into(),
            ban: v["ban"].as_str().unwrap().into(),
            updated_at_ms: chrono::DateTime::parse_from_rfc3339(v["updated_at"].as_str().unwrap())
                .ok()
                .map(|t| t.timestamp_millis()),
            etag: v["etag"].as_str().unwrap().into(),
            hubspot_company_id: v
                .pointer("/external_ids/hubspot_company_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw: v,
        }
    }
}

impl WarpApi for FakeWarp {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        if let Some(e) = lock(&self.fail_next).pop() {
            return Err(e);
        }
        lock(&self.customers)
            .get(id)
            .cloned()
            .map(Self::to_customer)
            .ok_or(WarpError::NotFound)
    }

    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        lock(&self.customers)
            .values()
            .find(|c| c["ban"] == ban)
            .cloned()
            .map(Self::to_customer)
            .ok_or(WarpError::NotFound)
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        if let Some(e) = lock(&self.refuse_next_update).take() {
            return Err(e);
        }
        if let Some((edit_id, patch)) = lock(&self.edit_before_next_write).take() {
            self.edit(&edit_id, patch);
        }
        let mut all = lock(&self.customers);
        let c = all.get_mut(id).ok_or(WarpError::NotFound)?;
        if if_match.is_some_and(|tag| c["etag"] != tag) {
            return Err(WarpError::PreconditionFailed);
        }
        merge(c, &Value::Object(body.clone()));
        Self::bump(c);
        *lock(&self.writes) += 1;
        Ok(Self::to_customer(c.clone()))
    }
}

#[derive(Default)]
struct FakeHubspot {
    bans: Mutex<HashMap<String, String>>,
}

impl CompanyDirectory for FakeHubspot {
    async fn warp_ban(&self, company_id: &str) -> Result<Option<String>, HubspotError> {
        Ok(lock(&self.bans).get(company_id).cloned())
    }
}

type TestConsumer = Consumer<MemoryEventLog, MemorySyncStore, FakeWarp, FakeHubspot>;

fn customer(n: u32) -> Value {
    json!({
        "id": format!("cust-{n}"), "ban": format!("ZT-{n}"), "company_name": format!("Company {n}"),
        "status": "ACTIVE", "credit_limit": "5000.00", "current_balance": "10.00", "payment_terms": "NET30",
        "tier": "GOLD", "services": {"voice": true, "messaging": false, "data": true},
        "contact": {"name": "Ada", "email": format!("ada{n}@example.com"), "phone": null},
        "address": {"line1": "1 Main St", "line2": null, "city": "Denver", "state": "CO", "postal_code": "80202", "country": "US"},
        "external_ids": {"hubspot_company_id": (1000 + n).to_string()},
        "created_at": "2025-10-12T17:03:00Z", "updated_at": "2025-10-14T09:00:00.000Z", "etag": "\"1\""
    })
}

fn consumer(customers: u32) -> TestConsumer {
    let c = Consumer {
        events: MemoryEventLog::new(),
        store: MemorySyncStore::new(),
        warp: FakeWarp::default(),
        hubspot: FakeHubspot::default(),
        mappings: MappingSet::default_mapping().unwrap(),
    };
    for n in 0..customers {
        c.warp.insert(customer(n));
        lock(&c.hubspot.bans).insert((1000 + n).to_string(), format!("ZT-{n}"));
    }
    c
}

const T: i64 = 1_763_700_000_000;

fn change(id: u32, company: u32, property: &str, value: &str, at: i64) -> QueuedMessage {
    let body = json!({
        "dedupKey": format!("62515:1:{id}:{}:{at}:company.propertyChange:{property}", 1000 + company),
        "receivedAt": at,
        "event": {"eventId": id, "subscriptionId": 1, "portalId": 62515, "occurredAt": at,
                  "subscriptionType": "company.propertyChange", "objectId": 1000 + company,
                  "propertyName": property, "propertyValue": value}
    });
    QueuedMessage {
        message_id: format!("m{id}"),
        body: body.to_string(),
        receive_count: Some(1),
    }
}

#[tokio::test]
async fn a_hubspot_edit_reaches_warp_and_is_recorded() {
    let c = consumer(1);
    let r = c
        .handle_batch(&[change(1, 0, "warp_credit_limit", "7500.00", T)])
        .await;
    assert!(r.retry.is_empty(), "{r:?}");
    assert_eq!(c.warp.customer("cust-0")["credit_limit"], "7500.00");
    assert_eq!(r.applied_fields, 1);
    let state = c.store.field_states("cust-0").await.unwrap();
    assert_eq!(state["credit_limit"].synced_value, Some(json!("7500.00")));
    assert_eq!(state["credit_limit"].hubspot_occurred_at, Some(T));
    let log = c.store.log_entries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, "applied");
    assert!(c.store.link("1000").await.unwrap().is_some(), "link stored");
}

#[tokio::test]
async fn ten_messages_for_three_customers_make_three_writes() {
    let c = consumer(3);
    let batch: Vec<_> = (0..10)
        .map(|i| {
            let props = ["name", "warp_tier", "city", "warp_credit_limit"];
            change(
                i,
                i % 3,
                props[i as usize % 4],
                &format!("v{i}"),
                T + i as i64,
            )
        })
        .map(|mut m| {
            m.body = m.body.replace("\"vNaN\"", "\"1\"");
            m
        })
        .collect();
    // credit limits must be decimals: use numeric values for that property.
    let batch: Vec<_> = batch
        .into_iter()
        .map(|mut m| {
            if m.body.contains("warp_credit_limit") {
                m.body = m
                    .body
                    .replace("\"propertyValue\":\"v", "\"propertyValue\":\"1");
            }
            m
        })
        .collect();
    let r = c.handle_batch(&batch).await;
    assert!(r.retry.is_empty(), "{r:?}");
    assert_eq!(c.warp.writes(), 3, "one PUT per customer");
    assert_eq!(r.warp_writes, 3);
}

#[tokio::test]
async fn the_newest_change_wins_whatever_the_order() {
    let c = consumer(1);
    let batch = [
        change(3, 0, "name", "Newest", T + 30),
        change(1, 0, "name", "Oldest", T + 10),
        change(2, 0, "name", "Middle", T + 20),
    ];
    c.handle_batch(&batch).await;
    assert_eq!(c.warp.customer("cust-0")["company_name"], "Newest");
    // A late straggler in a later batch is skipped as stale.
    let r = c
        .handle_batch(&[change(4, 0, "name", "Stale", T + 5)])
        .await;
    assert_eq!(r.skipped, 1);
    assert_eq!(c.warp.customer("cust-0")["company_name"], "Newest");
    assert!(
        c.store
            .log_entries()
            .iter()
            .any(|e| e.outcome == "skipped-stale")
    );
}

#[tokio::test]
async fn warp_owned_fields_are_skipped_as_drift() {
    let c = consumer(1);
    let r = c
        .handle_batch(&[change(1, 0, "warp_status", "SUSPENDED", T)])
        .await;
    assert_eq!(r.skipped, 1);
    assert_eq!(c.warp.customer("cust-0")["status"], "ACTIVE");
    assert_eq!(c.warp.writes(), 0);
    let log = c.store.log_entries();
    assert!(log[0].reason.contains("drift"), "{:?}", log[0]);
}

#[tokio::test]
async fn a_manual_conflict_is_queued_for_review_and_changes_nothing() {
    let mut c = consumer(1);
    let text = crate::mapping::config::DEFAULT_MAPPING.replace(
        "hubspot = \"warp_tier\"\ndirection = \"HUBSPOT_TO_WARP\"\nconflict = \"HUBSPOT_WINS\"",
        "hubspot = \"warp_tier\"\ndirection = \"HUBSPOT_TO_WARP\"\nconflict = \"MANUAL\"",
    );
    c.mappings = MappingSet::parse(&text).unwrap();
    c.handle_batch(&[change(1, 0, "warp_tier", "SILVER", T)])
        .await;
    assert_eq!(c.warp.customer("cust-0")["tier"], "SILVER");
    // WARP changes the tier itself, then HubSpot does too: a real conflict.
    c.warp.edit("cust-0", json!({"tier": "PLATINUM"}));
    let r = c
        .handle_batch(&[change(2, 0, "warp_tier", "BRONZE", T + 10)])
        .await;
    assert_eq!(r.conflicts, 1);
    assert_eq!(c.warp.customer("cust-0")["tier"], "PLATINUM");
    let conflicts = c.store.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].hubspot_value, "BRONZE");
    assert_eq!(conflicts[0].warp_value, "\"PLATINUM\"");
}

#[tokio::test]
async fn a_412_reads_again_and_decides_once_more() {
    let c = consumer(1);
    *lock(&c.warp.edit_before_next_write) =
        Some(("cust-0".into(), json!({"contact": {"phone": "+1555"}})));
    let r = c.handle_batch(&[change(1, 0, "city", "Boulder", T)]).await;
    assert!(r.retry.is_empty(), "{r:?}");
    let cust = c.warp.customer("cust-0");
    assert_eq!(cust["address"]["city"], "Boulder");
    assert_eq!(
        cust["contact"]["phone"], "+1555",
        "WARP's own edit survives"
    );
}

#[tokio::test]
async fn a_warp_outage_sends_the_messages_back_and_settles_nothing() {
    let c = consumer(1);
    lock(&c.warp.fail_next).push(WarpError::Transient("503".into()));
    let batch = [change(1, 0, "city", "Boulder", T)];
    let r = c.handle_batch(&batch).await;
    assert_eq!(r.retry, vec!["m1".to_string()]);
    assert_eq!(c.warp.customer("cust-0")["address"]["city"], "Denver");
    // The redelivery succeeds, once.
    let r = c.handle_batch(&batch).await;
    assert!(r.retry.is_empty());
    assert_eq!(c.warp.customer("cust-0")["address"]["city"], "Boulder");
    assert_eq!(c.warp.writes(), 1);
}

#[tokio::test]
async fn a_bad_value_fails_alone() {
    let c = consumer(2);
    let batch = [
        change(1, 0, "warp_credit_limit", "lots", T),
        change(2, 1, "warp_credit_limit", "9000", T),
        QueuedMessage {
            message_id: "junk".into(),
            body: "not json".into(),
            receive_count: Some(1),
        },
    ];
    let r = c.handle_batch(&batch).await;
    // A refused value is permanent and acknowledged; a message nothing here
    // can read goes back (towards the DLQ), never dropped.
    assert_eq!(r.retry, ["junk"]);
    assert_eq!(r.failed, 1);
    assert_eq!(r.unreadable.len(), 1);
    assert_eq!(r.unreadable[0].message_id, "junk");
    assert!(
        r.unreadable[0].reason.starts_with("body is not JSON"),
        "{:?}",
        r.unreadable
    );
    assert_eq!(c.warp.customer("cust-0")["credit_limit"], "5000.00");
    assert_eq!(c.warp.customer("cust-1")["credit_limit"], "9000");
}

#[tokio::test]
async fn unknown_companies_are_unmatched_not_retried() {
    let c = consumer(1);
    let r = c.handle_batch(&[change(1, 7, "name", "Nobody", T)]).await;
    assert!(r.retry.is_empty());
    assert_eq!(r.unmatched, 1);
}

fn lifecycle(id: u32, kind: &str, object: u64, extra: Value) -> QueuedMessage {
    let mut event = json!({"eventId": id, "subscriptionId": 2, "portalId": 62515, "occurredAt": T,
        "subscriptionType": format!("company.{kind}"), "objectId": object});
    merge(&mut event, &extra);
    QueuedMessage {
        message_id: format!("l{id}"),
        body: json!({"dedupKey": format!("l{id}"), "receivedAt": T, "event": event}).to_string(),
        receive_count: None,
    }
}

#[tokio::test]
async fn merge_relinks_and_deletion_leaves_warp_alone() {
    let c = consumer(1);
    // Link company 1000 first.
    c.handle_batch(&[change(1, 0, "city", "Aspen", T)]).await;
    let r = c
        .handle_batch(&[lifecycle(
            2,
            "merge",
            5555,
            json!({"primaryObjectId": 5555, "mergedObjectIds": [1000]}),
        )])
        .await;
    assert!(r.retry.is_empty(), "{r:?}");
    assert_eq!(
        c.warp.customer("cust-0")["external_ids"]["hubspot_company_id"],
        "5555"
    );
    assert_eq!(
        c.store.link("1000").await.unwrap().unwrap().state,
        LinkState::Merged
    );
    assert_eq!(
        c.store.link("5555").await.unwrap().unwrap().customer_id,
        "cust-0"
    );

    let before = c.warp.customer("cust-0");
    c.handle_batch(&[lifecycle(3, "deletion", 5555, json!({}))])
        .await;
    assert_eq!(
        c.store.link("5555").await.unwrap().unwrap().state,
        LinkState::Deleted
    );
    assert_eq!(c.warp.customer("cust-0"), before, "WARP customer untouched");
    // Changes for a deleted company are skipped; a restore re-activates.
    c.handle_batch(&[lifecycle(4, "restore", 5555, json!({}))])
        .await;
    assert_eq!(
        c.store.link("5555").await.unwrap().unwrap().state,
        LinkState::Active
    );
}

#[tokio::test]
async fn a_redelivered_settled_message_is_a_no_op() {
    let c = consumer(1);
    let m = change(1, 0, "city", "Vail", T);
    // The receiver recorded it; the consumer applies it; SQS delivers again.
    let event: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    let key = event["dedupKey"].as_str().unwrap().to_string();
    let event_text = event["event"].to_string();
    let parsed: crate::hubspot::webhook::WebhookEvent<'_> =
        serde_json::from_str(&event_text).unwrap();
    let lease = crate::store::Lease {
        owner: "r".into(),
        until_ms: T,
    };
    c.events
        .claim(
            &crate::store::NewEvent {
                dedup_key: &key,
                event: &parsed,
                message: &m.body,
            },
            &lease,
            0,
            0,
        )
        .await
        .unwrap();
    c.handle_batch(std::slice::from_ref(&m)).await;
    assert_eq!(c.events.get(&key).unwrap().status, EventStatus::Applied);
    let r = c.handle_batch(std::slice::from_ref(&m)).await;
    assert_eq!(r.duplicates, 1);
    assert_eq!(c.warp.writes(), 1);
}

/// `m` rewritten with an explicit format version.
fn versioned(mut m: QueuedMessage, v: u32) -> QueuedMessage {
    let mut body: Value = serde_json::from_str(&m.body).unwrap();
    body["v"] = json!(v);
    m.body = body.to_string();
    m
}

#[tokio::test]
async fn both_readable_versions_are_applied_and_any_other_goes_back() {
    let c = consumer(3);
    let batch = [
        // The previous release's receiver: no `v`.
        change(1, 0, "warp_credit_limit", "7100.00", T),
        // This release's receiver.
        versioned(change(2, 1, "warp_credit_limit", "7200.00", T), 1),
        // A later release's receiver, read during a rollback.
        versioned(change(3, 2, "warp_credit_limit", "7300.00", T), 2),
        QueuedMessage {
            message_id: "half".into(),
            body: r#"{"v":1,"receivedAt":1}"#.into(),
            receive_count: Some(5),
        },
    ];
    let r = c.handle_batch(&batch).await;
    assert_eq!(c.warp.customer("cust-0")["credit_limit"], "7100.00");
    assert_eq!(c.warp.customer("cust-1")["credit_limit"], "7200.00");
    assert_eq!(c.warp.customer("cust-2")["credit_limit"], "5000.00");
    assert_eq!(r.applied_fields, 2);
    assert_eq!(r.retry, ["m3", "half"]);
    let reasons: Vec<&str> = r.unreadable.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "format version 2 is not one this consumer reads",
            "body is not a sync message: missing field `dedupKey` at line 1 column 22"
        ]
    );
}

#[tokio::test]
async fn a_refused_relink_after_a_merge_is_recorded_not_only_logged() {
    let c = consumer(1);
    c.handle_batch(&[change(1, 0, "city", "Aspen", T)]).await;
    *lock(&c.warp.refuse_next_update) = Some(WarpError::Rejected {
        status: 422,
        code: "VALIDATION_ERROR".into(),
        message: "external id taken".into(),
    });
    let r = c
        .handle_batch(&[lifecycle(
            2,
            "merge",
            5555,
            json!({"primaryObjectId": 5555, "mergedObjectIds": [1000]}),
        )])
        .await;
    assert!(r.retry.is_empty(), "permanent: settled, {r:?}");
    let entry = c
        .store
        .log_entries()
        .into_iter()
        .find(|e| e.dedup_key == "l2")
        .unwrap();
    assert_eq!(entry.outcome, "merged");
    assert!(
        entry.reason.contains("WARP refused to re-link"),
        "{}",
        entry.reason
    );
}

/// Found modelling merges (tests/src/model): a company merged before its
/// first change had no link (links come from a first change or the nightly
/// run), so the merge was settled UNMATCHED, WARP kept naming the
/// merged-away company, and the pair fell out of every nightly run. The
/// survivor keeps the merged company's warp_ban, which now finds it.
#[tokio::test]
async fn regression_merge_of_a_company_never_linked_is_followed() {
    let c = consumer(2);
    lock(&c.hubspot.bans).insert("5555".into(), "ZT-0".into());
    let r = c
        .handle_batch(&[lifecycle(
            1,
            "merge",
            5555,
            json!({"primaryObjectId": 5555, "mergedObjectIds": [1000]}),
        )])
        .await;
    assert!(r.retry.is_empty() && r.unmatched == 0, "{r:?}");
    assert_eq!(
        c.warp.customer("cust-0")["external_ids"]["hubspot_company_id"],
        "5555"
    );
    let link = c.store.link("5555").await.unwrap().unwrap();
    assert_eq!(
        (link.customer_id.as_str(), link.state),
        ("cust-0", LinkState::Active)
    );

    // A survivor whose BAN names a customer of another company is not
    // taken over: unmatched, with the reason, and WARP untouched.
    lock(&c.hubspot.bans).insert("6666".into(), "ZT-1".into());
    let before = c.warp.customer("cust-1");
    let r = c
        .handle_batch(&[lifecycle(
            2,
            "merge",
            6666,
            json!({"primaryObjectId": 6666, "mergedObjectIds": [4242]}),
        )])
        .await;
    assert_eq!(r.unmatched, 1, "{r:?}");
    assert_eq!(c.warp.customer("cust-1"), before);
    assert!(c.store.link("6666").await.unwrap().is_none());
    let entry = c
        .store
        .log_entries()
        .into_iter()
        .find(|e| e.dedup_key == "l2")
        .unwrap();
    assert!(
        entry.reason.contains("linked to company 1001"),
        "{}",
        entry.reason
    );
}

/// The linked company absorbing a duplicate keeps its id: the link stays,
/// and WARP, which already names it, is not written (a write would bump
/// `updated_at`, which LATEST_WINS reads as an edit).
#[tokio::test]
async fn a_merge_into_the_linked_company_writes_nothing_to_warp() {
    let c = consumer(1);
    c.handle_batch(&[change(1, 0, "city", "Aspen", T)]).await;
    let (writes, before) = (c.warp.writes(), c.warp.customer("cust-0"));
    let r = c
        .handle_batch(&[lifecycle(
            2,
            "merge",
            1000,
            json!({"primaryObjectId": 1000, "mergedObjectIds": [7777]}),
        )])
        .await;
    assert!(r.retry.is_empty() && r.unmatched == 0, "{r:?}");
    assert_eq!(
        (c.warp.writes(), c.warp.customer("cust-0")),
        (writes, before)
    );
    let link = c.store.link("1000").await.unwrap().unwrap();
    assert_eq!(
        (link.customer_id.as_str(), link.state),
        ("cust-0", LinkState::Active)
    );
}
