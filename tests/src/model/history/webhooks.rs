//! HubSpot's webhooks: each event owed is scheduled (dropped, delayed,
//! duplicated), posted signed to the receiver when due, and retried on
//! every non-2xx by HubSpot's schedule.

use hubwarp::hubspot::webhook::read_delivery;
use hubwarp::time::now_ms;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::{Generated, HOST, Pending, STEP_MS, World};
use crate::fixtures::{self, LOCAL_SECRET, Signing};
use crate::model::backend::Backend;
use crate::model::reference::Ev;

impl<B: Backend> World<B> {
    /// Schedules an event's webhook: dropped, delayed, duplicated.
    pub(super) fn owe(&mut self, ev: Ev, json: Value) {
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
    pub(super) async fn deliver_due(&mut self) {
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
}
