//! Phase 1: every WARP customer (or the manual run's selection), a page at
//! a time, with its linked company.

use std::collections::HashMap;

use futures::StreamExt;
use tracing::info;

use crate::hubspot::crm::Company;
use crate::queue::SyncQueue;
use crate::reconcile::checkpoint::{Passes, PendingUpdate, Phase, RunRecord};
use crate::reconcile::index::CompanyIndex;
use crate::reconcile::pair::{LinkAction, PairResult};
use crate::reconcile::phase::Feeds;
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use crate::reconcile::report::{Piece, Unmatched};
use crate::reconcile::run::{HUBSPOT_BATCH, Reconciler};
use crate::reconcile::step::{Ctx, Interrupt, RunFailure, hubspot, store};
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkState, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};
use crate::warp::{Customer, WarpError};

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
    pub(in crate::reconcile) async fn customers_step(
        &self,
        ctx: &Ctx<'_>,
        run: &mut RunRecord,
        index: &mut CompanyIndex,
        feeds: &mut Feeds,
    ) -> Result<(String, Piece), Interrupt> {
        let mut piece = Piece::default();
        Self::absorb_ready(run, index, &mut feeds.index, &mut piece)?;
        let (customers, last, key) = self.source(run, feeds, &mut piece).await?;
        // What the index has not read past waits for a later pass; the
        // rest is decided now.
        let (customers, later): (Vec<Customer>, Vec<Customer>) =
            customers.into_iter().partition(|c| {
                run.customers.is_some()
                    || c.hubspot_company_id
                        .as_deref()
                        .is_none_or(|id| run.cursor.index_covers(id))
            });
        let (pass, n) = (run.cursor.passes.pass, run.cursor.passes.deferred + 1);
        let defer = async {
            if later.is_empty() {
                return Ok(false);
            }
            self.pieces(ctx.run_id)
                .put_deferred(pass, n, &later)
                .await
                .map(|()| true)
        };
        let decide = self.decide_page(
            ctx,
            customers,
            index,
            &mut piece,
            &mut run.cursor.pending_hubspot,
        );
        let (deferred, decided) = futures::join!(defer, decide);
        let (deferred, ()) = (deferred?, decided?);
        for id in &piece.paired_companies {
            index.mark_paired(id);
        }
        piece.counters.deferred += later.len() as u64;
        let c = &mut run.cursor;
        if deferred {
            c.passes.deferred += 1;
        }
        if last {
            if run.customers.is_none() {
                info!(run_id = %run.run_id, pass = c.passes.pass, deferred_pieces = c.passes.deferred, index_whole = c.index_done(), "phase 1 pass ended");
            }
            c.phase = if run.customers.is_some() {
                Phase::Finish
            } else if c.passes.deferred > 0 {
                // Another pass, over what this one deferred: at once when
                // the index is whole, else when it has come far enough
                // (`index_step`).
                c.passes = Passes {
                    pass: c.passes.pass + 1,
                    to_read: c.passes.deferred,
                    began_with_left: c.index_done().then_some(0),
                    ..Passes::default()
                };
                if c.index_done() {
                    Phase::Customers
                } else {
                    Phase::Index
                }
            } else {
                c.passes.done = true;
                // Phase 2 walks the whole index.
                if c.index_done() {
                    Phase::Companies
                } else {
                    Phase::Index
                }
            };
        }
        Ok((key, piece))
    }

    /// The step's customers: a manual run's selection or WARP's next page
    /// (counted in `customer_pages`), or, in a later pass, the pieces the
    /// last pass deferred until a page's worth; whether the pass ends with
    /// them, and the step's piece name.
    async fn source(
        &self,
        run: &mut RunRecord,
        feeds: &mut Feeds,
        piece: &mut Piece,
    ) -> Result<(Vec<Customer>, bool, String), Interrupt> {
        let c = &mut run.cursor;
        if c.passes.pass == 0 {
            let page_no = c.customer_pages + 1;
            let (customers, last) = match &run.customers {
                Some(selection) => self.selected(selection, page_no, piece).await?,
                None => {
                    let page = feeds
                        .warp_page()
                        .await
                        .ok_or(RunFailure::ReaderStopped("WARP's customers"))?
                        .map_err(RunFailure::Warp)?;
                    piece.counters.warp_calls.list += 1;
                    let last = page.page >= page.total_pages || page.items.is_empty();
                    (page.items, last)
                }
            };
            run.cursor.customer_pages = page_no;
            return Ok((customers, last, format!("1-{page_no:06}")));
        }
        let p = &mut c.passes;
        let mut customers = Vec::new();
        while p.read < p.to_read && customers.len() < self.settings.page_size as usize {
            customers.extend(
                self.pieces(&run.run_id)
                    .deferred(p.pass - 1, p.read + 1)
                    .await?,
            );
            p.read += 1;
        }
        p.steps += 1;
        Ok((
            customers,
            p.read >= p.to_read,
            format!("1-p{:03}-{:06}", p.pass, p.steps),
        ))
    }

    /// Decides a page of customers: each paired with the company its
    /// external_ids names, found in the index or read by id.
    async fn decide_page(
        &self,
        ctx: &Ctx<'_>,
        customers: Vec<Customer>,
        index: &CompanyIndex,
        piece: &mut Piece,
        pending: &mut Vec<PendingUpdate>,
    ) -> Result<(), Interrupt> {
        // Pair each customer with the company its external_ids names.
        let mut pairs: Vec<(Customer, String, LinkAction)> = Vec::new();
        let links = futures::stream::iter(customers.into_iter().map(|c| async move {
            let link = match c.hubspot_company_id.as_deref() {
                Some(id) => Some(self.store.link(id).await),
                None => None,
            };
            (c, link)
        }))
        .buffered(self.settings.concurrency)
        .collect::<Vec<_>>()
        .await;
        for (customer, link) in links {
            let Some(company_id) = customer.hubspot_company_id.clone() else {
                piece.counters.unmatched_warp += 1;
                piece.unmatched_warp.push(Unmatched {
                    customer_id: Some(customer.id.clone()),
                    ban: Some(customer.ban.clone()),
                    company_id: None,
                    reason: "no HubSpot company in external_ids".into(),
                });
                continue;
            };
            let action = match link.transpose().map_err(store("reading links"))?.flatten() {
                None => LinkAction::Record,
                Some(l) if l.state != LinkState::Active => {
                    piece.counters.unmatched_warp += 1;
                    piece.unmatched_warp.push(Unmatched {
                        customer_id: Some(customer.id.clone()),
                        ban: Some(customer.ban.clone()),
                        company_id: Some(company_id.clone()),
                        reason: format!(
                            "company {company_id} is {} in HubSpot{}",
                            l.state.as_str().to_lowercase(),
                            l.merged_into
                                .map(|m| format!(" (into {m})"))
                                .unwrap_or_default()
                        ),
                    });
                    continue;
                }
                Some(l) if l.customer_id != customer.id => {
                    piece.error(
                        Some(&customer.id),
                        Some(&company_id),
                        "pairing",
                        format!(
                            "external_ids names company {company_id}, whose link names customer {}",
                            l.customer_id
                        ),
                    );
                    continue;
                }
                Some(_) => LinkAction::Exists,
            };
            pairs.push((customer, company_id, action));
        }

        // The index has every company that carries warp_ban; the others
        // (a manual run's, a company whose warp_ban was cleared, one marked
        // since the index was read) are read by id.
        let mut companies = HashMap::new();
        let mut unindexed = Vec::new();
        for (_, id, _) in &pairs {
            match index.get(id) {
                Some(c) => {
                    companies.insert(id.clone(), c);
                }
                None => unindexed.push(id.clone()),
            }
        }
        for ids in unindexed.chunks(HUBSPOT_BATCH) {
            let read = self
                .hubspot
                .batch_read(ids, &self.properties())
                .await
                .map_err(hubspot)?;
            piece.counters.hubspot_calls.batch_read += 1;
            for missing in read.missing {
                companies.remove(&missing);
            }
            for c in read.found {
                companies.insert(c.id.clone(), c);
            }
        }
        let mut work = Vec::new();
        for (customer, company_id, action) in pairs {
            match companies.remove(&company_id) {
                Some(company) if !company.archived => {
                    piece.paired_companies.push(company_id);
                    work.push((customer, company, action));
                }
                _ => {
                    piece.counters.unmatched_warp += 1;
                    piece.unmatched_warp.push(Unmatched {
                        customer_id: Some(customer.id.clone()),
                        ban: Some(customer.ban.clone()),
                        company_id: Some(company_id.clone()),
                        reason: format!("company {company_id} does not exist in HubSpot"),
                    });
                }
            }
        }
        self.reconcile_all(ctx, work, piece, pending).await?;
        self.flush(ctx, pending, false, piece).await
    }

    /// A manual run's selection, a page at a time: ids first, then BANs.
    pub(in crate::reconcile) async fn selected(
        &self,
        selection: &[String],
        page_no: u32,
        piece: &mut Piece,
    ) -> Result<(Vec<Customer>, bool), Interrupt> {
        let size = self.settings.page_size.max(1) as usize;
        let start = (page_no as usize - 1) * size;
        let chunk = selection.iter().skip(start).take(size);
        let mut out = Vec::new();
        for wanted in chunk {
            piece.counters.warp_calls.get += 1;
            let found = match self.warp.get(wanted).await {
                Err(WarpError::NotFound) => {
                    piece.counters.warp_calls.by_ban += 1;
                    self.warp.by_ban(wanted).await
                }
                other => other,
            };
            match found {
                Ok(c) => out.push(c),
                Err(WarpError::NotFound) => {
                    piece.counters.unmatched_warp += 1;
                    piece.unmatched_warp.push(Unmatched {
                        customer_id: None,
                        ban: None,
                        company_id: None,
                        reason: format!("no WARP customer has the id or BAN {wanted}"),
                    });
                }
                Err(e) if e.is_transient() => return Err(RunFailure::Warp(e).into()),
                Err(e) => piece.error(Some(wanted), None, "WARP read", e.to_string()),
            }
        }
        Ok((out, start + size >= selection.len()))
    }

    /// Reconciles pairs a few at a time; their pieces merge in page order.
    pub(in crate::reconcile) async fn reconcile_all(
        &self,
        ctx: &Ctx<'_>,
        work: Vec<(Customer, Company, LinkAction)>,
        piece: &mut Piece,
        pending: &mut Vec<PendingUpdate>,
    ) -> Result<(), Interrupt> {
        let results: Vec<PairResult> =
            futures::stream::iter(work.into_iter().map(|(customer, company, action)| {
                self.reconcile_pair(ctx, customer, company, action)
            }))
            .buffered(self.settings.concurrency)
            .collect()
            .await;
        for r in results {
            piece.absorb(r.piece);
            pending.extend(r.pending);
        }
        Ok(())
    }
}
