//! `hubwarp dlq list` / `dlq redrive`: the sync queue's dead-letter queue.
//!
//! The DLQ is found from the sync queue's redrive policy, so the operator
//! needs only `SYNC_QUEUE_URL`. Why a message is there: a body the consumer
//! cannot read says so itself (the consumer's own reader is asked again);
//! for a readable one, the event record holds the consumer's last error.
//!
//! Redrive receives, sends to the sync queue and deletes, one message at a
//! time, rather than SQS's `StartMessageMoveTask`: that task runs
//! asynchronously (the count moved is not known when it returns), and the
//! moto server the tests and the local stack use does not implement it. A
//! crash between send and delete leaves a copy in both queues, which the
//! consumer's dedup makes harmless.

use std::collections::HashSet;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde::Serialize;
use tracing::info;

use super::OperateError;
use crate::queue::SyncMessage;
use crate::store::records::EventRecords;

fn sqs_error<E: std::error::Error + 'static>(e: E) -> OperateError {
    OperateError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// The dead-letter queue of `source_url`, from its redrive policy.
pub async fn dlq_url(sqs: &Client, source_url: &str) -> Result<String, OperateError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(source_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(sqs_error)?
        .attributes
        .unwrap_or_default();
    let policy = attrs
        .get(&QueueAttributeName::RedrivePolicy)
        .ok_or_else(|| {
            OperateError::NotFound(format!(
                "the sync queue {source_url} has no redrive policy, so no dead-letter queue"
            ))
        })?;
    let arn = serde_json::from_str::<serde_json::Value>(policy)
        .ok()
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_string))
        .ok_or_else(|| {
            OperateError::Queue("the redrive policy names no deadLetterTargetArn".into())
        })?;
    crate::queue::sqs::url_of_arn(sqs, &arn)
        .await
        .map_err(OperateError::Queue)
}

/// A message in the DLQ and why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub sent_at_ms: Option<i64>,
    /// Receives before this listing, those before it moved here included
    /// (SQS keeps the count; each listing adds one).
    pub receive_count: Option<u32>,
    pub dedup_key: Option<String>,
    pub event_status: Option<String>,
    pub why: String,
}

/// The messages in the DLQ (at most `max`), left there: each is received
/// once and made visible again at once.
pub async fn list<E: EventRecords>(
    sqs: &Client,
    dlq_url: &str,
    events: &E,
    max: usize,
) -> Result<Vec<DeadLetter>, OperateError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut handles = Vec::new();
    while out.len() < max {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(sqs_error)?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in got {
            let id = m.message_id.clone().unwrap_or_default();
            if let Some(h) = m.receipt_handle.clone() {
                handles.push(h);
            }
            if !seen.insert(id.clone()) || out.len() >= max {
                continue;
            }
            let attr = |name: MessageSystemAttributeName| {
                m.attributes
                    .as_ref()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<i64>().ok())
            };
            let body = m.body.as_deref().unwrap_or_default();
            let (dedup_key, event_status, why) = match SyncMessage::read(body) {
                Err(e) => (None, None, format!("the consumer cannot read it: {e}")),
                Ok(msg) => {
                    let key = msg.dedup_key.to_string();
                    match events.record(&key).await? {
                        None => (
                            Some(key),
                            None,
                            "its event record is gone (expired): no error kept".to_string(),
                        ),
                        Some(r) => {
                            let why = match &r.last_error {
                                Some(e) => format!(
                                    "last error ({} failure{}): {e}",
                                    r.failures,
                                    if r.failures == 1 { "" } else { "s" }
                                ),
                                None => match &r.reason {
                                    Some(reason) => format!("event {}: {reason}", r.status),
                                    None => format!("no failure recorded (event {})", r.status),
                                },
                            };
                            (Some(key), Some(r.status), why)
                        }
                    }
                }
            };
            out.push(DeadLetter {
                message_id: id,
                sent_at_ms: attr(MessageSystemAttributeName::SentTimestamp),
                // This listing's own receive is one of them.
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .map(|n| n.saturating_sub(1).max(0) as u32),
                dedup_key,
                event_status,
                why,
            });
        }
    }
    // Back in the queue at once: listing is not taking.
    for h in handles {
        sqs.change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(h)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(sqs_error)?;
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redrive {
    pub moved: usize,
    pub from: String,
    pub to: String,
}

/// Moves up to `max` messages from the DLQ back to the sync queue.
pub async fn redrive(
    sqs: &Client,
    dlq_url: &str,
    source_url: &str,
    max: usize,
) -> Result<Redrive, OperateError> {
    let mut done = Redrive {
        moved: 0,
        from: dlq_url.to_string(),
        to: source_url.to_string(),
    };
    while done.moved < max {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10.min((max - done.moved) as i32))
            .visibility_timeout(60)
            .send()
            .await
            .map_err(sqs_error)?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in got {
            sqs.send_message()
                .queue_url(source_url)
                .message_body(m.body.unwrap_or_default())
                .send()
                .await
                .map_err(sqs_error)?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .set_receipt_handle(m.receipt_handle)
                .send()
                .await
                .map_err(sqs_error)?;
            info!(message_id = ?m.message_id, "dead letter moved back to the sync queue");
            done.moved += 1;
        }
    }
    Ok(done)
}
