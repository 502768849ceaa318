//! Phase 0: HubSpot's companies that carry `warp_ban`, a search page (200)
//! at a time, into the run's index (`reconcile::index`) and its spill in
//! the report store. The other phases read HubSpot no more: they join
//! WARP's customers with the index by company id.
//!
//! Search is the night's slowest read (its own few calls a second), so the
//! index is read beside the steps (`feeds.rs`): phase 1's first pass
//! starts once a third of the marked companies are in, each later pass
//! once half of what was left has come (`checkpoint::Passes`), and each
//! page read meanwhile is taken between the steps.

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
        run.cursor.index_left = Some(page.left);
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

    /// A step while phase 1 waits for the index: one page (and any
    /// others ready), then whether the next pass may begin. The first
    /// begins once a third of the marked companies are in, each later one
    /// once half of what was left when the last began is in (without
    /// HubSpot's count of what is left, once the index is whole). Within a
    /// pass no step waits: a customer whose company the index has not read
    /// past is deferred to the next pass. Waiting step by step instead
    /// stalls a pass whenever its pages are near the bar, and starting
    /// each pass at once re-reads the deferred customers many times over.
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
            let read = pages
                .recv()
                .await
                .ok_or(RunFailure::ReaderStopped("HubSpot's search"))?;
            Self::absorb(run, index, read?, &mut piece);
            Self::absorb_ready(run, index, pages, &mut piece)?;
        }
        let c = &mut run.cursor;
        let left = if c.index_done() {
            Some(0)
        } else {
            c.index_left
        };
        let begin = match (c.passes.began_with_left, left) {
            (_, Some(0)) => true,
            (_, None) => false,
            (None, Some(left)) => left * 3 <= (index.len() as u64 + left) * 2,
            (Some(began), Some(left)) => left * 2 <= began,
        };
        if c.passes.done {
            if c.index_done() {
                c.phase = Phase::Companies;
            }
        } else if begin {
            c.passes.began_with_left = left;
            c.phase = Phase::Customers;
            info!(run_id = %run.run_id, pass = c.passes.pass, indexed = index.len(), left, "phase 1 pass begins");
        }
        Ok((format!("0-{:06}{key}", c.index_pages), piece))
    }
}
