//! One pair, a WARP customer and its HubSpot company: decided field by
//! field, WARP's fixes written at once (`warp::update_if_match`), HubSpot's
//! queued for the next batch update, and each decision recorded.

use std::collections::HashMap;

use serde_json::Value;
use tracing::info;

use crate::error::error_chain;
use crate::hubspot::crm::Company;
use crate::mapping::conflict::FieldState;
use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::PendingUpdate;
use crate::reconcile::hubspot_batch::record_hubspot_writes;
use crate::reconcile::plan::{self, DiffOutcome, MODIFIED_PROPERTY, PairPlan};
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::{self, PairDiff, Piece, Write};
use crate::reconcile::run::Reconciler;
use crate::reconcile::step::Ctx;
use crate::store::sync::{
    ConflictQueue, ConflictRecord, DecisionDetail, FieldStateStore, Link, LinkStore, SyncLog,
    SyncLogEntry,
};
use crate::store::{EventLog, StuckEvents};
use crate::time::now_ms;
use crate::warp::{Customer, WriteError, update_if_match};

/// How a pair's link stands before it is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkAction {
    Exists,
    /// `external_ids` names the company but the links table does not yet.
    Record,
    /// Linked by this run (exact BAN match): links table and `external_ids`.
    RecordAndSetExternalId,
}

/// Who a pair is, as the report and the sync log name it.
pub(super) struct PairIds {
    pub(super) customer_id: String,
    pub(super) ban: String,
    pub(super) company_id: String,
}

/// What reconciling one pair produced.
#[derive(Default)]
pub(super) struct PairResult {
    pub(super) piece: Piece,
    pub(super) pending: Option<PendingUpdate>,
}

impl<W, H, S, E, Q, R, P> Reconciler<W, H, S, E, Q, R, P>
where
    W: WarpCustomers,
    H: HubspotCompanies,
    S: LinkStore + FieldStateStore + ConflictQueue + SyncLog,
    E: EventLog + StuckEvents,
    Q: SyncQueue,
    R: RunStore,
    P: ReportStore,
{
    pub(super) async fn reconcile_pair(
        &self,
        ctx: &Ctx<'_>,
        customer: Customer,
        company: Company,
        action: LinkAction,
    ) -> PairResult {
        let mut out = PairResult::default();
        let piece = &mut out.piece;
        let ids = PairIds {
            customer_id: customer.id.clone(),
            ban: customer.ban.clone(),
            company_id: company.id.clone(),
        };
        let states = match self.store.field_states(&customer.id).await {
            Ok(s) => s,
            Err(e) => {
                piece.error(
                    Some(&ids.customer_id),
                    Some(&ids.company_id),
                    "reading field state",
                    error_chain(&e),
                );
                return out;
            }
        };
        let modified_at = company
            .properties
            .get(MODIFIED_PROPERTY)
            .and_then(Option::as_deref)
            .and_then(plan::hubspot_time);

        if !ctx.dry_run && action != LinkAction::Exists {
            let link = Link::active(&company.id, &customer.id, &customer.ban);
            if let Err(e) = self.store.put_link(&link).await {
                piece.error(
                    Some(&ids.customer_id),
                    Some(&ids.company_id),
                    "recording the link",
                    error_chain(&e),
                );
                return out;
            }
        }

        // WARP: one PUT with If-Match; a 412 reads again and decides again
        // (warp::update_if_match).
        let set_external_id = action == LinkAction::RecordAndSetExternalId;
        let decide = |customer: &Customer| {
            let plan = plan::plan_pair(&self.mappings, customer, &company, &states);
            let mut body = plan.warp_body.clone();
            if set_external_id {
                body.insert(
                    "external_ids".into(),
                    serde_json::json!({ "hubspot_company_id": company.id }),
                );
            }
            (body, plan)
        };
        let mut updated = None;
        let (customer, plan) = if ctx.dry_run {
            let plan = decide(&customer).1;
            (customer, plan)
        } else {
            let w = update_if_match(&self.warp, customer, decide).await;
            piece.counters.warp_calls.put += u64::from(w.puts);
            piece.counters.warp_calls.get += u64::from(w.rereads);
            if w.rereads > 0 {
                info!(run_id = ctx.run_id, customer_id = %w.customer.id, "WARP customer changed under the update (412); read again and decided again");
            }
            let (customer, mut plan) = (w.customer, w.decision);
            match w.written {
                Ok(after) => updated = after,
                Err(WriteError::Reread(e)) => {
                    piece.error(
                        Some(&ids.customer_id),
                        Some(&ids.company_id),
                        "WARP read after 412",
                        e.to_string(),
                    );
                    return out;
                }
                Err(e) => {
                    let during = if matches!(e, WriteError::Contended) {
                        "WARP PUT (412 twice: the customer keeps changing)"
                    } else {
                        "WARP PUT"
                    };
                    piece.error(
                        Some(&ids.customer_id),
                        Some(&ids.company_id),
                        during,
                        e.to_string(),
                    );
                    record_writes(piece, &ids, &plan, &customer, None, "failed");
                    plan.warp_body.clear();
                    plan.warp_baselines.clear();
                }
            }
            (customer, plan)
        };
        tally(piece, &ids, &plan);
        if !ctx.dry_run {
            self.log_decisions(ctx, piece, &ids, &plan, updated.is_some())
                .await;
        }

        if !plan.warp_body.is_empty() {
            let status = if ctx.dry_run { "dry-run" } else { "written" };
            record_writes(piece, &ids, &plan, &customer, updated.as_ref(), status);
            if let Some(after) = &updated {
                piece.counters.warp_writes += 1;
                piece.counters.fixed_in_warp += plan.warp_baselines.len() as u64;
                for b in &plan.warp_baselines {
                    let prev = states.get(&b.field).and_then(|s| s.hubspot_occurred_at);
                    let state = FieldState {
                        synced_value: Some(b.value.clone()),
                        hubspot_occurred_at: prev.max(modified_at),
                        warp_updated_at: after.updated_at_ms,
                    };
                    self.remember(piece, &customer.id, &company.id, &b.field, &state)
                        .await;
                }
            }
        }
        if !ctx.dry_run {
            // At once: a first run remembers every field of every pair, and
            // one at a time that is 13 round trips per customer.
            let states: Vec<(&str, FieldState)> = plan
                .agreed_baselines
                .iter()
                .map(|b| {
                    let prev = states.get(&b.field).and_then(|s| s.hubspot_occurred_at);
                    let state = FieldState {
                        synced_value: Some(b.value.clone()),
                        hubspot_occurred_at: prev.max(modified_at),
                        warp_updated_at: customer.updated_at_ms,
                    };
                    (b.field.as_str(), state)
                })
                .collect();
            let written = futures::future::join_all(
                states
                    .iter()
                    .map(|(field, state)| self.store.put_field_state(&customer.id, field, state)),
            )
            .await;
            for result in written {
                if let Err(e) = result {
                    piece.error(
                        Some(&customer.id),
                        Some(&company.id),
                        "writing field state",
                        error_chain(&e),
                    );
                }
            }
            for m in &plan.manual {
                let record = ConflictRecord {
                    customer_id: customer.id.clone(),
                    field: m.field.clone(),
                    property: m.property.clone(),
                    hubspot_value: m.hubspot_value.clone().unwrap_or_default(),
                    hubspot_occurred_at: modified_at.unwrap_or_default(),
                    warp_value: m.warp_value.to_string(),
                    warp_updated_at: customer.updated_at_ms,
                    dedup_key: format!("run:{}", ctx.run_id),
                };
                if let Err(e) = self.store.put_conflict(&record).await {
                    piece.error(
                        Some(&ids.customer_id),
                        Some(&ids.company_id),
                        "queueing the conflict",
                        error_chain(&e),
                    );
                }
            }
        }

        if !plan.hubspot_properties.is_empty() {
            let fields: HashMap<&str, &str> = self
                .mappings
                .fields_for(&customer.id, &customer.ban)
                .into_iter()
                .map(|m| (m.hubspot.as_str(), m.warp.as_str()))
                .collect();
            let pending = PendingUpdate {
                company_id: company.id.clone(),
                customer_id: customer.id.clone(),
                ban: customer.ban.clone(),
                properties: plan
                    .hubspot_properties
                    .iter()
                    .map(|(p, v)| {
                        let before = company.properties.get(p).cloned().flatten();
                        let field = fields.get(p.as_str()).copied().unwrap_or_default();
                        (p.clone(), (field.to_string(), before, v.clone()))
                    })
                    .collect(),
                baselines: plan.hubspot_baselines.clone(),
                warp_updated_at: updated
                    .as_ref()
                    .and_then(|c| c.updated_at_ms)
                    .or(customer.updated_at_ms),
            };
            if ctx.dry_run {
                record_hubspot_writes(piece, &pending, "dry-run");
            } else {
                out.pending = Some(pending);
            }
        }
        out
    }

    /// The pair's decisions in the sync log, for `hubwarp explain`. Only
    /// the fields that differ: a run over 100,000 customers finds nearly
    /// every field in sync, and one entry per field of every customer each
    /// night would cost more than the whole sync does. A field found in
    /// sync has no entry; its current state answers for it.
    pub(super) async fn log_decisions(
        &self,
        ctx: &Ctx<'_>,
        piece: &mut Piece,
        ids: &PairIds,
        plan: &PairPlan,
        warp_written: bool,
    ) {
        if plan.diffs.is_empty() {
            return;
        }
        let at = now_ms();
        let entries: Vec<SyncLogEntry> = plan
            .diffs
            .iter()
            .map(|d| {
                let (outcome, reason) = if d.decision == DiffOutcome::WriteWarp && !warp_written {
                    (
                        "failed".to_string(),
                        format!("{}; the WARP write failed (see the run's errors)", d.reason),
                    )
                } else {
                    (d.decision.to_string(), d.reason.clone())
                };
                SyncLogEntry {
                    customer_id: ids.customer_id.clone(),
                    at_ms: at,
                    dedup_key: format!("run:{}", ctx.run_id),
                    property: d.property.clone(),
                    field: Some(d.field.clone()),
                    outcome,
                    reason,
                    detail: DecisionDetail {
                        warp_value: Some(d.warp_value.clone()),
                        hubspot_value: d.hubspot_value.clone(),
                        baseline: d.baseline.clone(),
                        rule: (!d.rule.is_empty()).then(|| d.rule.clone()),
                    },
                }
            })
            .collect();
        if let Err(e) = self.store.append(&entries).await {
            piece.error(
                Some(&ids.customer_id),
                Some(&ids.company_id),
                "writing the sync log",
                error_chain(&e),
            );
        }
    }

    /// Writes a field's new baseline; a failure is reported, not fatal:
    /// the field is decided without it (or with the older one) next time.
    pub(super) async fn remember(
        &self,
        piece: &mut Piece,
        customer_id: &str,
        company_id: &str,
        field: &str,
        state: &FieldState,
    ) {
        if let Err(e) = self.store.put_field_state(customer_id, field, state).await {
            piece.error(
                Some(customer_id),
                Some(company_id),
                "writing field state",
                error_chain(&e),
            );
        }
    }

    // --- phase 2 ------------------------------------------------------
}

/// Counts a pair's decisions and keeps its differences for the report.
pub(super) fn tally(piece: &mut Piece, ids: &PairIds, plan: &PairPlan) {
    let c = &mut piece.counters;
    c.pairs_compared += 1;
    c.pairs_in_sync += u64::from(plan.in_sync());
    c.fields_in_sync += plan.fields_in_sync as u64;
    c.conflicts_for_review += plan.manual.len() as u64;
    for d in &plan.diffs {
        if d.decision.is_kept() {
            c.kept += 1;
        } else if d.decision == DiffOutcome::Failed {
            c.errors += 1;
        }
    }
    for d in &plan.diffs {
        if d.decision == DiffOutcome::Failed {
            piece.errors.push(report::RunError {
                customer_id: Some(ids.customer_id.clone()),
                company_id: Some(ids.company_id.clone()),
                during: format!("converting {}", d.field),
                message: d.reason.clone(),
            });
        }
        piece.differences.push(PairDiff {
            customer_id: ids.customer_id.clone(),
            ban: ids.ban.clone(),
            company_id: ids.company_id.clone(),
            diff: d.clone(),
        });
    }
}

/// The WARP side of a pair's writes, field by field.
pub(super) fn record_writes(
    piece: &mut Piece,
    ids: &PairIds,
    plan: &PairPlan,
    before: &Customer,
    after: Option<&Customer>,
    status: &str,
) {
    for d in plan
        .diffs
        .iter()
        .filter(|d| d.decision == DiffOutcome::WriteWarp)
    {
        let field = crate::mapping::WarpField::new(d.field.clone());
        let after_value = after
            .and_then(|a| field.get(&a.raw).cloned())
            .or_else(|| {
                plan.warp_baselines
                    .iter()
                    .find(|b| b.field == d.field)
                    .map(|b| b.value.clone())
            })
            .unwrap_or(Value::Null);
        piece.writes.push(Write {
            side: "warp".into(),
            customer_id: ids.customer_id.clone(),
            ban: ids.ban.clone(),
            company_id: ids.company_id.clone(),
            field: d.field.clone(),
            property: d.property.clone(),
            before: field.get(&before.raw).cloned().unwrap_or(Value::Null),
            after: after_value,
            status: status.to_string(),
        });
    }
}
