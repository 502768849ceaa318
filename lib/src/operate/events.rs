//! `hubwarp events`: what the receiver recorded and what became of each
//! event, newest first.

use super::OperateError;
use crate::store::records::{EventQuery, EventRecord, EventRecords};

/// The statuses a record can have, for checking `--status`.
pub const STATUSES: &[&str] = &[
    "RECEIVED",
    "QUEUED",
    "APPLIED",
    "FAILED",
    "UNMATCHED",
    "IGNORED",
    "UNREADABLE",
];

/// The records `query` selects, newest first, at most `limit`.
pub async fn list<E: EventRecords>(
    events: &E,
    query: &EventQuery,
    limit: usize,
) -> Result<Vec<EventRecord>, OperateError> {
    if let Some(s) = &query.status
        && !STATUSES.contains(&s.to_ascii_uppercase().as_str())
    {
        return Err(OperateError::Invalid(format!(
            "status {s:?} is none of {}",
            STATUSES.join(", ")
        )));
    }
    if let Some(c) = &query.company_id
        && (c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(OperateError::Invalid(format!(
            "company id {c:?} is not a HubSpot company id (digits)"
        )));
    }
    let mut records = events.records(query).await?;
    records.truncate(limit);
    Ok(records)
}
