//! The sync consumer's domain: apply queued HubSpot changes to WARP through
//! the field mappings, keeping links, field state, the sync log and the
//! review queue of MANUAL conflicts.
//!
//! A batch is handled as: parse each message; drop those whose event is
//! already settled (a redelivery is a no-op); resolve each company to its
//! WARP customer; then per customer decide every change in `occurredAt`
//! order and write all that apply in one `PUT` with `If-Match` (a 412 reads
//! again and decides once more). Transient failures (WARP 429/5xx/timeouts,
//! AWS errors) send the message back to the queue; permanent ones are
//! recorded with their reason and acknowledged.
//!
//! The stages, one file each, all methods of the one [`Consumer`] sharing
//! the batch's report: `batch` (the batch as a whole), `link` (company to
//! customer), `apply` (decide and write one customer), `settle` (record
//! what was decided), `lifecycle` (creation, deletion, restore, merge).
//! `breaker` and `backoff` are how the consumer rides out an outage.

mod apply;
pub mod backoff;
mod batch;
pub mod breaker;
mod lifecycle;
mod link;
pub mod ports;
mod settle;

use crate::error::error_chain;
use crate::mapping::MappingSet;
use crate::queue::SyncMessage;
use crate::store::StoreError;
use crate::store::sync::Link;
use crate::warp::WarpError;

/// What the consumer decided about one change (or lifecycle event), as
/// the sync log, the log line and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Applied,
    InSync,
    /// Both sides changed: the strategy kept WARP's value, or MANUAL queued
    /// it for review.
    Conflict,
    Failed,
    Unmatched,
    Linked,
    Merged,
    LinkDeleted,
    LinkRestored,
    SkippedUnmapped,
    SkippedStale,
    SkippedDirection,
    SkippedType,
    SkippedInactiveLink,
}

impl ChangeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::InSync => "in-sync",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
            Self::Unmatched => "unmatched",
            Self::Linked => "linked",
            Self::Merged => "merged",
            Self::LinkDeleted => "link-deleted",
            Self::LinkRestored => "link-restored",
            Self::SkippedUnmapped => "skipped-unmapped",
            Self::SkippedStale => "skipped-stale",
            Self::SkippedDirection => "skipped-direction",
            Self::SkippedType => "skipped-type",
            Self::SkippedInactiveLink => "skipped-inactive-link",
        }
    }

    /// Counts it: applied, in sync, conflicts and failures have metrics of
    /// their own; everything else is `ChangesSkipped` by `Reason` (the
    /// outcome without its `skipped-`).
    pub fn count(self) {
        use crate::metrics::name;
        let own = match self {
            Self::Applied => name::CHANGES_APPLIED,
            Self::InSync => name::CHANGES_IN_SYNC,
            Self::Failed => name::CHANGES_FAILED,
            Self::Conflict => name::CONFLICTS,
            other => {
                let text = other.as_str();
                crate::metrics::skipped(text.strip_prefix("skipped-").unwrap_or(text));
                return;
            }
        };
        crate::metrics::counts(&[(own, 1)]);
    }
}

impl std::fmt::Display for ChangeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SQS message of a batch.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
    /// SQS's `ApproximateReceiveCount` when known: the log of an unreadable
    /// message says how close it is to the DLQ.
    pub receive_count: Option<u32>,
}

/// What became of a batch: the messages to retry, and counts for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchReport {
    pub messages: usize,
    pub applied_fields: usize,
    pub warp_writes: usize,
    pub skipped: usize,
    pub conflicts: usize,
    pub unmatched: usize,
    pub failed: usize,
    pub duplicates: usize,
    /// Messages in no format this consumer reads, with the reason: handed
    /// back, so they end in the DLQ unless the other release's consumer
    /// reads them first.
    pub unreadable: Vec<UnreadableNote>,
    /// Message ids to hand back to SQS (`batchItemFailures`).
    pub retry: Vec<String>,
    /// HubSpot's daily cap is reached until then (epoch ms): the messages
    /// handed back should wait until it resets instead of coming back
    /// every visibility timeout and running out of receives.
    pub hold_until_ms: Option<i64>,
}

/// A message the consumer could not read, and why (never its body).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableNote {
    pub message_id: String,
    pub reason: String,
}

/// Customers of one batch applied at once.
const CUSTOMERS_IN_FLIGHT: usize = 4;

impl BatchReport {
    /// Notes HubSpot's daily cap when that is why a message goes back.
    fn hold(&mut self, e: &Transient) {
        if let Transient::Hubspot(crate::hubspot::crm::HubspotError::DailyLimit { retry_at_ms }) = e
        {
            self.hold_until_ms = Some(self.hold_until_ms.unwrap_or(0).max(*retry_at_ms));
        }
    }

    /// Adds another report's counts (not its retry list).
    fn add(&mut self, other: &BatchReport) {
        self.applied_fields += other.applied_fields;
        self.warp_writes += other.warp_writes;
        self.skipped += other.skipped;
        self.conflicts += other.conflicts;
        self.unmatched += other.unmatched;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
    }
}

/// Why a message could not be finished now; it goes back to the queue.
#[derive(Debug, thiserror::Error)]
enum Transient {
    #[error(transparent)]
    Warp(WarpError),
    #[error(transparent)]
    Hubspot(crate::hubspot::crm::HubspotError),
    #[error("{}", error_chain(.0))]
    Store(#[from] StoreError),
    #[error("WARP customer kept changing under the update (412 twice)")]
    Contended,
}

/// How a company resolved to a WARP customer.
enum CompanyMatch {
    Linked(Link),
    /// The link exists but is deleted or merged away.
    Inactive(Link),
    Unmatched(String),
}

/// A parsed message of the batch.
struct Item {
    index: usize,
    message: SyncMessage<'static>,
}

pub struct Consumer<E, S, W, H> {
    pub events: E,
    pub store: S,
    pub warp: W,
    pub hubspot: H,
    pub mappings: MappingSet,
}

#[cfg(test)]
mod tests;
