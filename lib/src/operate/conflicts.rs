//! `hubwarp conflicts list` / `conflicts resolve <id> --take warp|hubspot`:
//! the MANUAL review queue, and a person's choice applied through the
//! normal write paths (WARP `PUT` with `If-Match`, HubSpot batch update).
//! The field's baseline becomes the chosen value, so the next sync and the
//! next nightly run find the field in sync; the conflict is closed with who
//! chose, when and why, never deleted; the sync log records the choice.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use tracing::info;

use super::OperateError;
use crate::hubspot::crm::{Company, CompanyUpdate};
use crate::mapping::conflict::FieldState;
use crate::mapping::{FieldMapping, MappingSet};
use crate::reconcile::plan::{MODIFIED_PROPERTY, hubspot_time};
use crate::reconcile::ports::HubspotCompanies;
use crate::store::sync::{
    ConflictQueue, ConflictRecord, ConflictReview, DecisionDetail, FieldStateStore, Resolution,
    SyncLog, SyncLogEntry,
};
use crate::warp::WarpApi;
use crate::warp::{Customer, WarpError, WriteError, update_if_match};

/// An open conflict as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenConflict {
    /// What `conflicts resolve` takes ([`ConflictRecord::id`]).
    pub id: String,
    pub customer_id: String,
    pub field: String,
    pub property: String,
    /// WARP's value (JSON) and HubSpot's when the conflict was raised.
    pub warp_value: String,
    pub hubspot_value: String,
    pub raised_at: String,
    /// The event's dedup key, or `run:<id>` when a nightly run found it.
    pub source: String,
}

impl From<&ConflictRecord> for OpenConflict {
    fn from(c: &ConflictRecord) -> Self {
        Self {
            id: c.id(),
            customer_id: c.customer_id.clone(),
            field: c.field.clone(),
            property: c.property.clone(),
            warp_value: c.warp_value.clone(),
            hubspot_value: c.hubspot_value.clone(),
            raised_at: crate::time::iso(c.hubspot_occurred_at),
            source: c.dedup_key.clone(),
        }
    }
}

pub async fn list<S: ConflictQueue>(store: &S) -> Result<Vec<OpenConflict>, OperateError> {
    Ok(store
        .open_conflicts()
        .await?
        .iter()
        .map(OpenConflict::from)
        .collect())
}

/// The side whose value both take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Take {
    Warp,
    Hubspot,
}

impl Take {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warp => "warp",
            Self::Hubspot => "hubspot",
        }
    }
}

/// What resolving did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub id: String,
    pub customer_id: String,
    pub company_id: String,
    pub field: String,
    pub property: String,
    pub take: Take,
    /// The value both sides hold now (WARP's form).
    pub value: Value,
    /// `hubspot`, `warp`, or `nothing` when both already agreed.
    pub wrote: String,
    pub by: String,
    pub note: Option<String>,
}

/// Who is choosing, and why.
#[derive(Debug, Clone)]
pub struct Choice<'a> {
    pub take: Take,
    pub by: &'a str,
    pub note: Option<&'a str>,
}

/// Finds the open conflict `id` (or a unique prefix of it, 4 digits or more).
pub async fn find<S: ConflictQueue>(store: &S, id: &str) -> Result<ConflictRecord, OperateError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OperateError::Invalid(format!(
            "{id:?} is not a conflict id (8 hex digits, as `hubwarp conflicts list` shows them)"
        )));
    }
    let mut found: Vec<ConflictRecord> = store
        .open_conflicts()
        .await?
        .into_iter()
        .filter(|c| c.id().starts_with(&id))
        .collect();
    match found.len() {
        0 => Err(OperateError::NotFound(format!(
            "no open conflict {id} (resolved already, or never raised): `hubwarp conflicts list` shows the open ones"
        ))),
        1 => Ok(found.remove(0)),
        n => Err(OperateError::Invalid(format!(
            "{id} names {n} open conflicts; give more of the id"
        ))),
    }
}

/// A conflict's field as both sides hold it now: the customer, the
/// mapping in force for it, its company, and HubSpot's raw value (`""`
/// when none).
pub struct FieldNow {
    pub customer: Customer,
    pub mapping: FieldMapping,
    pub company_id: String,
    pub company: Company,
    pub hubspot_raw: String,
}

/// Reads a conflict's field again from WARP and HubSpot, writing nothing:
/// what `resolve` decides on, and what the review page shows.
pub async fn field_now<W, H>(
    warp: &W,
    hubspot: &H,
    mappings: &MappingSet,
    conflict: &ConflictRecord,
) -> Result<FieldNow, OperateError>
where
    W: WarpApi,
    H: HubspotCompanies,
{
    let customer = warp.get(&conflict.customer_id).await.map_err(|e| match e {
        WarpError::NotFound => OperateError::NotFound(format!(
            "WARP customer {} no longer exists",
            conflict.customer_id
        )),
        e => e.into(),
    })?;
    let mapping: FieldMapping = mappings
        .fields_for(&customer.id, &customer.ban)
        .into_iter()
        .find(|m| m.warp.as_str() == conflict.field)
        .cloned()
        .ok_or_else(|| {
            OperateError::Invalid(format!(
                "{} is no longer mapped for this customer; the mapping changed since the conflict",
                conflict.field
            ))
        })?;
    let company_id = customer.hubspot_company_id.clone().ok_or_else(|| {
        OperateError::Invalid(format!(
            "WARP customer {} names no HubSpot company any more",
            customer.id
        ))
    })?;
    let read = hubspot
        .batch_read(
            std::slice::from_ref(&company_id),
            &[mapping.hubspot.as_str(), MODIFIED_PROPERTY],
        )
        .await?;
    let company =
        read.found.into_iter().next().ok_or_else(|| {
            OperateError::NotFound(format!("HubSpot has no company {company_id}"))
        })?;
    let hubspot_raw = company
        .properties
        .get(&mapping.hubspot)
        .cloned()
        .flatten()
        .unwrap_or_default();
    Ok(FieldNow {
        customer,
        mapping,
        company_id,
        company,
        hubspot_raw,
    })
}

/// Applies `choice` to the open conflict `id`.
pub async fn resolve<W, H, S>(
    warp: &W,
    hubspot: &H,
    store: &S,
    mappings: &MappingSet,
    id: &str,
    choice: &Choice<'_>,
) -> Result<Resolved, OperateError>
where
    W: WarpApi,
    H: HubspotCompanies,
    S: ConflictQueue + ConflictReview + FieldStateStore + SyncLog,
{
    let conflict = find(store, id).await?;
    let id = conflict.id();
    let FieldNow {
        mut customer,
        mapping,
        company_id,
        company,
        hubspot_raw,
    } = field_now(warp, hubspot, mappings, &conflict).await?;
    let ty = mapping.value_type;
    let invalid = |e: crate::mapping::ConversionError| OperateError::Invalid(e.to_string());
    let hubspot_value = ty.hubspot_to_warp(&hubspot_raw).map_err(invalid)?;
    let warp_now = |c: &Customer| mapping.warp.get(&c.raw).cloned().unwrap_or(Value::Null);
    let mut states = store.field_states(&customer.id).await?;
    let previous = states.remove(&conflict.field).unwrap_or_default();
    let now = crate::time::now_ms();
    let (value, wrote, state) = match choice.take {
        Take::Warp => {
            let value = warp_now(&customer);
            let wrote = if ty.same_warp_value(&value, &hubspot_value) {
                "nothing"
            } else {
                let property_value = ty.warp_to_hubspot(&value).map_err(invalid)?;
                let update = CompanyUpdate {
                    id: company_id.clone(),
                    properties: BTreeMap::from([(mapping.hubspot.clone(), property_value)]),
                };
                let result = hubspot.batch_update(std::slice::from_ref(&update)).await?;
                if let Some(f) = result.failed.first() {
                    return Err(OperateError::Hubspot(
                        crate::hubspot::crm::HubspotError::Rejected {
                            status: 207,
                            category: format!("{}: {}", f.category, f.message),
                        },
                    ));
                }
                "hubspot"
            };
            let state = FieldState {
                synced_value: Some(value.clone()),
                hubspot_occurred_at: Some(now),
                warp_updated_at: customer.updated_at_ms,
            };
            (value, wrote, state)
        }
        Take::Hubspot => {
            let mut wrote = "nothing";
            // WARP's value again after a 412: someone may have set it already.
            let w = update_if_match(warp, customer, |c| {
                let mut body = Map::new();
                if !ty.same_warp_value(&warp_now(c), &hubspot_value) {
                    mapping.warp.set_in(&mut body, hubspot_value.clone());
                }
                (body, ())
            })
            .await;
            customer = w.customer;
            match w.written {
                Ok(Some(updated)) => {
                    customer = updated;
                    wrote = "warp";
                }
                Ok(None) => {}
                // Edited twice under the write: say so rather than resolve
                // with WARP unchanged.
                Err(WriteError::Contended) => return Err(WarpError::PreconditionFailed.into()),
                Err(WriteError::Put(e) | WriteError::Reread(e)) => return Err(e.into()),
            }
            let modified = company.property(MODIFIED_PROPERTY).and_then(hubspot_time);
            let state = FieldState {
                synced_value: Some(hubspot_value.clone()),
                hubspot_occurred_at: [
                    previous.hubspot_occurred_at,
                    Some(conflict.hubspot_occurred_at),
                    modified,
                ]
                .into_iter()
                .flatten()
                .max(),
                warp_updated_at: customer.updated_at_ms,
            };
            (hubspot_value.clone(), wrote, state)
        }
    };
    store
        .put_field_state(&customer.id, &conflict.field, &state)
        .await?;
    let resolution = Resolution {
        take: choice.take.as_str().to_string(),
        value: value.to_string(),
        by: choice.by.to_string(),
        note: choice.note.map(str::to_string),
        at_ms: now,
    };
    if !store.resolve_conflict(&conflict, &resolution).await? {
        return Err(OperateError::NotFound(format!(
            "conflict {id} was resolved by someone else meanwhile; both sides now hold the value taken from {}",
            choice.take.as_str()
        )));
    }
    let reason = format!(
        "resolved by {}: took {}'s value{}",
        choice.by,
        if choice.take == Take::Warp {
            "WARP"
        } else {
            "HubSpot"
        },
        choice.note.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    store
        .append(&[SyncLogEntry {
            customer_id: customer.id.clone(),
            at_ms: now,
            dedup_key: format!("conflict:{id}"),
            property: mapping.hubspot.clone(),
            field: Some(conflict.field.clone()),
            outcome: format!("resolved-take-{}", choice.take.as_str()),
            reason: reason.clone(),
            detail: DecisionDetail {
                warp_value: Some(serde_json::from_str(&conflict.warp_value).unwrap_or(Value::Null)),
                hubspot_value: Some(conflict.hubspot_value.clone()),
                baseline: previous.synced_value.clone(),
                rule: Some("manual-resolution".into()),
            },
        }])
        .await?;
    info!(
        conflict_id = %id,
        customer_id = %customer.id,
        field = %conflict.field,
        take = choice.take.as_str(),
        wrote,
        by = choice.by,
        "conflict resolved"
    );
    Ok(Resolved {
        id,
        customer_id: customer.id,
        company_id,
        field: conflict.field,
        property: mapping.hubspot,
        take: choice.take,
        value,
        wrote: wrote.to_string(),
        by: choice.by.to_string(),
        note: choice.note.map(str::to_string),
    })
}
