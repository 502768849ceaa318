//! Reconciliation run records in DynamoDB, and their in-memory twin.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `<prefix>-runs` | `run_id` | status, lease_owner, lease_until, the record as JSON (`record`), started_at, finished_at |
//!
//! The whole record travels as one JSON attribute (cursor, counters and the
//! HubSpot fixes not yet sent are a few KB); `status` and the lease are
//! attributes of their own because the claim's condition reads them.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use tracing::instrument;

use super::checkpoint::{Claim, RunRecord, RunStatus};
use super::ports::RunStore;
use crate::store::StoreError;
use crate::store::dynamo::{n, s, scan_all};

pub const KEY: &str = "run_id";

#[derive(Debug, Clone)]
pub struct DynamoRunStore {
    client: Client,
    table: String,
}

impl DynamoRunStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn decode(&self, item: &HashMap<String, AttributeValue>) -> Result<RunRecord, StoreError> {
        let text = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| self.malformed(item, "no record"))?;
        serde_json::from_str(text).map_err(|e| self.malformed(item, &e.to_string()))
    }

    fn malformed(&self, item: &HashMap<String, AttributeValue>, reason: &str) -> StoreError {
        StoreError::Malformed {
            table: self.table.clone(),
            key: item
                .get(KEY)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default(),
            reason: reason.to_string(),
        }
    }

    fn item(
        &self,
        record: &RunRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Malformed {
            table: self.table.clone(),
            key: record.run_id.clone(),
            reason: e.to_string(),
        })?;
        let mut item = HashMap::from([
            (KEY.to_string(), s(&record.run_id)),
            ("status".to_string(), s(record.status.as_str())),
            ("lease_owner".to_string(), s(owner)),
            ("lease_until".to_string(), n(lease_until_ms)),
            ("started_at".to_string(), n(record.started_ms)),
            ("updated_at".to_string(), n(record.updated_ms)),
            ("dry_run".to_string(), AttributeValue::Bool(record.dry_run)),
            ("record".to_string(), s(json)),
        ]);
        if let Some(f) = record.finished_ms {
            item.insert("finished_at".to_string(), n(f));
        }
        Ok(item)
    }

    async fn get_item(
        &self,
        run_id: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(run_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?
            .item)
    }
}

/// The claim's rule, shared by both adapters: what an existing record
/// means for an invocation that wants the run.
fn verdict(record: RunRecord, lease_owner: &str, lease_until: i64, owner: &str, now: i64) -> Claim {
    if record.status != RunStatus::Running {
        Claim::Finished(record)
    } else if lease_until < now || lease_owner == owner {
        Claim::Held(record)
    } else {
        Claim::Busy(record)
    }
}

impl RunStore for DynamoRunStore {
    #[instrument(skip(self, fresh), fields(table = %self.table))]
    async fn claim(
        &self,
        run_id: &str,
        fresh: Option<&RunRecord>,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        if let Some(fresh) = fresh {
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.item(fresh, owner, lease_until_ms)?))
                .condition_expression("attribute_not_exists(run_id)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match res {
                Ok(_) => return Ok(Claim::Held(fresh.clone())),
                Err(SdkError::ServiceError(se))
                    if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) => {}
                Err(e) => return Err(StoreError::aws("PutItem", &self.table, e)),
            }
        }
        // The run exists: take its lease if it lapsed (or was released),
        // in one conditional write, so two invocations never both hold it.
        let Some(item) = self.get_item(run_id).await? else {
            return Err(StoreError::Malformed {
                table: self.table.clone(),
                key: run_id.to_string(),
                reason: "no such run".into(),
            });
        };
        let record = self.decode(&item)?;
        let held_by = item
            .get("lease_owner")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let held_until = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let claim = verdict(record, &held_by, held_until, owner, now_ms);
        let Claim::Held(record) = claim else {
            return Ok(claim);
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(run_id))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(
                "#status = :running AND (lease_until < :now OR lease_owner = :owner)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(lease_until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match res {
            Ok(_) => Ok(Claim::Held(record)),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(Claim::Busy(record))
            }
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }

    #[instrument(skip(self, record), fields(table = %self.table, run_id = %record.run_id))]
    async fn checkpoint(
        &self,
        record: &RunRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(record, owner, lease_until_ms)?))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", &self.table, e))?;
        Ok(())
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get_item(run_id)
            .await?
            .map(|item| self.decode(&item))
            .transpose()
    }
}

/// In-memory twin, for unit tests and the bench.
#[derive(Debug, Default)]
pub struct MemoryRunStore {
    runs: Mutex<HashMap<String, (RunRecord, String, i64)>>,
}

impl MemoryRunStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RunRecord, String, i64)>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RunStore for MemoryRunStore {
    async fn claim(
        &self,
        run_id: &str,
        fresh: Option<&RunRecord>,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let mut runs = self.lock();
        let Some((record, held_by, held_until)) = runs.get(run_id).cloned() else {
            let Some(fresh) = fresh else {
                return Err(StoreError::Malformed {
                    table: "runs".into(),
                    key: run_id.into(),
                    reason: "no such run".into(),
                });
            };
            runs.insert(
                run_id.to_string(),
                (fresh.clone(), owner.to_string(), lease_until_ms),
            );
            return Ok(Claim::Held(fresh.clone()));
        };
        let claim = verdict(record.clone(), &held_by, held_until, owner, now_ms);
        if matches!(claim, Claim::Held(_)) {
            runs.insert(
                run_id.to_string(),
                (record, owner.to_string(), lease_until_ms),
            );
        }
        Ok(claim)
    }

    async fn checkpoint(
        &self,
        record: &RunRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StoreError> {
        let mut runs = self.lock();
        match runs.get(&record.run_id) {
            Some((_, held_by, _)) if held_by == owner => {
                runs.insert(
                    record.run_id.clone(),
                    (record.clone(), owner.to_string(), lease_until_ms),
                );
                Ok(())
            }
            _ => Err(StoreError::Malformed {
                table: "runs".into(),
                key: record.run_id.clone(),
                reason: "lease held by another invocation".into(),
            }),
        }
    }

    async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().get(run_id).map(|(r, _, _)| r.clone()))
    }
}

impl super::ports::RunHistory for DynamoRunStore {
    /// A scan: one record per night (and per manual run or undo), a few
    /// hundred a year.
    #[instrument(skip(self), fields(table = %self.table))]
    async fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let scan = self.client.scan().table_name(&self.table);
        let mut out = scan_all(&self.table, scan)
            .await?
            .iter()
            .map(|item| self.decode(item))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (b.started_ms, &b.run_id).cmp(&(a.started_ms, &a.run_id)));
        Ok(out)
    }
}

impl super::ports::RunHistory for MemoryRunStore {
    async fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = self.lock().values().map(|(r, _, _)| r.clone()).collect();
        out.sort_by(|a, b| (b.started_ms, &b.run_id).cmp(&(a.started_ms, &a.run_id)));
        Ok(out)
    }
}
