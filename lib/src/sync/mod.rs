//! The sync consumer's domain: apply queued HubSpot changes to WARP through
//! the field mappings, keeping links, field state, the sync log and the
//! review queue of MANUAL conflicts.
//!
//! A batch is handled as: parse each message; drop those whose event is
//! already settled (a redelivery is a no-op); resolve each company to its
//! WARP customer; then per customer decide every change in `occurredAt`
//! order and write all that apply in one `PUT` with `If-Match` (a 412 reads
//! again and decides once more). Transient failures (WARP 429/5xx/timeouts,
//! AWS errors) send the message back to the queue; permanent ones are
//! recorded with their reason and acknowledged.
//!
//! Over 600 lines, on purpose for now: every stage above is a method of the
//! one `Consumer` and shares the batch's report and retry list, and the
//! If-Match write-back it shares with the reconciler, undo and conflict
//! resolution is to become one path first (issue 16, "A house to live
//! in"); splitting into batch/link/apply/settle/lifecycle files before that
//! would move the same code twice.

pub mod backoff;
pub mod breaker;
pub mod ports;

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::hubspot::webhook::WebhookEvent;
use crate::intake::error_chain;
use crate::mapping::MappingSet;
use crate::mapping::conflict::{self, Decision, FieldState, HubspotNow, Reason, WarpNow};
use crate::queue::SyncMessage;
use crate::store::sync::{
    ConflictQueue, ConflictRecord, DecisionDetail, FieldStateStore, Link, LinkState, LinkStore,
    SyncLog, SyncLogEntry,
};
use crate::store::{EventLog, EventStatus, StoreError};
use crate::time::now_ms;
use crate::warp::{Customer, WarpError};
use ports::{CompanyDirectory, WarpApi};

/// One SQS message of a batch.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
    /// SQS's `ApproximateReceiveCount` when known: the log of an unreadable
    /// message says how close it is to the DLQ.
    pub receive_count: Option<u32>,
}

/// What became of a batch: the messages to retry, and counts for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchReport {
    pub messages: usize,
    pub applied_fields: usize,
    pub warp_writes: usize,
    pub skipped: usize,
    pub conflicts: usize,
    pub unmatched: usize,
    pub failed: usize,
    pub duplicates: usize,
    /// Messages in no format this consumer reads, with the reason: handed
    /// back, so they end in the DLQ unless the other release's consumer
    /// reads them first.
    pub unreadable: Vec<UnreadableNote>,
    /// Message ids to hand back to SQS (`batchItemFailures`).
    pub retry: Vec<String>,
    /// HubSpot's daily cap is reached until then (epoch ms): the messages
    /// handed back should wait until it resets instead of coming back
    /// every visibility timeout and running out of receives.
    pub hold_until_ms: Option<i64>,
}

/// A message the consumer could not read, and why (never its body).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableNote {
    pub message_id: String,
    pub reason: String,
}

/// Customers of one batch applied at once.
const CUSTOMERS_IN_FLIGHT: usize = 4;

impl BatchReport {
    /// Notes HubSpot's daily cap when that is why a message goes back.
    fn hold(&mut self, e: &Transient) {
        if let Transient::Hubspot(crate::hubspot::crm::HubspotError::DailyLimit { retry_at_ms }) = e
        {
            self.hold_until_ms = Some(self.hold_until_ms.unwrap_or(0).max(*retry_at_ms));
        }
    }

    /// Adds another report's counts (not its retry list).
    fn add(&mut self, other: &BatchReport) {
        self.applied_fields += other.applied_fields;
        self.warp_writes += other.warp_writes;
        self.skipped += other.skipped;
        self.conflicts += other.conflicts;
        self.unmatched += other.unmatched;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
    }
}

/// Why a message could not be finished now; it goes back to the queue.
#[derive(Debug, thiserror::Error)]
enum Transient {
    #[error(transparent)]
    Warp(WarpError),
    #[error(transparent)]
    Hubspot(crate::hubspot::crm::HubspotError),
    #[error("{}", error_chain(.0))]
    Store(#[from] StoreError),
    #[error("WARP customer kept changing under the update (412 twice)")]
    Contended,
}

/// How a company resolved to a WARP customer.
enum Resolution {
    Linked(Link),
    /// The link exists but is deleted or merged away.
    Inactive(Link),
    Unmatched(String),
}

/// A parsed message of the batch.
struct Item {
    index: usize,
    message: SyncMessage<'static>,
}

pub struct Consumer<E, S, W, H> {
    pub events: E,
    pub store: S,
    pub warp: W,
    pub hubspot: H,
    pub mappings: MappingSet,
}

impl<E, S, W, H> Consumer<E, S, W, H>
where
    E: EventLog,
    S: LinkStore + FieldStateStore + SyncLog + ConflictQueue,
    W: WarpApi,
    H: CompanyDirectory,
{
    pub async fn handle_batch(&self, messages: &[QueuedMessage]) -> BatchReport {
        let mut report = BatchReport {
            messages: messages.len(),
            ..Default::default()
        };
        let mut retry = vec![false; messages.len()];
        let mut items = Vec::new();
        for (index, m) in messages.iter().enumerate() {
            match SyncMessage::read(&m.body) {
                Ok(msg) => items.push(Item {
                    index,
                    message: SyncMessage {
                        v: msg.v,
                        dedup_key: msg.dedup_key.into_owned().into(),
                        received_at: msg.received_at,
                        event: msg.event.into_owned(),
                    },
                }),
                Err(e) => {
                    // Never acknowledged: during a deploy or a rollback the
                    // other release's consumer may read it, and if none
                    // can, the redrive policy moves it to the DLQ (whose
                    // alarm fires) after its receives. Logged each time.
                    warn!(
                        message_id = %m.message_id,
                        receive_count = m.receive_count,
                        reason = %e,
                        "message not readable; handed back (DLQ after the redrive policy's receives)"
                    );
                    report.unreadable.push(UnreadableNote {
                        message_id: m.message_id.clone(),
                        reason: e.to_string(),
                    });
                    retry[index] = true;
                }
            }
        }

        // A redelivered message whose event is settled is a no-op.
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            match self.events.status(&item.message.dedup_key).await {
                Ok(Some(EventStatus::Received | EventStatus::Queued) | None) => fresh.push(item),
                Ok(Some(_)) => report.duplicates += 1,
                Err(e) => {
                    warn!(dedup_key = %item.message.dedup_key, error = %error_chain(&e), "event status unreadable; retry");
                    retry[item.index] = true;
                }
            }
        }
        fresh.sort_by_key(|i| i.message.event.occurred_at);

        // Lifecycle events first, in occurredAt order; then property changes
        // grouped per customer.
        let (changes, lifecycle): (Vec<Item>, Vec<Item>) = fresh
            .into_iter()
            .partition(|i| i.message.event.action() == "propertyChange");
        for item in &lifecycle {
            if let Err(e) = self.lifecycle(item, &mut report).await {
                warn!(dedup_key = %item.message.dedup_key, error = %e, "lifecycle event not applied; retry");
                self.note_failure(&[item], &e.to_string()).await;
                report.hold(&e);
                retry[item.index] = true;
            }
        }

        let mut by_company: BTreeMap<u64, Vec<&Item>> = BTreeMap::new();
        for item in &changes {
            by_company
                .entry(item.message.event.object_id)
                .or_default()
                .push(item);
        }
        let mut by_customer: BTreeMap<String, (String, Vec<&Item>)> = BTreeMap::new();
        for (company, items) in by_company {
            match self.resolve(&company.to_string()).await {
                Ok(Resolution::Linked(link)) => by_customer
                    .entry(link.customer_id.clone())
                    .or_insert_with(|| (link.ban.clone(), Vec::new()))
                    .1
                    .extend(items),
                Ok(Resolution::Inactive(link)) => {
                    let reason = format!("company link is {}", link.state.as_str().to_lowercase());
                    for item in items {
                        self.finish(
                            item,
                            &link.customer_id,
                            None,
                            "skipped-inactive-link",
                            &reason,
                            EventStatus::Applied,
                        )
                        .await
                        .unwrap_or_else(|e| {
                            warn!(dedup_key = %item.message.dedup_key, error = %e, "decision not recorded; retry");
                            retry[item.index] = true;
                        });
                        report.skipped += 1;
                    }
                }
                Ok(Resolution::Unmatched(reason)) => {
                    for item in items {
                        self.unmatched(item, &reason, &mut report)
                            .await
                            .unwrap_or_else(|e| {
                                warn!(dedup_key = %item.message.dedup_key, error = %e, "decision not recorded; retry");
                                retry[item.index] = true;
                            });
                    }
                }
                Err(e) => {
                    warn!(company_id = company, error = %e, "company not resolved; retry");
                    self.note_failure(&items, &format!("company not resolved: {e}"))
                        .await;
                    report.hold(&e);
                    for item in items {
                        retry[item.index] = true;
                    }
                }
            }
        }
        // Customers are independent: a few at a time, so one slow or
        // rate-limited customer does not hold the batch up, while WARP sees
        // a bounded number of writes in flight.
        let work: Vec<_> = by_customer
            .iter()
            .map(|(customer_id, (_ban, items))| self.apply_customer_alone(customer_id, items))
            .collect();
        let done: Vec<_> = futures::stream::iter(work)
            .buffer_unordered(CUSTOMERS_IN_FLIGHT)
            .collect()
            .await;
        for (customer_report, failed) in done {
            report.add(&customer_report);
            for index in failed {
                retry[index] = true;
            }
        }

        report.retry = messages
            .iter()
            .zip(retry)
            .filter(|(_, r)| *r)
            .map(|(m, _)| m.message_id.clone())
            .collect();
        report
    }

    /// Resolves a company to its WARP customer, linking on first sight:
    /// the company's `warp_ban`, the customer with that BAN, and the
    /// customer's `external_ids.hubspot_company_id` agreeing (or empty, then
    /// set).
    async fn resolve(&self, company_id: &str) -> Result<Resolution, Transient> {
        if let Some(link) = self.store.link(company_id).await? {
            return Ok(if link.state == LinkState::Active {
                Resolution::Linked(link)
            } else {
                Resolution::Inactive(link)
            });
        }
        let ban = match self.hubspot.warp_ban(company_id).await {
            Ok(ban) => ban,
            Err(e @ crate::hubspot::crm::HubspotError::Rejected { .. }) => {
                return Ok(Resolution::Unmatched(format!(
                    "HubSpot refused the company read: {e}"
                )));
            }
            // Transient, or a token problem: back to the queue (and the DLQ
            // if it lasts), never dropped.
            Err(e) => return Err(Transient::Hubspot(e)),
        };
        let Some(ban) = ban else {
            return Ok(Resolution::Unmatched(
                "company has no warp_ban (or does not exist)".into(),
            ));
        };
        let customer = match self.warp.by_ban(&ban).await {
            Ok(c) => c,
            Err(WarpError::NotFound) => {
                return Ok(Resolution::Unmatched(
                    "no WARP customer has the company's warp_ban".into(),
                ));
            }
            Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
            Err(e) => {
                return Ok(Resolution::Unmatched(format!(
                    "WARP lookup by BAN refused: {e}"
                )));
            }
        };
        match customer.hubspot_company_id.as_deref() {
            Some(id) if id != company_id => {
                return Ok(Resolution::Unmatched(format!(
                    "WARP customer is linked to company {id}, not this one"
                )));
            }
            Some(_) => {}
            None => match self.set_company_id(&customer.id, company_id).await {
                Ok(_) => {}
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => return Ok(Resolution::Unmatched(format!("WARP refused the link: {e}"))),
            },
        }
        let link = Link {
            company_id: company_id.to_string(),
            customer_id: customer.id.clone(),
            ban: customer.ban.clone(),
            state: LinkState::Active,
            merged_into: None,
            updated_at_ms: now_ms(),
        };
        self.store.put_link(&link).await?;
        info!(company_id, customer_id = %link.customer_id, "company linked to WARP customer");
        Ok(Resolution::Linked(link))
    }

    /// The WARP customer of merged companies none of which was linked yet
    /// (links are made by a company's first change or by the nightly run):
    /// the survivor's `warp_ban` (a merge keeps the merged company's when
    /// the survivor had none) names it, followed only when WARP names one
    /// of the merged companies, the survivor, or none. Err: why not.
    async fn merged_customer(
        &self,
        survivor: &str,
        merged: &[String],
    ) -> Result<Result<Customer, String>, Transient> {
        let ban = match self.hubspot.warp_ban(survivor).await {
            Ok(Some(ban)) => ban,
            Ok(None) => {
                return Ok(Err(
                    "no merged company was linked, and the survivor has no warp_ban".into(),
                ));
            }
            Err(e @ crate::hubspot::crm::HubspotError::Rejected { .. }) => {
                return Ok(Err(format!("HubSpot refused the survivor's read: {e}")));
            }
            Err(e) => return Err(Transient::Hubspot(e)),
        };
        let customer = match self.warp.by_ban(&ban).await {
            Ok(c) => c,
            Err(WarpError::NotFound) => {
                return Ok(Err(
                    "no merged company was linked, and no WARP customer has the survivor's warp_ban"
                        .into(),
                ));
            }
            Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
            Err(e) => return Ok(Err(format!("WARP lookup by BAN refused: {e}"))),
        };
        match customer.hubspot_company_id.as_deref() {
            Some(id) if id != survivor && !merged.iter().any(|m| m == id) => Ok(Err(format!(
                "WARP customer {} with the survivor's warp_ban is linked to company {id}, not one merged",
                customer.id
            ))),
            _ => Ok(Ok(customer)),
        }
    }

    /// Points WARP's `external_ids.hubspot_company_id` at `company_id`.
    async fn set_company_id(
        &self,
        customer_id: &str,
        company_id: &str,
    ) -> Result<Customer, WarpError> {
        let mut body = Map::new();
        body.insert(
            "external_ids".into(),
            serde_json::json!({ "hubspot_company_id": company_id }),
        );
        self.warp.update(customer_id, &body, None).await
    }

    /// One customer's changes with a report of their own; the indexes of
    /// the messages to retry when it failed transiently.
    async fn apply_customer_alone(
        &self,
        customer_id: &str,
        items: &[&Item],
    ) -> (BatchReport, Vec<usize>) {
        let mut report = BatchReport::default();
        match self.apply_customer(customer_id, items, &mut report).await {
            Ok(()) => (report, Vec::new()),
            Err(e) => {
                warn!(customer_id, error = %e, events = items.len(), "changes not applied; retry");
                self.note_failure(items, &e.to_string()).await;
                (report, items.iter().map(|i| i.index).collect())
            }
        }
    }

    /// Notes a transient failure on each message's event record, so the
    /// last error is at hand when the message ends in the DLQ. Best effort:
    /// the message goes back to the queue either way.
    async fn note_failure(&self, items: &[&Item], error: &str) {
        for item in items {
            if let Err(e) = self
                .events
                .note_failure(&item.message.dedup_key, error, now_ms())
                .await
            {
                warn!(dedup_key = %item.message.dedup_key, error = %error_chain(&e), "failure not noted on the event record");
            }
        }
    }

    /// Decides and writes every change of one customer in this batch.
    async fn apply_customer(
        &self,
        customer_id: &str,
        items: &[&Item],
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        for attempt in 0..2 {
            let customer = match self.warp.get(customer_id).await {
                Ok(c) => c,
                Err(WarpError::NotFound) => {
                    return self
                        .fail_all(items, customer_id, "WARP customer does not exist", report)
                        .await;
                }
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => {
                    let reason = format!("WARP refused the read: {e}");
                    return self.fail_all(items, customer_id, &reason, report).await;
                }
            };
            let mut states = self.store.field_states(customer_id).await?;
            let plan = self.plan(&customer, &mut states, items);
            if plan.body.is_empty() {
                return self.record(&customer, None, &states, plan, report).await;
            }
            match self
                .warp
                .update(customer_id, &plan.body, Some(&customer.etag))
                .await
            {
                Ok(updated) => {
                    report.warp_writes += 1;
                    return self
                        .record(&customer, Some(&updated), &states, plan, report)
                        .await;
                }
                Err(WarpError::PreconditionFailed) if attempt == 0 => {
                    info!(
                        customer_id,
                        "WARP customer changed under the update (412); reading again"
                    );
                }
                Err(WarpError::PreconditionFailed) => return Err(Transient::Contended),
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => {
                    // A 4xx on the write: the values are refused for good.
                    let reason = format!("WARP refused the update: {e}");
                    return self.fail_all(items, customer_id, &reason, report).await;
                }
            }
        }
        Err(Transient::Contended)
    }

    /// Decides each change against WARP's current customer, oldest first,
    /// so a newer change in the same batch supersedes an older one.
    fn plan<'a>(
        &self,
        customer: &Customer,
        states: &mut HashMap<String, FieldState>,
        items: &[&'a Item],
    ) -> Plan<'a> {
        let mut plan = Plan::default();
        let mut pending: HashMap<String, Value> = HashMap::new();
        let mut sorted: Vec<&Item> = items.to_vec();
        sorted.sort_by_key(|i| i.message.event.occurred_at);
        for item in sorted {
            let e = &item.message.event;
            let property = e.property_name.as_deref().unwrap_or_default();
            let Some(mapping) = self.mappings.lookup(property, &customer.id, &customer.ban) else {
                plan.decisions.push((
                    item,
                    None,
                    Decision::Keep {
                        reason: Reason::Direction(crate::mapping::Direction::None),
                    },
                    DecisionDetail {
                        hubspot_value: e.property_value.as_deref().map(str::to_string),
                        rule: Some("unmapped".into()),
                        ..Default::default()
                    },
                ));
                continue;
            };
            let field = mapping.warp.as_str().to_string();
            let current = pending
                .get(&field)
                .cloned()
                .or_else(|| mapping.warp.get(&customer.raw).cloned());
            let decision = conflict::decide(
                mapping,
                states.get(&field),
                WarpNow {
                    value: current.as_ref(),
                    updated_at: customer.updated_at_ms,
                },
                HubspotNow::Event {
                    value: e.property_value.as_deref().unwrap_or_default(),
                    occurred_at: e.occurred_at,
                },
            );
            let detail = DecisionDetail {
                warp_value: Some(current.clone().unwrap_or(Value::Null)),
                hubspot_value: e.property_value.as_deref().map(str::to_string),
                baseline: states.get(&field).and_then(|s| s.synced_value.clone()),
                rule: Some(decision.rule()),
            };
            if let Decision::WriteWarp { value, .. } | Decision::InSync { value } = &decision {
                if matches!(decision, Decision::WriteWarp { .. }) {
                    mapping.warp.set_in(&mut plan.body, value.clone());
                }
                pending.insert(field.clone(), value.clone());
                states.insert(
                    field.clone(),
                    FieldState {
                        synced_value: Some(value.clone()),
                        hubspot_occurred_at: Some(e.occurred_at),
                        warp_updated_at: customer.updated_at_ms,
                    },
                );
                plan.touched.push(field.clone());
            }
            plan.decisions
                .push((item, Some(mapping.clone()), decision, detail));
        }
        plan
    }

    /// After the write (or when there was nothing to write): field state,
    /// conflicts, sync log and event records.
    async fn record(
        &self,
        before: &Customer,
        after: Option<&Customer>,
        states: &HashMap<String, FieldState>,
        plan: Plan<'_>,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        let warp_updated_at = after.and_then(|c| c.updated_at_ms).or(before.updated_at_ms);
        let mut touched = plan.touched.clone();
        touched.sort();
        touched.dedup();
        for field in &touched {
            if let Some(state) = states.get(field) {
                let state = FieldState {
                    warp_updated_at,
                    ..state.clone()
                };
                self.store
                    .put_field_state(&before.id, field, &state)
                    .await?;
            }
        }
        let mut log = Vec::with_capacity(plan.decisions.len());
        for (item, mapping, decision, detail) in &plan.decisions {
            let e = &item.message.event;
            let property = e.property_name.as_deref().unwrap_or_default().to_string();
            let field = mapping.as_ref().map(|m| m.warp.as_str().to_string());
            let (outcome, reason, status) = match (mapping, decision) {
                (None, _) => (
                    "skipped-unmapped",
                    "no mapping for this property".to_string(),
                    EventStatus::Applied,
                ),
                (Some(_), Decision::WriteWarp { reason, .. }) => {
                    report.applied_fields += 1;
                    let why = if reason.is_conflict() {
                        "conflict settled for HubSpot by the field's strategy"
                    } else {
                        "HubSpot change applied"
                    };
                    ("applied", why.to_string(), EventStatus::Applied)
                }
                (Some(_), Decision::InSync { .. }) => (
                    "in-sync",
                    "WARP already holds this value".into(),
                    EventStatus::Applied,
                ),
                (
                    Some(_),
                    Decision::Keep {
                        reason: reason @ Reason::Stale { .. },
                    },
                ) => {
                    report.skipped += 1;
                    ("skipped-stale", reason.describe(), EventStatus::Applied)
                }
                // The consumer writes WARP only: when the decision is that
                // HubSpot should take WARP's value, WARP keeps it and the
                // nightly run repairs HubSpot.
                (
                    Some(m),
                    Decision::WriteHubspot {
                        reason: Reason::Strategy(strategy),
                        ..
                    }
                    | Decision::Keep {
                        reason: Reason::Strategy(strategy),
                    },
                ) => {
                    report.conflicts += 1;
                    (
                        "conflict",
                        format!(
                            "both sides changed {}; {} keeps WARP's value",
                            m.warp,
                            conflict::strategy_name(*strategy)
                        ),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::Keep { .. }) => {
                    report.skipped += 1;
                    (
                        "skipped-direction",
                        format!("{} is not synced (direction NONE)", m.warp),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::WriteHubspot { .. }) => {
                    report.skipped += 1;
                    (
                        "skipped-direction",
                        format!(
                            "{} is WARP-owned; HubSpot's edit is drift for the nightly run",
                            m.warp
                        ),
                        EventStatus::Applied,
                    )
                }
                (Some(m), Decision::Manual { .. }) => {
                    report.conflicts += 1;
                    self.store
                        .put_conflict(&ConflictRecord {
                            customer_id: before.id.clone(),
                            field: m.warp.as_str().to_string(),
                            property: property.clone(),
                            hubspot_value: e
                                .property_value
                                .as_deref()
                                .unwrap_or_default()
                                .to_string(),
                            hubspot_occurred_at: e.occurred_at,
                            warp_value: m
                                .warp
                                .get(&before.raw)
                                .cloned()
                                .unwrap_or(Value::Null)
                                .to_string(),
                            warp_updated_at: before.updated_at_ms,
                            dedup_key: item.message.dedup_key.to_string(),
                        })
                        .await?;
                    (
                        "conflict",
                        format!("both sides changed {}; MANUAL: queued for review", m.warp),
                        EventStatus::Applied,
                    )
                }
                (Some(_), Decision::Invalid(err)) => {
                    report.failed += 1;
                    (
                        "failed",
                        err.to_string(),
                        EventStatus::Other("FAILED".into()),
                    )
                }
            };
            crate::metrics::change(outcome);
            info!(
                dedup_key = %item.message.dedup_key,
                customer_id = %before.id,
                property,
                outcome,
                reason,
                "field decision"
            );
            log.push(SyncLogEntry {
                customer_id: before.id.clone(),
                at_ms: now_ms(),
                dedup_key: item.message.dedup_key.to_string(),
                property,
                field,
                outcome: outcome.to_string(),
                reason: reason.clone(),
                detail: detail.clone(),
            });
            self.events
                .settle(&item.message.dedup_key, &status, &reason)
                .await?;
        }
        self.store.append(&log).await?;
        Ok(())
    }

    /// Records a permanent failure for every message of a customer.
    async fn fail_all(
        &self,
        items: &[&Item],
        customer_id: &str,
        reason: &str,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        for item in items {
            self.finish(
                item,
                customer_id,
                None,
                "failed",
                reason,
                EventStatus::Other("FAILED".into()),
            )
            .await?;
            report.failed += 1;
        }
        Ok(())
    }

    /// Writes the log line and settles the event of one message handled
    /// without a field decision.
    async fn finish(
        &self,
        item: &Item,
        customer_id: &str,
        field: Option<String>,
        outcome: &str,
        reason: &str,
        status: EventStatus,
    ) -> Result<(), Transient> {
        let e = &item.message.event;
        crate::metrics::change(outcome);
        info!(dedup_key = %item.message.dedup_key, customer_id, outcome, reason, "event decision");
        self.store
            .append(&[SyncLogEntry {
                customer_id: customer_id.to_string(),
                at_ms: now_ms(),
                dedup_key: item.message.dedup_key.to_string(),
                property: e.property_name.as_deref().unwrap_or(e.action()).to_string(),
                field,
                outcome: outcome.to_string(),
                reason: reason.to_string(),
                detail: DecisionDetail::default(),
            }])
            .await?;
        self.events
            .settle(&item.message.dedup_key, &status, reason)
            .await?;
        Ok(())
    }

    async fn unmatched(
        &self,
        item: &Item,
        reason: &str,
        report: &mut BatchReport,
    ) -> Result<(), Transient> {
        report.unmatched += 1;
        let company = format!("unmatched#{}", item.message.event.object_id);
        self.finish(
            item,
            &company,
            None,
            "unmatched",
            reason,
            EventStatus::Other("UNMATCHED".into()),
        )
        .await
    }

    /// creation, deletion, restore and merge.
    async fn lifecycle(&self, item: &Item, report: &mut BatchReport) -> Result<(), Transient> {
        let e: &WebhookEvent<'_> = &item.message.event;
        let company_id = e.object_id.to_string();
        match e.action() {
            "creation" => match self.resolve(&company_id).await? {
                Resolution::Linked(link) | Resolution::Inactive(link) => {
                    self.finish(
                        item,
                        &link.customer_id,
                        None,
                        "linked",
                        "company linked by its warp_ban",
                        EventStatus::Applied,
                    )
                    .await
                }
                Resolution::Unmatched(reason) => self.unmatched(item, &reason, report).await,
            },
            "deletion" | "restore" => {
                let Some(mut link) = self.store.link(&company_id).await? else {
                    return self
                        .unmatched(item, "no link for this company", report)
                        .await;
                };
                let (state, outcome, reason) = if e.action() == "deletion" {
                    (
                        LinkState::Deleted,
                        "link-deleted",
                        "company deleted in HubSpot; WARP customer left untouched",
                    )
                } else {
                    (
                        LinkState::Active,
                        "link-restored",
                        "company restored in HubSpot",
                    )
                };
                // A deletion of a merged-away company keeps the merge.
                if !(state == LinkState::Deleted && link.state == LinkState::Merged) {
                    link.state = state;
                    link.updated_at_ms = now_ms();
                    self.store.put_link(&link).await?;
                }
                self.finish(
                    item,
                    &link.customer_id,
                    None,
                    outcome,
                    reason,
                    EventStatus::Applied,
                )
                .await
            }
            "merge" => self.merge(item, report).await,
            other => {
                let reason = format!("{} events are not synced", other);
                self.finish(
                    item,
                    &format!("company#{company_id}"),
                    None,
                    "skipped-type",
                    &reason,
                    EventStatus::Applied,
                )
                .await
            }
        }
    }

    /// Re-points the links of the merged-away companies to the survivor and
    /// updates WARP's `external_ids`.
    async fn merge(&self, item: &Item, report: &mut BatchReport) -> Result<(), Transient> {
        let e = &item.message.event;
        let survivor = e
            .new_object_id
            .or(e.primary_object_id)
            .unwrap_or(e.object_id)
            .to_string();
        let mut customer_ids = Vec::new();
        let mut merged: Vec<String> = e
            .merged_object_ids
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(u64::to_string)
            .collect();
        if let Some(primary) = e.primary_object_id.map(|p| p.to_string())
            && primary != survivor
        {
            merged.push(primary);
        }
        for id in merged.iter().filter(|id| **id != survivor) {
            if let Some(mut link) = self.store.link(id).await? {
                link.state = LinkState::Merged;
                link.merged_into = Some(survivor.clone());
                link.updated_at_ms = now_ms();
                self.store.put_link(&link).await?;
                customer_ids.push((link.customer_id.clone(), link.ban.clone()));
            }
        }
        let existing = self.store.link(&survivor).await?;
        let linked = match (&existing, customer_ids.first()) {
            (Some(l), _) if l.state == LinkState::Active => {
                Some((l.customer_id.clone(), l.ban.clone()))
            }
            (_, Some(c)) => Some(c.clone()),
            _ => None,
        };
        // WARP's company id, when the customer was read to find it.
        let (customer_id, ban, read) = match linked {
            Some((customer_id, ban)) => (customer_id, ban, None),
            None => match self.merged_customer(&survivor, &merged).await? {
                Ok(c) => (c.id, c.ban, Some(c.hubspot_company_id)),
                Err(reason) => return self.unmatched(item, &reason, report).await,
            },
        };
        let link = Link {
            company_id: survivor.clone(),
            customer_id: customer_id.clone(),
            ban,
            state: LinkState::Active,
            merged_into: None,
            updated_at_ms: now_ms(),
        };
        self.store.put_link(&link).await?;
        let names = match read {
            Some(names) => names,
            None => match self.warp.get(&customer_id).await {
                Ok(c) => c.hubspot_company_id,
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                // Not readable for good: the write below says why.
                Err(_) => None,
            },
        };
        // A write bumps WARP's `updated_at`, which LATEST_WINS reads as an
        // edit: none when WARP already names the survivor (the linked
        // company absorbed another). A refusal is permanent, and the links
        // are already re-pointed: the event is settled, with the refusal in
        // its reason and the sync log (not only a log line) so the review
        // finds WARP's stale id.
        let refused = if names.as_deref() == Some(survivor.as_str()) {
            None
        } else {
            match self.set_company_id(&customer_id, &survivor).await {
                Ok(_) => {
                    report.warp_writes += 1;
                    None
                }
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => {
                    warn!(customer_id, error = %e, "WARP refused the re-link after a merge");
                    Some(e)
                }
            }
        };
        let reason = match refused {
            None => format!("merged into company {survivor}"),
            Some(e) => format!(
                "merged into company {survivor}; WARP refused to re-link external_ids.hubspot_company_id: {e}"
            ),
        };
        self.finish(
            item,
            &customer_id,
            None,
            "merged",
            &reason,
            EventStatus::Applied,
        )
        .await
    }
}

#[derive(Default)]
struct Plan<'a> {
    body: Map<String, Value>,
    /// Each change's decision, with what it was decided on (the baseline
    /// as it was before this batch moved it).
    decisions: Vec<(
        &'a Item,
        Option<crate::mapping::FieldMapping>,
        Decision,
        DecisionDetail,
    )>,
    /// Fields whose state changes (applied or found in sync).
    touched: Vec<String>,
}

#[cfg(test)]
mod tests;
