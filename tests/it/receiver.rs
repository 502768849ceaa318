//! The receiver end to end against DynamoDB and SQS (moto): invariants 1-3.

use std::collections::HashSet;
use std::time::Duration;

use hubwarp::hubspot::signature::SignatureVersion;
use hubwarp::hubspot::webhook::parse_delivery;
use hubwarp::intake::IntakeSettings;
use hubwarp::store::{EventLog, Lease, NewEvent};
use hubwarp::time::now_ms;
use integration_tests::fixtures::{Signing, property_changes};
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::utils::{Harness, Options, dedup_keys, missing_queue, s};

#[tokio::test]
async fn each_signature_version_is_accepted_and_events_are_queued() {
    let h = Harness::new("versions").await;
    for (i, signing) in [Signing::V1, Signing::V2, Signing::V3(now_ms())]
        .into_iter()
        .enumerate()
    {
        let body = property_changes(2, i * 2);
        let (status, report) = h.deliver(&body, signing).await;
        assert_eq!(status, StatusCode::OK, "{signing:?}: {report}");
        assert_eq!(
            report,
            json!({"received":2,"new":2,"duplicate":0,"requeued":0,"failed":0,"in_flight":0,"ignored":0,"unreadable":0})
        );
    }
    let messages = h.drain_queue().await;
    assert_eq!(messages.len(), 6);
    let m = messages
        .iter()
        .find(|m| m["event"]["eventId"] == 100_000)
        .expect("first event queued");
    assert_eq!(m["event"]["objectId"], 5_000_000);
    assert_eq!(m["event"]["subscriptionType"], "company.propertyChange");
    assert_eq!(m["event"]["propertyName"], "warp_credit_limit");
    assert_eq!(m["event"]["propertyValue"], "1000.00");
    assert_eq!(m["event"]["occurredAt"], 1_763_700_000_000u64);
    assert_eq!(
        m["dedupKey"],
        "62515:5000000:company.propertyChange:1763700000000:warp_credit_limit"
    );

    let records = h.records().await;
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|r| s(r, "status") == "QUEUED"));
    assert!(
        records
            .iter()
            .all(|r| r.contains_key("expires_at") && r.contains_key("message"))
    );
}

#[tokio::test]
async fn a_duplicate_delivery_queues_nothing_new() {
    let h = Harness::new("duplicate").await;
    let body = property_changes(5, 0);
    assert_eq!(h.deliver(&body, Signing::V1).await.0, StatusCode::OK);
    // HubSpot's retry: same changes, higher attemptNumber, fresh v3 signature.
    let retry = body.replace(r#""attemptNumber":0"#, r#""attemptNumber":1"#);
    let (status, report) = h.deliver(&retry, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["duplicate"], 5);
    assert_eq!(report["new"], 0);
    assert_eq!(h.drain_queue().await.len(), 5);
}

#[tokio::test]
async fn the_same_event_twice_in_one_request_is_queued_once() {
    let h = Harness::new("twice").await;
    let one = property_changes(1, 0);
    let body = format!("[{0},{0}]", &one[1..one.len() - 1]);
    let (status, report) = h.deliver(&body, Signing::V1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["new"], 1);
    assert_eq!(report["duplicate"], 1);
    assert_eq!(h.drain_queue().await.len(), 1);
    assert_eq!(h.records().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_deliveries_with_overlapping_events_queue_each_once() {
    let h = Harness::new("parallel").await;
    // Delivery k carries events k*5 .. k*5+20: each overlaps its neighbours.
    let receivers: Vec<_> = (0..10).map(|_| h.receiver(Options::default())).collect();
    let events: Vec<_> = (0..10)
        .map(|k| h.event(&property_changes(20, k * 5), Signing::V1))
        .collect();
    let results = futures::future::join_all(
        receivers
            .iter()
            .zip(&events)
            .map(|(r, e)| Harness::deliver_with(r, e)),
    )
    .await;
    for (status, report) in &results {
        assert_eq!(*status, StatusCode::OK, "{report}");
    }
    let total_new: u64 = results
        .iter()
        .map(|(_, r)| r["new"].as_u64().unwrap_or(0))
        .sum();
    let unique = 9 * 5 + 20;
    assert_eq!(
        total_new, unique as u64,
        "each event counted new exactly once"
    );
    let keys = dedup_keys(&h.drain_queue().await);
    assert_eq!(keys.len(), unique);
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        unique,
        "no event queued twice"
    );
}

#[tokio::test]
async fn a_hundred_event_request() {
    let h = Harness::new("hundred").await;
    let body = property_changes(100, 0);
    assert!(body.len() > 25_000, "about HubSpot's largest delivery");
    let (status, report) = h.deliver(&body, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["new"], 100);
    let keys = dedup_keys(&h.drain_queue().await);
    assert_eq!(keys.len(), 100);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 100);
}

#[tokio::test]
async fn an_sqs_failure_answers_503_and_the_retry_queues_exactly_once() {
    let h = Harness::new("sqsfail").await;
    let broken = h.receiver(Options {
        queue_url: Some(missing_queue(&h.res.sync_queue_url)),
        ..Options::default()
    });
    let body = property_changes(12, 0);
    let event = h.event(&body, Signing::V1);
    let (status, report) = Harness::deliver_with(&broken, &event).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["code"], "retry_later");
    // Recorded, not queued: nothing is lost.
    let records = h.records().await;
    assert_eq!(records.len(), 12);
    assert!(records.iter().all(|r| s(r, "status") == "RECEIVED"));
    assert!(h.drain_queue().await.is_empty());

    // HubSpot retries; SQS is back.
    let (status, report) = h.deliver(&body, Signing::V1).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["requeued"], 12);
    // And once more: nothing further is queued.
    let (status, report) = h.deliver(&body, Signing::V1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["duplicate"], 12);
    let keys = dedup_keys(&h.drain_queue().await);
    assert_eq!(keys.len(), 12);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 12);
    assert!(h.records().await.iter().all(|r| s(r, "status") == "QUEUED"));
}

#[tokio::test]
async fn a_delivery_that_died_after_recording_is_taken_over_once_its_lease_lapses() {
    let h = Harness::new("crash").await;
    let body = property_changes(3, 0);
    let events = parse_delivery(body.as_bytes()).unwrap();
    // A Lambda instance recorded the events and was killed before queueing.
    let log = h.log();
    for e in &events {
        let key = e.dedup_key();
        let lease = Lease {
            owner: "dead-instance".into(),
            until_ms: now_ms() + 300,
        };
        let claimed = log
            .claim(
                &NewEvent {
                    dedup_key: &key,
                    event: e,
                    message: "{}",
                },
                &lease,
                now_ms(),
                0,
            )
            .await
            .unwrap();
        assert!(matches!(
            claimed,
            hubwarp::store::ClaimOutcome::Claimed { took_over: false }
        ));
    }
    // A retry that arrives while the lease is live waits, then takes over.
    let receiver = h.receiver(Options {
        intake: IntakeSettings {
            in_flight_wait: Duration::from_secs(3),
            ..IntakeSettings::default()
        },
        ..Options::default()
    });
    let (status, report) = Harness::deliver_with(&receiver, &h.event(&body, Signing::V1)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["requeued"], 3);
    assert_eq!(h.drain_queue().await.len(), 3);
}

#[tokio::test]
async fn a_delivery_held_elsewhere_too_long_answers_503_and_queues_nothing() {
    let h = Harness::new("held").await;
    let body = property_changes(1, 0);
    let events = parse_delivery(body.as_bytes()).unwrap();
    let key = events[0].dedup_key();
    let lease = Lease {
        owner: "slow-instance".into(),
        until_ms: now_ms() + 60_000,
    };
    h.log()
        .claim(
            &NewEvent {
                dedup_key: &key,
                event: &events[0],
                message: "{}",
            },
            &lease,
            now_ms(),
            0,
        )
        .await
        .unwrap();
    let receiver = h.receiver(Options {
        intake: IntakeSettings {
            in_flight_wait: Duration::from_millis(300),
            ..IntakeSettings::default()
        },
        ..Options::default()
    });
    let (status, _) = Harness::deliver_with(&receiver, &h.event(&body, Signing::V1)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(h.drain_queue().await.is_empty());
}

#[tokio::test]
async fn every_rejection_leaves_the_table_and_queue_untouched() {
    let h = Harness::new("reject").await;
    let good = property_changes(2, 0);
    let stale = now_ms() - 301_000;
    let cases: Vec<(&str, serde_json::Value, StatusCode)> = vec![
        (
            "unsigned",
            h.event(&good, Signing::Unsigned),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong secret",
            h.event(&good, Signing::Wrong(now_ms())),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "stale v3",
            h.event(&good, Signing::V3(stale)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "future v3",
            h.event(&good, Signing::V3(now_ms() + 301_000)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not json",
            h.event("hello", Signing::V1),
            StatusCode::BAD_REQUEST,
        ),
        (
            "object not array",
            h.event(r#"{"eventId":1}"#, Signing::V1),
            StatusCode::BAD_REQUEST,
        ),
        (
            "array of numbers",
            h.event("[1,2]", Signing::V1),
            StatusCode::BAD_REQUEST,
        ),
        (
            "too large",
            h.event(&format!("[{}]", " ".repeat(1024 * 1024)), Signing::V1),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (name, event, expected) in cases {
        let (status, body) = Harness::deliver_with(&h.receiver, &event).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert!(
            body["code"].is_string() && body["detail"].is_string(),
            "{name}: {body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("warp_credit_limit"),
            "{name}: payload echoed: {detail}"
        );
    }
    let mut get = h.event(&good, Signing::V1);
    get["requestContext"]["http"]["method"] = json!("GET");
    let (status, _) = Harness::deliver_with(&h.receiver, &get).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // A v1 request when v3 is required.
    let strict = h.receiver(Options {
        min_version: SignatureVersion::V3,
        ..Options::default()
    });
    let (status, body) = Harness::deliver_with(&strict, &h.event(&good, Signing::V1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // An array with something other than an object in it is not a
    // delivery: nothing of the body is recorded.
    let mixed = format!(r#"[{},"x"]"#, &good[1..good.len() - 1]);
    let (status, body) = h.deliver(&mixed, Signing::V1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("event 2:"),
        "{body}"
    );

    assert!(h.records().await.is_empty());
    assert!(h.drain_queue().await.is_empty());
}

#[tokio::test]
async fn a_claim_retried_after_a_lost_answer_is_still_ours() {
    // The SDK retries a claim whose first attempt landed but timed out on
    // the way back: the second attempt finds this owner's lease.
    let h = Harness::new("retriedclaim").await;
    let body = property_changes(1, 0);
    let events = parse_delivery(body.as_bytes()).unwrap();
    let key = events[0].dedup_key();
    let lease = Lease {
        owner: "req-1".into(),
        until_ms: now_ms() + 60_000,
    };
    let new = NewEvent {
        dedup_key: &key,
        event: &events[0],
        message: "{}",
    };
    let log = h.log();
    let first = log.claim(&new, &lease, now_ms(), 0).await.unwrap();
    let again = log.claim(&new, &lease, now_ms(), 0).await.unwrap();
    assert_eq!(first, again);
    let other = Lease {
        owner: "req-2".into(),
        ..lease
    };
    assert!(matches!(
        log.claim(&new, &other, now_ms(), 0).await.unwrap(),
        hubwarp::store::ClaimOutcome::InFlight { .. }
    ));
}

#[tokio::test]
async fn a_mixed_hundred_event_delivery_is_accepted_and_only_property_changes_are_queued() {
    let h = Harness::new("mixed").await;
    // What a portal subscribed to several types sends: 70 property changes,
    // 10 association changes (no objectId), 10 of a type HubSpot added
    // later, 10 property changes without objectId.
    let changes: Vec<serde_json::Value> = serde_json::from_str(&property_changes(70, 0)).unwrap();
    let mut events = changes.clone();
    for i in 0..10u64 {
        events.push(json!({"eventId": 200_000 + i, "subscriptionId": 4002, "portalId": 62515,
            "appId": 1160452, "occurredAt": 1_763_700_000_000u64 + i, "attemptNumber": 0,
            "subscriptionType": "company.associationChange", "associationType": "COMPANY_TO_CONTACT",
            "fromObjectId": 5_000_000 + i, "toObjectId": 77 + i, "associationRemoved": i % 2 == 0,
            "isPrimaryAssociation": false, "changeSource": "CRM_UI"}));
        events.push(
            json!({"eventId": 300_000 + i, "subscriptionId": 4003, "portalId": 62515,
            "occurredAt": 1_763_700_000_000u64 + i, "attemptNumber": 0,
            "subscriptionType": "company.hologramChange", "objectId": 5_000_000 + i}),
        );
    }
    let mut no_object: Vec<serde_json::Value> =
        serde_json::from_str(&property_changes(10, 70)).unwrap();
    for e in &mut no_object {
        e.as_object_mut().unwrap().remove("objectId");
    }
    events.extend(no_object);
    // Interleaved, as HubSpot batches them.
    events.sort_by_key(|e| e["occurredAt"].as_u64());
    assert_eq!(events.len(), 100);
    let body = serde_json::Value::Array(events).to_string();

    let (status, report) = h.deliver(&body, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"received":100,"new":70,"duplicate":0,"requeued":0,"failed":0,"in_flight":0,"ignored":20,"unreadable":10})
    );
    let messages = h.drain_queue().await;
    let keys = dedup_keys(&messages);
    assert_eq!(keys.len(), 70);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 70, "each once");
    assert!(messages.iter().all(
        |m| m["event"]["subscriptionType"] == "company.propertyChange"
            && m["event"]["objectId"].is_u64()
            && m["v"] == 1
    ));

    let records = h.records().await;
    assert_eq!(records.len(), 100);
    let with = |status: &str| {
        records
            .iter()
            .filter(|r| s(r, "status") == status)
            .collect::<Vec<_>>()
    };
    assert_eq!(with("QUEUED").len(), 70);
    let ignored = with("IGNORED");
    assert_eq!(ignored.len(), 20);
    let unreadable = with("UNREADABLE");
    assert_eq!(unreadable.len(), 10);
    for r in ignored.iter().chain(&unreadable) {
        assert!(!s(r, "reason").is_empty(), "{r:?}");
        assert!(r.contains_key("expires_at") && !r.contains_key("message"));
        assert!(!keys.contains(&s(r, "dedup_key").to_string()));
    }
    let associations = ignored
        .iter()
        .filter(|r| s(r, "subscription_type") == "company.associationChange")
        .count();
    assert_eq!(associations, 10);
    for r in &unreadable {
        assert!(s(r, "reason").contains("objectId"), "{r:?}");
        assert!(s(r, "raw_event").contains("warp_credit_limit"));
    }

    // HubSpot delivers it again: every record is found, nothing queued.
    let retry = body.replace(r#""attemptNumber":0"#, r#""attemptNumber":1"#);
    let (status, report) = h.deliver(&retry, Signing::V1).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["duplicate"], 70);
    assert_eq!(report["ignored"], 20);
    assert_eq!(report["unreadable"], 10);
    assert!(h.drain_queue().await.is_empty());
    assert_eq!(h.records().await.len(), 100);
}

/// Hostile JSON, signed (a leaked secret, or a bug upstream): each answer
/// is precise and nothing is lost. Nesting deep enough to overflow a
/// parser's stack is refused before any parser runs (400); an event that
/// repeats a key, or holds a number no id or time can be, is recorded
/// UNREADABLE with the reason; a value too large for a queue message is
/// recorded UNREADABLE instead of failing the delivery for ever, and the
/// change batched with it is queued.
#[tokio::test]
async fn hostile_json_gets_a_precise_answer_and_loses_nothing() {
    let h = Harness::new("hostile").await;
    let event = |id: u64, extra: &str| {
        format!(
            r#"{{"eventId":{id},"subscriptionId":4001,"portalId":62515,"occurredAt":1763700000000,"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":5000001,"propertyName":"warp_credit_limit","propertyValue":"1"{extra}}}"#
        )
    };
    let deep = 150_000;
    for (name, body) in [
        (
            "bare nesting",
            format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        ),
        (
            "nesting in a field",
            format!(
                "[{}]",
                event(
                    1,
                    &format!(r#","x":{}{}"#, "{\"a\":".repeat(deep), "}".repeat(deep))
                )
            ),
        ),
    ] {
        let (status, answer) = h.deliver(&body, Signing::V3(now_ms())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("nested deeper"),
            "{name}: {answer}"
        );
    }
    assert!(h.records().await.is_empty());

    let huge = "a".repeat(700_000);
    let events = [
        event(2, r#","objectId":5000002"#),
        event(3, "").replace("5000001", "18446744073709551616"),
        event(4, "").replace("1763700000000", "1e400"),
        event(5, "").replace(
            r#""propertyValue":"1""#,
            &format!(r#""propertyValue":"{huge}""#),
        ),
        event(6, "").replace("5000001", "5000006"),
    ];
    let body = format!("[{}]", events.join(","));
    assert!(body.len() < 1024 * 1024);
    let (status, answer) = h.deliver(&body, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["new"], 1, "{answer}");
    assert_eq!(answer["unreadable"], 4, "{answer}");
    let queued = h.drain_queue().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["event"]["objectId"], 5000006);
    let records = h.records().await;
    let reasons: Vec<String> = records
        .iter()
        .filter(|r| s(r, "status") == "UNREADABLE")
        .map(|r| s(r, "reason").to_string())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for expected in [
        "duplicate field `objectId`",
        "field objectId:",
        "could not be read as JSON",
        "over the 262144 an SQS message carries",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
    for r in &records {
        let size: usize = r
            .iter()
            .map(|(k, v)| k.len() + v.as_s().map_or(16, String::len))
            .sum();
        assert!(size < 16 * 1024, "a record stays small: {size} bytes");
        assert!(!s(r, "reason").contains(&huge[..100]), "no value echoed");
    }
}

/// `event` (a legacy `company.*` event) as a generic subscription of the
/// same app sends the same change: `object.*` with `objectTypeId`, under
/// its own subscription and event id.
fn as_generic(event: &serde_json::Value, type_id: &str) -> serde_json::Value {
    let mut e = event.clone();
    let action = e["subscriptionType"]
        .as_str()
        .and_then(|t| t.split_once('.'))
        .map(|(_, a)| a.to_string())
        .expect("a subscription type");
    e["subscriptionType"] = json!(format!("object.{action}"));
    e["objectTypeId"] = json!(type_id);
    e["subscriptionId"] = json!(4417890);
    e["eventId"] = json!(e["eventId"].as_u64().unwrap_or_default() + 9_000_000);
    e["sourceId"] = json!("userId:48151623");
    e["isSensitive"] = json!(false);
    e
}

/// A company change sent in both formats in one signed delivery, beside a
/// generic company creation, a generic contact change and a generic event
/// that names no object type: the change is queued once, the creation
/// once, the contact recorded IGNORED, the nameless event UNREADABLE; the
/// same delivery again queues nothing.
#[tokio::test]
async fn both_formats_in_one_delivery_queue_each_company_change_once() {
    let h = Harness::new("bothformats").await;
    let legacy: Vec<serde_json::Value> = serde_json::from_str(&property_changes(2, 0)).unwrap();
    let change = &legacy[0];
    let creation = json!({"eventId": 600_001, "subscriptionId": 4005, "portalId": 62515,
        "appId": 1160452, "occurredAt": 1_763_700_000_500u64, "attemptNumber": 0,
        "subscriptionType": "company.creation", "objectId": 5_000_100, "changeSource": "CRM_UI"});
    let contact = as_generic(
        &json!({"eventId": 600_002, "subscriptionId": 4006, "portalId": 62515,
            "occurredAt": 1_763_700_000_600u64, "attemptNumber": 0,
            "subscriptionType": "contact.propertyChange", "objectId": 77,
            "propertyName": "email", "propertyValue": "someone@example.com"}),
        "0-1",
    );
    let mut nameless = as_generic(&legacy[1], "0-2");
    nameless.as_object_mut().unwrap().remove("objectTypeId");
    let events = vec![
        change.clone(),
        as_generic(&creation, "0-2"),
        contact,
        as_generic(change, "0-2"),
        nameless,
    ];
    let body = serde_json::Value::Array(events).to_string();
    let (status, report) = h.deliver(&body, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"received":5,"new":2,"duplicate":1,"requeued":0,"failed":0,"in_flight":0,"ignored":1,"unreadable":1})
    );
    let messages = h.drain_queue().await;
    assert_eq!(messages.len(), 2);
    let queued = |ty: &str| {
        messages
            .iter()
            .find(|m| m["event"]["subscriptionType"] == ty)
            .unwrap_or_else(|| panic!("{ty} queued: {messages:?}"))
    };
    // The legacy copy came first and stands for both.
    let m = queued("company.propertyChange");
    assert_eq!(m["event"]["eventId"], change["eventId"]);
    assert_eq!(
        m["dedupKey"],
        "62515:5000000:company.propertyChange:1763700000000:warp_credit_limit"
    );
    // The generic creation travels as the company type the consumer (this
    // release's or the one before) knows, with how it came beside it.
    let m = queued("company.creation");
    assert_eq!(m["event"]["objectTypeId"], "0-2");
    assert_eq!(m["v"], 1);

    let records = h.records().await;
    assert_eq!(records.len(), 4, "one record per change");
    let with = |status: &str| {
        records
            .iter()
            .filter(|r| s(r, "status") == status)
            .collect::<Vec<_>>()
    };
    assert_eq!(with("QUEUED").len(), 2);
    let ignored = with("IGNORED");
    assert_eq!(ignored.len(), 1);
    assert_eq!(s(ignored[0], "subscription_type"), "object.propertyChange");
    assert_eq!(
        s(ignored[0], "reason"),
        "object.propertyChange events of object type 0-1 are not synced (only companies, 0-2)"
    );
    let unreadable = with("UNREADABLE");
    assert_eq!(unreadable.len(), 1);
    assert_eq!(
        s(unreadable[0], "reason"),
        "object.propertyChange event without objectTypeId"
    );

    // HubSpot's retry of the delivery: every record found, nothing queued.
    let retry = body.replace(r#""attemptNumber":0"#, r#""attemptNumber":1"#);
    let (status, report) = h.deliver(&retry, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["duplicate"], 3);
    assert_eq!(report["ignored"], 1);
    assert_eq!(report["unreadable"], 1);
    assert!(h.drain_queue().await.is_empty());
    assert_eq!(h.records().await.len(), 4);
}

/// The two formats of a change in separate deliveries, in either order
/// (HubSpot sends each subscription's events on their own schedule): the
/// second is a duplicate of the first, as a redelivery is.
#[tokio::test]
async fn both_formats_in_two_deliveries_queue_each_change_once() {
    let h = Harness::new("bothformats2").await;
    let legacy: Vec<serde_json::Value> = serde_json::from_str(&property_changes(4, 0)).unwrap();
    let generic: Vec<serde_json::Value> = legacy.iter().map(|e| as_generic(e, "0-2")).collect();
    // Changes 0 and 1 come legacy first, 2 and 3 generic first.
    let first = json!([legacy[0], legacy[1], generic[2], generic[3]]).to_string();
    let second = json!([generic[0], generic[1], legacy[2], legacy[3]]).to_string();
    let (status, report) = h.deliver(&first, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["new"], 4);
    let (status, report) = h.deliver(&second, Signing::V3(now_ms())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"received":4,"new":0,"duplicate":4,"requeued":0,"failed":0,"in_flight":0,"ignored":0,"unreadable":0})
    );
    let messages = h.drain_queue().await;
    let keys = dedup_keys(&messages);
    assert_eq!(keys.len(), 4);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 4);
    let generic_first = messages
        .iter()
        .filter(|m| m["event"]["objectTypeId"] == "0-2")
        .count();
    assert_eq!(generic_first, 2, "whichever came first is the one queued");
    assert!(
        messages
            .iter()
            .all(|m| m["event"]["subscriptionType"] == "company.propertyChange")
    );
    assert_eq!(h.records().await.len(), 4);
}

/// The committed sample of a generic delivery (`events/webhook-generic-v1.json`,
/// for `cargo lambda invoke --data-file`) is what it says: a change in both
/// formats, two more generic company events and a generic contact change.
#[tokio::test]
async fn the_committed_generic_sample_gets_the_answer_it_claims() {
    let h = Harness::new("genericsample").await;
    let path = integration_tests::workspace_root().join("events/webhook-generic-v1.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let event: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (status, report) = Harness::deliver_with(&h.receiver, &event).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"received":5,"new":3,"duplicate":1,"requeued":0,"failed":0,"in_flight":0,"ignored":1,"unreadable":0})
    );
}

/// `infra/hubspot/webhooks.json`, the app's subscriptions in the developer
/// platform's format, subscribes to a change of every property the
/// default mapping names and to company creation, deletion, merge and
/// restore; and an event of each subscription is one the receiver queues.
#[test]
fn the_apps_webhook_subscriptions_cover_the_mapping() {
    let path = integration_tests::workspace_root().join("infra/hubspot/webhooks.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let app: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(app["type"], "webhooks");
    assert!(app["uid"].is_string());
    let config = &app["config"];
    assert!(config["settings"]["targetUrl"].is_string());
    assert!(config["settings"]["maxConcurrentRequests"].as_u64() <= Some(10));
    let subscriptions = config["subscriptions"]["crmObjects"]
        .as_array()
        .expect("crmObjects");
    let mut properties = Vec::new();
    let mut lifecycle = Vec::new();
    for (i, sub) in subscriptions.iter().enumerate() {
        assert_eq!(sub["objectType"], "company", "{sub}");
        assert_eq!(sub["active"], true, "{sub}");
        let ty = sub["subscriptionType"].as_str().unwrap_or_default();
        match sub["propertyName"].as_str() {
            Some(p) => {
                assert_eq!(ty, "object.propertyChange", "{sub}");
                properties.push(p);
            }
            None => lifecycle.push(ty),
        }
        let event = json!([{"eventId": i, "subscriptionId": 1, "portalId": 62515,
            "occurredAt": 1_763_700_000_000u64, "subscriptionType": ty, "objectTypeId": "0-2",
            "objectId": 42, "propertyName": sub["propertyName"], "propertyValue": "x"}]);
        let event = event.to_string();
        let delivery = hubwarp::hubspot::webhook::read_delivery(event.as_bytes())
            .unwrap_or_else(|e| panic!("{sub}: {e}"));
        assert_eq!(delivery.events.len(), 1, "{sub}: {:?}", delivery.unhandled);
    }
    let mapping = hubwarp::mapping::MappingSet::default_mapping().expect("the default mapping");
    let mut mapped = mapping.properties();
    properties.sort_unstable();
    mapped.sort_unstable();
    assert_eq!(properties, mapped, "one subscription per mapped property");
    lifecycle.sort_unstable();
    assert_eq!(
        lifecycle,
        [
            "object.creation",
            "object.deletion",
            "object.merge",
            "object.restore"
        ]
    );
}
