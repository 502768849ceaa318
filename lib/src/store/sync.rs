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

impl Link {
    /// An active link made now: the company is the customer's.
    pub fn active(
        company_id: impl Into<String>,
        customer_id: impl Into<String>,
        ban: impl Into<String>,
    ) -> Self {
        Self {
            company_id: company_id.into(),
            customer_id: customer_id.into(),
            ban: ban.into(),
            state: LinkState::Active,
            merged_into: None,
            updated_at_ms: crate::time::now_ms(),
        }
    }
}

/// One field decision, for the sync log (queryable per customer, expires
/// by TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncLogEntry {
    pub customer_id: String,
    pub at_ms: i64,
    /// What the decision came from: a webhook event's dedup key (the
    /// consumer), `run:<run id>` (the reconciler) or `conflict:<id>` (a
    /// person resolving a MANUAL conflict); see [`Source`].
    pub dedup_key: String,
    pub property: String,
    pub field: Option<String>,
    /// `applied`, `in-sync`, `skipped-stale`, `skipped-direction`,
    /// `conflict-warp-kept`, `conflict-manual`, `failed`, ...
    pub outcome: String,
    pub reason: String,
    /// What was decided on, so `hubwarp explain` can tell the whole story.
    /// Entries written before these existed read as `None`.
    pub detail: DecisionDetail,
}

/// The inputs of a field decision: both values, the baseline and the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionDetail {
    /// WARP's value (JSON) when it was decided.
    pub warp_value: Option<serde_json::Value>,
    /// HubSpot's value (the event's, or the one read by the run).
    pub hubspot_value: Option<String>,
    /// The value both sides last agreed on (WARP's JSON form).
    pub baseline: Option<serde_json::Value>,
    /// The rule that decided ([`crate::mapping::conflict::Reason::code`],
    /// or `unmapped`, `in-sync`, `conversion`).
    pub rule: Option<String>,
}

/// Where a sync-log entry came from, read back from its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A webhook event: its dedup key and HubSpot's `eventId` in it.
    Event {
        dedup_key: String,
        event_id: Option<String>,
    },
    /// A reconcile run (or an undo of one).
    Run { run_id: String },
    /// A person resolving a conflict.
    Conflict { conflict_id: String },
}

impl Source {
    pub fn of(key: &str) -> Self {
        if let Some(run_id) = key.strip_prefix("run:") {
            return Self::Run {
                run_id: run_id.to_string(),
            };
        }
        if let Some(id) = key.strip_prefix("conflict:") {
            return Self::Conflict {
                conflict_id: id.to_string(),
            };
        }
        // Keys name the change (`portal:object:type:occurredAt:detail`) and
        // hold no event id: the two formats' copies of one change differ in
        // it. Keys of the release before,
        // `portal:subscription:eventId:object:occurredAt:type[:property]`
        // (the type sixth), still read back with theirs. An unreadable
        // event's key (`unreadable:portal:subscription:hash`) has none.
        let parts: Vec<&str> = key.split(':').collect();
        let before_the_two_formats = parts.get(5).is_some_and(|t| t.contains('.'));
        Self::Event {
            dedup_key: key.to_string(),
            event_id: (before_the_two_formats && !key.starts_with("unreadable:"))
                .then(|| parts[2])
                .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event {
                event_id: Some(id), ..
            } => write!(f, "webhook event {id}"),
            Self::Event { dedup_key, .. } => write!(f, "webhook event {dedup_key}"),
            Self::Run { run_id } => write!(f, "run {run_id}"),
            Self::Conflict { conflict_id } => write!(f, "conflict {conflict_id} resolved"),
        }
    }
}

/// A MANUAL conflict waiting for a person: both values, both times, the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl ConflictRecord {
    /// The conflict's sort key in its table (`<field>#<occurredAt>`).
    pub fn key(&self) -> String {
        format!("{}#{:013}", self.field, self.hubspot_occurred_at)
    }

    /// A short id a person can type: the first 8 hex digits of the SHA-256
    /// of customer and key. Stable (the same conflict always has the same
    /// id), and unlike `customer:field` it tells apart two conflicts of one
    /// field raised at different times.
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}#{}", self.customer_id, self.key()));
        hex::encode(&digest[..4])
    }
}

/// How a person settled a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// `warp` or `hubspot`: the side whose value both now hold.
    pub take: String,
    /// That value (WARP's JSON form, as text).
    pub value: String,
    pub by: String,
    pub note: Option<String>,
    pub at_ms: i64,
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

/// Reading the sync log back (`hubwarp explain`).
pub trait SyncLogReader: Send + Sync {
    /// A customer's entries, newest first, at most `limit`.
    fn entries(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SyncLogEntry>, StoreError>> + Send;
}

/// Closing conflicts (`hubwarp conflicts resolve`); the record stays, with
/// who chose what and why.
pub trait ConflictReview: Send + Sync {
    /// Marks an open conflict resolved; false when it is no longer open.
    fn resolve_conflict(
        &self,
        conflict: &ConflictRecord,
        resolution: &Resolution,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A conflict that is no longer open, as the conflicts table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A person chose (this link, another, or `hubwarp conflicts resolve`).
    Resolved(Resolution),
    /// A newer disagreement of the same field replaced it.
    Superseded,
}

/// Reading one conflict that is not open any more, by the id a link names
/// ([`ConflictRecord::id`]), for a review link's page. The open ones come
/// from [`ConflictQueue`].
pub trait ClosedConflicts: Send + Sync {
    /// How conflict `id` was closed; `None` when no conflict has that id
    /// (or it is open).
    fn closed_conflict(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Closed>, StoreError>> + Send;
}

pub trait ConflictQueue: Send + Sync {
    /// Records a conflict. A customer field has at most one open conflict,
    /// the newest by HubSpot time: recording a newer one supersedes the
    /// open one (kept, SUPERSEDED), and an older one is kept superseded
    /// from the start. The consumer and the nightly run both find a
    /// lasting disagreement, night after night.
    fn put_conflict(
        &self,
        conflict: &ConflictRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every conflict still waiting for a person: one per customer field.
    fn open_conflicts(
        &self,
    ) -> impl Future<Output = Result<Vec<ConflictRecord>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_id_is_short_stable_and_tells_two_times_apart() {
        let c = ConflictRecord {
            customer_id: "cus_1".into(),
            field: "credit_limit".into(),
            property: "warp_credit_limit".into(),
            hubspot_value: "7000".into(),
            hubspot_occurred_at: 1_763_700_000_000,
            warp_value: "\"6000\"".into(),
            warp_updated_at: None,
            dedup_key: "k".into(),
        };
        assert_eq!(c.key(), "credit_limit#1763700000000");
        let id = c.id();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(c.clone().id(), id, "stable");
        let later = ConflictRecord {
            hubspot_occurred_at: c.hubspot_occurred_at + 1,
            ..c.clone()
        };
        assert_ne!(later.id(), id);
    }

    #[test]
    fn a_log_entry_says_where_it_came_from() {
        assert_eq!(
            Source::of(
                "62515:2951763:3718120641:18476215990:1763740800000:company.propertyChange:name"
            ),
            Source::Event {
                dedup_key:
                    "62515:2951763:3718120641:18476215990:1763740800000:company.propertyChange:name"
                        .into(),
                event_id: Some("3718120641".into()),
            }
        );
        assert_eq!(
            Source::of("run:nightly-20261125T070000Z").to_string(),
            "run nightly-20261125T070000Z"
        );
        assert_eq!(
            Source::of("conflict:0a1b2c3d").to_string(),
            "conflict 0a1b2c3d resolved"
        );
        let key = "62515:18476215990:company.propertyChange:1763740800000:name";
        assert_eq!(
            Source::of(key),
            Source::Event {
                dedup_key: key.into(),
                event_id: None,
            }
        );
        assert_eq!(Source::of(key).to_string(), format!("webhook event {key}"));
        let unreadable = Source::of("unreadable:1:2:abc");
        assert!(matches!(unreadable, Source::Event { event_id: None, .. }));
    }
}
