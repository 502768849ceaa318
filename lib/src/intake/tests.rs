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

/// A 100-event delivery: 70 property changes, 10 association changes, 10 of
/// a type HubSpot may add later, 10 property changes without objectId.
fn mixed_body() -> String {
    let events: Vec<String> = (0..100)
        .map(|i| {
            let at = 1_700_000_000_000u64 + i as u64;
            match i % 10 {
                7 => format!(
                    r#"{{"eventId":{i},"subscriptionId":8,"portalId":9,"occurredAt":{at},"subscriptionType":"company.associationChange","associationType":"COMPANY_TO_CONTACT","fromObjectId":{},"toObjectId":5,"associationRemoved":false}}"#,
                    100 + i
                ),
                8 => format!(
                    r#"{{"eventId":{i},"subscriptionId":10,"portalId":9,"occurredAt":{at},"subscriptionType":"company.somethingNew","objectId":{}}}"#,
                    100 + i
                ),
                9 => format!(
                    r#"{{"eventId":{i},"subscriptionId":7,"portalId":9,"occurredAt":{at},"subscriptionType":"company.propertyChange","propertyName":"name","propertyValue":"v{i}"}}"#
                ),
                _ => format!(
                    r#"{{"eventId":{i},"subscriptionId":7,"portalId":9,"occurredAt":{at},"subscriptionType":"company.propertyChange","objectId":{},"propertyName":"name","propertyValue":"v{i}"}}"#,
                    100 + i
                ),
            }
        })
        .collect();
    format!("[{}]", events.join(","))
}

#[tokio::test]
async fn a_mixed_delivery_queues_what_it_acts_on_and_records_the_rest() {
    let intake = intake();
    let raw = mixed_body();
    let delivery = crate::hubspot::webhook::read_delivery(raw.as_bytes()).unwrap();
    let report = intake.accept_delivery(&delivery, "req-1").await;
    assert_eq!(
        report,
        IntakeReport {
            received: 100,
            new: 70,
            ignored: 20,
            unreadable: 10,
            ..Default::default()
        }
    );
    assert!(report.is_complete());
    let bodies = intake.queue().bodies();
    assert_eq!(bodies.len(), 70);
    for body in &bodies {
        let msg: SyncMessage<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(msg.event.action(), "propertyChange");
        assert_eq!(msg.v, SyncMessage::WRITE_VERSION);
    }
    assert_eq!(intake.log().len(), 100);
    for u in &delivery.unhandled {
        let rec = intake.log().get(&u.dedup_key).unwrap();
        assert_eq!(rec.status, u.disposition.into());
        assert_eq!(rec.reason.as_deref(), Some(u.reason.as_str()));
        assert!(rec.message.is_empty(), "never queued");
    }

    // HubSpot's retry of the whole delivery: nothing new anywhere.
    let retry = raw.replace(r#""eventId""#, r#""attemptNumber":1,"eventId""#);
    let delivery = crate::hubspot::webhook::read_delivery(retry.as_bytes()).unwrap();
    let again = intake.accept_delivery(&delivery, "req-2").await;
    assert_eq!(
        again,
        IntakeReport {
            received: 100,
            duplicate: 70,
            ignored: 20,
            unreadable: 10,
            ..Default::default()
        }
    );
    assert_eq!(intake.queue().bodies().len(), 70);
    assert_eq!(intake.log().len(), 100);
}

/// The memory log, except that unhandled events cannot be recorded.
struct NoUnhandled(MemoryEventLog);

impl EventLog for NoUnhandled {
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<ClaimOutcome, crate::store::StoreError> {
        self.0.claim(event, lease, now_ms, expires_at_s).await
    }
    async fn mark_queued(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<bool, crate::store::StoreError> {
        self.0.mark_queued(key, owner, now_ms).await
    }
    async fn status(&self, key: &str) -> Result<Option<EventStatus>, crate::store::StoreError> {
        self.0.status(key).await
    }
    async fn settle(
        &self,
        key: &str,
        status: &EventStatus,
        reason: &str,
    ) -> Result<(), crate::store::StoreError> {
        self.0.settle(key, status, reason).await
    }
    async fn record_unhandled(
        &self,
        _event: &Unhandled,
        _now_ms: i64,
        _expires_at_s: i64,
    ) -> Result<bool, crate::store::StoreError> {
        Err(crate::store::StoreError::Malformed {
            table: "events".into(),
            key: "-".into(),
            reason: "down".into(),
        })
    }
    async fn note_failure(
        &self,
        key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), crate::store::StoreError> {
        self.0.note_failure(key, error, now_ms).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), crate::store::StoreError> {
        self.0.release(key, owner).await
    }
}

#[tokio::test]
async fn an_unhandled_event_that_cannot_be_recorded_fails_the_delivery() {
    let intake = Intake::new(
        NoUnhandled(MemoryEventLog::new()),
        MemoryQueue::new(),
        IntakeSettings::default(),
    );
    let raw = mixed_body();
    let delivery = crate::hubspot::webhook::read_delivery(raw.as_bytes()).unwrap();
    let report = intake.accept_delivery(&delivery, "req-1").await;
    assert_eq!(report.failed, 30);
    assert_eq!(report.new, 70);
    assert!(!report.is_complete(), "answered 5xx: HubSpot retries");
}

/// One change of company 100 as the two formats send it: a legacy
/// `company.*` subscription and a generic `object.*` one, each under its
/// own subscription and event id.
fn both_formats() -> [String; 2] {
    let change = r#""portalId":9,"occurredAt":1700000000000,"objectId":100,"propertyName":"name","propertyValue":"Acme""#;
    [
        format!(
            r#"{{"eventId":1,"subscriptionId":7,"subscriptionType":"company.propertyChange",{change}}}"#
        ),
        format!(
            r#"{{"eventId":555,"subscriptionId":70,"subscriptionType":"object.propertyChange","objectTypeId":"0-2",{change}}}"#
        ),
    ]
}

#[tokio::test]
async fn one_change_in_both_formats_in_one_delivery_is_queued_once() {
    let intake = intake();
    let [legacy, generic] = both_formats();
    let raw = format!("[{generic},{legacy}]");
    let delivery = crate::hubspot::webhook::read_delivery(raw.as_bytes()).unwrap();
    assert_eq!(delivery.events.len(), 2, "both read as company changes");
    let report = intake.accept_delivery(&delivery, "req-1").await;
    assert_eq!(
        report,
        IntakeReport {
            received: 2,
            new: 1,
            duplicate: 1,
            ..Default::default()
        }
    );
    let bodies = intake.queue().bodies();
    assert_eq!(bodies.len(), 1);
    let msg: SyncMessage<'_> = serde_json::from_str(&bodies[0]).unwrap();
    // The first copy stands for both, and says how it came.
    assert_eq!(msg.event.subscription_type, "company.propertyChange");
    assert_eq!(msg.event.object_type_id.as_deref(), Some("0-2"));
    assert_eq!(msg.event.event_id, 555);
    assert_eq!(intake.log().len(), 1);
}

#[tokio::test]
async fn one_change_in_both_formats_in_two_deliveries_is_queued_once() {
    let [legacy, generic] = both_formats();
    for (first, second) in [(&legacy, &generic), (&generic, &legacy)] {
        let intake = intake();
        let mut reports = Vec::new();
        for (i, event) in [first, second].into_iter().enumerate() {
            let raw = format!("[{event}]");
            let delivery = crate::hubspot::webhook::read_delivery(raw.as_bytes()).unwrap();
            reports.push(intake.accept_delivery(&delivery, &format!("req-{i}")).await);
        }
        assert_eq!(reports[0].new, 1);
        assert_eq!(
            reports[1],
            IntakeReport {
                received: 1,
                duplicate: 1,
                ..Default::default()
            }
        );
        assert_eq!(intake.queue().bodies().len(), 1);
        assert_eq!(intake.log().len(), 1);
    }
}
