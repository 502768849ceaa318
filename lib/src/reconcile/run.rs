//! The run driver: claims the run, works page by page, checkpoints after
//! each page, hands over to a fresh invocation when time runs short, and
//! writes the report at the end.
//!
//! A run has four phases:
//! 1. `Customers`: pages through every WARP customer (or the manual run's
//!    selection), batch-reads the linked companies with the mapped
//!    properties, decides every field, writes WARP fixes one `PUT` per
//!    customer with `If-Match`, and queues HubSpot fixes for batch updates
//!    of up to 100.
//! 2. `Companies`: lists HubSpot's companies; one no customer named but
//!    carrying a `warp_ban` is linked when exactly one unlinked customer has
//!    that BAN (and reconciled at once), else reported unmatched.
//! 3. `Sweep`: event records left RECEIVED long after their lease lapsed
//!    are queued again from the message kept on the record.
//! 4. `Finish`: the last HubSpot batch, open MANUAL conflicts, the report.
//!
//! Memory stays bounded: one page of customers and companies at a time,
//! the HubSpot fixes not yet sent (at most 100), and in phase 2 the index
//! of paired company ids.
//!
//! Over 600 lines, on purpose for now: the loop, its checkpoint types and
//! the four phases share one `Reconciler` impl and the pair's write-back
//! that the consumer, undo and conflict resolution repeat; issue 16 ("A
//! house to live in") splits it by stage (checkpoint, pieces, phases,
//! pair, HubSpot batching) once that write-back is one path, so the code
//! moves once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use super::plan::{self, MODIFIED_PROPERTY, NewBaseline, PairPlan};
use super::ports::{
    Alerts, Claim, Continuation, HubspotCompanies, ReportStore, RunRecord, RunStatus, RunStore,
    WarpCustomers,
};
use super::report::{
    self, Counters, Linked, OpenConflict, PairDiff, Piece, Report, RunFacts, Unmatched, Write,
};
use super::{ReconcileRequest, RequestError};
use crate::hubspot::crm::{Company, CompanyUpdate, HubspotError};
use crate::intake::error_chain;
use crate::mapping::MappingSet;
use crate::mapping::conflict::FieldState;
use crate::queue::{Outgoing, SyncQueue};
use crate::store::sync::{
    ConflictQueue, ConflictRecord, DecisionDetail, FieldStateStore, Link, LinkState, LinkStore,
    SyncLog, SyncLogEntry,
};
use crate::store::{EventLog, StoreError, StuckEvents};
use crate::time::now_ms;
use crate::warp::{Customer, WarpError, WriteError, update_if_match};

/// The HubSpot property that names a company's WARP customer.
pub const WARP_BAN_PROPERTY: &str = crate::sync::ports::WARP_BAN_PROPERTY;

/// HubSpot's batch limit (inputs per batch read or update).
pub const HUBSPOT_BATCH: usize = 100;

#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Customers per WARP page and companies per HubSpot page (at most 100).
    pub page_size: u32,
    /// Stop an invocation after this long even with Lambda time left
    /// (`RECONCILE_INVOCATION_BUDGET_MS`; tests use it to split a run).
    pub invocation_budget: Option<Duration>,
    /// Hand over when less than this remains before Lambda's deadline.
    pub reserve: Duration,
    /// How long a run's lease lasts without a checkpoint renewing it; a
    /// crashed invocation's run can be taken over after this.
    pub lease: Duration,
    /// A RECEIVED event whose lease lapsed this long ago is swept.
    pub sweep_after: Duration,
    /// Pairs decided and written at once within a page.
    pub concurrency: usize,
    /// Where reports go in the bucket (`reports/`).
    pub report_prefix: String,
    pub timezone: chrono_tz::Tz,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            page_size: 100,
            invocation_budget: None,
            reserve: Duration::from_secs(90),
            lease: Duration::from_secs(120),
            sweep_after: Duration::from_secs(3600),
            concurrency: 8,
            report_prefix: "reports/".into(),
            timezone: chrono_tz::UTC,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Customers,
    Companies,
    Sweep,
    Finish,
}

/// A HubSpot fix waiting for its batch update; carried in the checkpoint so
/// a handover or a crash loses none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    pub company_id: String,
    pub customer_id: String,
    pub ban: String,
    /// property -> (WARP field, value before, value to write).
    pub properties: BTreeMap<String, (String, Option<String>, String)>,
    pub baselines: Vec<NewBaseline>,
    pub warp_updated_at: Option<i64>,
}

/// Where the next invocation picks up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub phase: Phase,
    /// WARP pages (or selection pages) done.
    pub customer_pages: u32,
    pub companies_after: Option<String>,
    pub company_pages: u32,
    pub sweep_start: Option<String>,
    pub sweep_pages: u32,
    pub pending_hubspot: Vec<PendingUpdate>,
}

/// What the invocation answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub run_id: String,
    /// `completed`, `stopped`, `continued`, `already ran`, `already running`.
    pub status: String,
    pub dry_run: bool,
    pub report_json_key: Option<String>,
    pub report_html_key: Option<String>,
    pub summary: Option<Counters>,
    pub message: String,
}

/// Why an invocation failed; the platform's retry resumes from the last
/// checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("run {0} does not exist, so it cannot be continued")]
    UnknownRun(String),
    #[error("{during}: {}", error_chain(.source))]
    Store {
        during: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("WARP: {0}")]
    Warp(WarpError),
    #[error("HubSpot: {0}")]
    Hubspot(HubspotError),
    #[error("starting the next invocation failed: {0}")]
    Continue(String),
}

/// Ends a step early: the run fails (and is retried) or stops cleanly.
enum Interrupt {
    Fail(RunFailure),
    /// HubSpot's daily limit: nothing more can be read or written today.
    Daily(String),
}

impl From<RunFailure> for Interrupt {
    fn from(e: RunFailure) -> Self {
        Self::Fail(e)
    }
}

fn hubspot(e: HubspotError) -> Interrupt {
    if e.is_daily_limit() {
        Interrupt::Daily(e.to_string())
    } else {
        Interrupt::Fail(RunFailure::Hubspot(e))
    }
}

fn store(during: &'static str) -> impl FnOnce(StoreError) -> RunFailure {
    move |source| RunFailure::Store { during, source }
}

/// How a pair's link stands before it is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkAction {
    Exists,
    /// `external_ids` names the company but the links table does not yet.
    Record,
    /// Linked by this run (exact BAN match): links table and `external_ids`.
    RecordAndSetExternalId,
}

/// What reconciling one pair produced.
#[derive(Default)]
struct PairResult {
    piece: Piece,
    pending: Option<PendingUpdate>,
}

/// One invocation's view of the run.
struct Ctx<'a> {
    run_id: &'a str,
    dry_run: bool,
}

pub struct Reconciler<W, H, S, E, Q, R, P> {
    pub warp: W,
    pub hubspot: H,
    pub store: S,
    pub events: E,
    pub queue: Q,
    pub runs: R,
    pub reports: P,
    pub mappings: MappingSet,
    pub settings: RunSettings,
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
    /// One invocation: claims the run and works until it is done, stopped,
    /// or out of time (then the next invocation is started).
    pub async fn invoke<C: Continuation, A: Alerts>(
        &self,
        request: &ReconcileRequest,
        deadline_ms: i64,
        continuation: &C,
        alerts: &A,
    ) -> Result<Outcome, RunFailure> {
        let started = now_ms();
        let run_id = request.run_id(started, self.settings.timezone)?;
        let owner = uuid::Uuid::new_v4().to_string();
        let fresh = (request.continue_run.is_none()).then(|| RunRecord {
            run_id: run_id.clone(),
            status: RunStatus::Running,
            dry_run: request.dry_run,
            customers: request.customers.clone(),
            scheduled_ms: request.scheduled_ms(),
            started_ms: started,
            updated_ms: started,
            finished_ms: None,
            invocations: 0,
            cursor: Cursor::default(),
            counters: Counters::default(),
            stop_reason: None,
            report_json_key: None,
            report_html_key: None,
        });
        let claim = self
            .runs
            .claim(
                &run_id,
                fresh.as_ref(),
                &owner,
                self.lease_until(deadline_ms),
                started,
            )
            .await
            .map_err(store("claiming the run"))?;
        let mut run = match claim {
            Claim::Held(run) => run,
            Claim::Finished(run) => {
                info!(
                    run_id,
                    status = run.status.as_str(),
                    "run already ran; nothing to do"
                );
                return Ok(outcome(&run, "already ran", "this run already ran"));
            }
            Claim::Busy(run) => {
                info!(run_id, "run held by another invocation; nothing to do");
                return Ok(outcome(
                    &run,
                    "already running",
                    "another invocation holds this run",
                ));
            }
        };
        if run.status != RunStatus::Running {
            return Err(RunFailure::UnknownRun(run_id));
        }
        run.invocations += 1;
        info!(run_id, invocation = run.invocations, phase = ?run.cursor.phase, dry_run = run.dry_run, "run invocation started");
        let ctx = Ctx {
            run_id: &run_id,
            dry_run: run.dry_run,
        };
        let stop_at = match self.settings.invocation_budget {
            Some(b) => (started + b.as_millis() as i64).min(deadline_ms - self.reserve_ms()),
            None => deadline_ms - self.reserve_ms(),
        };
        let mut paired: Option<HashSet<String>> = None;
        let mut steps = 0u32;
        loop {
            if run.cursor.phase != Phase::Companies {
                // The sweep and the report do without phase 2's index (an
                // id per pair).
                paired = None;
            }
            if run.cursor.phase == Phase::Finish {
                return self.finish(&ctx, run, &owner, None, alerts).await;
            }
            // At least one step per invocation, so every invocation makes
            // progress however short its budget.
            if steps > 0 && now_ms() >= stop_at {
                return self.hand_over(run, &owner, continuation).await;
            }
            let before = self.hubspot.rate_stats();
            let step = match run.cursor.phase {
                Phase::Customers => self.customers_step(&ctx, &mut run).await,
                Phase::Companies => {
                    if paired.is_none() {
                        paired = Some(self.paired_index(&run_id).await?);
                    }
                    let index = paired.get_or_insert_with(HashSet::new);
                    self.companies_step(&ctx, &mut run, index).await
                }
                Phase::Sweep => self.sweep_step(&ctx, &mut run).await,
                Phase::Finish => continue,
            };
            match step {
                Ok((key, mut piece)) => {
                    let after = self.hubspot.rate_stats();
                    piece.counters.rate_limit_waits += after.waits - before.waits.min(after.waits);
                    piece.counters.rate_limit_waited_ms +=
                        after.waited_ms - before.waited_ms.min(after.waited_ms);
                    piece.counters.throttled +=
                        after.throttled - before.throttled.min(after.throttled);
                    self.put_piece(&run_id, &key, &piece).await?;
                    run.counters.add(&piece.counters);
                    self.checkpoint(&mut run, &owner, deadline_ms).await?;
                    steps += 1;
                }
                Err(Interrupt::Daily(why)) => {
                    warn!(run_id, reason = %why, "HubSpot daily limit reached; the run stops here");
                    let reason = format!(
                        "HubSpot's daily API limit was reached ({why}); the run stopped and the next run picks up the rest"
                    );
                    return self.finish(&ctx, run, &owner, Some(reason), alerts).await;
                }
                Err(Interrupt::Fail(e)) => {
                    warn!(run_id, error = %e, "run invocation failed; a retry resumes from the last checkpoint");
                    // Let a retry take over at once instead of waiting out
                    // the lease; best effort, the lease lapses anyway.
                    let _ = self.runs.checkpoint(&run, &owner, 0).await;
                    return Err(e);
                }
            }
        }
    }

    fn reserve_ms(&self) -> i64 {
        self.settings.reserve.as_millis() as i64
    }

    fn lease_until(&self, deadline_ms: i64) -> i64 {
        (now_ms() + self.settings.lease.as_millis() as i64).min(deadline_ms + 10_000)
    }

    async fn checkpoint(
        &self,
        run: &mut RunRecord,
        owner: &str,
        deadline_ms: i64,
    ) -> Result<(), RunFailure> {
        run.updated_ms = now_ms();
        self.runs
            .checkpoint(run, owner, self.lease_until(deadline_ms))
            .await
            .map_err(store("checkpointing the run"))
    }

    /// Saves the cursor with the lease released, then starts the next
    /// invocation. Should the start fail, the lease is already free, so the
    /// platform's retry of this invocation resumes the run.
    async fn hand_over<C: Continuation>(
        &self,
        mut run: RunRecord,
        owner: &str,
        continuation: &C,
    ) -> Result<Outcome, RunFailure> {
        run.updated_ms = now_ms();
        self.runs
            .checkpoint(&run, owner, 0)
            .await
            .map_err(store("handing the run over"))?;
        continuation
            .continue_run(&run.run_id)
            .await
            .map_err(RunFailure::Continue)?;
        info!(run_id = %run.run_id, phase = ?run.cursor.phase, "time running short; run continues in a fresh invocation");
        Ok(outcome(
            &run,
            "continued",
            "the run continues in a fresh invocation",
        ))
    }

    fn piece_key(&self, run_id: &str, name: &str) -> String {
        format!("{}{run_id}/pieces/{name}.json", self.settings.report_prefix)
    }

    async fn put_piece(&self, run_id: &str, name: &str, piece: &Piece) -> Result<(), RunFailure> {
        let body = serde_json::to_vec(piece).unwrap_or_default();
        self.reports
            .put(&self.piece_key(run_id, name), body, "application/json")
            .await
            .map_err(store("writing a report piece"))
    }

    /// Hands the pieces under `phase` to `each` in order, one read at a
    /// time: neither caller needs them all at once, and together they grow
    /// with the book (a thousand pieces at 100,000 pairs).
    async fn for_each_piece(
        &self,
        run_id: &str,
        phase: &str,
        mut each: impl FnMut(Piece),
    ) -> Result<(), RunFailure> {
        let prefix = format!("{}{run_id}/pieces/{phase}", self.settings.report_prefix);
        let keys = self
            .reports
            .list(&prefix)
            .await
            .map_err(store("listing report pieces"))?;
        for key in keys {
            let body = self
                .reports
                .get(&key)
                .await
                .map_err(store("reading a report piece"))?
                .unwrap_or_default();
            match serde_json::from_slice::<Piece>(&body) {
                Ok(p) => each(p),
                Err(e) => {
                    // The page's details are lost to the report: say so in
                    // it, so an incomplete report never looks complete.
                    warn!(key, error = %e, "report piece unreadable; reported as an error");
                    let mut p = Piece::default();
                    p.error(
                        None,
                        None,
                        "assembling the report",
                        format!("piece {key} is unreadable ({e}); its page is missing here"),
                    );
                    each(p);
                }
            }
        }
        Ok(())
    }

    /// The pieces the report is assembled from, without their paired
    /// companies: the report has no use for them, and at 100,000 pairs they
    /// are most of what the pieces hold.
    async fn report_pieces(&self, run_id: &str) -> Result<Vec<Piece>, RunFailure> {
        let mut pieces = Vec::new();
        self.for_each_piece(run_id, "", |mut p| {
            p.paired_companies = Vec::new();
            pieces.push(p);
        })
        .await?;
        Ok(pieces)
    }

    /// The companies phase 1 paired, from its pieces (a resumed run has
    /// lost its memory but not its pieces). Only the ids are kept.
    async fn paired_index(&self, run_id: &str) -> Result<HashSet<String>, RunFailure> {
        let mut paired = HashSet::new();
        self.for_each_piece(run_id, "1-", |p| paired.extend(p.paired_companies))
            .await?;
        Ok(paired)
    }

    fn properties(&self) -> Vec<&str> {
        let mut p = self.mappings.properties();
        p.extend([WARP_BAN_PROPERTY, MODIFIED_PROPERTY]);
        p.sort_unstable();
        p.dedup();
        p
    }

    // --- phase 1 ------------------------------------------------------

    async fn customers_step(
        &self,
        ctx: &Ctx<'_>,
        run: &mut RunRecord,
    ) -> Result<(String, Piece), Interrupt> {
        let page_no = run.cursor.customer_pages + 1;
        let mut piece = Piece::default();
        let (customers, last) = match &run.customers {
            Some(selection) => self.selected(selection, page_no, &mut piece).await?,
            None => {
                let page = self
                    .warp
                    .list_page(page_no, self.settings.page_size)
                    .await
                    .map_err(RunFailure::Warp)?;
                piece.counters.warp_calls.list += 1;
                let last = page.page >= page.total_pages || page.items.is_empty();
                (page.items, last)
            }
        };
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

        let mut companies = HashMap::new();
        for chunk in pairs.chunks(HUBSPOT_BATCH) {
            let ids: Vec<String> = chunk.iter().map(|(_, id, _)| id.clone()).collect();
            let read = self
                .hubspot
                .batch_read(&ids, &self.properties())
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
        self.reconcile_all(ctx, work, &mut piece, &mut run.cursor.pending_hubspot)
            .await?;
        self.flush(ctx, &mut run.cursor.pending_hubspot, false, &mut piece)
            .await?;
        run.cursor.customer_pages = page_no;
        if last {
            run.cursor.phase = if run.customers.is_some() {
                Phase::Finish
            } else {
                Phase::Companies
            };
        }
        Ok((format!("1-{page_no:06}"), piece))
    }

    /// A manual run's selection, a page at a time: ids first, then BANs.
    async fn selected(
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
    async fn reconcile_all(
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

    async fn reconcile_pair(
        &self,
        ctx: &Ctx<'_>,
        customer: Customer,
        company: Company,
        action: LinkAction,
    ) -> PairResult {
        let mut out = PairResult::default();
        let piece = &mut out.piece;
        let ids = (
            customer.id.clone(),
            customer.ban.clone(),
            company.id.clone(),
        );
        let states = match self.store.field_states(&customer.id).await {
            Ok(s) => s,
            Err(e) => {
                piece.error(
                    Some(&ids.0),
                    Some(&ids.2),
                    "reading field state",
                    error_chain(&e),
                );
                return out;
            }
        };
        let modified_at = company
            .properties
            .get(MODIFIED_PROPERTY)
            .and_then(Option::as_deref)
            .and_then(plan::hubspot_time);

        if !ctx.dry_run && action != LinkAction::Exists {
            let link = Link {
                company_id: company.id.clone(),
                customer_id: customer.id.clone(),
                ban: customer.ban.clone(),
                state: LinkState::Active,
                merged_into: None,
                updated_at_ms: now_ms(),
            };
            if let Err(e) = self.store.put_link(&link).await {
                piece.error(
                    Some(&ids.0),
                    Some(&ids.2),
                    "recording the link",
                    error_chain(&e),
                );
                return out;
            }
        }

        // WARP: one PUT with If-Match; a 412 reads again and decides again
        // (warp::update_if_match).
        let set_external_id = action == LinkAction::RecordAndSetExternalId;
        let decide = |customer: &Customer| {
            let plan = plan::plan_pair(&self.mappings, customer, &company, &states);
            let mut body = plan.warp_body.clone();
            if set_external_id {
                body.insert(
                    "external_ids".into(),
                    serde_json::json!({ "hubspot_company_id": company.id }),
                );
            }
            (body, plan)
        };
        let mut updated = None;
        let (customer, plan) = if ctx.dry_run {
            let plan = decide(&customer).1;
            (customer, plan)
        } else {
            let w = update_if_match(&self.warp, customer, decide).await;
            piece.counters.warp_calls.put += u64::from(w.puts);
            piece.counters.warp_calls.get += u64::from(w.rereads);
            if w.rereads > 0 {
                info!(run_id = ctx.run_id, customer_id = %w.customer.id, "WARP customer changed under the update (412); read again and decided again");
            }
            let (customer, mut plan) = (w.customer, w.decision);
            match w.written {
                Ok(after) => updated = after,
                Err(WriteError::Reread(e)) => {
                    piece.error(
                        Some(&ids.0),
                        Some(&ids.2),
                        "WARP read after 412",
                        e.to_string(),
                    );
                    return out;
                }
                Err(e) => {
                    let during = if matches!(e, WriteError::Contended) {
                        "WARP PUT (412 twice: the customer keeps changing)"
                    } else {
                        "WARP PUT"
                    };
                    piece.error(Some(&ids.0), Some(&ids.2), during, e.to_string());
                    record_writes(piece, &ids, &plan, &customer, None, "failed");
                    plan.warp_body.clear();
                    plan.warp_baselines.clear();
                }
            }
            (customer, plan)
        };
        tally(piece, &ids, &plan);
        if !ctx.dry_run {
            self.log_decisions(ctx, piece, &ids, &plan, updated.is_some())
                .await;
        }

        if !plan.warp_body.is_empty() {
            let status = if ctx.dry_run { "dry-run" } else { "written" };
            record_writes(piece, &ids, &plan, &customer, updated.as_ref(), status);
            if let Some(after) = &updated {
                piece.counters.warp_writes += 1;
                piece.counters.fixed_in_warp += plan.warp_baselines.len() as u64;
                for b in &plan.warp_baselines {
                    let prev = states.get(&b.field).and_then(|s| s.hubspot_occurred_at);
                    let state = FieldState {
                        synced_value: Some(b.value.clone()),
                        hubspot_occurred_at: prev.max(modified_at),
                        warp_updated_at: after.updated_at_ms,
                    };
                    self.remember(piece, &customer.id, &company.id, &b.field, &state)
                        .await;
                }
            }
        }
        if !ctx.dry_run {
            // At once: a first run remembers every field of every pair, and
            // one at a time that is 13 round trips per customer.
            let states: Vec<(&str, FieldState)> = plan
                .agreed_baselines
                .iter()
                .map(|b| {
                    let prev = states.get(&b.field).and_then(|s| s.hubspot_occurred_at);
                    let state = FieldState {
                        synced_value: Some(b.value.clone()),
                        hubspot_occurred_at: prev.max(modified_at),
                        warp_updated_at: customer.updated_at_ms,
                    };
                    (b.field.as_str(), state)
                })
                .collect();
            let written = futures::future::join_all(
                states
                    .iter()
                    .map(|(field, state)| self.store.put_field_state(&customer.id, field, state)),
            )
            .await;
            for result in written {
                if let Err(e) = result {
                    piece.error(
                        Some(&customer.id),
                        Some(&company.id),
                        "writing field state",
                        error_chain(&e),
                    );
                }
            }
            for m in &plan.manual {
                let record = ConflictRecord {
                    customer_id: customer.id.clone(),
                    field: m.field.clone(),
                    property: m.property.clone(),
                    hubspot_value: m.hubspot_value.clone().unwrap_or_default(),
                    hubspot_occurred_at: modified_at.unwrap_or_default(),
                    warp_value: m.warp_value.to_string(),
                    warp_updated_at: customer.updated_at_ms,
                    dedup_key: format!("run:{}", ctx.run_id),
                };
                if let Err(e) = self.store.put_conflict(&record).await {
                    piece.error(
                        Some(&ids.0),
                        Some(&ids.2),
                        "queueing the conflict",
                        error_chain(&e),
                    );
                }
            }
        }

        if !plan.hubspot_properties.is_empty() {
            let fields: HashMap<&str, &str> = self
                .mappings
                .fields_for(&customer.id, &customer.ban)
                .into_iter()
                .map(|m| (m.hubspot.as_str(), m.warp.as_str()))
                .collect();
            let pending = PendingUpdate {
                company_id: company.id.clone(),
                customer_id: customer.id.clone(),
                ban: customer.ban.clone(),
                properties: plan
                    .hubspot_properties
                    .iter()
                    .map(|(p, v)| {
                        let before = company.properties.get(p).cloned().flatten();
                        let field = fields.get(p.as_str()).copied().unwrap_or_default();
                        (p.clone(), (field.to_string(), before, v.clone()))
                    })
                    .collect(),
                baselines: plan.hubspot_baselines.clone(),
                warp_updated_at: updated
                    .as_ref()
                    .and_then(|c| c.updated_at_ms)
                    .or(customer.updated_at_ms),
            };
            if ctx.dry_run {
                record_hubspot_writes(piece, &pending, "dry-run");
            } else {
                out.pending = Some(pending);
            }
        }
        out
    }

    /// Sends HubSpot fixes in batch updates of 100: all of them when `all`,
    /// else only full batches (the rest waits, in the checkpoint, for more).
    async fn flush(
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

    /// The pair's decisions in the sync log, for `hubwarp explain`. Only
    /// the fields that differ: a run over 100,000 customers finds nearly
    /// every field in sync, and one entry per field of every customer each
    /// night would cost more than the whole sync does. A field found in
    /// sync has no entry; its current state answers for it.
    async fn log_decisions(
        &self,
        ctx: &Ctx<'_>,
        piece: &mut Piece,
        ids: &(String, String, String),
        plan: &PairPlan,
        warp_written: bool,
    ) {
        if plan.diffs.is_empty() {
            return;
        }
        let at = now_ms();
        let entries: Vec<SyncLogEntry> = plan
            .diffs
            .iter()
            .map(|d| {
                let (outcome, reason) = if d.decision == "write-warp" && !warp_written {
                    (
                        "failed".to_string(),
                        format!("{}; the WARP write failed (see the run's errors)", d.reason),
                    )
                } else {
                    (d.decision.clone(), d.reason.clone())
                };
                SyncLogEntry {
                    customer_id: ids.0.clone(),
                    at_ms: at,
                    dedup_key: format!("run:{}", ctx.run_id),
                    property: d.property.clone(),
                    field: Some(d.field.clone()),
                    outcome,
                    reason,
                    detail: DecisionDetail {
                        warp_value: Some(d.warp_value.clone()),
                        hubspot_value: d.hubspot_value.clone(),
                        baseline: d.baseline.clone(),
                        rule: (!d.rule.is_empty()).then(|| d.rule.clone()),
                    },
                }
            })
            .collect();
        if let Err(e) = self.store.append(&entries).await {
            piece.error(
                Some(&ids.0),
                Some(&ids.2),
                "writing the sync log",
                error_chain(&e),
            );
        }
    }

    /// Writes a field's new baseline; a failure is reported, not fatal:
    /// the field is decided without it (or with the older one) next time.
    async fn remember(
        &self,
        piece: &mut Piece,
        customer_id: &str,
        company_id: &str,
        field: &str,
        state: &FieldState,
    ) {
        if let Err(e) = self.store.put_field_state(customer_id, field, state).await {
            piece.error(
                Some(customer_id),
                Some(company_id),
                "writing field state",
                error_chain(&e),
            );
        }
    }

    // --- phase 2 ------------------------------------------------------

    async fn companies_step(
        &self,
        ctx: &Ctx<'_>,
        run: &mut RunRecord,
        paired: &mut HashSet<String>,
    ) -> Result<(String, Piece), Interrupt> {
        let page_no = run.cursor.company_pages + 1;
        let mut piece = Piece::default();
        let page = self
            .hubspot
            .list_page(
                &self.properties(),
                run.cursor.companies_after.as_deref(),
                self.settings.page_size,
            )
            .await
            .map_err(hubspot)?;
        piece.counters.hubspot_calls.list += 1;
        let mut work = Vec::new();
        for company in page.results {
            if company.archived || paired.contains(&company.id) {
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
                    paired.insert(company.id.clone());
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
                    paired.insert(company.id.clone());
                    work.push((customer, company, LinkAction::RecordAndSetExternalId));
                }
            }
        }
        self.reconcile_all(ctx, work, &mut piece, &mut run.cursor.pending_hubspot)
            .await?;
        self.flush(ctx, &mut run.cursor.pending_hubspot, false, &mut piece)
            .await?;
        run.cursor.company_pages = page_no;
        run.cursor.companies_after = page.next_after;
        if run.cursor.companies_after.is_none() {
            run.cursor.phase = Phase::Sweep;
        }
        Ok((format!("2-{page_no:06}"), piece))
    }

    // --- phase 3 ------------------------------------------------------

    async fn sweep_step(
        &self,
        ctx: &Ctx<'_>,
        run: &mut RunRecord,
    ) -> Result<(String, Piece), Interrupt> {
        let page_no = run.cursor.sweep_pages + 1;
        let mut piece = Piece::default();
        let cutoff = now_ms() - self.settings.sweep_after.as_millis() as i64;
        let (stuck, next) = self
            .events
            .stuck_page(cutoff, run.cursor.sweep_start.take())
            .await
            .map_err(store("scanning for stuck events"))?;
        for event in stuck {
            if ctx.dry_run {
                piece.counters.swept += 1;
                piece.swept.push(event.dedup_key);
                continue;
            }
            let owner = format!("sweep:{}", ctx.run_id);
            let lease_until = now_ms() + 60_000;
            let taken = self
                .events
                .take_stuck(&event.dedup_key, &owner, cutoff, lease_until)
                .await
                .map_err(store("taking a stuck event"))?;
            if !taken {
                continue;
            }
            let sent = self
                .queue
                .send_all(&[Outgoing {
                    id: "0",
                    body: &event.message,
                }])
                .await;
            match sent.into_iter().next() {
                Some(Ok(())) => {
                    self.events
                        .mark_queued(&event.dedup_key, &owner, now_ms())
                        .await
                        .map_err(store("marking a swept event queued"))?;
                    info!(run_id = ctx.run_id, dedup_key = %event.dedup_key, "stuck event queued again");
                    piece.counters.swept += 1;
                    piece.swept.push(event.dedup_key);
                }
                Some(Err(e)) => {
                    let _ = self.events.release(&event.dedup_key, &owner).await;
                    piece.error(None, None, "queueing a stuck event", e.to_string());
                }
                None => {}
            }
        }
        run.cursor.sweep_pages = page_no;
        run.cursor.sweep_start = next;
        if run.cursor.sweep_start.is_none() {
            run.cursor.phase = Phase::Finish;
        }
        Ok((format!("3-{page_no:06}"), piece))
    }

    // --- phase 4 ------------------------------------------------------

    async fn finish<A: Alerts>(
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
            self.put_piece(&run.run_id, "4-final", &piece).await?;
        }
        let open = self
            .store
            .open_conflicts()
            .await
            .map_err(store("listing open conflicts"))?
            .into_iter()
            .map(|c| OpenConflict {
                customer_id: c.customer_id,
                field: c.field,
                property: c.property,
                warp_value: c.warp_value,
                hubspot_value: c.hubspot_value,
                source: c.dedup_key,
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
        let report = report::assemble(&facts, self.report_pieces(&run.run_id).await?, open);
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

    async fn alert<A: Alerts>(&self, report: &Report, run: &RunRecord, alerts: &A) {
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

fn outcome(run: &RunRecord, status: &str, message: &str) -> Outcome {
    Outcome {
        run_id: run.run_id.clone(),
        status: status.to_string(),
        dry_run: run.dry_run,
        report_json_key: run.report_json_key.clone(),
        report_html_key: run.report_html_key.clone(),
        summary: (run.status != RunStatus::Running).then_some(run.counters),
        message: message.to_string(),
    }
}

/// Counts a pair's decisions and keeps its differences for the report.
fn tally(piece: &mut Piece, ids: &(String, String, String), plan: &PairPlan) {
    let c = &mut piece.counters;
    c.pairs_compared += 1;
    c.pairs_in_sync += u64::from(plan.in_sync());
    c.fields_in_sync += plan.fields_in_sync as u64;
    c.conflicts_for_review += plan.manual.len() as u64;
    for d in &plan.diffs {
        match d.decision.as_str() {
            "kept-strategy" | "skipped-direction" => c.kept += 1,
            "failed" => c.errors += 1,
            _ => {}
        }
    }
    for d in &plan.diffs {
        if d.decision == "failed" {
            piece.errors.push(report::RunError {
                customer_id: Some(ids.0.clone()),
                company_id: Some(ids.2.clone()),
                during: format!("converting {}", d.field),
                message: d.reason.clone(),
            });
        }
        piece.differences.push(PairDiff {
            customer_id: ids.0.clone(),
            ban: ids.1.clone(),
            company_id: ids.2.clone(),
            diff: d.clone(),
        });
    }
}

/// The WARP side of a pair's writes, field by field.
fn record_writes(
    piece: &mut Piece,
    ids: &(String, String, String),
    plan: &PairPlan,
    before: &Customer,
    after: Option<&Customer>,
    status: &str,
) {
    for d in plan.diffs.iter().filter(|d| d.decision == "write-warp") {
        let field = crate::mapping::WarpField::new(d.field.clone());
        let after_value = after
            .and_then(|a| field.get(&a.raw).cloned())
            .or_else(|| {
                plan.warp_baselines
                    .iter()
                    .find(|b| b.field == d.field)
                    .map(|b| b.value.clone())
            })
            .unwrap_or(Value::Null);
        piece.writes.push(Write {
            side: "warp".into(),
            customer_id: ids.0.clone(),
            ban: ids.1.clone(),
            company_id: ids.2.clone(),
            field: d.field.clone(),
            property: d.property.clone(),
            before: field.get(&before.raw).cloned().unwrap_or(Value::Null),
            after: after_value,
            status: status.to_string(),
        });
    }
}

fn record_hubspot_writes(piece: &mut Piece, p: &PendingUpdate, status: &str) {
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
