//! Persistence ports. Each trait is one capability; domain code takes only
//! the port it needs, and each real adapter has an in-memory twin for unit
//! tests.

pub mod breakers;
pub(crate) mod dynamo;
pub mod dynamo_events;
pub mod dynamo_sync;
pub mod memory;
pub mod memory_sync;
pub mod records;
pub mod reports;
pub mod sync;

use std::future::Future;

use crate::hubspot::webhook::{Disposition, Unhandled, WebhookEvent};

pub use dynamo_events::DynamoEventLog;
pub use dynamo_sync::{DynamoSyncStore, SyncTables};
pub use memory::MemoryEventLog;
pub use memory_sync::MemorySyncStore;
pub use reports::{MemoryReportStore, S3ReportStore};

/// Where a recorded webhook event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStatus {
    /// Recorded, not known to be on the queue yet. A lease says which delivery
    /// is queueing it; once the lease lapses another delivery (or a sweep)
    /// may take it over.
    Received,
    /// On the sync queue.
    Queued,
    /// Applied by the consumer; a redelivered message is a no-op.
    Applied,
    /// Recorded by the receiver and never queued: an event the project does
    /// not act on (association changes, other objects, new types).
    Ignored,
    /// Recorded by the receiver and never queued: an event it could not
    /// read; the record keeps the reason and the raw event.
    Unreadable,
    /// Any later state a consumer writes (failed, unmatched, ...): settled as
    /// far as the receiver is concerned.
    Other(String),
}

impl EventStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Received => "RECEIVED",
            Self::Queued => "QUEUED",
            Self::Applied => "APPLIED",
            Self::Ignored => "IGNORED",
            Self::Unreadable => "UNREADABLE",
            Self::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "RECEIVED" => Self::Received,
            "QUEUED" => Self::Queued,
            "APPLIED" => Self::Applied,
            "IGNORED" => Self::Ignored,
            "UNREADABLE" => Self::Unreadable,
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<Disposition> for EventStatus {
    fn from(d: Disposition) -> Self {
        match d {
            Disposition::Ignored => Self::Ignored,
            Disposition::Unreadable => Self::Unreadable,
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub dedup_key: &'a str,
    pub event: &'a WebhookEvent<'a>,
    /// The queue message body, kept with the record so that a record left
    /// unqueued can be queued again without the original request.
    pub message: &'a str,
}

/// Exclusive right, until `until_ms`, to queue an event.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

/// The result of trying to record an event and take its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This delivery holds the lease and must queue the event. `took_over`
    /// when an earlier delivery recorded it but never queued it.
    Claimed { took_over: bool },
    /// Queued (or further along) by an earlier delivery.
    Settled(EventStatus),
    /// Another delivery holds the lease right now.
    InFlight { lease_until_ms: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{operation} on table {table} failed")]
    Aws {
        operation: &'static str,
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("record {key} in table {table} is malformed: {reason}")]
    Malformed {
        table: String,
        key: String,
        reason: String,
    },
}

/// The receiver's idempotent event log.
pub trait EventLog: Send + Sync {
    /// Records the event if it is new, or takes over a record whose lease has
    /// lapsed while still unqueued. One conditional write, so two deliveries
    /// can never both hold the lease.
    fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Marks a claimed event as queued; false when this lease no longer
    /// holds (taken over, or already applied by a fast consumer).
    fn mark_queued(
        &self,
        dedup_key: &str,
        lease_owner: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The record's status, for the consumer: an event already settled is a
    /// no-op when its message comes again.
    fn status(
        &self,
        dedup_key: &str,
    ) -> impl Future<Output = Result<Option<EventStatus>, StoreError>> + Send;

    /// Marks an event settled by the consumer (APPLIED, or another final
    /// state such as UNMATCHED or FAILED) with the reason.
    fn settle(
        &self,
        dedup_key: &str,
        status: &EventStatus,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records an event that is never queued (IGNORED or UNREADABLE) with
    /// its reason, in one conditional write: true when recorded now, false
    /// when an earlier delivery already recorded it.
    fn record_unhandled(
        &self,
        event: &Unhandled,
        now_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes on the record why its message goes back to the queue (a
    /// transient failure), so whoever finds the message in the DLQ sees the
    /// last error. Status unchanged; a missing record is left missing.
    fn note_failure(
        &self,
        dedup_key: &str,
        error: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the lease up after a failed send, so HubSpot's retry can queue
    /// the event at once instead of waiting for the lease to lapse.
    fn release(
        &self,
        dedup_key: &str,
        lease_owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An event recorded but never queued, with the queue body kept on its
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckEvent {
    pub dedup_key: String,
    pub message: String,
    pub lease_until_ms: i64,
}

/// What the nightly sweep needs of the event log: records left RECEIVED
/// whose lease lapsed long ago (HubSpot stopped retrying them).
pub trait StuckEvents: Send + Sync {
    /// One page of records RECEIVED with a lease that lapsed before
    /// `lapsed_before_ms`; the key to continue from, if any.
    fn stuck_page(
        &self,
        lapsed_before_ms: i64,
        start: Option<String>,
    ) -> impl Future<Output = Result<(Vec<StuckEvent>, Option<String>), StoreError>> + Send;

    /// Takes the lease of a stuck record for `owner` (the run), only if it
    /// is still RECEIVED with a lapsed lease: a late HubSpot retry or a
    /// second sweep cannot queue it too.
    fn take_stuck(
        &self,
        dedup_key: &str,
        owner: &str,
        lapsed_before_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
