//! In-memory twin of the consumer's state, for unit tests of the domain.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::StoreError;
use super::sync::{
    Closed, ClosedConflicts, ConflictQueue, ConflictRecord, ConflictReview, FieldStateStore, Link,
    LinkStore, Resolution, SyncLog, SyncLogEntry, SyncLogReader,
};
use crate::mapping::conflict::FieldState;

#[derive(Debug, Default)]
pub struct MemorySyncStore {
    links: Mutex<HashMap<String, Link>>,
    fields: Mutex<HashMap<String, HashMap<String, FieldState>>>,
    log: Mutex<Vec<SyncLogEntry>>,
    conflicts: Mutex<Vec<ConflictRecord>>,
    /// Resolutions by (customer, conflict key).
    resolved: Mutex<HashMap<(String, String), Resolution>>,
    /// Conflicts a newer one of the same field replaced, by (customer, key).
    superseded: Mutex<HashSet<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemorySyncStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log_entries(&self) -> Vec<SyncLogEntry> {
        lock(&self.log).clone()
    }

    pub fn conflicts(&self) -> Vec<ConflictRecord> {
        lock(&self.conflicts).clone()
    }
}

impl LinkStore for MemorySyncStore {
    async fn link(&self, company_id: &str) -> Result<Option<Link>, StoreError> {
        Ok(lock(&self.links).get(company_id).cloned())
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        lock(&self.links).insert(link.company_id.clone(), link.clone());
        Ok(())
    }
}

impl FieldStateStore for MemorySyncStore {
    async fn field_states(
        &self,
        customer_id: &str,
    ) -> Result<HashMap<String, FieldState>, StoreError> {
        Ok(lock(&self.fields)
            .get(customer_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> Result<(), StoreError> {
        lock(&self.fields)
            .entry(customer_id.to_string())
            .or_default()
            .insert(field.to_string(), state.clone());
        Ok(())
    }
}

impl SyncLog for MemorySyncStore {
    async fn append(&self, entries: &[SyncLogEntry]) -> Result<(), StoreError> {
        lock(&self.log).extend_from_slice(entries);
        Ok(())
    }
}

impl ConflictQueue for MemorySyncStore {
    async fn put_conflict(&self, conflict: &ConflictRecord) -> Result<(), StoreError> {
        let id = (conflict.customer_id.clone(), conflict.key());
        // Recorded again, it is open again (the table's item is replaced)...
        lock(&self.resolved).remove(&id);
        let open = self.open_conflicts().await?;
        let mut superseded = lock(&self.superseded);
        superseded.remove(&id);
        // ...unless a newer one of the field is open; else it replaces
        // the open ones.
        for other in open.iter().filter(|o| {
            (&o.customer_id, &o.field) == (&conflict.customer_id, &conflict.field)
                && o.key() != conflict.key()
        }) {
            if other.hubspot_occurred_at > conflict.hubspot_occurred_at {
                superseded.insert(id.clone());
            } else {
                superseded.insert((other.customer_id.clone(), other.key()));
            }
        }
        drop(superseded);
        let mut all = lock(&self.conflicts);
        // The same conflict recorded again replaces itself, as the table's
        // key (customer, field, HubSpot time) does.
        all.retain(|c| {
            (&c.customer_id, &c.field, c.hubspot_occurred_at)
                != (
                    &conflict.customer_id,
                    &conflict.field,
                    conflict.hubspot_occurred_at,
                )
        });
        all.push(conflict.clone());
        Ok(())
    }

    async fn open_conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        let resolved = lock(&self.resolved);
        let superseded = lock(&self.superseded);
        Ok(lock(&self.conflicts)
            .iter()
            .filter(|c| {
                let id = (c.customer_id.clone(), c.key());
                !resolved.contains_key(&id) && !superseded.contains(&id)
            })
            .cloned()
            .collect())
    }
}

impl ConflictReview for MemorySyncStore {
    async fn resolve_conflict(
        &self,
        conflict: &ConflictRecord,
        resolution: &Resolution,
    ) -> Result<bool, StoreError> {
        let key = (conflict.customer_id.clone(), conflict.key());
        let exists = lock(&self.conflicts)
            .iter()
            .any(|c| (c.customer_id.clone(), c.key()) == key);
        let mut resolved = lock(&self.resolved);
        if !exists || resolved.contains_key(&key) || lock(&self.superseded).contains(&key) {
            return Ok(false);
        }
        resolved.insert(key, resolution.clone());
        Ok(true)
    }
}

impl ClosedConflicts for MemorySyncStore {
    async fn closed_conflict(&self, id: &str) -> Result<Option<Closed>, StoreError> {
        let Some(c) = lock(&self.conflicts).iter().find(|c| c.id() == id).cloned() else {
            return Ok(None);
        };
        let key = (c.customer_id.clone(), c.key());
        if let Some(r) = lock(&self.resolved).get(&key) {
            return Ok(Some(Closed::Resolved(r.clone())));
        }
        Ok(lock(&self.superseded)
            .contains(&key)
            .then_some(Closed::Superseded))
    }
}

impl SyncLogReader for MemorySyncStore {
    async fn entries(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<SyncLogEntry>, StoreError> {
        let mut out: Vec<SyncLogEntry> = lock(&self.log)
            .iter()
            .filter(|e| e.customer_id == customer_id)
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        out.truncate(limit);
        Ok(out)
    }
}
