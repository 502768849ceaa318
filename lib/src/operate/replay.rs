//! `hubwarp replay`: recorded events back through the normal queue, from
//! the message the receiver kept on each record. Nothing is forced: the
//! consumer's own checks decide. An event already APPLIED is dropped as a
//! redelivery; one that FAILED, went UNMATCHED or was left RECEIVED is put
//! back to QUEUED first, so the consumer decides it again, and a change
//! older than the one last applied is skipped there as stale.

use serde::Serialize;
use tracing::info;

use super::OperateError;
use crate::queue::{Outgoing, SyncQueue};
use crate::store::records::{EventQuery, EventRecord, EventRecords};

/// Which events to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Event(String),
    Company(String),
    Window {
        since_ms: i64,
        until_ms: Option<i64>,
    },
}

/// One event sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub dedup_key: String,
    /// Its status before the replay.
    pub was: String,
    /// What the consumer will make of it.
    pub expect: String,
}

/// One event left where it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReplayed {
    pub dedup_key: String,
    pub status: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub requeued: Vec<Replayed>,
    pub skipped: Vec<NotReplayed>,
}

/// Replays the selected events; `now_ms` decides whether a RECEIVED
/// record's lease is still held.
pub async fn replay<E: EventRecords, Q: SyncQueue>(
    events: &E,
    queue: &Q,
    selection: &Selection,
    now_ms: i64,
) -> Result<ReplayReport, OperateError> {
    let records = match selection {
        Selection::Event(key) => match events.record(key).await? {
            Some(r) => vec![r],
            None => {
                return Err(OperateError::NotFound(format!(
                    "no event is recorded under the key {key}"
                )));
            }
        },
        Selection::Company(id) => {
            super::events::list(
                events,
                &EventQuery {
                    company_id: Some(id.clone()),
                    ..Default::default()
                },
                usize::MAX,
            )
            .await?
        }
        Selection::Window { since_ms, until_ms } => {
            if until_ms.is_some_and(|u| u < *since_ms) {
                return Err(OperateError::Invalid("--until is before --since".into()));
            }
            events
                .records(&EventQuery {
                    since_ms: Some(*since_ms),
                    until_ms: *until_ms,
                    ..Default::default()
                })
                .await?
        }
    };
    let mut report = ReplayReport::default();
    // Oldest first: the consumer sorts a batch by occurredAt anyway, and
    // batches come in the order they were sent.
    let mut records = records;
    records.reverse();
    for r in records {
        if let Some(why) = not_replayable(&r, now_ms) {
            report.skipped.push(NotReplayed {
                dedup_key: r.dedup_key,
                status: r.status,
                why,
            });
            continue;
        }
        let expect = match r.status.as_str() {
            "APPLIED" => "already applied: the consumer drops it as a redelivery".to_string(),
            "QUEUED" => "still queued: whichever copy comes first is applied, once".to_string(),
            other => {
                if !events.reopen(&r.dedup_key, other, now_ms).await? {
                    report.skipped.push(NotReplayed {
                        dedup_key: r.dedup_key,
                        status: r.status,
                        why: "its record changed while replaying; look again".into(),
                    });
                    continue;
                }
                "re-opened as QUEUED: the consumer decides it again (stale if a newer change was applied)"
                    .to_string()
            }
        };
        let body = r.message.as_deref().unwrap_or_default();
        let sent = queue.send_all(&[Outgoing { id: "0", body }]).await;
        match sent.into_iter().next() {
            Some(Ok(())) => {
                info!(dedup_key = %r.dedup_key, was = %r.status, "event replayed onto the sync queue");
                report.requeued.push(Replayed {
                    dedup_key: r.dedup_key,
                    was: r.status,
                    expect,
                });
            }
            Some(Err(e)) => {
                // A re-opened record stays QUEUED without a message: a
                // second replay (QUEUED is replayable) sends it.
                return Err(OperateError::Queue(format!(
                    "sending {} failed after {} were re-queued: {e}",
                    r.dedup_key,
                    report.requeued.len()
                )));
            }
            None => {}
        }
    }
    Ok(report)
}

fn not_replayable(r: &EventRecord, now_ms: i64) -> Option<String> {
    if r.message.is_none() && r.status == "APPLIED" {
        return Some(
            "already applied: a replay would change nothing (its message is not kept once applied)"
                .into(),
        );
    }
    if r.message.is_none() {
        return Some(format!(
            "never queued ({}){}",
            r.status,
            r.reason
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        ));
    }
    if r.status == "RECEIVED" && r.lease_until_ms.is_some_and(|until| until >= now_ms) {
        return Some(format!(
            "in flight: a delivery holds it until {}",
            crate::time::iso(r.lease_until_ms.unwrap_or_default())
        ));
    }
    None
}
