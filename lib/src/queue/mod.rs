//! The sync queue: the message the receiver sends and the consumer reads,
//! and the port that sends it.

pub mod memory;
pub mod sqs;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::hubspot::webhook::WebhookEvent;

pub use memory::MemoryQueue;
pub use sqs::SqsQueue;

/// The largest body one SQS message carries (and a whole SendMessageBatch).
/// SQS has taken up to 1 MiB since 2025; 256 KiB, its limit before, is
/// what every region and the local stack accept, and no single HubSpot
/// change comes near it.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Body of one sync-queue message: one HubSpot change and its dedup key.
///
/// The receiver and the consumer deploy as separate functions, so during a
/// deploy or a rollback one release's messages are read by the other's
/// consumer. `v` names the body's format: the consumer reads
/// [`SyncMessage::READABLE`] (the current format and the previous one) and
/// hands anything else back to the queue, towards the DLQ, rather than
/// guess; the receiver writes [`SyncMessage::WRITE_VERSION`], the oldest
/// format the previous release's consumer reads.
///
/// Version 1 is the body as first released, which had no `v`: a missing
/// `v` reads as 1. Writing `"v":1` explicitly is safe for that first
/// consumer because it ignores fields it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncMessage<'a> {
    /// Format version; see the type's documentation.
    #[serde(default = "version_one")]
    pub v: u32,
    /// Key of the event's record in the event log; the consumer marks that
    /// record applied, which makes a redelivered message a no-op.
    pub dedup_key: std::borrow::Cow<'a, str>,
    /// When the receiver first accepted the event (epoch ms).
    pub received_at: i64,
    #[serde(borrow)]
    pub event: WebhookEvent<'a>,
}

fn version_one() -> u32 {
    1
}

impl SyncMessage<'_> {
    /// The format this release's consumer reads best.
    pub const CURRENT_VERSION: u32 = 1;
    /// What this release's receiver writes: the oldest format the previous
    /// release's consumer reads (see docs/operating.md, "Upgrading").
    pub const WRITE_VERSION: u32 = 1;
    /// Formats this release's consumer reads: the current one and the
    /// previous one (1 doubles as both until a format changes).
    pub const READABLE: std::ops::RangeInclusive<u32> = 1..=Self::CURRENT_VERSION;

    /// Reads a queue body of any readable version, or says why not (the
    /// reason names the problem and never echoes the body).
    pub fn read(body: &str) -> Result<SyncMessage<'_>, UnreadableMessage> {
        // The version is read first, on its own: a body of an unknown
        // version may well parse as a known one and mean something else.
        #[derive(Deserialize)]
        struct Version {
            #[serde(default)]
            v: Option<serde_json::Value>,
        }
        let probe: Version = serde_json::from_str(body).map_err(|e| {
            if e.is_data() {
                UnreadableMessage::Shape(classify(&e))
            } else {
                UnreadableMessage::NotJson(classify(&e))
            }
        })?;
        let v = match probe.v {
            None => 1,
            Some(serde_json::Value::Number(n)) => match n.as_u64().map(u32::try_from) {
                Some(Ok(v)) => v,
                _ => return Err(UnreadableMessage::Version("not a small integer".into())),
            },
            Some(_) => return Err(UnreadableMessage::Version("not a number".into())),
        };
        if !Self::READABLE.contains(&v) {
            return Err(UnreadableMessage::Version(v.to_string()));
        }
        let de = &mut serde_json::Deserializer::from_str(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let what = classify(e.inner());
            UnreadableMessage::Shape(if path == "." {
                what
            } else {
                format!("field {path}: {what}")
            })
        })
    }
}

fn classify(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Eof => "unexpected end of input",
        // serde's message names the field and may quote the value: keep
        // the part before any quote.
        Category::Data => {
            return e
                .to_string()
                .split('"')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Why the consumer cannot read a queue message. The message goes back to
/// the queue (and on to the DLQ): a newer consumer, or a person, can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableMessage {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("format version {0} is not one this consumer reads")]
    Version(String),
    #[error("body is not a sync message: {0}")]
    Shape(String),
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

#[cfg(test)]
mod tests {
    use super::*;

    const BODY_V1: &str = r#"{"dedupKey":"k","receivedAt":1,"event":{"eventId":1,"subscriptionId":2,
        "portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.propertyChange",
        "objectId":42,"propertyName":"name","propertyValue":"Acme"}}"#;

    #[test]
    fn the_first_format_without_a_version_reads_as_version_one() {
        let m = SyncMessage::read(BODY_V1).unwrap();
        assert_eq!(m.v, 1);
        assert_eq!(m.event.object_id, 42);
        let explicit = BODY_V1.replacen('{', r#"{"v":1,"#, 1);
        assert_eq!(SyncMessage::read(&explicit).unwrap(), m);
    }

    #[test]
    fn what_nothing_here_reads_is_refused_with_a_reason() {
        let v99 = BODY_V1.replacen('{', r#"{"v":99,"#, 1);
        assert_eq!(
            SyncMessage::read(&v99).unwrap_err(),
            UnreadableMessage::Version("99".into())
        );
        let v_text = BODY_V1.replacen('{', r#"{"v":"2","#, 1);
        assert!(matches!(
            SyncMessage::read(&v_text),
            Err(UnreadableMessage::Version(_))
        ));
        assert!(matches!(
            SyncMessage::read("garbage"),
            Err(UnreadableMessage::NotJson(_))
        ));
        assert!(matches!(
            SyncMessage::read("null"),
            Err(UnreadableMessage::Shape(_))
        ));
        let missing = BODY_V1.replace(r#""dedupKey":"k","#, "");
        match SyncMessage::read(&missing) {
            Err(UnreadableMessage::Shape(reason)) => {
                assert!(reason.contains("dedupKey"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let bad = BODY_V1.replace(r#""objectId":42"#, r#""objectId":"forty-two""#);
        let reason = SyncMessage::read(&bad).unwrap_err().to_string();
        assert!(reason.contains("event.objectId"), "{reason}");
        assert!(!reason.contains("forty-two"), "{reason}");
    }

    /// The previous release's message type, frozen as it shipped: its
    /// consumer must read what this release's receiver writes.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PreviousRelease<'a> {
        dedup_key: std::borrow::Cow<'a, str>,
        received_at: i64,
        #[serde(borrow)]
        event: WebhookEvent<'a>,
    }

    #[test]
    fn the_previous_consumer_reads_what_this_receiver_writes() {
        let current = SyncMessage::read(BODY_V1).unwrap();
        let written = serde_json::to_string(&SyncMessage {
            v: SyncMessage::WRITE_VERSION,
            ..current.clone()
        })
        .unwrap();
        assert!(written.starts_with(r#"{"v":1,"#), "{written}");
        let old: PreviousRelease<'_> = serde_json::from_str(&written).unwrap();
        assert_eq!(old.dedup_key, current.dedup_key);
        assert_eq!(old.received_at, current.received_at);
        assert_eq!(old.event, current.event);
        assert!(SyncMessage::READABLE.contains(&SyncMessage::WRITE_VERSION));
    }
}
