//! `hubwarp explain <customer id | BAN | company id> [field]`: the whole
//! story of a customer, newest first, from the sync log (each decision with
//! its source, both values, the baseline and the rule), then every mapped
//! field as both sides hold it now and whether they agree.

use serde::Serialize;
use serde_json::Value;

use super::OperateError;
use crate::mapping::conflict::{direction_name, strategy_name};
use crate::mapping::{Direction, FieldMapping, MappingSet};
use crate::reconcile::plan::MODIFIED_PROPERTY;
use crate::reconcile::ports::HubspotCompanies;
use crate::store::sync::{FieldStateStore, LinkStore, Source, SyncLogEntry, SyncLogReader};
use crate::warp::WarpApi;
use crate::warp::{Customer, WarpError};

/// One logged decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub at: String,
    pub source: Source,
    pub field: Option<String>,
    pub property: String,
    pub outcome: String,
    pub rule: Option<String>,
    pub reason: String,
    pub warp_value: Option<Value>,
    pub hubspot_value: Option<String>,
    pub baseline: Option<Value>,
}

impl From<SyncLogEntry> for Decided {
    fn from(e: SyncLogEntry) -> Self {
        Self {
            at: crate::time::iso(e.at_ms),
            source: Source::of(&e.dedup_key),
            field: e.field,
            property: e.property,
            outcome: e.outcome,
            rule: e.detail.rule,
            reason: e.reason,
            warp_value: e.detail.warp_value,
            hubspot_value: e.detail.hubspot_value,
            baseline: e.detail.baseline,
        }
    }
}

/// A mapped field as both sides hold it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldNow {
    pub field: String,
    pub property: String,
    pub direction: String,
    pub conflict: String,
    pub warp_value: Value,
    pub hubspot_value: Option<String>,
    pub baseline: Option<Value>,
    /// Whether both sides hold the same value after conversion.
    pub agree: bool,
    /// A sentence: agree, differ (and what happens next), not synced.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub customer_id: Option<String>,
    pub ban: Option<String>,
    pub company_id: Option<String>,
    /// The field asked about (WARP path), if one was.
    pub field: Option<String>,
    /// Decisions, newest first.
    pub history: Vec<Decided>,
    /// Events about the company that never reached a customer.
    pub unmatched: Vec<Decided>,
    /// Every mapped field now (or the one asked about); empty when the
    /// customer or company cannot be read.
    pub now: Vec<FieldNow>,
    /// What could not be read now, if anything.
    pub notes: Vec<String>,
}

/// How far back the story goes.
pub const DEFAULT_LIMIT: usize = 200;

/// Tells the story of `target` (a WARP customer id, a BAN, or a HubSpot
/// company id: digits), limited to `field` (a WARP field or a HubSpot
/// property) if given.
#[allow(clippy::too_many_arguments)]
pub async fn explain<W, H, S>(
    warp: &W,
    hubspot: &H,
    store: &S,
    mappings: &MappingSet,
    target: &str,
    field: Option<&str>,
    limit: usize,
) -> Result<Explanation, OperateError>
where
    W: WarpApi,
    H: HubspotCompanies,
    S: LinkStore + FieldStateStore + SyncLogReader,
{
    let target = target.trim();
    if target.is_empty() {
        return Err(OperateError::Invalid(
            "name a customer id, a BAN or a HubSpot company id".into(),
        ));
    }
    let (customer, company_id) = resolve(warp, store, target).await?;
    let mut out = Explanation {
        customer_id: customer.as_ref().map(|c| c.id.clone()),
        ban: customer.as_ref().map(|c| c.ban.clone()),
        company_id: company_id.clone(),
        field: None,
        history: Vec::new(),
        unmatched: Vec::new(),
        now: Vec::new(),
        notes: Vec::new(),
    };
    let fields: Vec<&FieldMapping> = match &customer {
        Some(c) => mappings.fields_for(&c.id, &c.ban),
        None => mappings.fields_for("", ""),
    };
    let asked: Option<&FieldMapping> = match field {
        None => None,
        Some(f) => Some(
            fields
                .iter()
                .copied()
                .find(|m| m.warp.as_str() == f || m.hubspot == f)
                .ok_or_else(|| {
                    let mut known: Vec<&str> = fields.iter().map(|m| m.warp.as_str()).collect();
                    known.sort_unstable();
                    OperateError::Invalid(format!(
                        "{f} is neither a mapped WARP field nor a mapped HubSpot property; mapped: {}",
                        known.join(", ")
                    ))
                })?,
        ),
    };
    out.field = asked.map(|m| m.warp.as_str().to_string());
    let about = |e: &SyncLogEntry| match asked {
        None => true,
        Some(m) => e.field.as_deref() == Some(m.warp.as_str()) || e.property == m.hubspot,
    };
    if let Some(c) = &customer {
        out.history = store
            .entries(&c.id, limit)
            .await?
            .into_iter()
            .filter(|e| about(e))
            .map(Decided::from)
            .collect();
    }
    if let Some(company) = &company_id {
        out.unmatched = store
            .entries(&format!("unmatched#{company}"), limit)
            .await?
            .into_iter()
            .filter(|e| about(e))
            .map(Decided::from)
            .collect();
    }
    let Some(customer) = customer else {
        out.notes
            .push("no WARP customer is linked to this company".to_string());
        return Ok(out);
    };
    let Some(company_id) = company_id else {
        out.notes
            .push("the customer names no HubSpot company (external_ids.hubspot_company_id)".into());
        return Ok(out);
    };
    let mut properties: Vec<&str> = fields.iter().map(|m| m.hubspot.as_str()).collect();
    properties.push(MODIFIED_PROPERTY);
    let read = hubspot
        .batch_read(std::slice::from_ref(&company_id), &properties)
        .await?;
    let Some(company) = read.found.into_iter().next() else {
        out.notes
            .push(format!("HubSpot has no company {company_id}"));
        return Ok(out);
    };
    let states = store.field_states(&customer.id).await?;
    let mut shown: Vec<&FieldMapping> = match asked {
        Some(m) => vec![m],
        None => fields,
    };
    shown.sort_by(|a, b| a.warp.as_str().cmp(b.warp.as_str()));
    for m in shown {
        let warp_value = m.warp.get(&customer.raw).cloned().unwrap_or(Value::Null);
        let hubspot_value = company.properties.get(&m.hubspot).cloned().flatten();
        let baseline = states
            .get(m.warp.as_str())
            .and_then(|s| s.synced_value.clone());
        let ty = m.value_type;
        let (agree, state) = match ty.hubspot_to_warp(hubspot_value.as_deref().unwrap_or_default())
        {
            Err(e) => (
                false,
                format!("differ: HubSpot's value does not convert ({e})"),
            ),
            Ok(h) if ty.same_warp_value(&warp_value, &h) => (true, "agree".to_string()),
            Ok(_) if m.direction == Direction::None => {
                (false, "differ: direction NONE, never synced".to_string())
            }
            Ok(_) => (
                false,
                "differ: the next sync or nightly run decides it".to_string(),
            ),
        };
        out.now.push(FieldNow {
            field: m.warp.as_str().to_string(),
            property: m.hubspot.clone(),
            direction: direction_name(m.direction).to_string(),
            conflict: strategy_name(m.conflict).to_string(),
            warp_value,
            hubspot_value,
            baseline,
            agree,
            state,
        });
    }
    Ok(out)
}

/// The customer (and its company) `target` names: a company id through the
/// links table, else a WARP id, else a BAN.
async fn resolve<W: WarpApi, S: LinkStore>(
    warp: &W,
    store: &S,
    target: &str,
) -> Result<(Option<Customer>, Option<String>), OperateError> {
    if target.bytes().all(|b| b.is_ascii_digit()) {
        return match store.link(target).await? {
            None => Ok((None, Some(target.to_string()))),
            Some(link) => match warp.get(&link.customer_id).await {
                Ok(c) => Ok((Some(c), Some(target.to_string()))),
                Err(WarpError::NotFound) => Err(OperateError::NotFound(format!(
                    "company {target} is linked to WARP customer {}, which does not exist",
                    link.customer_id
                ))),
                Err(e) => Err(e.into()),
            },
        };
    }
    let customer = match warp.get(target).await {
        Ok(c) => c,
        Err(WarpError::NotFound) => match warp.by_ban(target).await {
            Ok(c) => c,
            Err(WarpError::NotFound) => {
                return Err(OperateError::NotFound(format!(
                    "no WARP customer has the id or BAN {target}"
                )));
            }
            Err(e) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    let company = customer.hubspot_company_id.clone();
    Ok((Some(customer), company))
}
