//! The consumer's state in DynamoDB.
//!
//! | table | keys | holds |
//! |---|---|---|
//! | `<prefix>-links` | `company_id` | customer_id, ban, state, merged_into, updated_at |
//! | `<prefix>-field-state` | `customer_id`, `field` | synced_value (JSON text), hubspot_occurred_at, warp_updated_at |
//! | `<prefix>-sync-log` | `customer_id`, `entry` (`<ms>#<dedup key>#<property>`) | outcome, reason, warp_value / baseline (JSON text), hubspot_value, rule, expires_at (TTL) |
//! | `<prefix>-conflicts` | `customer_id`, `conflict` (`<field>#<occurredAt>`) | both values, both times, the event, state OPEN (RESOLVED: resolution, resolved_value, resolved_by, resolved_at, note; SUPERSEDED by a newer conflict of the field: superseded_by) |

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use tracing::instrument;

use super::StoreError;
use super::dynamo::{Item, get_n, get_s, n, query_all, s, scan_all};
use super::sync::{
    Closed, ClosedConflicts, ConflictQueue, ConflictRecord, ConflictReview, DecisionDetail,
    FieldStateStore, Link, LinkState, LinkStore, Resolution, SyncLog, SyncLogEntry, SyncLogReader,
};
use crate::mapping::conflict::FieldState;

/// Table names of the consumer's state.
#[derive(Debug, Clone)]
pub struct SyncTables {
    pub links: String,
    pub field_state: String,
    pub sync_log: String,
    pub conflicts: String,
}

impl SyncTables {
    /// `LINKS_TABLE`, `FIELD_STATE_TABLE`, `SYNC_LOG_TABLE`, `CONFLICTS_TABLE`.
    pub fn from_env(env: &crate::settings::Env) -> Result<Self, crate::settings::SettingError> {
        Ok(Self {
            links: env.required("LINKS_TABLE")?.to_string(),
            field_state: env.required("FIELD_STATE_TABLE")?.to_string(),
            sync_log: env.required("SYNC_LOG_TABLE")?.to_string(),
            conflicts: env.required("CONFLICTS_TABLE")?.to_string(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct DynamoSyncStore {
    client: Client,
    tables: SyncTables,
    log_retention: Duration,
}

impl DynamoSyncStore {
    pub fn new(client: Client, tables: SyncTables, log_retention: Duration) -> Self {
        Self {
            client,
            tables,
            log_retention,
        }
    }
}

impl LinkStore for DynamoSyncStore {
    #[instrument(skip(self), fields(table = %self.tables.links))]
    async fn link(&self, company_id: &str) -> Result<Option<Link>, StoreError> {
        let table = &self.tables.links;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("company_id", s(company_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let malformed = |reason: &str| StoreError::Malformed {
            table: table.clone(),
            key: company_id.to_string(),
            reason: reason.into(),
        };
        Ok(Some(Link {
            company_id: company_id.to_string(),
            customer_id: get_s(&item, "customer_id").ok_or_else(|| malformed("no customer_id"))?,
            ban: get_s(&item, "ban").unwrap_or_default(),
            state: get_s(&item, "state")
                .and_then(|v| LinkState::parse(&v))
                .ok_or_else(|| malformed("no valid state"))?,
            merged_into: get_s(&item, "merged_into"),
            updated_at_ms: get_n(&item, "updated_at").unwrap_or_default(),
        }))
    }

    #[instrument(skip_all, fields(table = %self.tables.links, company_id = %link.company_id))]
    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        let table = &self.tables.links;
        let mut req = self
            .client
            .put_item()
            .table_name(table)
            .item("company_id", s(&link.company_id))
            .item("customer_id", s(&link.customer_id))
            .item("ban", s(&link.ban))
            .item("state", s(link.state.as_str()))
            .item("updated_at", n(link.updated_at_ms));
        if let Some(m) = &link.merged_into {
            req = req.item("merged_into", s(m));
        }
        req.send()
            .await
            .map_err(|e| StoreError::aws("PutItem", table, e))?;
        Ok(())
    }
}

impl FieldStateStore for DynamoSyncStore {
    #[instrument(skip(self), fields(table = %self.tables.field_state))]
    async fn field_states(
        &self,
        customer_id: &str,
    ) -> Result<HashMap<String, FieldState>, StoreError> {
        let table = &self.tables.field_state;
        let query = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("customer_id = :c")
            .expression_attribute_values(":c", s(customer_id))
            .consistent_read(true);
        let mut out = HashMap::new();
        for item in query_all(table, query).await? {
            let Some(field) = get_s(&item, "field") else {
                continue;
            };
            let synced_value =
                get_s(&item, "synced_value").and_then(|t| serde_json::from_str(&t).ok());
            out.insert(
                field,
                FieldState {
                    synced_value,
                    hubspot_occurred_at: get_n(&item, "hubspot_occurred_at"),
                    warp_updated_at: get_n(&item, "warp_updated_at"),
                },
            );
        }
        Ok(out)
    }

    #[instrument(skip(self, state), fields(table = %self.tables.field_state))]
    async fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> Result<(), StoreError> {
        let table = &self.tables.field_state;
        let mut req = self
            .client
            .put_item()
            .table_name(table)
            .item("customer_id", s(customer_id))
            .item("field", s(field))
            .item("updated_at", n(crate::time::now_ms()));
        if let Some(v) = &state.synced_value {
            req = req.item("synced_value", s(v.to_string()));
        }
        if let Some(t) = state.hubspot_occurred_at {
            req = req.item("hubspot_occurred_at", n(t));
        }
        if let Some(t) = state.warp_updated_at {
            req = req.item("warp_updated_at", n(t));
        }
        req.send()
            .await
            .map_err(|e| StoreError::aws("PutItem", table, e))?;
        Ok(())
    }
}

impl SyncLog for DynamoSyncStore {
    #[instrument(skip_all, fields(table = %self.tables.sync_log, entries = entries.len()))]
    async fn append(&self, entries: &[SyncLogEntry]) -> Result<(), StoreError> {
        let table = &self.tables.sync_log;
        let retention = self.log_retention.as_secs() as i64;
        for chunk in entries.chunks(25) {
            let mut requests: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for e in chunk {
                let mut item = HashMap::from([
                    ("customer_id".to_string(), s(&e.customer_id)),
                    (
                        "entry".to_string(),
                        s(format!("{:013}#{}#{}", e.at_ms, e.dedup_key, e.property)),
                    ),
                    ("at".to_string(), n(e.at_ms)),
                    ("dedup_key".to_string(), s(&e.dedup_key)),
                    ("property".to_string(), s(&e.property)),
                    ("outcome".to_string(), s(&e.outcome)),
                    ("reason".to_string(), s(&e.reason)),
                    ("expires_at".to_string(), n(e.at_ms / 1000 + retention)),
                ]);
                if let Some(f) = &e.field {
                    item.insert("field".to_string(), s(f));
                }
                let d = &e.detail;
                for (name, value) in [
                    ("warp_value", d.warp_value.as_ref().map(|v| v.to_string())),
                    ("hubspot_value", d.hubspot_value.clone()),
                    ("baseline", d.baseline.as_ref().map(|v| v.to_string())),
                    ("rule", d.rule.clone()),
                ] {
                    if let Some(v) = value {
                        item.insert(name.to_string(), s(v));
                    }
                }
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|err| StoreError::aws("BatchWriteItem", table, err))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = HashMap::from([(table.clone(), requests)]);
            // Unprocessed items come back under throttling: resend them.
            for _ in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::aws("BatchWriteItem", table, e))?;
                pending = out.unprocessed_items.unwrap_or_default();
                if pending.values().all(Vec::is_empty) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !pending.values().all(Vec::is_empty) {
                return Err(StoreError::Malformed {
                    table: table.clone(),
                    key: "batch".into(),
                    reason: "unprocessed items after retries".into(),
                });
            }
        }
        Ok(())
    }
}

impl SyncLogReader for DynamoSyncStore {
    #[instrument(skip(self), fields(table = %self.tables.sync_log))]
    async fn entries(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<SyncLogEntry>, StoreError> {
        let table = &self.tables.sync_log;
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("customer_id = :c")
            .expression_attribute_values(":c", s(customer_id))
            // The sort key starts with the time: newest first.
            .scan_index_forward(false)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError::aws("Query", table, e))?;
            let json = |item: &Item, key: &str| {
                get_s(item, key).and_then(|t| serde_json::from_str(&t).ok())
            };
            for item in page.items.unwrap_or_default() {
                out.push(SyncLogEntry {
                    customer_id: customer_id.to_string(),
                    at_ms: get_n(&item, "at").unwrap_or_default(),
                    dedup_key: get_s(&item, "dedup_key").unwrap_or_default(),
                    property: get_s(&item, "property").unwrap_or_default(),
                    field: get_s(&item, "field"),
                    outcome: get_s(&item, "outcome").unwrap_or_default(),
                    reason: get_s(&item, "reason").unwrap_or_default(),
                    detail: DecisionDetail {
                        warp_value: json(&item, "warp_value"),
                        hubspot_value: get_s(&item, "hubspot_value"),
                        baseline: json(&item, "baseline"),
                        rule: get_s(&item, "rule"),
                    },
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

impl ConflictReview for DynamoSyncStore {
    #[instrument(skip_all, fields(table = %self.tables.conflicts, customer_id = %c.customer_id, field = %c.field))]
    async fn resolve_conflict(
        &self,
        c: &ConflictRecord,
        r: &Resolution,
    ) -> Result<bool, StoreError> {
        let table = &self.tables.conflicts;
        let mut set = String::from(
            "SET #state = :resolved, resolution = :take, resolved_value = :value, \
             resolved_by = :by, resolved_at = :at",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(table)
            .key("customer_id", s(&c.customer_id))
            .key("conflict", s(c.key()))
            .condition_expression("#state = :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s("OPEN"))
            .expression_attribute_values(":resolved", s("RESOLVED"))
            .expression_attribute_values(":take", s(&r.take))
            .expression_attribute_values(":value", s(&r.value))
            .expression_attribute_values(":by", s(&r.by))
            .expression_attribute_values(":at", n(r.at_ms));
        if let Some(note) = &r.note {
            set.push_str(", note = :note");
            req = req.expression_attribute_values(":note", s(note));
        }
        match req.update_expression(set).send().await {
            Ok(_) => Ok(true),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(se))
                if se.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::aws("UpdateItem", table, e)),
        }
    }
}

impl DynamoSyncStore {
    /// The open conflicts of one customer field: (key, HubSpot time).
    async fn open_of_field(
        &self,
        customer_id: &str,
        field: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let table = &self.tables.conflicts;
        let query = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("customer_id = :c AND begins_with(#conflict, :field)")
            .filter_expression("#state = :open")
            .expression_attribute_names("#conflict", "conflict")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":c", s(customer_id))
            .expression_attribute_values(":field", s(format!("{field}#")))
            .expression_attribute_values(":open", s("OPEN"))
            .consistent_read(true);
        Ok(query_all(table, query)
            .await?
            .iter()
            .filter_map(|item| {
                let key = get_s(item, "conflict")?;
                Some((key, get_n(item, "hubspot_occurred_at").unwrap_or_default()))
            })
            .collect())
    }
}

impl ConflictQueue for DynamoSyncStore {
    #[instrument(skip_all, fields(table = %self.tables.conflicts, customer_id = %c.customer_id, field = %c.field))]
    async fn put_conflict(&self, c: &ConflictRecord) -> Result<(), StoreError> {
        let table = &self.tables.conflicts;
        let key = c.key();
        let open = self.open_of_field(&c.customer_id, &c.field).await?;
        let newer = open
            .iter()
            .find(|(k, at)| *k != key && *at > c.hubspot_occurred_at)
            .map(|(k, _)| k.clone());
        let mut req = self
            .client
            .put_item()
            .table_name(table)
            .item("customer_id", s(&c.customer_id))
            .item("conflict", s(&key))
            .item("field", s(&c.field))
            .item("property", s(&c.property))
            .item("hubspot_value", s(&c.hubspot_value))
            .item("hubspot_occurred_at", n(c.hubspot_occurred_at))
            .item("warp_value", s(&c.warp_value))
            .item("dedup_key", s(&c.dedup_key))
            .item(
                "state",
                s(if newer.is_some() {
                    "SUPERSEDED"
                } else {
                    "OPEN"
                }),
            )
            .item("recorded_at", n(crate::time::now_ms()));
        if let Some(t) = c.warp_updated_at {
            req = req.item("warp_updated_at", n(t));
        }
        if let Some(newer) = &newer {
            req = req.item("superseded_by", s(newer));
        }
        req.send()
            .await
            .map_err(|e| StoreError::aws("PutItem", table, e))?;
        if newer.is_some() {
            return Ok(());
        }
        // The new one written first: a failure here leaves two open, which
        // the field's next conflict (or a person) settles.
        for (old, _) in open.iter().filter(|(k, _)| *k != key) {
            let superseded = self
                .client
                .update_item()
                .table_name(table)
                .key("customer_id", s(&c.customer_id))
                .key("conflict", s(old))
                .update_expression("SET #state = :superseded, superseded_by = :by")
                .condition_expression("#state = :open")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":open", s("OPEN"))
                .expression_attribute_values(":superseded", s("SUPERSEDED"))
                .expression_attribute_values(":by", s(&key))
                .send()
                .await;
            match superseded {
                Ok(_) => {}
                // Resolved meanwhile: a person's choice stands.
                Err(aws_sdk_dynamodb::error::SdkError::ServiceError(se))
                    if se.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(StoreError::aws("UpdateItem", table, e)),
            }
        }
        Ok(())
    }

    #[instrument(skip(self), fields(table = %self.tables.conflicts))]
    async fn open_conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        let table = &self.tables.conflicts;
        let scan = self
            .client
            .scan()
            .table_name(table)
            .filter_expression("#state = :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s("OPEN"))
            .consistent_read(true);
        let mut out: Vec<ConflictRecord> = scan_all(table, scan)
            .await?
            .iter()
            .map(conflict_record)
            .collect();
        out.sort_by(|a, b| (&a.customer_id, &a.field).cmp(&(&b.customer_id, &b.field)));
        Ok(out)
    }
}

fn conflict_record(item: &Item) -> ConflictRecord {
    ConflictRecord {
        customer_id: get_s(item, "customer_id").unwrap_or_default(),
        field: get_s(item, "field").unwrap_or_default(),
        property: get_s(item, "property").unwrap_or_default(),
        hubspot_value: get_s(item, "hubspot_value").unwrap_or_default(),
        hubspot_occurred_at: get_n(item, "hubspot_occurred_at").unwrap_or_default(),
        warp_value: get_s(item, "warp_value").unwrap_or_default(),
        warp_updated_at: get_n(item, "warp_updated_at"),
        dedup_key: get_s(item, "dedup_key").unwrap_or_default(),
    }
}

impl ClosedConflicts for DynamoSyncStore {
    /// A scan of the closed conflicts, as `open_conflicts` scans the open
    /// ones: the id is a digest of the key, not an attribute, and MANUAL
    /// conflicts are few (one per field a person has to decide). A link is
    /// opened a handful of times; a table of many thousand closed
    /// conflicts would want the id as an attribute and an index on it.
    #[instrument(skip(self), fields(table = %self.tables.conflicts))]
    async fn closed_conflict(&self, id: &str) -> Result<Option<Closed>, StoreError> {
        let table = &self.tables.conflicts;
        let scan = self
            .client
            .scan()
            .table_name(table)
            .filter_expression("#state <> :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s("OPEN"))
            .consistent_read(true);
        let closed = scan_all(table, scan).await?;
        let Some(item) = closed.iter().find(|item| conflict_record(item).id() == id) else {
            return Ok(None);
        };
        Ok(match get_s(item, "state").as_deref() {
            Some("RESOLVED") => Some(Closed::Resolved(Resolution {
                take: get_s(item, "resolution").unwrap_or_default(),
                value: get_s(item, "resolved_value").unwrap_or_default(),
                by: get_s(item, "resolved_by").unwrap_or_default(),
                note: get_s(item, "note"),
                at_ms: get_n(item, "resolved_at").unwrap_or_default(),
            })),
            _ => Some(Closed::Superseded),
        })
    }
}
