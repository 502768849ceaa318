//! The sync queue: the message the receiver sends and the consumer reads,
//! and the port that sends it.

pub mod memory;
pub mod sqs;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::hubspot::webhook::WebhookEvent;

pub use memory::MemoryQueue;
pub use sqs::SqsQueue;

/// Body of one sync-queue message: one HubSpot change and its dedup key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncMessage<'a> {
    /// Key of the event's record in the event log; the consumer marks that
    /// record applied, which makes a redelivered message a no-op.
    pub dedup_key: std::borrow::Cow<'a, str>,
    /// When the receiver first accepted the event (epoch ms).
    pub received_at: i64,
    #[serde(borrow)]
    pub event: WebhookEvent<'a>,
}

/// One message to send; `id` must be unique within the call.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub id: &'a str,
    pub body: &'a str,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("queue refused the message: {code}{}", if *.sender_fault { " (sender fault)" } else { "" })]
    Rejected { code: String, sender_fault: bool },
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("message of {size} bytes exceeds the queue limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

/// Sends messages to the sync queue.
pub trait SyncQueue: Send + Sync {
    /// Sends every message and returns one result per message, in order.
    /// Partial failure is normal: the caller decides per message.
    fn send_all(
        &self,
        messages: &[Outgoing<'_>],
    ) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send;
}
