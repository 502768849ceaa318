//! The world a history starts from: the mapping's strategies drawn, the
//! customers seeded on both sides, the ports wrapped in faults, and the
//! receiver, consumer and reconciler built on them.

use std::collections::HashMap;
use std::sync::Arc;

use hubwarp::hubspot::signature::{ClientSecret, SignatureVersion, Verifier};
use hubwarp::intake::{Intake, IntakeSettings};
use hubwarp::mapping::MappingSet;
use hubwarp::mapping::conflict::FieldState;
use hubwarp::reconcile::run::{Reconciler, RunSettings};
use hubwarp::store::breakers::MemoryBreakers;
use hubwarp::store::sync::FieldStateStore;
use hubwarp::sync::Consumer;
use hubwarp::sync::breaker::{Breaker, BreakerSettings, Dependency, Guarded};
use hubwarp::time::now_ms;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use webhook_receiver::Receiver;

use super::{Figures, Shape, World, company_id};
use crate::fixtures::LOCAL_SECRET;
use crate::model::backend::Backend;
use crate::model::faults::{FaultPlan, Faulty};
use crate::model::fields::{self, Dir, FIELDS, Field, Strategy, Written};
use crate::model::reference::{Base, Cust, Model};

impl<B: Backend> World<B> {
    pub(super) async fn new(seed: u64, shape: Shape) -> Result<World<B>, String> {
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
