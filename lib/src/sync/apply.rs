//! One customer's changes: decided oldest first against WARP as it is,
//! and written in one `PUT` with `If-Match` (a 412 reads again and decides
//! once more).

use std::collections::HashMap;

use serde_json::{Map, Value};
use tracing::{info, warn};

use super::ports::CompanyDirectory;
use super::{BatchReport, Consumer, Item, Transient};
use crate::mapping::conflict::{self, Decision, FieldState, HubspotNow, Reason, WarpNow};
use crate::store::EventLog;
use crate::store::sync::{ConflictQueue, DecisionDetail, FieldStateStore, LinkStore, SyncLog};
use crate::warp::{Customer, WarpError};
use crate::warp::{WarpApi, WriteError, update_if_match_with};

impl<E, S, W, H> Consumer<E, S, W, H>
where
    E: EventLog,
    S: LinkStore + FieldStateStore + SyncLog + ConflictQueue,
    W: WarpApi,
    H: CompanyDirectory,
{
    /// One customer's changes with a report of their own; the indexes of
    /// the messages to retry when it failed transiently.
    pub(super) async fn apply_customer_alone(
        &self,
        customer_id: &str,
        items: &[&Item],
    ) -> (BatchReport, Vec<usize>) {
        let mut report = BatchReport::default();
        match self.apply_customer(customer_id, items, &mut report).await {
            Ok(()) => (report, Vec::new()),
            Err(e) => {
                warn!(customer_id, error = %e, events = items.len(), "changes not applied; retry");
                self.note_failure(items, &e.to_string()).await;
                (report, items.iter().map(|i| i.index).collect())
            }
        }
    }

    /// Decides and writes every change of one customer in this batch.
    pub(super) async fn apply_customer(
        &self,
        customer_id: &str,
        items: &[&Item],
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        let customer = match self.warp.get(customer_id).await {
            Ok(c) => c,
            Err(e) => return self.read_failed(items, customer_id, e, report).await,
        };
        // The field state is read with each read of the customer: whoever
        // changed WARP under a 412 may have moved the baseline too.
        let w = update_if_match_with(&self.warp, customer, |customer| async move {
            let mut states = self.store.field_states(customer_id).await?;
            let plan = self.plan(&customer, &mut states, items);
            let body = plan.body.clone();
            Ok::<_, Transient>((customer, body, (plan, states)))
        })
        .await?;
        if w.rereads > 0 {
            info!(
                customer_id,
                "WARP customer changed under the update (412); read again and decided again"
            );
        }
        let (plan, states) = w.decision;
        match w.written {
            Ok(updated) => {
                report.warp_writes += usize::from(updated.is_some());
                self.record(&w.customer, updated.as_ref(), &states, plan, report)
                    .await
            }
            Err(WriteError::Reread(e)) => self.read_failed(items, customer_id, e, report).await,
            Err(WriteError::Contended) => Err(Transient::Contended),
            Err(WriteError::Put(e)) if e.is_transient() => Err(Transient::Warp(e)),
            Err(WriteError::Put(e)) => {
                // A 4xx on the write: the values are refused for good.
                let reason = format!("WARP refused the update: {e}");
                self.fail_all(items, customer_id, &reason, report).await
            }
        }
    }

    /// WARP could not say what the customer holds: gone or refused for
    /// good (recorded), or down (back to the queue).
    async fn read_failed(
        &self,
        items: &[&Item],
        customer_id: &str,
        e: WarpError,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        match e {
            WarpError::NotFound => {
                self.fail_all(items, customer_id, "WARP customer does not exist", report)
                    .await
            }
            e if e.is_transient() => Err(Transient::Warp(e)),
            e => {
                let reason = format!("WARP refused the read: {e}");
                self.fail_all(items, customer_id, &reason, report).await
            }
        }
    }

    /// Decides each change against WARP's current customer, oldest first,
    /// so a newer change in the same batch supersedes an older one.
    pub(super) fn plan<'a>(
        &self,
        customer: &Customer,
        states: &mut HashMap<String, FieldState>,
        items: &[&'a Item],
    ) -> Plan<'a> {
        let mut plan = Plan::default();
        let mut pending: HashMap<String, Value> = HashMap::new();
        let mut sorted: Vec<&Item> = items.to_vec();
        sorted.sort_by_key(|i| i.message.event.occurred_at);
        for item in sorted {
            let e = &item.message.event;
            let property = e.property_name.as_deref().unwrap_or_default();
            let Some(mapping) = self.mappings.lookup(property, &customer.id, &customer.ban) else {
                plan.decisions.push((
                    item,
                    None,
                    Decision::Keep {
                        reason: Reason::Direction(crate::mapping::Direction::None),
                    },
                    DecisionDetail {
                        hubspot_value: e.property_value.as_deref().map(str::to_string),
                        rule: Some("unmapped".into()),
                        ..Default::default()
                    },
                ));
                continue;
            };
            let field = mapping.warp.as_str().to_string();
            let current = pending
                .get(&field)
                .cloned()
                .or_else(|| mapping.warp.get(&customer.raw).cloned());
            let decision = conflict::decide(
                mapping,
                states.get(&field),
                WarpNow {
                    value: current.as_ref(),
                    updated_at: customer.updated_at_ms,
                },
                HubspotNow::Event {
                    value: e.property_value.as_deref().unwrap_or_default(),
                    occurred_at: e.occurred_at,
                },
            );
            let detail = DecisionDetail {
                warp_value: Some(current.clone().unwrap_or(Value::Null)),
                hubspot_value: e.property_value.as_deref().map(str::to_string),
                baseline: states.get(&field).and_then(|s| s.synced_value.clone()),
                rule: Some(decision.rule()),
            };
            if let Decision::WriteWarp { value, .. } | Decision::InSync { value } = &decision {
                if matches!(decision, Decision::WriteWarp { .. }) {
                    mapping.warp.set_in(&mut plan.body, value.clone());
                }
                pending.insert(field.clone(), value.clone());
                states.insert(
                    field.clone(),
                    FieldState {
                        synced_value: Some(value.clone()),
                        hubspot_occurred_at: Some(e.occurred_at),
                        warp_updated_at: customer.updated_at_ms,
                    },
                );
                plan.touched.push(field.clone());
            }
            plan.decisions
                .push((item, Some(mapping.clone()), decision, detail));
        }
        plan
    }
}

#[derive(Default)]
pub(super) struct Plan<'a> {
    pub(super) body: Map<String, Value>,
    /// Each change's decision, with what it was decided on (the baseline
    /// as it was before this batch moved it).
    pub(super) decisions: Vec<(
        &'a Item,
        Option<crate::mapping::FieldMapping>,
        Decision,
        DecisionDetail,
    )>,
    /// Fields whose state changes (applied or found in sync).
    pub(super) touched: Vec<String>,
}
