//! HubSpot's fixes, sent 100 companies at a time (its batch limit), with
//! what each wrote recorded for the report and the field state.

use std::collections::HashMap;

use serde_json::Value;
use tracing::info;

use crate::hubspot::crm::CompanyUpdate;
use crate::mapping::conflict::FieldState;
use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::PendingUpdate;
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::{Piece, Write};
use crate::reconcile::run::{HUBSPOT_BATCH, Reconciler};
use crate::reconcile::step::{Ctx, Interrupt, hubspot};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};
use crate::time::now_ms;

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
    /// Sends HubSpot fixes in batch updates of 100: all of them when `all`,
    /// else only full batches (the rest waits, in the checkpoint, for more).
    pub(super) async fn flush(
        &self,
        ctx: &Ctx<'_>,
        pending: &mut Vec<PendingUpdate>,
        all: bool,
        piece: &mut Piece,
    ) -> Result<(), Interrupt> {
        while pending.len() >= HUBSPOT_BATCH || (all && !pending.is_empty()) {
            let n = pending.len().min(HUBSPOT_BATCH);
            let batch: Vec<PendingUpdate> = pending.drain(..n).collect();
            let inputs: Vec<CompanyUpdate> = batch
                .iter()
                .map(|p| CompanyUpdate {
                    id: p.company_id.clone(),
                    properties: p
                        .properties
                        .iter()
                        .map(|(k, (_, _, v))| (k.clone(), v.clone()))
                        .collect(),
                })
                .collect();
            piece.counters.hubspot_calls.batch_update += 1;
            let result = match self.hubspot.batch_update(&inputs).await {
                Ok(r) => r,
                Err(e) if e.is_daily_limit() => {
                    // Unsent fixes are found again by the next run.
                    return Err(hubspot(e));
                }
                Err(e) => {
                    for p in &batch {
                        piece.error(
                            Some(&p.customer_id),
                            Some(&p.company_id),
                            "HubSpot batch update",
                            e.to_string(),
                        );
                        record_hubspot_writes(piece, p, "failed");
                    }
                    continue;
                }
            };
            let failed: HashMap<&str, &str> = result
                .failed
                .iter()
                .flat_map(|f| {
                    f.ids
                        .iter()
                        .map(move |id| (id.as_str(), f.message.as_str()))
                })
                .collect();
            let now = now_ms();
            for p in &batch {
                if let Some(message) = failed.get(p.company_id.as_str()) {
                    piece.error(
                        Some(&p.customer_id),
                        Some(&p.company_id),
                        "HubSpot batch update",
                        message.to_string(),
                    );
                    record_hubspot_writes(piece, p, "failed");
                    continue;
                }
                record_hubspot_writes(piece, p, "written");
                piece.counters.hubspot_updates += 1;
                piece.counters.fixed_in_hubspot += p.properties.len() as u64;
                for b in &p.baselines {
                    let state = FieldState {
                        synced_value: Some(b.value.clone()),
                        hubspot_occurred_at: Some(now),
                        warp_updated_at: p.warp_updated_at,
                    };
                    self.remember(piece, &p.customer_id, &p.company_id, &b.field, &state)
                        .await;
                }
            }
            info!(
                run_id = ctx.run_id,
                companies = batch.len(),
                failed = failed.len(),
                "HubSpot batch update"
            );
        }
        Ok(())
    }
}

pub(super) fn record_hubspot_writes(piece: &mut Piece, p: &PendingUpdate, status: &str) {
    for (property, (field, before, after)) in &p.properties {
        piece.writes.push(Write {
            side: "hubspot".into(),
            customer_id: p.customer_id.clone(),
            ban: p.ban.clone(),
            company_id: p.company_id.clone(),
            field: field.clone(),
            property: property.clone(),
            before: before.clone().map_or(Value::Null, Value::String),
            after: Value::String(after.clone()),
            status: status.to_string(),
        });
    }
}
