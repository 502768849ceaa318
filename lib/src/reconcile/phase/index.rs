//! Phase 0: HubSpot's companies that carry `warp_ban`, a search page (200)
//! at a time, into the run's index (`reconcile::index`) and its spill in
//! the report store. The other phases read HubSpot no more: they join
//! WARP's customers with the index by company id.
//!
//! Search is the night's slowest read (its own few calls a second), so the
//! index is read beside the steps (`feeds.rs`): phase 1 starts once half
//! the marked companies are in (`checkpoint::Passes`) and takes each page
//! read meanwhile between its own steps.

use tracing::info;

use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{Phase, RunRecord};
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::phase::IndexPages;
use crate::reconcile::ports::{HubspotCompanies, MarkedPage, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::Piece;
use crate::reconcile::run::Reconciler;
use crate::reconcile::step::{Interrupt, RunFailure};
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
    /// Takes a page the reader handed over into the index and the cursor.
    pub(in crate::reconcile) fn absorb(
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        page: MarkedPage,
        piece: &mut Piece,
    ) {
        piece.counters.hubspot_calls.search += 1;
        for c in page.companies {
            index.insert(c);
        }
        run.cursor.index_pages += 1;
        run.cursor.index_after = page.next;
        run.cursor.index_left = page.left;
        if run.cursor.index_done() {
            info!(run_id = %run.run_id, companies = index.len(), pages = run.cursor.index_pages, "company index whole");
        }
    }

    /// Every page the reader has ready, without waiting (between phase 1's
    /// steps).
    pub(in crate::reconcile) fn absorb_ready(
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        pages: &mut IndexPages,
        piece: &mut Piece,
    ) -> Result<(), Interrupt> {
        while let Ok(read) = pages.try_recv() {
            Self::absorb(run, index, read?, piece);
        }
        Ok(())
    }

    /// Waits for the reader's next page (and takes any others ready).
    pub(in crate::reconcile) async fn absorb_next(
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        pages: &mut IndexPages,
        piece: &mut Piece,
    ) -> Result<(), Interrupt> {
        let read = pages
            .recv()
            .await
            .ok_or(RunFailure::ReaderStopped("HubSpot's search"))?;
        Self::absorb(run, index, read?, piece);
        Self::absorb_ready(run, index, pages, piece)
    }

    /// A step once phase 1 is done and the index is not: the rest of the
    /// index, which phase 2 walks.
    pub(in crate::reconcile) async fn index_step(
        &self,
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        pages: &mut IndexPages,
    ) -> Result<(String, Piece), Interrupt> {
        let mut piece = Piece::default();
        // A step that read nothing (the index was whole already: a record
        // from before phase 1 ran beside the index) names its piece apart
        // from the last page's.
        let mut key = "-whole";
        if !run.cursor.index_done() {
            key = "";
            Self::absorb_next(run, index, pages, &mut piece).await?;
        }
        let c = &mut run.cursor;
        if c.index_done() {
            c.phase = if c.passes.done {
                Phase::Companies
            } else {
                Phase::Customers
            };
        }
        Ok((format!("0-{:06}{key}", c.index_pages), piece))
    }
}
