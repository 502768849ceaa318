//! The sandbox's state behind one lock: the customers in list order, their
//! indexes by id and BAN, the counts, the scripted fault and the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};

use super::shape::{apply_patch, etag_number};
use super::time::Clock;
use super::{Calls, Fault, Route};

#[derive(Clone, Default)]
pub(super) struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    /// The state stays usable after a panicking test thread: a poisoned lock
    /// still holds consistent data (every write completes under the lock).
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct Inner {
    /// In list order (insertion order).
    pub(super) customers: Vec<Map<String, Value>>,
    /// Positions in `customers` by `id`, and by `ban` (the first customer
    /// in list order with it). A scan per lookup made seeding quadratic:
    /// 100,000 customers took longer than the run they were seeded for.
    /// `id` and `ban` are read-only to PUT, so only `upsert` moves them.
    by_id: HashMap<String, usize>,
    by_ban: HashMap<String, usize>,
    pub(super) calls: Calls,
    pub(super) fault: Fault,
    pub(super) clock: Clock,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            customers: Vec::new(),
            by_id: HashMap::new(),
            by_ban: HashMap::new(),
            calls: Calls::default(),
            fault: Fault::None,
            clock: Clock::default(),
        }
    }
}

fn text<'a>(customer: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    customer.get(field).and_then(Value::as_str)
}

impl Inner {
    pub(super) fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub(super) fn by_ban(&self, ban: &str) -> Option<&Map<String, Value>> {
        self.by_ban.get(ban).map(|&i| &self.customers[i])
    }

    pub(super) fn upsert(&mut self, customer: Map<String, Value>) {
        let id = text(&customer, "id").map(str::to_string);
        let ban = text(&customer, "ban").map(str::to_string);
        let index = match id.as_deref().and_then(|id| self.position(id)) {
            Some(i) => {
                let old = std::mem::replace(&mut self.customers[i], customer);
                if let Some(old_ban) = text(&old, "ban")
                    && ban.as_deref() != Some(old_ban)
                {
                    self.unindex_ban(old_ban, i);
                }
                i
            }
            None => {
                self.customers.push(customer);
                let i = self.customers.len() - 1;
                if let Some(id) = id {
                    self.by_id.insert(id, i);
                }
                i
            }
        };
        if let Some(ban) = ban {
            // The first in list order keeps the BAN, as a scan would find it.
            let first = self.by_ban.entry(ban).or_insert(index);
            *first = (*first).min(index);
        }
    }

    /// Customer `index` no longer has `ban`: the next one in list order with
    /// it, if any, takes the index (a rare replacement; a scan is fine).
    fn unindex_ban(&mut self, ban: &str, index: usize) {
        if self.by_ban.get(ban) != Some(&index) {
            return;
        }
        match self
            .customers
            .iter()
            .position(|c| text(c, "ban") == Some(ban))
        {
            Some(next) => self.by_ban.insert(ban.to_string(), next),
            None => self.by_ban.remove(ban),
        };
    }

    /// Applies a checked patch to customer `index` as one write.
    pub(super) fn write(&mut self, index: usize, patch: Map<String, Value>) -> Map<String, Value> {
        let stamp = self.clock.stamp();
        let customer = &mut self.customers[index];
        apply_patch(customer, patch);
        let next = customer
            .get("etag")
            .and_then(Value::as_str)
            .and_then(etag_number)
            .unwrap_or(0)
            + 1;
        customer.insert("etag".into(), format!("\"{next}\"").into());
        customer.insert("updated_at".into(), stamp.into());
        customer.clone()
    }

    /// The fault for this request, if any, counting it down.
    pub(super) fn take_fault(&mut self) -> Fault {
        let fault = self.fault;
        let times = match &mut self.fault {
            Fault::None => return Fault::None,
            Fault::RateLimited { times, .. }
            | Fault::ServerError { times }
            | Fault::Slow { times, .. } => times,
        };
        // `times: 0` is a fault that never fires.
        let fires = *times > 0;
        *times = times.saturating_sub(1);
        if *times == 0 {
            self.fault = Fault::None;
        }
        if fires { fault } else { Fault::None }
    }

    pub(super) fn count(&mut self, route: Option<Route>) {
        let calls = &mut self.calls;
        match route {
            Some(Route::List) => calls.list += 1,
            Some(Route::Get) => calls.get += 1,
            Some(Route::GetByBan) => calls.get_by_ban += 1,
            Some(Route::Put) => calls.put += 1,
            None => {}
        }
    }
}
