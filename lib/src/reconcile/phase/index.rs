//! Phase 0: HubSpot's companies that carry `warp_ban`, a search page (200)
//! at a time, into the run's index (`reconcile::index`) and its spill in
//! the report store. The other phases read HubSpot no more: they join
//! WARP's customers with the index by company id.
//!
//! Search is the night's slowest read (its own few calls a second), so the
//! index is read by a reader that runs beside the steps: phase 1 starts
//! once half the marked companies are in (`checkpoint::Passes`) and takes
//! each page the reader has fetched between its own steps. The reader
//! writes each page's spill before handing it over, so a checkpoint never
//! names a page the report store lacks.

use tokio::sync::mpsc;

use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{Phase, RunRecord};
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::ports::{HubspotCompanies, MarkedPage, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::Piece;
use crate::reconcile::run::Reconciler;
use crate::reconcile::step::{Interrupt, RunFailure, hubspot};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};

/// What the reader hands over: a page, spilled, or why it stopped.
pub(in crate::reconcile) type IndexPages = mpsc::Receiver<Result<MarkedPage, Interrupt>>;

/// Pages the reader may fetch ahead of the steps: enough that a step never
/// waits on search when a page is due, few enough to lose little when an
/// invocation hands over.
const READ_AHEAD: usize = 2;

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
    /// The reader: search pages from where the run's cursor stands, each
    /// spilled to the report store, then handed over; it ends after the
    /// last page, at the first failure, or when the steps stop taking.
    pub(in crate::reconcile) fn index_reader(
        &self,
        run: &RunRecord,
    ) -> (
        IndexPages,
        impl std::future::Future<Output = ()> + Send + '_,
    ) {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let run_id = run.run_id.clone();
        let mut page_no = run.cursor.index_pages;
        let mut after = run.cursor.index_after.clone();
        let reading = run.customers.is_none() && !run.cursor.index_done();
        let reader = async move {
            if !reading {
                return;
            }
            let properties = self.properties();
            loop {
                page_no += 1;
                let read = match self
                    .hubspot
                    .bridge_page(&properties, after.as_deref())
                    .await
                {
                    Ok(page) => self
                        .pieces(&run_id)
                        .put_index(page_no, &page.companies)
                        .await
                        .map(|()| page)
                        .map_err(Interrupt::from),
                    Err(e) => Err(hubspot(e)),
                };
                let next = read.as_ref().ok().and_then(|p| p.next.clone());
                let failed = read.is_err();
                if tx.send(read).await.is_err() || failed || next.is_none() {
                    return;
                }
                after = next;
            }
        };
        (rx, reader)
    }

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

    /// A step while nothing else is to do: waits for the next page, then
    /// says whether phase 1 may (go on to) work.
    pub(in crate::reconcile) async fn index_step(
        &self,
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        pages: &mut IndexPages,
    ) -> Result<(String, Piece), Interrupt> {
        let mut piece = Piece::default();
        // A step that read nothing (the index was whole already) names
        // its piece apart from the last page's.
        let mut key = "-whole";
        if !run.cursor.index_done() {
            key = "";
            let read = pages.recv().await.ok_or(RunFailure::IndexReader)?;
            Self::absorb(run, index, read?, &mut piece);
            Self::absorb_ready(run, index, pages, &mut piece)?;
        }
        let c = &mut run.cursor;
        if c.passes.done {
            if c.index_done() {
                c.phase = Phase::Companies;
            }
        } else {
            // Half of what was left when the last pass began (or of every
            // marked company, for the first pass); without HubSpot's count,
            // at the end.
            let total = index.len() as u64 + c.index_left.unwrap_or(0);
            let began = c.passes.began_with_left.unwrap_or(total);
            let time = c.index_done() || c.index_left.is_some_and(|left| left * 2 <= began);
            if time {
                let left = if c.index_done() {
                    0
                } else {
                    c.index_left.unwrap_or(0)
                };
                c.passes.began_with_left = Some(left);
                c.phase = Phase::Customers;
            }
        }
        Ok((format!("0-{:06}{key}", c.index_pages), piece))
    }
}
