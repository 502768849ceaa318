//! The two reads that feed phase 1, run beside the steps so that no step
//! waits on them: HubSpot's search pages for the index (search allows a
//! few calls a second, so the index is the night's floor) and WARP's pages
//! for phase 1's first pass (the next page is read while this one is
//! decided). Each is a task in the invocation that reads a couple of pages
//! ahead into a channel; the steps take what is ready. When the steps end
//! (the run's end, a hand-over, a failure) the readers are dropped, and
//! what they read ahead is read again by the next invocation from the
//! checkpoint.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::RunRecord;
use crate::reconcile::ports::{HubspotCompanies, MarkedPage, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::run::Reconciler;
use crate::reconcile::step::{Interrupt, hubspot};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};
use crate::warp::{Page, WarpError};

/// Search pages, each already spilled to the report store (so a
/// checkpoint never names a page the store lacks), or why reading stopped.
pub(in crate::reconcile) type IndexPages = mpsc::Receiver<Result<MarkedPage, Interrupt>>;

/// Pages a reader may hold ahead of the steps: enough that a step never
/// waits when a page is due, few enough to lose little at a hand-over.
const READ_AHEAD: usize = 2;

/// What the steps take from the readers.
pub(in crate::reconcile) struct Feeds {
    pub(in crate::reconcile) index: IndexPages,
    warp: mpsc::Receiver<Result<Page, WarpError>>,
    /// WARP's reader waits for phase 1 to begin: a page read long before
    /// it is decided is a stale one.
    warp_go: Arc<Notify>,
}

impl Feeds {
    /// WARP's next page for phase 1's first pass (the one after the
    /// cursor's `customer_pages`).
    pub(in crate::reconcile) async fn warp_page(&mut self) -> Option<Result<Page, WarpError>> {
        self.warp_go.notify_one();
        self.warp.recv().await
    }
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
    /// The readers a run needs from where its cursor stands (none for a
    /// manual run, which reads its few customers and companies by id),
    /// and the future that runs them.
    pub(in crate::reconcile) fn feeds(
        &self,
        run: &RunRecord,
    ) -> (Feeds, impl Future<Output = ()> + Send + '_) {
        let everyone = run.customers.is_none();
        let c = &run.cursor;
        let (index_tx, index) = mpsc::channel(READ_AHEAD);
        let (warp_tx, warp) = mpsc::channel(READ_AHEAD);
        let warp_go = Arc::new(Notify::new());
        let index_reader = self.read_index(
            run.run_id.clone(),
            c.index_pages,
            c.index_after.clone(),
            index_tx,
        );
        let warp_reader = self.read_warp(c.customer_pages, warp_go.clone(), warp_tx);
        let (read_index, read_warp) = (
            everyone && !c.index_done(),
            everyone && c.passes.pass == 0 && !c.passes.done,
        );
        let readers = async move {
            let index = async {
                if read_index {
                    index_reader.await;
                }
            };
            let warp = async {
                if read_warp {
                    warp_reader.await;
                }
            };
            futures::join!(index, warp);
        };
        (
            Feeds {
                index,
                warp,
                warp_go,
            },
            readers,
        )
    }

    /// Search pages after `after`, numbered on from `pages`: each spilled,
    /// then handed over; ends after the last, at the first failure, or
    /// when the steps stop taking.
    async fn read_index(
        &self,
        run_id: String,
        mut pages: u32,
        mut after: Option<String>,
        tx: mpsc::Sender<Result<MarkedPage, Interrupt>>,
    ) {
        let properties = self.properties();
        loop {
            pages += 1;
            let read = match self
                .hubspot
                .bridge_page(&properties, after.as_deref())
                .await
            {
                Ok(page) => self
                    .pieces(&run_id)
                    .put_index(pages, &page.companies)
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
    }

    /// WARP's pages after `pages`, once phase 1 asks for the first; ends
    /// after the last, at the first failure, or when the steps stop taking.
    async fn read_warp(
        &self,
        mut pages: u32,
        go: Arc<Notify>,
        tx: mpsc::Sender<Result<Page, WarpError>>,
    ) {
        go.notified().await;
        loop {
            pages += 1;
            let read = self.warp.list_page(pages, self.settings.page_size).await;
            let last = match &read {
                Ok(p) => p.page >= p.total_pages || p.items.is_empty(),
                Err(_) => true,
            };
            if tx.send(read).await.is_err() || last {
                return;
            }
        }
    }
}
