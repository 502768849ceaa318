//! The open circuits of the consumer's dependencies, shared by every
//! consumer instance, and their in-memory twin.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `<prefix>-breakers` | `dependency` (`warp`, `hubspot`) | opened_at, open_until, opens, probe_until, expires_at (TTL) |
//!
//! An item is an open circuit; no item, a closed one. Each instance counts
//! its own failures in a row (sharing the count would cost a write per
//! failed call); the first to reach the threshold writes the item, and every
//! instance reads it before calling. Once `open_until` has passed one
//! instance wins the probe with a conditional write, so five instances probe
//! a dead WARP once, not five times. The TTL only sweeps an item nobody came
//! back to close (the consumer went idle); a reader ignores an item past its
//! `expires_at`, since DynamoDB deletes expired items lazily.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::StoreError;
use super::dynamo::{Item, get_n, n, s};

pub const KEY: &str = "dependency";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// An open circuit as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCircuit {
    /// When the dependency was first found down (epoch ms): kept across
    /// reopenings, so it dates the outage, not the last failed probe.
    pub opened_at_ms: i64,
    /// No call before this (epoch ms); after it, one probe.
    pub open_until_ms: i64,
    /// Times opened in this outage (the first opening and each failed
    /// probe): the open period doubles with it.
    pub opens: u32,
    /// The probe in flight holds the circuit until then (epoch ms).
    pub probe_until_ms: Option<i64>,
    /// Epoch seconds after which the item means nothing (TTL).
    pub expires_at_s: i64,
}

impl OpenCircuit {
    /// Past its TTL: DynamoDB has not swept it yet, but it is closed.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_s.saturating_mul(1000) <= now_ms
    }
}

pub trait BreakerStore: Send + Sync {
    /// The open circuit of `dependency`, if any (a strongly consistent read:
    /// an instance must see the opening another one just wrote).
    fn circuit(
        &self,
        dependency: &str,
    ) -> impl Future<Output = Result<Option<OpenCircuit>, StoreError>> + Send;

    /// Opens (or opens again) the circuit until `open_until_ms`, counting
    /// the opening and keeping the outage's first `opened_at`; any probe is
    /// over. Returns the circuit as stored.
    fn open(
        &self,
        dependency: &str,
        now_ms: i64,
        open_until_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<OpenCircuit, StoreError>> + Send;

    /// Takes the one probe of an open circuit whose period is over, until
    /// `lease_until_ms`: false when it is not over, another instance holds
    /// the probe, or the circuit is gone.
    fn take_probe(
        &self,
        dependency: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Closes the circuit: the circuit that was open, if this call closed it
    /// (so one instance, not each, reports the outage's end).
    fn close(
        &self,
        dependency: &str,
    ) -> impl Future<Output = Result<Option<OpenCircuit>, StoreError>> + Send;
}

impl<T: BreakerStore> BreakerStore for std::sync::Arc<T> {
    fn circuit(
        &self,
        dependency: &str,
    ) -> impl Future<Output = Result<Option<OpenCircuit>, StoreError>> + Send {
        T::circuit(self, dependency)
    }

    fn open(
        &self,
        dependency: &str,
        now_ms: i64,
        open_until_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<OpenCircuit, StoreError>> + Send {
        T::open(self, dependency, now_ms, open_until_ms, expires_at_s)
    }

    fn take_probe(
        &self,
        dependency: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        T::take_probe(self, dependency, now_ms, lease_until_ms)
    }

    fn close(
        &self,
        dependency: &str,
    ) -> impl Future<Output = Result<Option<OpenCircuit>, StoreError>> + Send {
        T::close(self, dependency)
    }
}

#[derive(Debug, Clone)]
pub struct DynamoBreakers {
    client: Client,
    table: String,
}

impl DynamoBreakers {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn decode(&self, dependency: &str, item: &Item) -> Result<OpenCircuit, StoreError> {
        let required = |name: &str| {
            get_n(item, name).ok_or_else(|| StoreError::Malformed {
                table: self.table.clone(),
                key: dependency.to_string(),
                reason: format!("no number {name}"),
            })
        };
        Ok(OpenCircuit {
            opened_at_ms: required("opened_at")?,
            open_until_ms: required("open_until")?,
            opens: u32::try_from(required("opens")?).unwrap_or(u32::MAX),
            probe_until_ms: get_n(item, "probe_until"),
            expires_at_s: required(TTL_ATTRIBUTE)?,
        })
    }
}

impl BreakerStore for DynamoBreakers {
    async fn circuit(&self, dependency: &str) -> Result<Option<OpenCircuit>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(dependency))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        out.item
            .map(|item| self.decode(dependency, &item))
            .transpose()
    }

    async fn open(
        &self,
        dependency: &str,
        now_ms: i64,
        open_until_ms: i64,
        expires_at_s: i64,
    ) -> Result<OpenCircuit, StoreError> {
        // One UpdateItem: two instances opening at once both count, and the
        // outage keeps the earlier date.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dependency))
            .update_expression(
                "SET opened_at = if_not_exists(opened_at, :now), open_until = :until, \
                 expires_at = :expires ADD opens :one REMOVE probe_until",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":until", n(open_until_ms))
            .expression_attribute_values(":expires", n(expires_at_s))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| StoreError::aws("UpdateItem", &self.table, e))?;
        self.decode(dependency, &out.attributes.unwrap_or_default())
    }

    async fn take_probe(
        &self,
        dependency: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dependency))
            .update_expression("SET probe_until = :lease")
            .condition_expression(
                "attribute_exists(open_until) AND open_until <= :now \
                 AND (attribute_not_exists(probe_until) OR probe_until <= :now)",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }

    async fn close(&self, dependency: &str) -> Result<Option<OpenCircuit>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, s(dependency))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::aws("DeleteItem", &self.table, e))?;
        out.attributes
            .map(|item| self.decode(dependency, &item))
            .transpose()
    }
}

/// The in-memory twin, for unit tests and the model (one table shared by
/// every consumer built on the same `Arc`).
#[derive(Debug, Default)]
pub struct MemoryBreakers {
    circuits: Mutex<HashMap<String, OpenCircuit>>,
}

impl MemoryBreakers {
    /// How many circuits are open.
    pub fn open_circuits(&self) -> usize {
        self.with(|c| c.len())
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, OpenCircuit>) -> R) -> R {
        let mut guard = self
            .circuits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl BreakerStore for MemoryBreakers {
    async fn circuit(&self, dependency: &str) -> Result<Option<OpenCircuit>, StoreError> {
        Ok(self.with(|c| c.get(dependency).cloned()))
    }

    async fn open(
        &self,
        dependency: &str,
        now_ms: i64,
        open_until_ms: i64,
        expires_at_s: i64,
    ) -> Result<OpenCircuit, StoreError> {
        Ok(self.with(|c| {
            let entry = c
                .entry(dependency.to_string())
                .or_insert_with(|| OpenCircuit {
                    opened_at_ms: now_ms,
                    open_until_ms,
                    opens: 0,
                    probe_until_ms: None,
                    expires_at_s,
                });
            entry.open_until_ms = open_until_ms;
            entry.expires_at_s = expires_at_s;
            entry.opens += 1;
            entry.probe_until_ms = None;
            entry.clone()
        }))
    }

    async fn take_probe(
        &self,
        dependency: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|c| match c.get_mut(dependency) {
            Some(open)
                if open.open_until_ms <= now_ms
                    && open.probe_until_ms.is_none_or(|p| p <= now_ms) =>
            {
                open.probe_until_ms = Some(lease_until_ms);
                true
            }
            _ => false,
        }))
    }

    async fn close(&self, dependency: &str) -> Result<Option<OpenCircuit>, StoreError> {
        Ok(self.with(|c| c.remove(dependency)))
    }
}
