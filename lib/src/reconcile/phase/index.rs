//! Phase 0: HubSpot's companies that carry `warp_ban`, a search page (200)
//! at a time, into the run's index (`reconcile::index`) and its spill in
//! the report store. The other phases read HubSpot no more: they join
//! WARP's customers with the index by company id.

use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{Phase, RunRecord};
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::Piece;
use crate::reconcile::run::Reconciler;
use crate::reconcile::step::{Interrupt, hubspot};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};

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
    pub(in crate::reconcile) async fn index_step(
        &self,
        run: &mut RunRecord,
        index: &mut CompanyIndex,
    ) -> Result<(String, Piece), Interrupt> {
        let page_no = run.cursor.index_pages + 1;
        let mut piece = Piece::default();
        let properties = self.properties();
        let (companies, next) = self
            .hubspot
            .bridge_page(&properties, run.cursor.index_after.as_deref())
            .await
            .map_err(hubspot)?;
        piece.counters.hubspot_calls.search += 1;
        self.pieces(&run.run_id)
            .put_index(page_no, &companies)
            .await?;
        for c in companies {
            index.insert(c);
        }
        run.cursor.index_pages = page_no;
        run.cursor.index_after = next;
        if run.cursor.index_after.is_none() {
            run.cursor.phase = Phase::Customers;
        }
        Ok((format!("0-{page_no:06}"), piece))
    }
}
