//! In-memory twin of the event log, for unit tests of the domain.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{ClaimOutcome, EventLog, EventStatus, Lease, NewEvent, StoreError};

#[derive(Debug, Clone)]
pub struct MemoryRecord {
    pub status: EventStatus,
    pub lease_owner: String,
    pub lease_until_ms: i64,
    pub message: String,
    pub claims: u32,
    /// Why an IGNORED or UNREADABLE event was not queued.
    pub reason: Option<String>,
    /// The raw event kept for an UNREADABLE one.
    pub raw: Option<String>,
    /// The last transient failure noted, and how many there were.
    pub last_error: Option<String>,
    pub failures: u32,
}

#[derive(Debug, Default)]
pub struct MemoryEventLog {
    records: Mutex<HashMap<String, MemoryRecord>>,
}

impl MemoryEventLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<MemoryRecord> {
        self.lock().get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn set_status(&self, key: &str, status: EventStatus) {
        if let Some(r) = self.lock().get_mut(key) {
            r.status = status;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemoryRecord>> {
        // A poisoned lock only means another test thread panicked.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventLog for MemoryEventLog {
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        _expires_at_s: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut records = self.lock();
        match records.get_mut(event.dedup_key) {
            None => {
                records.insert(
                    event.dedup_key.to_string(),
                    MemoryRecord {
                        status: EventStatus::Received,
                        lease_owner: lease.owner.clone(),
                        lease_until_ms: lease.until_ms,
                        message: event.message.to_string(),
                        claims: 1,
                        reason: None,
                        raw: None,
                        last_error: None,
                        failures: 0,
                    },
                );
                Ok(ClaimOutcome::Claimed { took_over: false })
            }
            // A retried claim of this same owner (its first answer lost).
            Some(r) if r.status == EventStatus::Received && r.lease_owner == lease.owner => {
                Ok(ClaimOutcome::Claimed { took_over: false })
            }
            Some(r) if r.status == EventStatus::Received && r.lease_until_ms < now_ms => {
                r.lease_owner = lease.owner.clone();
                r.lease_until_ms = lease.until_ms;
                r.claims += 1;
                Ok(ClaimOutcome::Claimed { took_over: true })
            }
            Some(r) if r.status == EventStatus::Received => Ok(ClaimOutcome::InFlight {
                lease_until_ms: r.lease_until_ms,
            }),
            Some(r) => Ok(ClaimOutcome::Settled(r.status.clone())),
        }
    }

    async fn mark_queued(
        &self,
        dedup_key: &str,
        lease_owner: &str,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut records = self.lock();
        match records.get_mut(dedup_key) {
            Some(r) if r.status == EventStatus::Received && r.lease_owner == lease_owner => {
                r.status = EventStatus::Queued;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn status(&self, dedup_key: &str) -> Result<Option<EventStatus>, StoreError> {
        Ok(self.lock().get(dedup_key).map(|r| r.status.clone()))
    }

    async fn settle(
        &self,
        dedup_key: &str,
        status: &EventStatus,
        _reason: &str,
    ) -> Result<(), StoreError> {
        if let Some(r) = self.lock().get_mut(dedup_key) {
            r.status = status.clone();
            // As the DynamoDB log does: an applied event keeps no message.
            if *status == EventStatus::Applied {
                r.message.clear();
            }
        }
        Ok(())
    }

    async fn record_unhandled(
        &self,
        event: &crate::hubspot::webhook::Unhandled,
        _now_ms: i64,
        _expires_at_s: i64,
    ) -> Result<bool, StoreError> {
        let mut records = self.lock();
        if records.contains_key(&event.dedup_key) {
            return Ok(false);
        }
        records.insert(
            event.dedup_key.clone(),
            MemoryRecord {
                status: event.disposition.into(),
                lease_owner: String::new(),
                lease_until_ms: 0,
                message: String::new(),
                claims: 1,
                reason: Some(event.reason.clone()),
                raw: event.raw.clone(),
                last_error: None,
                failures: 0,
            },
        );
        Ok(true)
    }

    async fn note_failure(
        &self,
        dedup_key: &str,
        error: &str,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(r) = self.lock().get_mut(dedup_key) {
            r.last_error = Some(error.to_string());
            r.failures += 1;
        }
        Ok(())
    }

    async fn release(&self, dedup_key: &str, lease_owner: &str) -> Result<(), StoreError> {
        let mut records = self.lock();
        if let Some(r) = records.get_mut(dedup_key)
            && r.status == EventStatus::Received
            && r.lease_owner == lease_owner
        {
            r.lease_until_ms = 0;
        }
        Ok(())
    }
}

impl super::StuckEvents for MemoryEventLog {
    async fn stuck_page(
        &self,
        lapsed_before_ms: i64,
        start: Option<String>,
    ) -> Result<(Vec<super::StuckEvent>, Option<String>), StoreError> {
        let records = self.lock();
        let mut stuck: Vec<super::StuckEvent> = records
            .iter()
            .filter(|(k, r)| {
                r.status == EventStatus::Received
                    && r.lease_until_ms < lapsed_before_ms
                    && start.as_deref().is_none_or(|s| k.as_str() > s)
            })
            .map(|(k, r)| super::StuckEvent {
                dedup_key: k.clone(),
                message: r.message.clone(),
                lease_until_ms: r.lease_until_ms,
            })
            .collect();
        stuck.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
        Ok((stuck, None))
    }

    async fn take_stuck(
        &self,
        dedup_key: &str,
        owner: &str,
        lapsed_before_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut records = self.lock();
        match records.get_mut(dedup_key) {
            Some(r) if r.status == EventStatus::Received && r.lease_until_ms < lapsed_before_ms => {
                r.lease_owner = owner.to_string();
                r.lease_until_ms = lease_until_ms;
                r.claims += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
