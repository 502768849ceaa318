//! The checks against the reference model: both systems and the baselines
//! after each batch and each nightly run, and the checks at the
//! end (review queue, DLQ, nothing lost, applied once, never stale).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hubwarp::mapping::conflict::FieldState;
use hubwarp::queue::SyncMessage;
use hubwarp::store::EventLog;
use hubwarp::store::EventStatus;
use hubwarp::store::sync::{ConflictQueue, FieldStateStore, SyncLogEntry, SyncLogReader};
use serde_json::Value;

use super::World;
use crate::model::backend::Backend;
use crate::model::faults::Observed;
use crate::model::fields;
use crate::model::reference::Base;

impl<B: Backend> World<B> {
    /// Both systems (and, with `baselines`, the field state) against the
    /// model; `when` names the moment in the failure.
    pub(super) async fn compare(&mut self, when: &str, baselines: bool) {
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
    pub(super) async fn baselines_after_nightly(
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
    pub(super) async fn check(&mut self) {
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

/// The company a WARP customer's `external_ids` names.
pub(super) fn names_company(warp: &Value) -> String {
    warp.pointer("/external_ids/hubspot_company_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
