//! The consumer's state: links between HubSpot companies and WARP
//! customers, per-field sync state, the sync log and the review queue of
//! MANUAL conflicts. One narrow trait per capability.

use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::mapping::conflict::FieldState;

/// Where a HubSpot company stands with its WARP customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkState {
    Active,
    /// The company was deleted in HubSpot; the WARP customer is untouched.
    Deleted,
    /// The company was merged away into `merged_into`.
    Merged,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Deleted => "DELETED",
            Self::Merged => "MERGED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "DELETED" => Some(Self::Deleted),
            "MERGED" => Some(Self::Merged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub company_id: String,
    pub customer_id: String,
    pub ban: String,
    pub state: LinkState,
    pub merged_into: Option<String>,
    pub updated_at_ms: i64,
}

/// One field decision, for the sync log (queryable per customer, expires
/// by TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLogEntry {
    pub customer_id: String,
    pub at_ms: i64,
    pub dedup_key: String,
    pub property: String,
    pub field: Option<String>,
    /// `applied`, `in-sync`, `skipped-stale`, `skipped-direction`,
    /// `conflict-warp-kept`, `conflict-manual`, `failed`, ...
    pub outcome: String,
    pub reason: String,
}

/// A MANUAL conflict waiting for a person: both values, both times, the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRecord {
    pub customer_id: String,
    pub field: String,
    pub property: String,
    pub hubspot_value: String,
    pub hubspot_occurred_at: i64,
    /// WARP's value as JSON text.
    pub warp_value: String,
    pub warp_updated_at: Option<i64>,
    pub dedup_key: String,
}

pub trait LinkStore: Send + Sync {
    fn link(
        &self,
        company_id: &str,
    ) -> impl Future<Output = Result<Option<Link>, StoreError>> + Send;
    fn put_link(&self, link: &Link) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait FieldStateStore: Send + Sync {
    /// Every field's state for a customer, keyed by WARP field path.
    fn field_states(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<HashMap<String, FieldState>, StoreError>> + Send;
    fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait SyncLog: Send + Sync {
    fn append(
        &self,
        entries: &[SyncLogEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait ConflictQueue: Send + Sync {
    fn put_conflict(
        &self,
        conflict: &ConflictRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every conflict still waiting for a person.
    fn open_conflicts(
        &self,
    ) -> impl Future<Output = Result<Vec<ConflictRecord>, StoreError>> + Send;
}
