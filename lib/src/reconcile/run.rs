//! The run driver: claims the run, works page by page, checkpoints after
//! each page, hands over to a fresh invocation when time runs short, and
//! writes the report at the end.
//!
//! A run has five phases:
//! 0. `Index`: reads HubSpot once: every company that carries `warp_ban`
//!    with the mapped properties, 200 a search page, into the run's
//!    [`CompanyIndex`] (spilled to the report store's scratch page by
//!    page). The portal's other companies are never read. Search's rate
//!    limit makes this the night's floor, so the index is read beside
//!    phase 1 (`phase/feeds.rs`); a run is in this phase only while
//!    phase 1 waits for it (before each pass, or done before it).
//! 1. `Customers`: pages through every WARP customer (or the manual run's
//!    selection), finds each linked company in the index (a manual run,
//!    or a company the index lacks, is batch-read by id), decides every
//!    field, writes WARP fixes one `PUT` per customer with `If-Match`, and
//!    queues HubSpot fixes for batch updates of up to 100. A customer
//!    whose company the index has not read yet is deferred to a later
//!    pass (`checkpoint::Passes`).
//! 2. `Companies`: the index's companies no customer named: one is linked
//!    when exactly one unlinked customer has its `warp_ban` (and reconciled
//!    at once), else reported unmatched.
//! 3. `Sweep`: event records left RECEIVED long after their lease lapsed
//!    are queued again from the message kept on the record.
//! 4. `Finish`: the last HubSpot batch, open MANUAL conflicts, the report.
//!
//! Memory: one page of customers at a time (and the pages the readers
//! hold ahead), the HubSpot fixes not yet sent (at most 100), and the
//! company index (the marked companies' mapped values, about 0.3 KiB
//! each, and whether phase 1 paired each: `index.rs` says why that side
//! is kept).
//!
//! This file is the loop (claim, phases, checkpoint, hand-over, outcome);
//! each stage has its own: `checkpoint.rs` (what is saved between
//! invocations), `phase/{feeds,index,customers,companies,sweep,finish}.rs`,
//! `pair.rs`
//! (deciding and writing one pair), `hubspot_batch.rs` (HubSpot's fixes
//! 100 at a time) and `pieces.rs` (the report's pieces).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::ReconcileRequest;
use super::checkpoint::{Claim, Cursor, Phase, RunRecord, RunStatus};
use super::index::CompanyIndex;
use super::phase::{Feeds, sweep_step};
use super::pieces::Pieces;
use super::plan::MODIFIED_PROPERTY;
use super::ports::{Alerts, Continuation, HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use super::report::{Counters, Piece};
pub use super::step::RunFailure;
use super::step::{Ctx, Interrupt, store};
use crate::mapping::MappingSet;
use crate::queue::SyncQueue;
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, StuckEvents};
use crate::time::now_ms;

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
    /// Pairs decided and written at once within a page. Each waits on
    /// DynamoDB (its link and field states, then its writes), WARP and
    /// never HubSpot: with the company index the store round trips are
    /// what a page costs, so a whole page (100) is decided at once. At
    /// 10,000 pairs (reconcile-bench, 5 ms a DynamoDB call) 32 at once
    /// instead of 8 cut the steady night from 34.6 to 22.9 s, and once
    /// phase 1 ran beside the index, 64 instead of 32 cut the first night
    /// (every baseline written) from 17.9 to 13.2 s against a 12.5 s floor.
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
            concurrency: 100,
            report_prefix: "reports/".into(),
            timezone: chrono_tz::UTC,
        }
    }
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
            // A run of everyone reads HubSpot once, into the index, with
            // phase 1 beside it once a third is in; a manual run's few
            // customers read their companies by id.
            cursor: Cursor {
                phase: if request.customers.is_none() {
                    Phase::Index
                } else {
                    Phase::Customers
                },
                ..Cursor::default()
            },
            counters: Counters::default(),
            stop_reason: None,
            report_json_key: None,
            report_html_key: None,
            email: None,
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
        let stop_at = match self.settings.invocation_budget {
            Some(b) => (started + b.as_millis() as i64).min(deadline_ms - self.reserve_ms()),
            None => deadline_ms - self.reserve_ms(),
        };
        // The readers run beside the steps until the steps end (the run's
        // end, a hand-over, a failure), which drops them. Both are boxed:
        // a step's future nests the whole run's (pairs, batches, reports),
        // and unboxed it outgrew a 2 MiB stack in a debug build.
        let (feeds, readers) = self.feeds(&run);
        let readers = Box::pin(readers);
        let steps = Box::pin(self.steps(
            run,
            &owner,
            deadline_ms,
            stop_at,
            feeds,
            continuation,
            alerts,
        ));
        tokio::select! {
            biased;
            out = steps => out,
            never = async {
                readers.await;
                std::future::pending::<std::convert::Infallible>().await
            } => match never {},
        }
    }

    /// The invocation's steps, each checkpointed, until the run ends or
    /// the invocation's time does.
    #[allow(clippy::too_many_arguments)]
    async fn steps<C: Continuation, A: Alerts>(
        &self,
        mut run: RunRecord,
        owner: &str,
        deadline_ms: i64,
        stop_at: i64,
        mut feeds: Feeds,
        continuation: &C,
        alerts: &A,
    ) -> Result<Outcome, RunFailure> {
        let run_id = run.run_id.clone();
        let run_id = run_id.as_str();
        let ctx = Ctx {
            run_id,
            dry_run: run.dry_run,
        };
        let mut index: Option<CompanyIndex> = None;
        let mut leftovers: Option<Vec<String>> = None;
        let mut steps = 0u32;
        // A step's piece and checkpoint are written while the next step
        // works (each is a round trip a step would otherwise wait on); the
        // last one is written before the run ends or hands over. What was
        // checkpointed last is what a failed step releases the run at.
        let mut saving: Option<(String, Piece, RunRecord)> = None;
        let mut committed = run.clone();
        loop {
            if run.cursor.phase != Phase::Companies {
                // The sweep and the report do without phase 2's list.
                leftovers = None;
            }
            if matches!(run.cursor.phase, Phase::Sweep | Phase::Finish) {
                index = None;
            }
            let ending = run.cursor.phase == Phase::Finish || (steps > 0 && now_ms() >= stop_at);
            if ending
                && let Some((key, piece, snapshot)) = saving.take()
                && let Err(e) = self.save(&key, &piece, snapshot, owner, deadline_ms).await
            {
                return self.fail(&committed, owner, e).await;
            }
            if run.cursor.phase == Phase::Finish {
                return self.finish(&ctx, run, owner, None, alerts).await;
            }
            // At least one step per invocation, so every invocation makes
            // progress however short its budget.
            if ending {
                return self.hand_over(run, owner, continuation).await;
            }
            let before = self.hubspot.rate_stats();
            if matches!(
                run.cursor.phase,
                Phase::Index | Phase::Customers | Phase::Companies
            ) && index.is_none()
            {
                // A fresh run finds no pages yet; a run taken over finds
                // the ones read before.
                index = Some(self.pieces(run_id).index(&self.properties()).await?);
            }
            let companies = index.get_or_insert_with(CompanyIndex::default);
            let step = Box::pin(async {
                match run.cursor.phase {
                    Phase::Index => self.index_step(&mut run, companies, &mut feeds.index).await,
                    Phase::Customers => {
                        self.customers_step(&ctx, &mut run, companies, &mut feeds)
                            .await
                    }
                    Phase::Companies => {
                        // The marked companies phase 1 did not pair, in the
                        // index's order: the same list in every invocation.
                        let left = leftovers.get_or_insert_with(|| {
                            companies
                                .unpaired_ids()
                                .into_iter()
                                .map(str::to_string)
                                .collect()
                        });
                        self.companies_step(&ctx, &mut run, companies, left).await
                    }
                    Phase::Sweep => {
                        sweep_step(
                            &self.events,
                            &self.queue,
                            self.settings.sweep_after,
                            &ctx,
                            &mut run,
                        )
                        .await
                    }
                    Phase::Finish => unreachable!("a run at Finish finishes before its steps"),
                }
            });
            let save = async {
                match saving.take() {
                    Some((key, piece, snapshot)) => self
                        .save(&key, &piece, snapshot, owner, deadline_ms)
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            };
            let (saved, step) = futures::join!(save, step);
            match saved {
                Ok(Some(snapshot)) => committed = snapshot,
                Ok(None) => {}
                Err(e) => return self.fail(&committed, owner, e).await,
            }
            match step {
                Ok((key, mut piece)) => {
                    let after = self.hubspot.rate_stats();
                    piece.counters.rate_limit_waits += after.waits - before.waits.min(after.waits);
                    piece.counters.rate_limit_waited_ms +=
                        after.waited_ms - before.waited_ms.min(after.waited_ms);
                    piece.counters.throttled +=
                        after.throttled - before.throttled.min(after.throttled);
                    run.counters.add(&piece.counters);
                    saving = Some((key, piece, run.clone()));
                    steps += 1;
                }
                Err(Interrupt::Daily(why)) => {
                    warn!(run_id, reason = %why, "HubSpot daily limit reached; the run stops here");
                    let reason = format!(
                        "HubSpot's daily API limit was reached ({why}); the run stopped and the next run picks up the rest"
                    );
                    return self.finish(&ctx, run, owner, Some(reason), alerts).await;
                }
                // From the last checkpoint: this step may have moved the
                // cursor before it failed.
                Err(Interrupt::Fail(e)) => return self.fail(&committed, owner, e).await,
            }
        }
    }

    /// Ends the invocation with `e`, releasing the run at `committed` (its
    /// last checkpoint) so a retry takes over at once instead of waiting
    /// out the lease; best effort, the lease lapses anyway.
    async fn fail(
        &self,
        committed: &RunRecord,
        owner: &str,
        e: RunFailure,
    ) -> Result<Outcome, RunFailure> {
        warn!(run_id = %committed.run_id, error = %e, "run invocation failed; a retry resumes from the last checkpoint");
        let _ = self.runs.checkpoint(committed, owner, 0).await;
        Err(e)
    }

    /// A step's piece, then the checkpoint that moves past it (never the
    /// other way round: a checkpoint names no piece the store lacks).
    async fn save(
        &self,
        key: &str,
        piece: &Piece,
        mut snapshot: RunRecord,
        owner: &str,
        deadline_ms: i64,
    ) -> Result<RunRecord, RunFailure> {
        self.pieces(&snapshot.run_id).put(key, piece).await?;
        self.checkpoint(&mut snapshot, owner, deadline_ms).await?;
        Ok(snapshot)
    }

    pub(super) fn reserve_ms(&self) -> i64 {
        self.settings.reserve.as_millis() as i64
    }

    pub(super) fn lease_until(&self, deadline_ms: i64) -> i64 {
        (now_ms() + self.settings.lease.as_millis() as i64).min(deadline_ms + 10_000)
    }

    pub(super) async fn checkpoint(
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
    pub(super) async fn hand_over<C: Continuation>(
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

    /// This run's report pieces.
    pub(super) fn pieces<'a>(&'a self, run_id: &'a str) -> Pieces<'a, P> {
        Pieces::new(&self.reports, &self.settings.report_prefix, run_id)
    }

    pub(super) fn properties(&self) -> Vec<&str> {
        let mut p = self.mappings.properties();
        p.extend([WARP_BAN_PROPERTY, MODIFIED_PROPERTY]);
        p.sort_unstable();
        p.dedup();
        p
    }

    // --- phase 1 ------------------------------------------------------
}

pub(super) fn outcome(run: &RunRecord, status: &str, message: &str) -> Outcome {
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
