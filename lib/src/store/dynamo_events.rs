//! The event log in DynamoDB: one item per dedup key.
//!
//! Attributes: `dedup_key` (hash key), `status`, `lease_owner`,
//! `lease_until` (epoch ms), `first_received_at` / `last_received_at` /
//! `queued_at` (epoch ms), `claims` (deliveries that took the lease),
//! `expires_at` (epoch seconds, the table's TTL attribute), a summary of the
//! event for operators (`portal_id`, `object_id`, `subscription_type`,
//! `property_name`, `occurred_at`) and `message`, the queue body.
//!
//! A transient failure of the consumer leaves `last_error`, `last_error_at`
//! and `failures` (a count) on the record, for whoever finds its message in
//! the dead-letter queue.
//!
//! An event never queued (IGNORED, UNREADABLE) has `status`, `reason`,
//! `first_received_at`, `expires_at`, what summary it has (plus
//! `subscription_id`, `event_id`) and, when UNREADABLE, `raw_event` (cut to
//! a few KB); no lease and no `message`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use tracing::instrument;

use super::dynamo::{n, s, scan_all};
use super::{ClaimOutcome, EventLog, EventStatus, Lease, NewEvent, StoreError};

pub const KEY: &str = "dedup_key";
pub const TTL_ATTRIBUTE: &str = "expires_at";

#[derive(Debug, Clone)]
pub struct DynamoEventLog {
    client: Client,
    table: String,
}

impl DynamoEventLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The whole record, read consistently.
    async fn item(
        &self,
        dedup_key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?
            .item)
    }

    /// Ok(true) when the conditional update was made, Ok(false) when its
    /// condition did not hold (an expected outcome, not an error).
    fn condition_held<O, R>(
        &self,
        res: Result<O, SdkError<UpdateItemError, R>>,
    ) -> Result<bool, StoreError>
    where
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match res {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }

    /// What a refused claim found. A record leased to this very owner is
    /// ours: the SDK retried a claim whose first attempt did land but whose
    /// answer was lost (a timeout is ambiguous), so the claim stands.
    fn outcome_from_existing(
        &self,
        key: &str,
        owner: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<ClaimOutcome, StoreError> {
        let malformed = |reason: &str| StoreError::Malformed {
            table: self.table.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let status = item
            .get("status")
            .and_then(|v| v.as_s().ok())
            .map(|s| EventStatus::parse(s))
            .ok_or_else(|| malformed("no status"))?;
        if status != EventStatus::Received {
            return Ok(ClaimOutcome::Settled(status));
        }
        if item
            .get("lease_owner")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(owner)
        {
            return Ok(ClaimOutcome::Claimed { took_over: false });
        }
        let lease_until_ms = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| malformed("no lease_until"))?;
        Ok(ClaimOutcome::InFlight { lease_until_ms })
    }
}

impl EventLog for DynamoEventLog {
    #[instrument(skip_all, fields(table = %self.table, dedup_key = event.dedup_key))]
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let e = event.event;
        let mut set = String::from(
            "SET #status = :received, lease_owner = :owner, lease_until = :lease_until, \
             last_received_at = :now, first_received_at = if_not_exists(first_received_at, :now), \
             expires_at = if_not_exists(expires_at, :ttl), portal_id = :portal, object_id = :object, \
             subscription_type = :stype, occurred_at = :occurred, message = :message",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(event.dedup_key))
            .condition_expression(
                "attribute_not_exists(dedup_key) OR (#status = :received AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":owner", s(lease.owner.as_str()))
            .expression_attribute_values(":lease_until", n(lease.until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":ttl", n(expires_at_s))
            .expression_attribute_values(":portal", n(e.portal_id))
            .expression_attribute_values(":object", n(e.object_id))
            .expression_attribute_values(":stype", s(e.subscription_type.as_ref()))
            .expression_attribute_values(":occurred", n(e.occurred_at))
            .expression_attribute_values(":message", s(event.message))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(p) = e.property_name.as_deref() {
            set.push_str(", property_name = :prop");
            req = req.expression_attribute_values(":prop", s(p));
        }
        set.push_str(" ADD claims :one");
        match req.update_expression(set).send().await {
            Ok(out) => Ok(ClaimOutcome::Claimed {
                took_over: out.attributes.is_some_and(|a| !a.is_empty()),
            }),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(cf) => match cf.item() {
                    Some(item) => self.outcome_from_existing(event.dedup_key, &lease.owner, item),
                    // Older DynamoDB-compatible servers omit the item; read it.
                    None => {
                        let item = self.item(event.dedup_key).await?.unwrap_or_default();
                        self.outcome_from_existing(event.dedup_key, &lease.owner, &item)
                    }
                },
                other => Err(StoreError::aws("UpdateItem", &self.table, other)),
            },
            Err(other) => Err(StoreError::aws("UpdateItem", &self.table, other)),
        }
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn mark_queued(
        &self,
        dedup_key: &str,
        lease_owner: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression(
                "SET #status = :queued, queued_at = :now REMOVE lease_until, lease_owner",
            )
            .condition_expression("#status = :received AND lease_owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", s(EventStatus::Queued.as_str()))
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":owner", s(lease_owner))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        self.condition_held(res)
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn status(&self, dedup_key: &str) -> Result<Option<EventStatus>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .consistent_read(true)
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        Ok(out.item.and_then(|i| {
            i.get("status")
                .and_then(|v| v.as_s().ok())
                .map(|v| EventStatus::parse(v))
        }))
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn settle(
        &self,
        dedup_key: &str,
        status: &EventStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        // Only an existing record is settled: a message whose record expired
        // must not resurrect it without its TTL.
        //
        // An applied event's message is dead weight that carries a customer's
        // value: a redelivery or a replay of it changes nothing, so it is
        // kept no longer. A FAILED or UNMATCHED one keeps it for `hubwarp
        // replay`.
        let update = if *status == EventStatus::Applied {
            "SET #status = :status, settled_at = :now, settle_reason = :reason REMOVE lease_until, lease_owner, message"
        } else {
            "SET #status = :status, settled_at = :now, settle_reason = :reason REMOVE lease_until, lease_owner"
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression(update)
            .condition_expression("attribute_exists(dedup_key)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":now", n(crate::time::now_ms()))
            .expression_attribute_values(":reason", s(reason))
            .send()
            .await;
        self.condition_held(res).map(|_| ())
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key = event.dedup_key))]
    async fn record_unhandled(
        &self,
        event: &crate::hubspot::webhook::Unhandled,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<bool, StoreError> {
        let status: EventStatus = event.disposition.into();
        let summary = &event.summary;
        let mut item = HashMap::from([
            (KEY.to_string(), s(event.dedup_key.as_str())),
            ("status".to_string(), s(status.as_str())),
            ("reason".to_string(), s(event.reason.as_str())),
            ("first_received_at".to_string(), n(now_ms)),
            (TTL_ATTRIBUTE.to_string(), n(expires_at_s)),
        ]);
        for (name, value) in [
            ("portal_id", summary.portal_id),
            ("subscription_id", summary.subscription_id),
            ("event_id", summary.event_id),
            ("object_id", summary.object_id),
        ] {
            if let Some(v) = value {
                item.insert(name.to_string(), n(v));
            }
        }
        if let Some(at) = summary.occurred_at {
            item.insert("occurred_at".to_string(), n(at));
        }
        if let Some(t) = summary.subscription_type.as_deref() {
            item.insert("subscription_type".to_string(), s(t));
        }
        if let Some(raw) = event.raw.as_deref() {
            item.insert("raw_event".to_string(), s(raw));
        }
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(dedup_key)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // Recorded by an earlier delivery: HubSpot's retry, or the same
            // event twice in one body.
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::aws("PutItem", &self.table, e)),
        }
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn note_failure(
        &self,
        dedup_key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression("SET last_error = :error, last_error_at = :now ADD failures :one")
            .condition_expression("attribute_exists(dedup_key)")
            .expression_attribute_values(":error", s(error))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        self.condition_held(res).map(|_| ())
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn release(&self, dedup_key: &str, lease_owner: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression("SET lease_until = :zero")
            .condition_expression("#status = :received AND lease_owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":owner", s(lease_owner))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        self.condition_held(res).map(|_| ())
    }
}

impl super::StuckEvents for DynamoEventLog {
    /// A scan: the sweep runs once a night over a table whose records
    /// expire (TTL), and stuck records are rare, so a status index would
    /// cost every intake write for a nightly convenience.
    #[instrument(skip_all, fields(table = %self.table))]
    async fn stuck_page(
        &self,
        lapsed_before_ms: i64,
        start: Option<String>,
    ) -> Result<(Vec<super::StuckEvent>, Option<String>), StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#status = :received AND lease_until < :cutoff")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":cutoff", n(lapsed_before_ms))
            .limit(500)
            .set_exclusive_start_key(start.map(|k| HashMap::from([(KEY.to_string(), s(k))])))
            .send()
            .await
            .map_err(|e| StoreError::aws("Scan", &self.table, e))?;
        let stuck = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                Some(super::StuckEvent {
                    dedup_key: text(KEY)?,
                    message: text("message")?,
                    lease_until_ms: item
                        .get("lease_until")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default(),
                })
            })
            .collect();
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get(KEY).and_then(|v| v.as_s().ok()).cloned());
        Ok((stuck, next))
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn take_stuck(
        &self,
        dedup_key: &str,
        owner: &str,
        lapsed_before_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression("SET lease_owner = :owner, lease_until = :until ADD claims :one")
            .condition_expression("#status = :received AND lease_until < :cutoff")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(lease_until_ms))
            .expression_attribute_values(":cutoff", n(lapsed_before_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        self.condition_held(res)
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Option<crate::store::records::EventRecord> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Some(crate::store::records::EventRecord {
        dedup_key: text(KEY)?,
        status: text("status").unwrap_or_default(),
        received_at_ms: num("first_received_at"),
        queued_at_ms: num("queued_at"),
        settled_at_ms: num("settled_at"),
        subscription_type: text("subscription_type"),
        property: text("property_name"),
        company_id: item.get("object_id").and_then(|v| v.as_n().ok()).cloned(),
        occurred_at_ms: num("occurred_at"),
        reason: text("settle_reason").or_else(|| text("reason")),
        last_error: text("last_error"),
        last_error_at_ms: num("last_error_at"),
        failures: num("failures").unwrap_or_default().max(0) as u32,
        lease_until_ms: num("lease_until"),
        message: text("message"),
    })
}

impl crate::store::records::EventRecords for DynamoEventLog {
    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn record(
        &self,
        dedup_key: &str,
    ) -> Result<Option<crate::store::records::EventRecord>, StoreError> {
        Ok(self.item(dedup_key).await?.as_ref().and_then(record_of))
    }

    /// A scan with a filter: an operator's question, asked rarely, of a
    /// table whose records expire; an index per question would cost every
    /// intake write.
    #[instrument(skip_all, fields(table = %self.table))]
    async fn records(
        &self,
        query: &crate::store::records::EventQuery,
    ) -> Result<Vec<crate::store::records::EventRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = HashMap::new();
        let mut names = HashMap::new();
        if let Some(c) = &query.company_id {
            conditions.push("object_id = :company");
            values.insert(":company".to_string(), n(c));
        }
        if let Some(t) = query.since_ms {
            conditions.push("first_received_at >= :since");
            values.insert(":since".to_string(), n(t));
        }
        if let Some(t) = query.until_ms {
            conditions.push("first_received_at <= :until");
            values.insert(":until".to_string(), n(t));
        }
        if let Some(st) = &query.status {
            conditions.push("#status = :status");
            names.insert("#status".to_string(), "status".to_string());
            values.insert(":status".to_string(), s(st.to_ascii_uppercase()));
        }
        let filter = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .set_filter_expression(filter)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .set_expression_attribute_names((!names.is_empty()).then_some(names));
        let mut out: Vec<_> = scan_all(&self.table, scan)
            .await?
            .iter()
            .filter_map(record_of)
            .collect();
        out.sort_by(|a, b| (b.received_at_ms, &b.dedup_key).cmp(&(a.received_at_ms, &a.dedup_key)));
        Ok(out)
    }

    #[instrument(skip_all, fields(table = %self.table, dedup_key))]
    async fn reopen(&self, dedup_key: &str, from: &str, now_ms: i64) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(dedup_key))
            .update_expression(
                "SET #status = :queued, queued_at = :now, replayed_at = :now \
                 REMOVE lease_until, lease_owner ADD replays :one",
            )
            .condition_expression(
                "#status = :from AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", s(EventStatus::Queued.as_str()))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        self.condition_held(res)
    }
}
