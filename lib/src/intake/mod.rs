//! Intake: record each event of a verified delivery, then queue it, so that
//! nothing is lost and nothing is queued twice in the normal case.
//!
//! The dual write (DynamoDB, then SQS) is closed with a lease on each record:
//!
//! 1. `claim` records the event as RECEIVED with a lease owned by this
//!    delivery, in one conditional write. An event already QUEUED (or
//!    further) is a duplicate; one RECEIVED under another delivery's live
//!    lease is in flight, so this delivery waits for it briefly; one whose
//!    lease has lapsed (its delivery crashed) is taken over.
//! 2. Claimed events go to SQS in batches.
//! 3. Sent events are marked QUEUED; unsent ones have their lease released,
//!    so HubSpot's retry (the delivery is answered 5xx) queues them at once.
//!
//! A crash between 1 and 3 leaves the record RECEIVED: the next delivery of
//! the event takes it over when the lease lapses, or a sweep re-queues it from
//! the `message` kept on the record. A crash between 2 and 3 can queue an
//! event twice, which the consumer absorbs (the record is marked applied).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream;
use tracing::{info, warn};

use crate::error::error_chain;
use crate::hubspot::webhook::{Delivery, Disposition, Unhandled, WebhookEvent};
use crate::queue::{MAX_MESSAGE_BYTES, Outgoing, SyncMessage, SyncQueue};
use crate::store::{ClaimOutcome, EventLog, Lease, NewEvent};
use crate::time::now_ms;

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// How long a delivery may hold an event before another may take it
    /// over. Longer than the function's timeout, so a live delivery is never
    /// overtaken.
    pub lease: Duration,
    /// How long to wait for another delivery that holds the same event before
    /// answering "retry later". Well under HubSpot's 5-second timeout.
    pub in_flight_wait: Duration,
    /// How long event records live (the table's TTL).
    pub retention: Duration,
    /// Concurrent DynamoDB writes per delivery.
    pub concurrency: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            in_flight_wait: Duration::from_millis(2_500),
            retention: Duration::from_secs(30 * 24 * 3600),
            concurrency: 32,
        }
    }
}

/// What happened to one delivery's events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntakeReport {
    /// Events in the body.
    pub received: usize,
    /// Recorded and queued for the first time.
    pub new: usize,
    /// Already queued by an earlier delivery, or repeated within this body.
    pub duplicate: usize,
    /// Recorded by an earlier delivery that never queued them; queued now.
    pub requeued: usize,
    /// Could not be recorded or queued; the delivery must be retried.
    pub failed: usize,
    /// Held by another delivery that did not finish within the wait.
    pub in_flight: usize,
    /// Recorded IGNORED (now or by an earlier delivery), never queued:
    /// events the project does not act on.
    pub ignored: usize,
    /// Recorded UNREADABLE (now or by an earlier delivery), never queued:
    /// events the receiver could not read.
    pub unreadable: usize,
}

impl IntakeReport {
    /// Every event is durably recorded and on the queue: the delivery may be
    /// acknowledged.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.in_flight == 0
    }

    /// What became of the delivery's events, as CloudWatch metrics.
    pub fn count(&self) {
        use crate::metrics::name;
        let n = |v: usize| v as u64;
        crate::metrics::counts(&[
            (name::EVENTS_RECEIVED, n(self.received)),
            (name::EVENTS_NEW, n(self.new)),
            (name::EVENTS_DUPLICATE, n(self.duplicate)),
            (name::EVENTS_REQUEUED, n(self.requeued)),
            (name::EVENTS_IGNORED, n(self.ignored)),
            (name::EVENTS_UNREADABLE, n(self.unreadable)),
        ]);
    }
}

/// An event of this delivery, ready to record and queue.
struct Pending<'a, 'e> {
    key: String,
    event: &'a WebhookEvent<'e>,
    /// The queue message body.
    message: String,
}

enum Claim {
    Mine { took_over: bool },
    Duplicate,
    InFlight,
    Failed,
}

pub struct Intake<L, Q> {
    log: L,
    queue: Q,
    settings: IntakeSettings,
}

impl<L: EventLog, Q: SyncQueue> Intake<L, Q> {
    pub fn new(log: L, queue: Q, settings: IntakeSettings) -> Self {
        Self {
            log,
            queue,
            settings,
        }
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// Records a whole delivery: its events queued as [`Intake::accept`]
    /// does, and the ones the project does not act on or cannot read
    /// recorded with their status and reason, never queued. A record that
    /// cannot be written counts as failed, so the delivery is retried.
    pub async fn accept_delivery(&self, delivery: &Delivery<'_>, request_id: &str) -> IntakeReport {
        let mut report = self.accept(&delivery.events, request_id).await;
        report.received += delivery.unhandled.len();
        if delivery.unhandled.is_empty() {
            return report;
        }
        let received_at = now_ms();
        let expires_at_s = (received_at / 1000) + self.settings.retention.as_secs() as i64;
        let futures: Vec<_> = delivery
            .unhandled
            .iter()
            .map(|u| self.record_unhandled(u, received_at, expires_at_s, request_id))
            .collect();
        let outcomes: Vec<_> = stream::iter(futures)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Some(Disposition::Ignored) => report.ignored += 1,
                Some(Disposition::Unreadable) => report.unreadable += 1,
                None => report.failed += 1,
            }
        }
        report
    }

    /// Records one unhandled event; None when the record could not be
    /// written (the delivery must be retried, or the event would be lost
    /// without a trace).
    async fn record_unhandled(
        &self,
        event: &Unhandled,
        now_ms: i64,
        expires_at_s: i64,
        request_id: &str,
    ) -> Option<Disposition> {
        match self.log.record_unhandled(event, now_ms, expires_at_s).await {
            Ok(recorded) => {
                info!(
                    request_id,
                    dedup_key = %event.dedup_key,
                    index = event.index,
                    status = event.disposition.as_str(),
                    reason = %event.reason,
                    subscription_type = event.summary.subscription_type.as_deref().unwrap_or("-"),
                    first_time = recorded,
                    "event recorded, not queued"
                );
                Some(event.disposition)
            }
            Err(e) => {
                warn!(
                    request_id,
                    dedup_key = %event.dedup_key,
                    status = event.disposition.as_str(),
                    error = %error_chain(&e),
                    "unhandled event not recorded; retry"
                );
                None
            }
        }
    }

    /// Records and queues `events`. `request_id` owns the leases taken, and
    /// ties log lines to the delivery.
    pub async fn accept(&self, events: &[WebhookEvent<'_>], request_id: &str) -> IntakeReport {
        let mut report = IntakeReport {
            received: events.len(),
            ..Default::default()
        };
        let received_at = now_ms();

        // Within one body, the first copy of a change stands for all.
        let mut seen = HashSet::with_capacity(events.len());
        let mut unique = Vec::with_capacity(events.len());
        for event in events {
            let key = event.dedup_key();
            if seen.insert(key.clone()) {
                unique.push((key, event));
            } else {
                report.duplicate += 1;
            }
        }
        // A change whose message the queue cannot carry would be refused on
        // every retry: it is recorded UNREADABLE with the reason instead.
        let mut oversize = Vec::new();
        let pending: Vec<Pending<'_, '_>> = unique
            .into_iter()
            .enumerate()
            .filter_map(|(index, (key, event))| {
                let msg = SyncMessage {
                    v: SyncMessage::WRITE_VERSION,
                    dedup_key: key.as_str().into(),
                    received_at,
                    event: event.clone(),
                };
                match serde_json::to_string(&msg) {
                    Ok(message) if message.len() > MAX_MESSAGE_BYTES => {
                        oversize.push(Unhandled::of(
                            index,
                            event,
                            Disposition::Unreadable,
                            format!(
                                "its queue message would be {} bytes, over the {MAX_MESSAGE_BYTES} an SQS message carries",
                                message.len()
                            ),
                        ));
                        None
                    }
                    Ok(message) => Some(Pending {
                        key,
                        event,
                        message,
                    }),
                    Err(e) => {
                        // Cannot happen for these types; counted, not hidden.
                        warn!(request_id, dedup_key = %key, error = %e, "could not build queue message");
                        report.failed += 1;
                        None
                    }
                }
            })
            .collect();

        let lease = Lease {
            owner: request_id.to_string(),
            until_ms: received_at + self.settings.lease.as_millis() as i64,
        };
        let expires_at_s = (received_at / 1000) + self.settings.retention.as_secs() as i64;

        // Round one claims without waiting and queues what it got. Only then
        // does round two wait for events other deliveries hold: two
        // deliveries that overlap each queue their own claims first, so
        // neither ever waits on the other in a circle.
        let mut round: Vec<usize> = (0..pending.len()).collect();
        for wait in [false, true] {
            let claims = self
                .claim_all(&pending, &round, wait, &lease, expires_at_s, request_id)
                .await;
            let mut to_send: Vec<(usize, bool)> = Vec::new();
            let mut held = Vec::new();
            for (i, claim) in claims {
                match claim {
                    Claim::Mine { took_over } => to_send.push((i, took_over)),
                    Claim::Duplicate => report.duplicate += 1,
                    Claim::InFlight => held.push(i),
                    Claim::Failed => report.failed += 1,
                }
            }
            self.queue_claimed(&pending, to_send, &lease.owner, &mut report)
                .await;
            round = held;
            if round.is_empty() {
                break;
            }
        }
        report.in_flight += round.len();
        for u in &oversize {
            match self
                .record_unhandled(u, received_at, expires_at_s, request_id)
                .await
            {
                Some(_) => report.unreadable += 1,
                None => report.failed += 1,
            }
        }
        report
    }

    async fn claim_all(
        &self,
        pending: &[Pending<'_, '_>],
        indices: &[usize],
        wait: bool,
        lease: &Lease,
        expires_at_s: i64,
        request_id: &str,
    ) -> Vec<(usize, Claim)> {
        // Futures are built first and polled after: stream combinators over
        // borrowing closures trip the compiler's Send checks in Lambda's
        // handler bound.
        let futures: Vec<_> = indices
            .iter()
            .map(|&i| {
                let p = &pending[i];
                let new = NewEvent {
                    dedup_key: &p.key,
                    event: p.event,
                    message: &p.message,
                };
                self.claim_indexed(i, new, wait, lease, expires_at_s, request_id)
            })
            .collect();
        stream::iter(futures)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await
    }

    /// Sends the claimed events, then marks each queued or releases it.
    async fn queue_claimed(
        &self,
        pending: &[Pending<'_, '_>],
        mut to_send: Vec<(usize, bool)>,
        owner: &str,
        report: &mut IntakeReport,
    ) {
        if to_send.is_empty() {
            return;
        }
        to_send.sort_unstable_by_key(|(i, _)| *i);
        let outgoing: Vec<Outgoing<'_>> = to_send
            .iter()
            .map(|(i, _)| Outgoing {
                id: &pending[*i].key,
                body: &pending[*i].message,
            })
            .collect();
        let sent = self.queue.send_all(&outgoing).await;
        let settle: Vec<_> = to_send
            .iter()
            .zip(sent)
            .map(|((i, took_over), result)| {
                self.settle(&pending[*i].key, owner, *took_over, result)
            })
            .collect();
        for outcome in stream::iter(settle)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
        {
            match outcome {
                Ok(true) => report.requeued += 1,
                Ok(false) => report.new += 1,
                Err(()) => report.failed += 1,
            }
        }
    }

    async fn claim_indexed(
        &self,
        index: usize,
        event: NewEvent<'_>,
        wait: bool,
        lease: &Lease,
        expires_at_s: i64,
        request_id: &str,
    ) -> (usize, Claim) {
        (
            index,
            self.claim(&event, wait, lease, expires_at_s, request_id)
                .await,
        )
    }

    /// After the send: mark a sent event queued, or release an unsent one.
    /// Ok(took_over) when the event is on the queue.
    async fn settle(
        &self,
        key: &str,
        owner: &str,
        took_over: bool,
        result: Result<(), crate::queue::QueueError>,
    ) -> Result<bool, ()> {
        match result {
            Ok(()) => {
                if let Err(e) = self.log.mark_queued(key, owner, now_ms()).await {
                    // The event is on the queue, so the delivery can be
                    // acknowledged; a later redelivery may queue it again
                    // and the consumer will absorb the copy.
                    warn!(request_id = owner, dedup_key = key, error = %error_chain(&e), "queued but not marked queued");
                }
                Ok(took_over)
            }
            Err(e) => {
                warn!(request_id = owner, dedup_key = key, error = %e, "not queued; lease released for the retry");
                if let Err(e) = self.log.release(key, owner).await {
                    warn!(request_id = owner, dedup_key = key, error = %error_chain(&e), "lease not released; it will lapse");
                }
                Err(())
            }
        }
    }

    /// Claims one event; with `wait`, waits a bounded time for another
    /// delivery that holds it.
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        wait: bool,
        lease: &Lease,
        expires_at_s: i64,
        request_id: &str,
    ) -> Claim {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match self.log.claim(event, lease, now_ms(), expires_at_s).await {
                Ok(ClaimOutcome::Claimed { took_over }) => return Claim::Mine { took_over },
                Ok(ClaimOutcome::Settled(_)) => return Claim::Duplicate,
                Ok(ClaimOutcome::InFlight { .. }) if !wait => return Claim::InFlight,
                Ok(ClaimOutcome::InFlight { lease_until_ms }) => {
                    let waited = started.elapsed();
                    if waited >= self.settings.in_flight_wait {
                        warn!(
                            request_id,
                            dedup_key = event.dedup_key,
                            "held by another delivery; answering retry-later"
                        );
                        return Claim::InFlight;
                    }
                    // Wake when the holder has probably finished, or its lease
                    // lapses, whichever is sooner.
                    let until_lapse =
                        Duration::from_millis((lease_until_ms - now_ms()).max(1) as u64);
                    let budget = self.settings.in_flight_wait - waited;
                    tokio::time::sleep(pause.min(until_lapse).min(budget)).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(e) => {
                    warn!(request_id, dedup_key = event.dedup_key, error = %error_chain(&e), "event not recorded");
                    return Claim::Failed;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
