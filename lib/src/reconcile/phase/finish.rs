//! Phase 4: the last HubSpot batch, the open MANUAL conflicts, the report
//! and, when a night needs a person, the alert.

use tracing::{info, warn};

use crate::operate::conflicts;
use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{RunRecord, RunStatus};
use crate::reconcile::mail::Night;
use crate::reconcile::ports::{Alerts, HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::{self, OpenConflict, Piece, Report, RunFacts};
use crate::reconcile::run::{Outcome, Reconciler, outcome};
use crate::reconcile::step::{Ctx, Interrupt, RunFailure, store};
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
    pub(in crate::reconcile) async fn finish<A: Alerts>(
        &self,
        ctx: &Ctx<'_>,
        mut run: RunRecord,
        owner: &str,
        stop_reason: Option<String>,
        alerts: &A,
    ) -> Result<Outcome, RunFailure> {
        let mut stop_reason = stop_reason;
        if stop_reason.is_none() {
            let mut piece = Piece::default();
            match self
                .flush(ctx, &mut run.cursor.pending_hubspot, true, &mut piece)
                .await
            {
                Ok(()) => {}
                Err(Interrupt::Daily(why)) => {
                    stop_reason = Some(format!("HubSpot's daily API limit was reached ({why})"));
                }
                Err(Interrupt::Fail(e)) => return Err(e),
            }
            self.pieces(&run.run_id).put("4-final", &piece).await?;
        }
        let records = self
            .store
            .open_conflicts()
            .await
            .map_err(store("listing open conflicts"))?;
        let open = records
            .iter()
            .map(|c| OpenConflict {
                customer_id: c.customer_id.clone(),
                field: c.field.clone(),
                property: c.property.clone(),
                warp_value: c.warp_value.clone(),
                hubspot_value: c.hubspot_value.clone(),
                source: c.dedup_key.clone(),
            })
            .collect();
        let finished = now_ms();
        run.status = if stop_reason.is_some() {
            RunStatus::Stopped
        } else {
            RunStatus::Completed
        };
        let facts = RunFacts {
            run_id: run.run_id.clone(),
            status: run.status.as_str().to_string(),
            dry_run: run.dry_run,
            stop_reason: stop_reason.clone(),
            started_ms: run.started_ms,
            finished_ms: finished,
            invocations: run.invocations,
            timezone: self.settings.timezone,
        };
        let report = report::assemble(&facts, self.pieces(&run.run_id).for_report().await?, open);
        let base = format!("{}{}/report", self.settings.report_prefix, run.run_id);
        let (json_key, html_key) = (format!("{base}.json"), format!("{base}.html"));
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        self.reports
            .put(&json_key, json, "application/json")
            .await
            .map_err(store("writing the JSON report"))?;
        self.reports
            .put(
                &html_key,
                report.to_html().into_bytes(),
                "text/html; charset=utf-8",
            )
            .await
            .map_err(store("writing the HTML report"))?;
        // Before the run is marked finished: a run that dies while sending
        // is retried and sends again, rather than never.
        let with_ids: Vec<conflicts::OpenConflict> =
            records.iter().map(conflicts::OpenConflict::from).collect();
        run.email = alerts
            .mail_report(&Night {
                report: &report,
                conflicts: &with_ids,
                full_report: Some(&html_key),
            })
            .await;
        run.counters = report.summary;
        run.finished_ms = Some(finished);
        run.updated_ms = finished;
        run.stop_reason = stop_reason;
        run.report_json_key = Some(json_key);
        run.report_html_key = Some(html_key);
        self.runs
            .checkpoint(&run, owner, 0)
            .await
            .map_err(store("finishing the run"))?;
        let s = &report.summary;
        info!(
            run_id = %run.run_id,
            status = run.status.as_str(),
            dry_run = run.dry_run,
            pairs = s.pairs_compared,
            in_sync = s.pairs_in_sync,
            fixed_in_warp = s.fixed_in_warp,
            fixed_in_hubspot = s.fixed_in_hubspot,
            conflicts = s.conflicts_for_review,
            unmatched_warp = s.unmatched_warp,
            unmatched_hubspot = s.unmatched_hubspot,
            swept = s.swept,
            errors = s.errors,
            hubspot_calls = s.hubspot_calls.total(),
            warp_calls = s.warp_calls.total(),
            duration_ms = report.duration_ms,
            "run finished"
        );
        crate::metrics::run_finished(run.status == RunStatus::Stopped, report.duration_ms);
        s.count();
        if s.needs_attention() || run.status == RunStatus::Stopped {
            self.alert(&report, &run, alerts).await;
        }
        let status = if run.status == RunStatus::Stopped {
            "stopped"
        } else {
            "completed"
        };
        Ok(outcome(&run, status, &report.short_summary()))
    }

    pub(in crate::reconcile) async fn alert<A: Alerts>(
        &self,
        report: &Report,
        run: &RunRecord,
        alerts: &A,
    ) {
        let subject = format!(
            "HubSpot-WARP reconciliation {}: {}",
            run.run_id,
            if run.status == RunStatus::Stopped {
                "stopped early"
            } else {
                "needs review"
            }
        );
        let mut message = report.short_summary();
        if let Some(key) = &run.report_html_key {
            message.push_str(&format!("\nReport: {key}"));
        }
        if let Err(e) = alerts.publish(&subject, &message).await {
            // The report and the run record hold everything; the alarm on
            // the run's status still fires.
            warn!(run_id = %run.run_id, error = %e, "alert not published");
        }
    }
}
