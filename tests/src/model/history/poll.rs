//! The consumer's poll: one invocation on what the queue hands out, as
//! Lambda's SQS trigger makes it, and the model brought along to what the
//! invocation did, finished or killed.

use std::collections::{HashSet, VecDeque};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use hubwarp::queue::SyncMessage;
use hubwarp::store::sync::LinkState;
use hubwarp::sync::backoff::Backoff;
use hubwarp::time::now_ms;
use lambda_runtime::{Context, LambdaEvent};
use rand::Rng;
use serde_json::Value;

use super::World;
use crate::model::backend::Backend;
use crate::model::faults::Observed;
use crate::model::fields;
use crate::model::reference::{Base, Change, Ev, LinkModel, Model, Write};

impl<B: Backend> World<B> {
    /// One consumer invocation with up to 10 messages, as Lambda's trigger.
    pub(super) async fn poll(&mut self) {
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
                            Backoff::default().delay_seconds(receives, self.rng.random())
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
    pub(super) fn apply_race_edits(&mut self, observed: &Observed, at: i64) {
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
