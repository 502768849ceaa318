//! The event log as the operator reads it (`hubwarp events`, `replay`,
//! `explain`): whole records, a query over them, and an event put back on
//! its way. The DynamoDB adapter implements it beside the functions' own
//! `EventLog`.

use std::future::Future;

use serde::Serialize;

use super::StoreError;

/// One recorded webhook event, as `hubwarp events` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub dedup_key: String,
    pub status: String,
    pub received_at_ms: Option<i64>,
    pub queued_at_ms: Option<i64>,
    pub settled_at_ms: Option<i64>,
    pub subscription_type: Option<String>,
    pub property: Option<String>,
    /// HubSpot's `objectId`: the company.
    pub company_id: Option<String>,
    pub occurred_at_ms: Option<i64>,
    /// Why it stands where it does: the consumer's `settle_reason`, or the
    /// receiver's `reason` for an event it never queued (IGNORED,
    /// UNREADABLE).
    pub reason: Option<String>,
    /// The consumer's last transient failure, and how many there were.
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub failures: u32,
    /// While RECEIVED: until when a delivery holds it.
    pub lease_until_ms: Option<i64>,
    /// The queue body kept on the record (none for events never queued).
    #[serde(skip)]
    pub message: Option<String>,
}

/// Which records to read; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub company_id: Option<String>,
    /// First received at or after / at or before (epoch ms).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub status: Option<String>,
}

pub trait EventRecords: Send + Sync {
    fn record(
        &self,
        dedup_key: &str,
    ) -> impl Future<Output = Result<Option<EventRecord>, StoreError>> + Send;

    /// The records `query` selects, newest first.
    fn records(
        &self,
        query: &EventQuery,
    ) -> impl Future<Output = Result<Vec<EventRecord>, StoreError>> + Send;

    /// Puts a record that still has status `from` (and no live lease) back
    /// to QUEUED, so the consumer decides its message again; false when it
    /// moved on meanwhile.
    fn reopen(
        &self,
        dedup_key: &str,
        from: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
