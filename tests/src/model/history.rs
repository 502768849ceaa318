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

use hubwarp::sync::backoff::Backoff;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use hubwarp::hubspot::signature::{ClientSecret, SignatureVersion, Verifier};
use hubwarp::hubspot::webhook::read_delivery;
use hubwarp::intake::{Intake, IntakeSettings};
use hubwarp::mapping::MappingSet;
use hubwarp::mapping::conflict::FieldState;
use hubwarp::queue::SyncMessage;
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::ports::{NoAlerts, RecordedHandovers};
use hubwarp::reconcile::run::{Reconciler, RunSettings};
use hubwarp::store::EventLog;
use hubwarp::store::EventStatus;
use hubwarp::store::breakers::MemoryBreakers;
use hubwarp::store::sync::{
    ConflictQueue, FieldStateStore, LinkState, SyncLogEntry, SyncLogReader,
};
use hubwarp::sync::Consumer;
use hubwarp::sync::breaker::{Breaker, BreakerSettings, Dependency, Guarded};
use hubwarp::time::{now_ms, set_clock_ms};
use lambda_runtime::{Context, LambdaEvent};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use webhook_receiver::Receiver;

use super::backend::{Backend, InProcess};
use super::faults::{Down, FaultPlan, Faulty, Observed, Outage};
use super::fields::{self, Dir, FIELDS, Field, Strategy, Written};
use super::reference::{Base, Change, Cust, Ev, LinkModel, Model, Write};
use crate::fixtures::{self, LOCAL_SECRET, Signing};
use crate::hubspot_sandbox::HubspotSandbox;
use crate::warp_sandbox::WarpSandbox;

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

/// Counts of one history (summed over many for the soak's figures).
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub histories: u64,
    /// HubSpot edits and deletions, each one webhook event.
    pub events_sent: u64,
    /// Deliveries posted (first attempts, HubSpot's retries, duplicates).
    pub deliveries: u64,
    /// Distinct events with a record in the event log.
    pub recorded: u64,
    /// Distinct events that reached the queue.
    pub queued: u64,
    /// Events settled by the consumer.
    pub applied: u64,
    pub lost: u64,
    pub doubled: u64,
    pub stale: u64,
    pub dlq: u64,
    pub dlq_reasons: BTreeMap<String, u64>,
    pub faults: u64,
    pub warp_edits: u64,
    /// Company merges (a duplicate absorbing the company, or absorbed).
    pub merges: u64,
    /// HubSpot 429 storms (5-40 calls in a row refused).
    pub storms: u64,
    /// Customers WARP names a merge's survivor for at the end.
    pub relinked: u64,
    pub nightly_invocations: u64,
    /// Timed outages met, by kind (`WARP down 6 h`, ...).
    pub outages: BTreeMap<String, u64>,
}

impl Figures {
    /// The timed outages met, as the reports print them.
    pub fn outages_line(&self) -> String {
        if self.outages.is_empty() {
            return "none".into();
        }
        let kinds: Vec<String> = self
            .outages
            .iter()
            .map(|(what, n)| format!("{what} x{n}"))
            .collect();
        kinds.join(", ")
    }

    pub fn add(&mut self, o: &Figures) {
        self.histories += o.histories;
        self.events_sent += o.events_sent;
        self.deliveries += o.deliveries;
        self.recorded += o.recorded;
        self.queued += o.queued;
        self.applied += o.applied;
        self.lost += o.lost;
        self.doubled += o.doubled;
        self.stale += o.stale;
        self.dlq += o.dlq;
        for (k, v) in &o.dlq_reasons {
            *self.dlq_reasons.entry(k.clone()).or_default() += v;
        }
        self.faults += o.faults;
        self.warp_edits += o.warp_edits;
        self.merges += o.merges;
        self.storms += o.storms;
        self.relinked += o.relinked;
        self.nightly_invocations += o.nightly_invocations;
        for (k, v) in &o.outages {
            *self.outages.entry(k.clone()).or_default() += v;
        }
    }
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

fn company_id(n: usize) -> String {
    (18_476_215_990u64 + n as u64).to_string()
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
    async fn new(seed: u64, shape: Shape) -> Result<World<B>, String> {
        let mut rng = StdRng::seed_from_u64(seed);
        let plan = FaultPlan::new(seed);
        let mut fields: Vec<Field> = FIELDS.to_vec();
        for f in fields.iter_mut().filter(|f| f.dir == Dir::Both) {
            if rng.random_bool(0.3) {
                f.strategy = *[
                    Strategy::Manual,
                    Strategy::Latest,
                    Strategy::HubspotWins,
                    Strategy::WarpWins,
                ]
                .choose(&mut rng)
                .unwrap_or(&Strategy::Manual);
            }
        }
        let mappings = MappingSet::parse(&fields::mapping_toml(&fields))
            .map_err(|e| format!("the model's mapping file: {e}"))?;
        let (queue, parts) = B::build().await?;
        let (warp, hub, log, store) = (parts.warp, parts.hub, parts.log, parts.store);

        let n = rng.random_range(shape.customers.0..=shape.customers.1);
        let with_baselines = rng.random_bool(0.5);
        let now = now_ms();
        let mut custs = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("cust-{i:03}");
            let ban = format!("ZT-{i:06}");
            let company = company_id(i);
            let mut raw = json!({
                "id": id, "ban": ban, "external_ids": {"hubspot_company_id": company},
            });
            let mut props = Map::new();
            let mut values = Vec::new();
            for f in &fields {
                let w = if f.warp == "ban" {
                    Written {
                        canon: ban.clone(),
                        hubspot: ban.clone(),
                        warp: json!(ban),
                    }
                } else {
                    f.random(&mut rng)
                };
                let hubspot_form = f
                    .reform(&w.canon, &mut rng)
                    .map_or(w.hubspot.clone(), |r| r.hubspot);
                merge(&mut raw, &fields::warp_patch(f.warp, w.warp.clone()));
                props.insert(f.hubspot.into(), json!(hubspot_form));
                values.push(w.canon);
            }
            warp.insert(raw.clone());
            hub.upsert_company(&company, props);
            let base: Vec<Option<Base>> = values
                .iter()
                .map(|v| {
                    with_baselines.then(|| Base {
                        value: v.clone(),
                        hub_at: Some(now),
                    })
                })
                .collect();
            if with_baselines {
                for (f, v) in fields.iter().zip(&values) {
                    let state = FieldState {
                        synced_value: Some(f.warp_json(v)),
                        hubspot_occurred_at: Some(now),
                        warp_updated_at: Some(now),
                    };
                    store
                        .put_field_state(&id, f.warp, &state)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            custs.push(Cust {
                id,
                ban,
                external: company.clone(),
                company,
                warp: values.clone(),
                warp_at: now,
                hub: values,
                hub_at: now,
                base,
                company_exists: true,
            });
        }
        let model = Model::new(fields.clone(), custs);

        // The concurrent WARP editor of the 412 races.
        let editor_warp = warp.clone();
        let editor_fields = fields.clone();
        plan.set_editor(Box::new(move |id, rng| {
            let f = editor_fields
                .iter()
                .filter(|f| f.editable)
                .collect::<Vec<_>>();
            let f = f.choose(rng)?;
            let patch = fields::warp_patch(f.warp, f.random(rng).warp);
            editor_warp.edit(id, patch.clone()).map(|_| patch)
        }));

        let faulty = |x| Faulty::new(x, plan.clone());
        let intake = IntakeSettings {
            in_flight_wait: std::time::Duration::ZERO,
            concurrency: 4,
            ..IntakeSettings::default()
        };
        let receiver = Receiver {
            verifier: Verifier::new(vec![ClientSecret::new(LOCAL_SECRET)], SignatureVersion::V1),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            intake: Intake::new(
                Faulty::new(parts.receiver.log.clone(), plan.clone()),
                Faulty::new(parts.receiver.queue.clone(), plan.clone()),
                intake,
            ),
        };
        let breakers = Arc::new(MemoryBreakers::default());
        let breaker = |dependency| {
            Arc::new(Breaker::new(
                dependency,
                BreakerSettings::default(),
                breakers.clone(),
            ))
        };
        let consumer = Consumer {
            events: Faulty::new(parts.consumer.log.clone(), plan.clone()),
            store: faulty(parts.consumer.store.clone()),
            warp: Guarded::new(
                Faulty::new(parts.warp_api.clone(), plan.clone()),
                breaker(Dependency::Warp),
            ),
            hubspot: Guarded::new(
                Faulty::new(parts.hub_api.clone(), plan.clone()),
                breaker(Dependency::Hubspot),
            ),
            mappings: mappings.clone(),
        };
        let settings = RunSettings {
            page_size: rng.random_range(1..=8),
            invocation_budget: rng.random_bool(0.5).then_some(std::time::Duration::ZERO),
            concurrency: rng.random_range(1..=4),
            ..RunSettings::default()
        };
        let reconciler = Reconciler {
            warp: Faulty::new(parts.warp_api.clone(), plan.clone()),
            hubspot: Faulty::new(parts.hub_api.clone(), plan.clone()),
            store: faulty(parts.reconciler.store.clone()),
            events: Faulty::new(parts.reconciler.log.clone(), plan.clone()),
            queue: Faulty::new(parts.reconciler.queue.clone(), plan.clone()),
            runs: parts.runs,
            reports: parts.reports,
            mappings,
            settings,
        };
        Ok(World {
            rng,
            plan,
            breakers,
            log,
            store,
            warp,
            hub,
            queue,
            receiver,
            consumer,
            reconciler,
            model,
            events: Vec::new(),
            pending: Vec::new(),
            by_event: HashMap::new(),
            figures: Figures::default(),
            nights: 0,
            merges: 0,
            failures: Vec::new(),
        })
    }

    /// Customers whose WARP record names a company made by a merge: the
    /// consumer followed the merge.
    async fn relinked(&mut self) -> u64 {
        let mut n = 0;
        for (i, cust) in self.model.custs.iter().enumerate() {
            let warp = self.warp.customer(&cust.id).unwrap_or(Value::Null);
            if names_company(&warp) != company_id(i) {
                n += 1;
            }
        }
        n
    }

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

    fn live_company(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.model.custs.len())
            .filter(|&c| self.model.custs[c].company_exists)
            .collect();
        live.choose(&mut self.rng).copied()
    }

    /// A person edits a company in HubSpot; HubSpot owes a webhook.
    fn hubspot_edit(&mut self) {
        let Some(c) = self.live_company() else {
            return;
        };
        let editable: Vec<usize> = (0..self.model.fields.len())
            .filter(|&i| self.model.fields[i].editable)
            .collect();
        let Some(&i) = editable.choose(&mut self.rng) else {
            return;
        };
        let f = self.model.fields[i];
        let current = self.model.custs[c].hub[i].clone();
        let w = match f.reform(&current, &mut self.rng) {
            Some(same) if self.rng.random_bool(0.2) => same,
            _ => f.random(&mut self.rng),
        };
        let company = self.model.custs[c].company.clone();
        let mut props = Map::new();
        props.insert(
            f.hubspot.into(),
            if w.hubspot.is_empty() {
                Value::Null
            } else {
                json!(w.hubspot)
            },
        );
        self.hub.upsert_company(&company, props);
        let at = now_ms();
        let cust = &mut self.model.custs[c];
        cust.hub[i] = w.canon.clone();
        cust.hub_at = at;
        let json = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.propertyChange", "attemptNumber": 0,
            "objectId": company.parse::<u64>().unwrap_or_default(), "changeSource": "CRM_UI",
            "propertyName": f.hubspot, "propertyValue": w.hubspot});
        self.owe(
            Ev {
                company,
                at,
                change: Change::Property {
                    field: i,
                    canon: w.canon,
                },
            },
            json,
        );
    }

    /// A person edits a customer in WARP: no webhook, the nightly run sees it.
    fn warp_edit(&mut self) {
        let c = self.rng.random_range(0..self.model.custs.len());
        let editable: Vec<usize> = (0..self.model.fields.len())
            .filter(|&i| self.model.fields[i].editable)
            .collect();
        let Some(&i) = editable.choose(&mut self.rng) else {
            return;
        };
        let f = self.model.fields[i];
        let w = f.random(&mut self.rng);
        let id = self.model.custs[c].id.clone();
        if self
            .warp
            .edit(&id, fields::warp_patch(f.warp, w.warp))
            .is_none()
        {
            self.fail(format!("WARP customer {id} vanished"));
        }
        let cust = &mut self.model.custs[c];
        cust.warp[i] = w.canon;
        cust.warp_at = now_ms();
        self.figures.warp_edits += 1;
    }

    fn delete_company(&mut self) {
        let deleted = self
            .model
            .custs
            .iter()
            .filter(|c| !c.company_exists)
            .count();
        if deleted * 8 >= self.model.custs.len() {
            return;
        }
        let Some(c) = self.live_company() else {
            return;
        };
        let company = self.model.custs[c].company.clone();
        self.hub.delete_company(&company);
        self.model.custs[c].company_exists = false;
        let at = now_ms();
        let json = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 1,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.deletion", "attemptNumber": 0,
            "objectId": company.parse::<u64>().unwrap_or_default(), "changeSource": "CRM_UI"});
        self.owe(
            Ev {
                company,
                at,
                change: Change::Deletion,
            },
            json,
        );
    }

    /// A person makes a duplicate of a customer's company (a name and a
    /// few values, no BAN) and merges the two, the duplicate surviving or
    /// absorbed. HubSpot owes a deletion of the merged-away company and a
    /// merge; the survivor's values (its own, the other's where it had
    /// none) change without a property webhook, as HubSpot's merge does.
    fn merge_company(&mut self) {
        if self.merges * 4 >= self.model.custs.len() {
            return;
        }
        let Some(c) = self.live_company() else {
            return;
        };
        self.merges += 1;
        let company = self.model.custs[c].company.clone();
        let duplicate = company_id(1_000 + self.merges);
        let mut props = Map::new();
        for f in &self.model.fields {
            if f.warp != "ban" && self.rng.random_bool(0.4) {
                let w = f.random(&mut self.rng);
                if !w.hubspot.is_empty() {
                    props.insert(f.hubspot.into(), json!(w.hubspot));
                }
            }
        }
        self.hub.upsert_company(&duplicate, props);
        let (survivor, merged) = if self.rng.random_bool(0.6) {
            (duplicate.clone(), company)
        } else {
            (company, duplicate.clone())
        };
        if !self.hub.merge_companies(&survivor, &merged) {
            self.fail(format!("HubSpot would not merge {merged} into {survivor}"));
            return;
        }
        // What the survivor holds now, as HubSpot's merge left it.
        let Some(props) = self.hub.company(&survivor) else {
            self.fail(format!("the survivor {survivor} of a merge is gone"));
            return;
        };
        let modified = props
            .get("hs_lastmodifieddate")
            .and_then(Value::as_str)
            .and_then(hubwarp::reconcile::plan::hubspot_time);
        let cust = &mut self.model.custs[c];
        for (i, f) in self.model.fields.iter().enumerate() {
            cust.hub[i] = f.canon_hubspot(props.get(f.hubspot).and_then(Value::as_str));
        }
        cust.hub_at = modified.unwrap_or_else(now_ms);
        cust.company = survivor.clone();
        self.model.by_company.insert(duplicate, c);
        let at = now_ms();
        let id = |c: &str| c.parse::<u64>().unwrap_or_default();
        let deletion = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 1,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.deletion", "attemptNumber": 0,
            "objectId": id(&merged), "changeSource": "CRM_UI"});
        self.owe(
            Ev {
                company: merged.clone(),
                at,
                change: Change::Deletion,
            },
            deletion,
        );
        let merge = json!({"eventId": self.rng.random_range(1..200u64), "subscriptionId": SUBSCRIPTION + 2,
            "portalId": PORTAL, "appId": 1160452, "occurredAt": at,
            "subscriptionType": "company.merge", "attemptNumber": 0,
            "objectId": id(&survivor), "changeSource": "CRM_UI",
            "primaryObjectId": id(&survivor), "mergedObjectIds": [id(&merged)],
            "numberOfPropertiesMoved": props.len()});
        self.owe(
            Ev {
                company: survivor,
                at,
                change: Change::Merge { merged },
            },
            merge,
        );
    }

    /// Schedules an event's webhook: dropped, delayed, duplicated.
    fn owe(&mut self, ev: Ev, json: Value) {
        let body = format!("[{json}]");
        let key = match read_delivery(body.as_bytes()) {
            Ok(d) => d.events.first().map(|e| e.dedup_key()).unwrap_or_default(),
            Err(e) => {
                self.fail(format!("generated event does not parse: {e}"));
                return;
            }
        };
        let property = json["propertyName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let object = json["objectId"].as_u64().unwrap_or_default();
        self.by_event
            .insert((object, ev.at, property), self.events.len());
        let index = self.events.len();
        self.events.push(Generated {
            ev,
            json,
            key,
            acknowledged: false,
        });
        self.figures.events_sent += 1;
        if self.rng.random_bool(0.05) {
            return; // never delivered: HubSpot lost it
        }
        let copies = if self.rng.random_bool(0.1) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.rng.random_range(0..6) * STEP_MS;
            self.pending.push(Pending {
                ev: index,
                due_ms: now_ms() + delay,
                attempt: 0,
                max_attempts: self.rng.random_range(1..=10),
            });
        }
    }

    /// Posts every delivery that is due, a few events per request.
    async fn deliver_due(&mut self) {
        let now = now_ms();
        let (mut due, later): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due_ms <= now);
        self.pending = later;
        due.shuffle(&mut self.rng);
        while !due.is_empty() {
            let n = self.rng.random_range(1..=due.len().min(6));
            let batch: Vec<Pending> = due.drain(..n).collect();
            self.post(batch).await;
        }
    }

    async fn post(&mut self, batch: Vec<Pending>) {
        let events: Vec<Value> = batch
            .iter()
            .map(|p| {
                let mut e = self.events[p.ev].json.clone();
                e["attemptNumber"] = json!(p.attempt);
                e
            })
            .collect();
        let body = Value::Array(events).to_string();
        let mut event = fixtures::function_url_event(HOST, "/", "", &body);
        let signing = if self.rng.random_bool(0.5) {
            Signing::V1
        } else {
            Signing::V3(now_ms())
        };
        fixtures::sign_event(&mut event, LOCAL_SECRET, signing, None);
        self.figures.deliveries += 1;
        // Boxed, as the invocations below: their futures nest every port
        // call's, and a history's would outgrow a test thread's stack.
        let answer = Box::pin(self.receiver.handle(fixtures::request(&event))).await;
        let status = answer.map(|r| r.status().as_u16()).unwrap_or(500);
        if status == 200 {
            for p in &batch {
                self.events[p.ev].acknowledged = true;
            }
            return;
        }
        if status != 503 {
            self.fail(format!(
                "receiver answered {status} to a valid signed delivery"
            ));
        }
        // HubSpot retries a failed delivery, a minute later and then
        // backing off, up to its attempts.
        for mut p in batch {
            p.attempt += 1;
            if p.attempt >= p.max_attempts {
                continue;
            }
            p.due_ms =
                now_ms() + 60_000 * (1 << p.attempt.min(6)) + self.rng.random_range(0..5) * STEP_MS;
            self.pending.push(p);
        }
    }

    /// One consumer invocation with up to 10 messages, as Lambda's trigger.
    async fn poll(&mut self) {
        let received = match self.queue.receive(10, &mut self.rng).await {
            Ok(r) => r,
            Err(e) => {
                self.fail(e);
                return;
            }
        };
        if received.is_empty() {
            return;
        }
        let mut event = SqsEvent::default();
        event.records = received
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = Some(m.id.clone());
                r.body = Some(m.body.clone());
                r.attributes
                    .insert("ApproximateReceiveCount".into(), m.receives.to_string());
                r
            })
            .collect();
        let fired = self.plan.fired();
        // A circuit opened by earlier faults refuses calls without a fault
        // of this batch.
        let circuit_open = self.breakers.open_circuits() > 0;
        self.plan.take_observed();
        let answer = self
            .plan
            .run_killable(Box::pin(sync_consumer::handle_batch(
                &self.consumer,
                &Backoff::default(),
                LambdaEvent::new(event, Context::default()),
            )))
            .await;
        let faulted = self.plan.fired() > fired || circuit_open;
        let retry: HashSet<String> = match answer {
            Some(handled) => {
                // As the function does after its batch: each message
                // handed back hidden for its backoff (model time).
                // The backoff's jitter is drawn again from the history's
                // own generator, so a seed replays exactly (the function
                // draws from the thread's).
                for h in &handled.hide {
                    let seconds = match h.why {
                        sync_consumer::Why::Backoff => {
                            let receives = received
                                .iter()
                                .find(|m| m.id == h.message_id)
                                .map_or(1, |m| m.receives);
                            let drawn = Backoff::default().delay(receives, self.rng.random());
                            drawn.as_secs().clamp(1, u64::from(u32::MAX)) as i32
                        }
                        _ => h.seconds,
                    };
                    if let Err(e) = self.queue.hide(&h.message_id, seconds).await {
                        self.fail(e);
                    }
                }
                handled
                    .response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect()
            }
            // Killed: nothing deleted or hidden; every message comes back
            // after the queue's visibility timeout.
            None => received.iter().map(|m| m.id.clone()).collect(),
        };
        let mut acked = Vec::new();
        // Every message's event, and whether it was acknowledged.
        let mut batch = Vec::new();
        for m in &received {
            if retry.contains(&m.id) {
                if let Some((key, e)) = self.read(&m.body) {
                    batch.push((key, e, false));
                }
                if faulted {
                    self.queue.note_faulted(&m.id);
                } else {
                    self.fail(format!(
                        "message {} handed back with no fault injected",
                        m.id
                    ));
                }
                continue;
            }
            if let Err(e) = self.queue.delete(&m.id).await {
                self.fail(e);
            }
            match self.read(&m.body) {
                Some(pair) => {
                    batch.push((pair.0.clone(), pair.1.clone(), true));
                    acked.push(pair);
                }
                None => self.fail(format!(
                    "consumer acknowledged a message the history never sent: {}",
                    m.body
                )),
            }
        }
        let observed = self.plan.take_observed();
        self.apply_race_edits(&observed, now_ms());
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!(
                "t={} poll: {} received, acked {:?}, faulted {faulted}, observed {:?}",
                now_ms(),
                received.len(),
                acked.iter().map(|(k, e)| (k, e.at)).collect::<Vec<_>>(),
                observed
            );
        }
        // Lifecycle events are handled first in a batch: a link they
        // changed, and WARP's company id a merge re-pointed (a write, so
        // WARP's `updated_at` moves), hold for the batch's property
        // changes even when their own message then failed and comes back.
        self.lifecycle(&batch, &observed, now_ms());
        let decided = self.model.consumer_batch(&acked, now_ms());
        self.follow(&observed, &decided);
        // After every invocation, not only at the end: the nightly run
        // repairs most of what a wrong decision does, and must not hide it.
        self.compare("after a consumer batch", true).await;
    }

    /// The history's event behind a queue message, with its dedup key.
    fn read(&self, body: &str) -> Option<(String, Ev)> {
        let m = SyncMessage::read(body).ok()?;
        let property = m
            .event
            .property_name
            .as_deref()
            .unwrap_or_default()
            .to_string();
        let i = *self
            .by_event
            .get(&(m.event.object_id, m.event.occurred_at, property))?;
        Some((m.dedup_key.to_string(), self.events[i].ev.clone()))
    }

    /// Concurrent WARP edits (the 412 races) are WARP edits like any other.
    fn apply_race_edits(&mut self, observed: &Observed, at: i64) {
        for (id, patch) in &observed.race_edits {
            let Some(&c) = self.model.by_id.get(id) else {
                continue;
            };
            for (i, f) in self.model.fields.iter().enumerate() {
                if let Some(v) = fields::warp_get(patch, f.warp) {
                    self.model.custs[c].warp[i] = f.canon_warp(Some(v));
                }
            }
            self.model.custs[c].warp_at = at;
        }
    }

    /// A batch's lifecycle events, oldest first, as the consumer handles
    /// them before its property changes. One acknowledged must have made
    /// exactly the writes the model says; one whose message failed made
    /// the first of them, as far as it got. The links left over are those
    /// the batch's first changes of companies made.
    fn lifecycle(&mut self, batch: &[(String, Ev, bool)], observed: &Observed, now: i64) {
        let model = &self.model;
        let mut links: VecDeque<Write> = observed
            .links
            .iter()
            .filter_map(|l| {
                let state = match l.state {
                    LinkState::Active => LinkModel::Active,
                    LinkState::Deleted => LinkModel::Deleted,
                    LinkState::Merged => LinkModel::Merged,
                };
                Some(Write::Link(
                    l.company_id.clone(),
                    *model.by_id.get(&l.customer_id)?,
                    state,
                ))
            })
            .collect();
        let mut externals: VecDeque<Write> = observed
            .warp_puts
            .iter()
            .filter_map(|(id, body)| {
                let company = body
                    .get("external_ids")?
                    .get("hubspot_company_id")?
                    .as_str()?;
                Some(Write::External(*model.by_id.get(id)?, company.to_string()))
            })
            .collect();
        let mut events: Vec<&(String, Ev, bool)> = batch
            .iter()
            .filter(|(key, e, _)| {
                !matches!(e.change, Change::Property { .. }) && !model.settled.contains(key)
            })
            .collect();
        events.sort_by_key(|(_, e, _)| e.at);
        match replay(&self.model, &events, links.clone(), externals.clone(), now) {
            Some((model, rest_links, rest_externals)) => {
                self.model = model;
                links = rest_links;
                externals = rest_externals;
            }
            None => {
                let what: Vec<String> = events
                    .iter()
                    .map(|(key, _, acked)| format!("{key} (acknowledged: {acked})"))
                    .collect();
                self.fail(format!(
                    "no order of the batch's lifecycle events {what:?} explains the writes {links:?} {externals:?}"
                ));
                return;
            }
        }
        for w in links {
            self.model.apply(&w, now);
        }
        for w in externals {
            self.fail(format!(
                "WARP's company id written with no merge to say so: {w:?}"
            ));
            self.model.apply(&w, now);
        }
    }

    /// What an invocation that did not finish left in the world, for the
    /// customers the model did not decide (their messages come back).
    fn follow(&mut self, observed: &Observed, decided: &HashSet<usize>) {
        let now = now_ms();
        let m = &mut self.model;
        for (id, body) in &observed.warp_puts {
            let Some(&c) = m.by_id.get(id) else { continue };
            if decided.contains(&c) {
                continue;
            }
            let body = Value::Object(body.clone());
            for (i, f) in m.fields.iter().enumerate() {
                if let Some(v) = fields::warp_get(&body, f.warp) {
                    m.custs[c].warp[i] = f.canon_warp(Some(v));
                }
            }
            m.custs[c].warp_at = now;
        }
        for (id, field, state) in &observed.field_states {
            let (Some(&c), Some(i)) = (m.by_id.get(id), m.field_index(field)) else {
                continue;
            };
            if decided.contains(&c) {
                continue;
            }
            let f = m.fields[i];
            m.custs[c].base[i] = Some(Base {
                value: f.canon_warp(state.synced_value.as_ref()),
                hub_at: state.hubspot_occurred_at,
            });
        }
        for (id, field) in &observed.conflicts {
            if let (Some(&c), Some(i)) = (m.by_id.get(id), m.field_index(field))
                && !decided.contains(&c)
            {
                m.manual.insert((c, i));
            }
        }
        m.settled.extend(observed.settled.iter().cloned());
    }

    /// HubSpot finishes its retries, the consumer drains the queue.
    /// Faults stop; an outage under way goes on to its end while the queue
    /// is drained (the consumer backs off through it), and the nightly run
    /// comes after it.
    async fn recover(&mut self) {
        self.plan.set(0.0, false);
        self.drain().await;
        if let Some(end) = self.plan.outages_end_ms()
            && end > now_ms()
        {
            set_clock_ms(Some(end));
            self.drain().await;
        }
    }

    /// Messages on the queue; a failure to count is the history's failure.
    async fn live(&mut self) -> usize {
        match self.queue.live().await {
            Ok(n) => n,
            Err(e) => {
                self.fail(e);
                0
            }
        }
    }

    /// HubSpot's retries delivered as they come due and the consumer
    /// polled until the queue is empty. (After the nightly runs HubSpot
    /// owes nothing: it only polls.)
    async fn drain(&mut self) {
        // A three-day outage is hundreds of receives of each message.
        for _ in 0..1_000_000 {
            if let Some(due) = self.pending.iter().map(|p| p.due_ms).min() {
                set_clock_ms(Some(due.max(now_ms())));
                self.deliver_due().await;
                continue;
            }
            if self.live().await == 0 {
                return;
            }
            if let Some(at) = self.queue.next_visible_ms() {
                set_clock_ms(Some(at.max(now_ms())));
            }
            self.poll().await;
        }
        self.fail("the queue did not drain".into());
    }

    /// One nightly run to its end, as the platform drives it: handovers
    /// invoked, killed invocations retried once their lease lapses.
    async fn nightly(&mut self) -> Observed {
        let handovers = RecordedHandovers::default();
        // Scheduled, so a retry of a killed invocation is the same run; one
        // night later than the last run, since a run is one night.
        self.nights += 1;
        let scheduled =
            chrono::DateTime::from_timestamp_millis(now_ms() + self.nights * 86_400_000)
                .unwrap_or_default()
                .to_rfc3339();
        let mut request = ReconcileRequest {
            scheduled_time: Some(scheduled),
            ..ReconcileRequest::default()
        };
        self.plan.take_observed();
        let mut seen = Observed::default();
        for _ in 0..500 {
            self.figures.nightly_invocations += 1;
            let deadline = now_ms() + 15 * 60_000;
            let out = self
                .plan
                .run_killable(Box::pin(
                    self.reconciler
                        .invoke(&request, deadline, &handovers, &NoAlerts),
                ))
                .await;
            match out {
                None => advance(130_000),
                Some(Err(_)) => advance(1_000),
                Some(Ok(o)) => match o.status.as_str() {
                    "continued" => {
                        request = ReconcileRequest {
                            continue_run: Some(o.run_id.clone()),
                            ..ReconcileRequest::default()
                        };
                        advance(1_000);
                    }
                    "already running" => advance(130_000),
                    "completed" | "stopped" | "already ran" => {
                        seen.absorb(self.plan.take_observed());
                        return seen;
                    }
                    other => {
                        self.fail(format!("nightly run answered {other}"));
                        break;
                    }
                },
            }
            seen.absorb(self.plan.take_observed());
        }
        self.fail("nightly run did not finish".into());
        seen
    }

    async fn nightly_and_checks(&mut self, fault_rate: f64) {
        advance(2 * 3_600_000);
        let at = now_ms();
        self.plan.set(fault_rate * 2.0, true);
        self.plan.set_races(false);
        let faulted = self.nightly().await;
        self.apply_race_edits(&faulted, at);
        let agreed = self.model.nightly(at);
        // Whatever the faulted run could not write, a clean run does.
        self.plan.set(0.0, false);
        advance(2 * 3_600_000);
        let recovery = self.nightly().await;
        self.baselines_after_nightly(faulted, recovery, &agreed)
            .await;
        // The events the sweep queued again.
        self.drain().await;
        // What they changed is the next run's to repair: a swept merge
        // re-links a customer the runs before could not pair.
        advance(3_600_000);
        let at = now_ms();
        let after_sweep = self.nightly().await;
        let agreed = self.model.nightly(at);
        self.baselines_after_nightly(after_sweep, Observed::default(), &agreed)
            .await;
        advance(3_600_000);
        let check = self.nightly().await;
        let (puts, updates) = (check.warp_puts.len(), check.hub_updates.len());
        if puts + updates > 0 {
            self.fail(format!(
                "a second nightly run wrote {puts} WARP customer(s) and {updates} HubSpot company(ies)"
            ));
        }
        self.check().await;
    }
}

impl<B: Backend> World<B> {
    /// Both systems (and, with `baselines`, the field state) against the
    /// model; `when` names the moment in the failure.
    async fn compare(&mut self, when: &str, baselines: bool) {
        for c in 0..self.model.custs.len() {
            let cust = self.model.custs[c].clone();
            let warp = self.warp.customer(&cust.id).unwrap_or(Value::Null);
            let hub = self.hub.company(&cust.company);
            let states = self.store.field_states(&cust.id).await.unwrap_or_default();
            if names_company(&warp) != cust.external {
                self.fail(format!(
                    "{when}: WARP {} names company {:?}, the model says {}",
                    cust.id,
                    names_company(&warp),
                    cust.external
                ));
            }
            for (i, f) in self.model.fields.clone().iter().enumerate() {
                let w = f.canon_warp(fields::warp_get(&warp, f.warp));
                if w != cust.warp[i] {
                    self.fail(format!(
                        "{when}: WARP {} {}: {:?}, the model says {:?}",
                        cust.id, f.warp, w, cust.warp[i]
                    ));
                }
                if let Some(props) = &hub {
                    let h = f.canon_hubspot(props.get(f.hubspot).and_then(Value::as_str));
                    if h != cust.hub[i] {
                        self.fail(format!(
                            "{when}: HubSpot {} {}: {:?}, the model says {:?}",
                            cust.company, f.hubspot, h, cust.hub[i]
                        ));
                    }
                }
                if baselines {
                    let got = states.get(f.warp).map(|s| Base {
                        value: f.canon_warp(s.synced_value.as_ref()),
                        hub_at: s.hubspot_occurred_at,
                    });
                    if got != cust.base[i] {
                        self.fail(format!(
                            "{when}: baseline of {} {}: {:?}, the model says {:?}",
                            cust.id, f.warp, got, cust.base[i]
                        ));
                    }
                }
            }
        }
    }

    /// Every baseline the nightly runs wrote must hold the value the model
    /// decided; after that the model takes the store's baselines: a run
    /// dates its writes when they land, and a baseline whose write failed
    /// (reported as an error of the run) is simply absent, both of which
    /// only the world knows.
    async fn baselines_after_nightly(
        &mut self,
        mut faulted: Observed,
        recovery: Observed,
        agreed: &[(usize, usize, i64)],
    ) {
        faulted.absorb(recovery);
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("nightly observed: {faulted:?}");
        }
        // The last write of each field: a WARP user racing the faulted run
        // may make an earlier one stale, which the recovery run rewrites.
        let mut last: BTreeMap<(String, String), FieldState> = BTreeMap::new();
        for (id, field, state) in faulted.field_states {
            last.insert((id, field), state);
        }
        for ((id, field), state) in &last {
            let (Some(&c), Some(i)) = (self.model.by_id.get(id), self.model.field_index(field))
            else {
                continue;
            };
            let f = self.model.fields[i];
            let wrote = f.canon_warp(state.synced_value.as_ref());
            let model = self.model.custs[c].base[i]
                .as_ref()
                .map(|b| b.value.clone());
            if model.as_deref() != Some(wrote.as_str()) {
                self.fail(format!(
                    "the nightly run wrote the baseline {wrote:?} for {id} {field}, the model says {model:?}"
                ));
            }
        }
        let mut states = HashMap::new();
        for c in 0..self.model.custs.len() {
            let id = self.model.custs[c].id.clone();
            states.insert(c, self.store.field_states(&id).await.unwrap_or_default());
        }
        // Every agreement is dated no earlier than the company's change
        // that made it: else an older webhook of the field, swept or
        // retried late, would count as news and take the value back.
        for &(c, i, required) in agreed {
            let f = self.model.fields[i];
            let dated = states
                .get(&c)
                .and_then(|s| s.get(f.warp))
                .and_then(|s| s.hubspot_occurred_at);
            if dated.is_none_or(|at| at < required) {
                let id = self.model.custs[c].id.clone();
                self.fail(format!(
                    "after the nightly run the agreed baseline of {id} {} is dated {dated:?}, before the change it agrees with ({required})",
                    f.warp
                ));
            }
        }
        for c in 0..self.model.custs.len() {
            let states = states.remove(&c).unwrap_or_default();
            for (i, f) in self.model.fields.clone().iter().enumerate() {
                self.model.custs[c].base[i] = states.get(f.warp).map(|s| Base {
                    value: f.canon_warp(s.synced_value.as_ref()),
                    hub_at: s.hubspot_occurred_at,
                });
            }
        }
    }

    /// Every customer's sync log, oldest decision first. Within one
    /// millisecond (one invocation: the model clock stands still while it
    /// runs) a log cannot say the order, and DynamoDB's keys would sort by
    /// dedup key: such entries go by the change's time, the order the
    /// consumer applies a batch in; a batch that broke it leaves a value
    /// the comparison after each batch catches.
    async fn sync_log(&mut self, at_of_key: &HashMap<String, i64>) -> Vec<SyncLogEntry> {
        let mut all = Vec::new();
        for c in 0..self.model.custs.len() {
            let id = self.model.custs[c].id.clone();
            match self.store.entries(&id, usize::MAX).await {
                Ok(entries) => all.extend(entries),
                Err(e) => self.fail(format!("sync log of {id}: {e}")),
            }
        }
        all.sort_by_key(|e| (e.at_ms, at_of_key.get(&e.dedup_key).copied()));
        all
    }

    /// The checks of the issue, after the history, recovery and the nightly.
    async fn check(&mut self) {
        // Both systems equal the model.
        self.compare("at the end", false).await;
        // Every MANUAL conflict is in the review queue (and nothing else),
        // once.
        let records: Vec<(usize, usize)> = match self.store.open_conflicts().await {
            Ok(all) => all
                .iter()
                .filter_map(|r| {
                    Some((
                        *self.model.by_id.get(&r.customer_id)?,
                        self.model.field_index(&r.field)?,
                    ))
                })
                .collect(),
            Err(e) => {
                self.fail(format!("open conflicts: {e}"));
                Vec::new()
            }
        };
        let open: BTreeSet<(usize, usize)> = records.iter().copied().collect();
        if open.len() != records.len() {
            self.fail(format!(
                "{} open conflicts for {} customer fields: {records:?}",
                records.len(),
                open.len()
            ));
        }
        if open != self.model.manual {
            self.fail(format!(
                "review queue {:?}, the model says {:?}",
                open, self.model.manual
            ));
        }
        // Nothing in the DLQ that the faults did not put there.
        let dlq = match self.queue.dlq().await {
            Ok(d) => d,
            Err(e) => {
                self.fail(e);
                Vec::new()
            }
        };
        let mut dlq_keys = HashSet::new();
        for m in &dlq {
            if let Ok(msg) = SyncMessage::read(&m.body) {
                dlq_keys.insert(msg.dedup_key.to_string());
            }
            let reason = if m.faulted_receives >= m.receives {
                format!("a fault on each of its {} receives", m.receives)
            } else {
                self.fail(format!(
                    "message {} in the DLQ after {} receives, only {} faulted",
                    m.id, m.receives, m.faulted_receives
                ));
                "handed back without a fault".to_string()
            };
            *self.figures.dlq_reasons.entry(reason).or_default() += 1;
        }
        self.figures.dlq = dlq.len() as u64;
        let live = self.live().await;
        if live > 0 {
            self.fail(format!("{live} messages left on the queue"));
        }
        // Nothing lost: every event recorded is settled or in the DLQ, and
        // every event the receiver acknowledged is recorded.
        let mut at_of_key = HashMap::new();
        for g in &self.events {
            at_of_key.insert(g.key.clone(), g.ev.at);
        }
        let mut lost = Vec::new();
        for g in &self.events {
            let status = match self.log.status(&g.key).await {
                Ok(s) => s,
                Err(e) => {
                    lost.push(format!("{}: the event log answered {e}", g.key));
                    continue;
                }
            };
            match status {
                None if g.acknowledged => {
                    lost.push(format!("{} acknowledged, never recorded", g.key))
                }
                None => {}
                Some(status) => {
                    self.figures.recorded += 1;
                    match status {
                        EventStatus::Received | EventStatus::Queued
                            if dlq_keys.contains(&g.key) => {}
                        EventStatus::Received | EventStatus::Queued => {
                            lost.push(format!("{} left {}", g.key, status.as_str()))
                        }
                        _ => self.figures.applied += 1,
                    }
                }
            }
        }
        self.figures.queued = self.queue.keys() as u64;
        self.figures.lost = lost.len() as u64;
        for l in lost {
            self.fail(format!("lost: {l}"));
        }
        // Applied at most once in effect, and never an older change after
        // a newer one (per customer field, in the order decided).
        let log = self.sync_log(&at_of_key).await;
        let mut applied: HashMap<&str, u64> = HashMap::new();
        let mut last: HashMap<(&str, &str), i64> = HashMap::new();
        let mut problems = Vec::new();
        for e in log.iter().filter(|e| e.outcome == "applied") {
            *applied.entry(&e.dedup_key).or_default() += 1;
            let Some(&at) = at_of_key.get(&e.dedup_key) else {
                continue;
            };
            let slot = last
                .entry((&e.customer_id, &e.property))
                .or_insert(i64::MIN);
            if at <= *slot {
                self.figures.stale += 1;
                problems.push(format!(
                    "stale overwrite: {} {} applied the change of {at} after one of {}",
                    e.customer_id, e.property, *slot
                ));
            }
            *slot = (*slot).max(at);
        }
        for (key, n) in applied {
            if n > 1 {
                self.figures.doubled += n - 1;
                problems.push(format!("{key} applied {n} times"));
            }
        }
        for p in problems {
            self.fail(p);
        }
    }
}

/// The model after a batch's lifecycle `events` (in the consumer's order)
/// that explains the observed writes, and the writes left over (those of
/// the batch's property changes). An acknowledged event made all the
/// writes the model predicts for it; one whose message failed made the
/// first few of them, maybe none (its status read may have failed, or an
/// earlier write): the replay tries the most first and backs off when a
/// later acknowledged event would then be left without its writes.
fn replay(
    model: &Model,
    events: &[&(String, Ev, bool)],
    links: VecDeque<Write>,
    externals: VecDeque<Write>,
    now: i64,
) -> Option<(Model, VecDeque<Write>, VecDeque<Write>)> {
    let Some(((_, e, acked), rest)) = events.split_first() else {
        return Some((model.clone(), links, externals));
    };
    let predicted = model.lifecycle_writes(e);
    let (mut l, mut x) = (links.clone(), externals.clone());
    let mut matched = 0;
    for w in &predicted {
        let queue = match w {
            Write::Link(..) => &mut l,
            Write::External(..) => &mut x,
        };
        if queue.front() != Some(w) {
            break;
        }
        queue.pop_front();
        matched += 1;
    }
    let fewest = if *acked { predicted.len() } else { 0 };
    for take in (fewest..=matched).rev() {
        let mut next = model.clone();
        let (mut l, mut x) = (links.clone(), externals.clone());
        for w in &predicted[..take] {
            match w {
                Write::Link(..) => l.pop_front(),
                Write::External(..) => x.pop_front(),
            };
            next.apply(w, now);
        }
        if let Some(found) = replay(&next, rest, l, x, now) {
            return Some(found);
        }
    }
    None
}

/// The company a WARP customer's `external_ids` names.
fn names_company(warp: &Value) -> String {
    warp.pointer("/external_ids/hubspot_company_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}
