use std::sync::Arc;

use super::*;
use crate::hubspot::webhook::parse_delivery;
use crate::queue::MemoryQueue;
use crate::store::{EventStatus, MemoryEventLog};

fn body(n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventId":{i},"subscriptionId":7,"portalId":9,"occurredAt":{},"subscriptionType":"company.propertyChange","objectId":{},"propertyName":"name","propertyValue":"v{i}"}}"#,
                1_700_000_000_000u64 + i as u64,
                100 + i
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

fn intake() -> Intake<MemoryEventLog, MemoryQueue> {
    Intake::new(
        MemoryEventLog::new(),
        MemoryQueue::new(),
        IntakeSettings::default(),
    )
}

#[tokio::test]
async fn new_events_are_recorded_and_queued() {
    let intake = intake();
    let raw = body(3);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    let report = intake.accept(&events, "req-1").await;
    assert_eq!(
        report,
        IntakeReport {
            received: 3,
            new: 3,
            ..Default::default()
        }
    );
    assert!(report.is_complete());
    assert_eq!(intake.queue().bodies().len(), 3);
    let key = events[0].dedup_key();
    assert_eq!(intake.log().get(&key).unwrap().status, EventStatus::Queued);

    let bodies = intake.queue().bodies();
    let msg: SyncMessage<'_> = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(msg.dedup_key, key);
    assert_eq!(msg.event, events[0]);
}

#[tokio::test]
async fn redelivery_and_repeats_queue_nothing_new() {
    let intake = intake();
    let raw = body(2);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    intake.accept(&events, "req-1").await;
    let again = intake.accept(&events, "req-2").await;
    assert_eq!(
        again,
        IntakeReport {
            received: 2,
            duplicate: 2,
            ..Default::default()
        }
    );

    let doubled = vec![events[0].clone(), events[0].clone()];
    let fresh = super::tests::intake();
    let r = fresh.accept(&doubled, "req-3").await;
    assert_eq!(
        r,
        IntakeReport {
            received: 2,
            new: 1,
            duplicate: 1,
            ..Default::default()
        }
    );
    assert_eq!(fresh.queue().bodies().len(), 1);
}

#[tokio::test]
async fn a_failed_send_is_retried_by_the_next_delivery_exactly_once() {
    let intake = intake();
    let raw = body(3);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    intake.queue().fail_once(&events[1].dedup_key());
    let first = intake.accept(&events, "req-1").await;
    assert_eq!(
        first,
        IntakeReport {
            received: 3,
            new: 2,
            failed: 1,
            ..Default::default()
        }
    );
    assert!(!first.is_complete());
    let rec = intake.log().get(&events[1].dedup_key()).unwrap();
    assert_eq!(rec.status, EventStatus::Received);
    assert_eq!(rec.lease_until_ms, 0, "lease released for the retry");

    let retry = intake.accept(&events, "req-2").await;
    assert_eq!(
        retry,
        IntakeReport {
            received: 3,
            duplicate: 2,
            requeued: 1,
            ..Default::default()
        }
    );
    assert_eq!(intake.queue().bodies().len(), 3);
}

#[tokio::test]
async fn a_crashed_delivery_is_taken_over_after_its_lease() {
    let settings = IntakeSettings {
        lease: Duration::from_millis(50),
        ..Default::default()
    };
    let log = MemoryEventLog::new();
    let raw = body(1);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    let key = events[0].dedup_key();
    // A delivery that recorded the event and died before queueing it.
    let crashed = Intake::new(log, MemoryQueue::new(), settings.clone());
    crashed.queue().fail_all(true);
    crashed.accept(&events, "crashed").await;
    let log = crashed.log;
    // Simulate the crash: the lease was never released.
    {
        let rec = log.get(&key).unwrap();
        assert_eq!(rec.status, EventStatus::Received);
    }
    let survivor = Intake::new(log, MemoryQueue::new(), settings);
    let r = survivor.accept(&events, "retry").await;
    assert_eq!(r.requeued, 1);
    assert_eq!(survivor.queue().bodies().len(), 1);
}

#[tokio::test]
async fn a_delivery_waits_for_a_concurrent_holder() {
    let intake = Arc::new(intake());
    let raw = body(1);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    let key = events[0].dedup_key();
    // Another delivery holds a live lease...
    let lease = Lease {
        owner: "other".into(),
        until_ms: now_ms() + 60_000,
    };
    let msg = "{}";
    intake
        .log()
        .claim(
            &NewEvent {
                dedup_key: &key,
                event: &events[0],
                message: msg,
            },
            &lease,
            now_ms(),
            0,
        )
        .await
        .unwrap();
    // ...and finishes a moment later.
    let finisher = {
        let intake = intake.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            intake
                .log()
                .mark_queued(&key, "other", now_ms())
                .await
                .unwrap();
        })
    };
    let r = intake.accept(&events, "waiter").await;
    finisher.await.unwrap();
    assert_eq!(
        r,
        IntakeReport {
            received: 1,
            duplicate: 1,
            ..Default::default()
        }
    );
    assert!(intake.queue().bodies().is_empty());
}

#[tokio::test]
async fn a_holder_that_never_finishes_gets_retry_later() {
    let settings = IntakeSettings {
        in_flight_wait: Duration::from_millis(80),
        ..Default::default()
    };
    let intake = Intake::new(MemoryEventLog::new(), MemoryQueue::new(), settings);
    let raw = body(1);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    let key = events[0].dedup_key();
    let lease = Lease {
        owner: "other".into(),
        until_ms: now_ms() + 60_000,
    };
    intake
        .log()
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
    let r = intake.accept(&events, "waiter").await;
    assert_eq!(
        r,
        IntakeReport {
            received: 1,
            in_flight: 1,
            ..Default::default()
        }
    );
    assert!(!r.is_complete());
}

#[tokio::test]
async fn applied_events_stay_settled() {
    let intake = intake();
    let raw = body(1);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    intake.accept(&events, "req-1").await;
    intake
        .log()
        .set_status(&events[0].dedup_key(), EventStatus::Applied);
    let r = intake.accept(&events, "req-2").await;
    assert_eq!(r.duplicate, 1);
    assert_eq!(intake.queue().bodies().len(), 1);
}

#[test]
fn error_chain_joins_causes() {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);
    let e = Outer(std::io::Error::other("inner"));
    assert_eq!(error_chain(&e), "outer: inner");
}

#[tokio::test]
async fn overlapping_deliveries_never_wait_on_each_other_in_a_circle() {
    // Delivery B holds Y and will only finish once X is queued (it carries X
    // too). Delivery A carries X and Y. A must queue X before waiting on Y.
    let settings = IntakeSettings {
        in_flight_wait: Duration::from_millis(1_500),
        ..Default::default()
    };
    let intake = Arc::new(Intake::new(
        MemoryEventLog::new(),
        MemoryQueue::new(),
        settings,
    ));
    let raw = body(2);
    let events = parse_delivery(raw.as_bytes()).unwrap();
    let (x, y) = (events[0].dedup_key(), events[1].dedup_key());
    let lease = Lease {
        owner: "B".into(),
        until_ms: now_ms() + 60_000,
    };
    intake
        .log()
        .claim(
            &NewEvent {
                dedup_key: &y,
                event: &events[1],
                message: "{}",
            },
            &lease,
            now_ms(),
            0,
        )
        .await
        .unwrap();
    let b = {
        let intake = intake.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                if intake
                    .log()
                    .get(&x)
                    .is_some_and(|r| r.status == EventStatus::Queued)
                {
                    return intake.log().mark_queued(&y, "B", now_ms()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        })
    };
    let report = intake.accept(&events, "A").await;
    assert!(b.await.unwrap(), "B saw X queued and finished");
    assert_eq!(
        report,
        IntakeReport {
            received: 2,
            new: 1,
            duplicate: 1,
            ..Default::default()
        }
    );
}
