//! One history: a world of a few dozen linked customers, random edits on
//! both sides, HubSpot's webhooks for its edits (duplicated, reordered,
//! delayed, dropped, retried on every non-2xx by HubSpot's own schedule),
//! WARP edits that send nothing, company deletions and merges (a person's
//! duplicate absorbing the customer's company, or absorbed by it), the
//! consumer polling
//! the queue as Lambda's SQS trigger does, faults at every port call, then
//! recovery, a nightly run (killed between pages, handing over) and the
//! checks of the issue.
//!
//! What runs for real: the receiver's handler (signed `lambda_http`
//! requests), `Intake`, the consumer's `handle` with SQS events, the
//! `Reconciler`, the WARP and HubSpot sandboxes' own state and rules.
//! Where the ports live is the [`Backend`]'s choice: in process for the
//! thousands of histories (moto answers a call in milliseconds, and real
//! HTTP on loopback costs about as much per history as everything else
//! together in a debug build), or DynamoDB, SQS and S3 on moto with the
//! HTTP clients against the sandboxes ([`super::backend::OnMoto`]) for the
//! few that check the real adapters against the same model.
//!
//! Here: a history's shape, its world and the run that takes it through
//! its stages, each a submodule: setup, edits, webhooks, poll, nightly,
//! checks, figures.

mod checks;
mod edits;
mod figures;
mod nightly;
mod poll;
mod setup;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;

use hubwarp::reconcile::run::Reconciler;
use hubwarp::store::breakers::MemoryBreakers;
use hubwarp::sync::Consumer;
use hubwarp::sync::breaker::Guarded;
use hubwarp::time::{now_ms, set_clock_ms};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::warp_sandbox::demo_company_id as company_id;
use webhook_receiver::Receiver;

use super::backend::{Backend, InProcess};
use super::faults::{Down, FaultPlan, Faulty, Outage};
use super::reference::{Ev, Model};
use crate::hubspot_sandbox::HubspotSandbox;
use crate::warp_sandbox::WarpSandbox;

pub use figures::Figures;

const HOST: &str = "abc123xyz.lambda-url.us-east-1.on.aws";
const PORTAL: u64 = 62515;
const SUBSCRIPTION: u64 = 2951763;
const STEP_MS: i64 = 10_000;
/// 2026-11-24T00:00:00Z: model time starts here.
const EPOCH_MS: i64 = 1_795_478_400_000;

/// How big and how faulty a history is.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub customers: (usize, usize),
    pub steps: (usize, usize),
    /// Probability that a port call is faulted while the history runs.
    pub fault_rate: f64,
    /// Probability that the history meets a timed outage ([`OUTAGES`]).
    pub outage_rate: f64,
}

/// The outages a history may meet, starting while it runs: WARP down for 10
/// minutes, 6 hours or 3 days; HubSpot refusing everything (429) for 30
/// minutes. (what, minutes)
pub const OUTAGES: [(Down, i64); 4] = [
    (Down::Warp, 10),
    (Down::Warp, 6 * 60),
    (Down::Warp, 3 * 24 * 60),
    (Down::HubspotThrottling, 30),
];

impl Shape {
    /// The model test's histories.
    pub const MODEL: Shape = Shape {
        customers: (3, 30),
        steps: (20, 120),
        fault_rate: 0.04,
        // One in twenty: a three-day outage is hundreds of polls of model
        // time, and each kind has a test of its own (tests/model).
        outage_rate: 0.05,
    };
}

/// A webhook event HubSpot owes the receiver, and its delivery schedule.
struct Pending {
    ev: usize,
    due_ms: i64,
    attempt: u32,
    /// HubSpot gives up after this many attempts (10 at most).
    max_attempts: u32,
}

struct Generated {
    ev: Ev,
    json: Value,
    key: String,
    /// The receiver answered 2xx to a delivery carrying it.
    acknowledged: bool,
}

/// The consumer as deployed: both APIs behind their breakers (their open
/// state in memory, in model time), so outages meet the real breaker.
type ConsumerOf<B> = Consumer<
    Faulty<<B as Backend>::Log>,
    Faulty<<B as Backend>::Store>,
    Guarded<Faulty<<B as Backend>::Warp>, Arc<MemoryBreakers>>,
    Guarded<Faulty<<B as Backend>::Hub>, Arc<MemoryBreakers>>,
>;

type ReconcilerOf<B> = Reconciler<
    Faulty<<B as Backend>::Warp>,
    Faulty<<B as Backend>::Hub>,
    Faulty<<B as Backend>::Store>,
    Faulty<<B as Backend>::Log>,
    Faulty<<B as Backend>::Queue>,
    <B as Backend>::Runs,
    <B as Backend>::Reports,
>;

struct World<B: Backend> {
    rng: StdRng,
    plan: Arc<FaultPlan>,
    /// The consumer's open circuits: a refusal is the echo of faults
    /// injected earlier (five in a row).
    breakers: Arc<MemoryBreakers>,
    log: Arc<B::Log>,
    store: Arc<B::Store>,
    warp: Arc<WarpSandbox>,
    hub: Arc<HubspotSandbox>,
    queue: B,
    receiver: Receiver<Faulty<B::Log>, Faulty<B::Queue>>,
    consumer: ConsumerOf<B>,
    reconciler: ReconcilerOf<B>,
    model: Model,
    events: Vec<Generated>,
    pending: Vec<Pending>,
    by_event: HashMap<(u64, i64, String), usize>,
    figures: Figures,
    /// Nightly runs so far: each is a night of its own (the run id is the
    /// scheduled night), however little model time passed between them.
    nights: i64,
    /// Companies merged so far (each made one duplicate).
    merges: usize,
    failures: Vec<String>,
}

fn advance(ms: i64) {
    set_clock_ms(Some(now_ms() + ms));
}

/// Runs history `seed` in process; Ok with its figures when every check
/// holds.
pub async fn run(seed: u64, shape: Shape) -> Result<Figures, String> {
    run_on::<InProcess>(seed, shape).await
}

/// Runs history `seed` on backend `B`.
pub async fn run_on<B: Backend>(seed: u64, shape: Shape) -> Result<Figures, String> {
    run_with::<B>(seed, shape, None).await
}

/// Runs history `seed` in process meeting the outage `OUTAGES[kind]`.
pub async fn run_with_outage(seed: u64, shape: Shape, kind: usize) -> Result<Figures, String> {
    run_with::<InProcess>(seed, shape, Some(kind)).await
}

async fn run_with<B: Backend>(
    seed: u64,
    shape: Shape,
    outage: Option<usize>,
) -> Result<Figures, String> {
    set_clock_ms(Some(EPOCH_MS + (seed % 1000) as i64 * 86_400_000));
    let mut world = World::<B>::new(seed, shape).await?;
    let steps = world.rng.random_range(shape.steps.0..=shape.steps.1);
    let kind = match outage {
        Some(kind) => Some(kind % OUTAGES.len()),
        None => world
            .rng
            .random_bool(shape.outage_rate)
            .then(|| world.rng.random_range(0..OUTAGES.len())),
    };
    if let Some(kind) = kind {
        let (what, minutes) = OUTAGES[kind];
        let from_ms = now_ms() + world.rng.random_range(0..steps as i64) * STEP_MS;
        let outage = Outage {
            what,
            from_ms,
            until_ms: from_ms + minutes * 60_000,
        };
        *world.figures.outages.entry(outage.label()).or_default() += 1;
        world.plan.add_outage(outage);
    }
    world.plan.set(shape.fault_rate, true);
    for _ in 0..steps {
        advance(STEP_MS);
        world.step().await;
    }
    world.recover().await;
    world.nightly_and_checks(shape.fault_rate).await;
    world.figures.histories = 1;
    world.figures.merges = world.merges as u64;
    world.figures.storms = world.plan.storms.load(std::sync::atomic::Ordering::Relaxed);
    world.figures.relinked = world.relinked().await;
    world.figures.faults = world.plan.fired();
    if world.failures.is_empty() {
        Ok(world.figures)
    } else {
        Err(world.failures.join("\n"))
    }
}

impl<B: Backend> World<B> {
    fn fail(&mut self, what: String) {
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("FAIL t={}: {what}", now_ms());
        }
        // The first few say what went wrong; the rest repeat it.
        if self.failures.len() < 6 && !self.failures.contains(&what) {
            self.failures.push(what);
        }
    }

    async fn step(&mut self) {
        match self.rng.random_range(0..100) {
            0..35 => self.hubspot_edit(),
            35..55 => self.warp_edit(),
            55..57 => self.delete_company(),
            57..59 => self.merge_company(),
            59..80 => self.deliver_due().await,
            _ => self.poll().await,
        }
    }
}
