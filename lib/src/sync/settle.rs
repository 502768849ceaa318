//! After a decision: field state, conflicts, the sync log and the event
//! records, so a redelivered message is a no-op.

use std::collections::HashMap;

use serde_json::Value;
use tracing::{info, warn};

use super::ports::CompanyDirectory;
use crate::error::error_chain;
use crate::mapping::conflict::{self, Decision, FieldState, Reason};
use crate::store::sync::{
    ConflictQueue, ConflictRecord, DecisionDetail, FieldStateStore, LinkStore, SyncLog,
    SyncLogEntry,
};
use crate::store::{EventLog, EventStatus};
use crate::time::now_ms;
use crate::warp::Customer;
use crate::warp::WarpApi;

use super::apply::Plan;
use super::{BatchReport, ChangeOutcome, Consumer, Item, Transient};

impl<E, S, W, H> Consumer<E, S, W, H>
where
    E: EventLog,
    S: LinkStore + FieldStateStore + SyncLog + ConflictQueue,
    W: WarpApi,
    H: CompanyDirectory,
{
    /// Notes a transient failure on each message's event record, so the
    /// last error is at hand when the message ends in the DLQ. Best effort:
    /// the message goes back to the queue either way.
    pub(super) async fn note_failure(&self, items: &[&Item], error: &str) {
        for item in items {
            if let Err(e) = self
                .events
                .note_failure(&item.message.dedup_key, error, now_ms())
                .await
            {
                warn!(dedup_key = %item.message.dedup_key, error = %error_chain(&e), "failure not noted on the event record");
            }
        }
    }

    /// After the write (or when there was nothing to write): field state,
    /// conflicts, sync log and event records.
    pub(super) async fn record(
        &self,
        before: &Customer,
        after: Option<&Customer>,
        states: &HashMap<String, FieldState>,
        plan: Plan<'_>,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        let warp_updated_at = after.and_then(|c| c.updated_at_ms).or(before.updated_at_ms);
        let mut touched = plan.touched.clone();
        touched.sort();
        touched.dedup();
        for field in &touched {
            if let Some(state) = states.get(field) {
                let state = FieldState {
                    warp_updated_at,
                    ..state.clone()
                };
                self.store
                    .put_field_state(&before.id, field, &state)
                    .await?;
            }
        }
        let mut log = Vec::with_capacity(plan.decisions.len());
        for (item, mapping, decision, detail) in &plan.decisions {
            let e = &item.message.event;
            let property = e.property_name.as_deref().unwrap_or_default().to_string();
            let field = mapping.as_ref().map(|m| m.warp.as_str().to_string());
            let (outcome, reason, status) = match (mapping, decision) {
                (None, _) => (
                    ChangeOutcome::SkippedUnmapped,
                    "no mapping for this property".to_string(),
                    EventStatus::Applied,
                ),
                (Some(_), Decision::WriteWarp { reason, .. }) => {
                    report.applied_fields += 1;
                    let why = if reason.is_conflict() {
                        "conflict settled for HubSpot by the field's strategy"
                    } else {
                        "HubSpot change applied"
                    };
                    (
                        ChangeOutcome::Applied,
                        why.to_string(),
                        EventStatus::Applied,
                    )
                }
                (Some(_), Decision::InSync { .. }) => (
                    ChangeOutcome::InSync,
                    "WARP already holds this value".into(),
                    EventStatus::Applied,
                ),
                (
                    Some(_),
                    Decision::Keep {
                        reason: reason @ Reason::Stale { .. },
                    },
                ) => {
                    report.skipped += 1;
                    (
                        ChangeOutcome::SkippedStale,
                        reason.describe(),
                        EventStatus::Applied,
                    )
                }
                // The consumer writes WARP only: when the decision is that
                // HubSpot should take WARP's value, WARP keeps it and the
                // nightly run repairs HubSpot.
                (
                    Some(m),
                    Decision::WriteHubspot {
                        reason: Reason::Strategy(strategy),
                        ..
                    }
                    | Decision::Keep {
                        reason: Reason::Strategy(strategy),
                    },
                ) => {
                    report.conflicts += 1;
                    (
                        ChangeOutcome::Conflict,
                        format!(
                            "both sides changed {}; {} keeps WARP's value",
                            m.warp,
                            conflict::strategy_name(*strategy)
                        ),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::Keep { .. }) => {
                    report.skipped += 1;
                    (
                        ChangeOutcome::SkippedDirection,
                        format!("{} is not synced (direction NONE)", m.warp),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::WriteHubspot { .. }) => {
                    report.skipped += 1;
                    (
                        ChangeOutcome::SkippedDirection,
                        format!(
                            "{} is WARP-owned; HubSpot's edit is drift for the nightly run",
                            m.warp
                        ),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::Manual { .. }) => {
                    report.conflicts += 1;
                    self.store
                        .put_conflict(&ConflictRecord {
                            customer_id: before.id.clone(),
                            field: m.warp.as_str().to_string(),
                            property: property.clone(),
                            hubspot_value: e
                                .property_value
                                .as_deref()
                                .unwrap_or_default()
                                .to_string(),
                            hubspot_occurred_at: e.occurred_at,
                            warp_value: m
                                .warp
                                .get(&before.raw)
                                .cloned()
                                .unwrap_or(Value::Null)
                                .to_string(),
                            warp_updated_at: before.updated_at_ms,
                            dedup_key: item.message.dedup_key.to_string(),
                        })
                        .await?;
                    (
                        ChangeOutcome::Conflict,
                        format!("both sides changed {}; MANUAL: queued for review", m.warp),
                        EventStatus::Applied,
                    )
                }
                (Some(_), Decision::Invalid(err)) => {
                    report.failed += 1;
                    (
                        ChangeOutcome::Failed,
                        err.to_string(),
                        EventStatus::Other("FAILED".into()),
                    )
                }
            };
            outcome.count();
            info!(
                dedup_key = %item.message.dedup_key,
                customer_id = %before.id,
                property,
                outcome = outcome.as_str(),
                reason,
                "field decision"
            );
            log.push(SyncLogEntry {
                customer_id: before.id.clone(),
                at_ms: now_ms(),
                dedup_key: item.message.dedup_key.to_string(),
                property,
                field,
                outcome: outcome.as_str().to_string(),
                reason: reason.clone(),
                detail: detail.clone(),
            });
            self.events
                .settle(&item.message.dedup_key, &status, &reason)
                .await?;
        }
        self.store.append(&log).await?;
        Ok(())
    }

    /// Records a permanent failure for every message of a customer.
    pub(super) async fn fail_all(
        &self,
        items: &[&Item],
        customer_id: &str,
        reason: &str,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        for item in items {
            self.finish(
                item,
                customer_id,
                None,
                ChangeOutcome::Failed,
                reason,
                EventStatus::Other("FAILED".into()),
            )
            .await?;
            report.failed += 1;
        }
        Ok(())
    }

    /// Writes the log line and settles the event of one message handled
    /// without a field decision.
    pub(super) async fn finish(
        &self,
        item: &Item,
        customer_id: &str,
        field: Option<String>,
        outcome: ChangeOutcome,
        reason: &str,
        status: EventStatus,
    ) -> Result<(), Transient> {
        let e = &item.message.event;
        outcome.count();
        info!(dedup_key = %item.message.dedup_key, customer_id, outcome = outcome.as_str(), reason, "event decision");
        self.store
            .append(&[SyncLogEntry {
                customer_id: customer_id.to_string(),
                at_ms: now_ms(),
                dedup_key: item.message.dedup_key.to_string(),
                property: e.property_name.as_deref().unwrap_or(e.action()).to_string(),
                field,
                outcome: outcome.as_str().to_string(),
                reason: reason.to_string(),
                detail: DecisionDetail::default(),
            }])
            .await?;
        self.events
            .settle(&item.message.dedup_key, &status, reason)
            .await?;
        Ok(())
    }

    pub(super) async fn unmatched(
        &self,
        item: &Item,
        reason: &str,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        report.unmatched += 1;
        let company = format!("unmatched#{}", item.message.event.object_id);
        self.finish(
            item,
            &company,
            None,
            ChangeOutcome::Unmatched,
            reason,
            EventStatus::Other("UNMATCHED".into()),
        )
        .await
    }
}
