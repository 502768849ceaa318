//! Phase 2: the index's companies that no customer named (each carries a
//! `warp_ban`): linked when exactly one unlinked customer has that BAN,
//! else unmatched. No HubSpot read: the index has their values.

use tracing::info;

use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{Phase, RunRecord};
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::pair::LinkAction;
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::{Linked, Piece, Unmatched};
use crate::reconcile::run::{Reconciler, WARP_BAN_PROPERTY};
use crate::reconcile::step::{Ctx, Interrupt, RunFailure, store};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkState, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};
use crate::warp::WarpError;

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
    pub(in crate::reconcile) async fn companies_step(
        &self,
        ctx: &Ctx<'_>,
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        leftovers: &[String],
    ) -> Result<(String, Piece), Interrupt> {
        let page_no = run.cursor.company_pages + 1;
        let mut piece = Piece::default();
        let size = self.settings.page_size.max(1) as usize;
        let start = (page_no as usize - 1) * size;
        let page: Vec<_> = leftovers
            .iter()
            .skip(start)
            .take(size)
            .filter_map(|id| index.get(id))
            .collect();
        let mut work = Vec::new();
        for company in page {
            if company.archived || index.is_paired(&company.id) {
                continue;
            }
            let Some(ban) = company.property(WARP_BAN_PROPERTY).map(str::to_string) else {
                // Not a WARP customer's company at all.
                continue;
            };
            let unmatched = |reason: String| Unmatched {
                customer_id: None,
                ban: Some(ban.clone()),
                company_id: Some(company.id.clone()),
                reason,
            };
            if let Some(l) = self
                .store
                .link(&company.id)
                .await
                .map_err(store("reading links"))?
                && l.state == LinkState::Active
            {
                piece.counters.unmatched_hubspot += 1;
                piece.unmatched_hubspot.push(unmatched(format!(
                    "linked to customer {}, whose external_ids names another company",
                    l.customer_id
                )));
                continue;
            }
            piece.counters.warp_calls.by_ban += 1;
            let customer = match self.warp.by_ban(&ban).await {
                Ok(c) => c,
                Err(WarpError::NotFound) => {
                    piece.counters.unmatched_hubspot += 1;
                    piece
                        .unmatched_hubspot
                        .push(unmatched("no WARP customer has this warp_ban".into()));
                    continue;
                }
                Err(e) if e.is_transient() => return Err(RunFailure::Warp(e).into()),
                Err(e) => {
                    piece.error(None, Some(&company.id), "WARP lookup by BAN", e.to_string());
                    continue;
                }
            };
            match customer.hubspot_company_id.as_deref() {
                Some(other) if other != company.id => {
                    piece.counters.unmatched_hubspot += 1;
                    piece.unmatched_hubspot.push(unmatched(format!(
                        "WARP customer {} with this BAN is linked to company {other}",
                        customer.id
                    )));
                }
                // The customer names this company but phase 1 could not
                // pair them (it saw an older customer list): pair now.
                Some(_) => {
                    index.mark_paired(&company.id);
                    work.push((customer, company, LinkAction::Record));
                }
                None => {
                    info!(run_id = ctx.run_id, customer_id = %customer.id, company_id = %company.id, "linked by exact BAN match");
                    piece.counters.linked += 1;
                    piece.linked.push(Linked {
                        customer_id: customer.id.clone(),
                        ban: customer.ban.clone(),
                        company_id: company.id.clone(),
                    });
                    index.mark_paired(&company.id);
                    work.push((customer, company, LinkAction::RecordAndSetExternalId));
                }
            }
        }
        self.reconcile_all(ctx, work, &mut piece, &mut run.cursor.pending_hubspot)
            .await?;
        self.flush(ctx, &mut run.cursor.pending_hubspot, false, &mut piece)
            .await?;
        run.cursor.company_pages = page_no;
        if start + size >= leftovers.len() {
            run.cursor.phase = Phase::Sweep;
        }
        Ok((format!("2-{page_no:06}"), piece))
    }

    // --- phase 3 ------------------------------------------------------
}
