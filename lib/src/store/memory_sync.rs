//! In-memory twin of the consumer's state, for unit tests of the domain.

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;
use super::sync::{
    ConflictQueue, ConflictRecord, FieldStateStore, Link, LinkStore, SyncLog, SyncLogEntry,
};
use crate::mapping::conflict::FieldState;

#[derive(Debug, Default)]
pub struct MemorySyncStore {
    links: Mutex<HashMap<String, Link>>,
    fields: Mutex<HashMap<String, HashMap<String, FieldState>>>,
    log: Mutex<Vec<SyncLogEntry>>,
    conflicts: Mutex<Vec<ConflictRecord>>,
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
        Ok(lock(&self.conflicts).clone())
    }
}
