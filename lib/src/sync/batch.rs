//! One SQS batch: read each message, drop redeliveries, lifecycle events
//! first, then property changes grouped by company and applied per
//! customer, a few customers at a time.

use std::collections::BTreeMap;

use futures::StreamExt;
use tracing::warn;

use super::ports::CompanyDirectory;
use super::{
    BatchReport, CUSTOMERS_IN_FLIGHT, ChangeOutcome, CompanyMatch, Consumer, Item, QueuedMessage,
    UnreadableNote,
};
use crate::error::error_chain;
use crate::queue::SyncMessage;
use crate::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog};
use crate::store::{EventLog, EventStatus};
use crate::warp::WarpApi;

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
                Ok(CompanyMatch::Linked(link)) => by_customer
                    .entry(link.customer_id.clone())
                    .or_insert_with(|| (link.ban.clone(), Vec::new()))
                    .1
                    .extend(items),
                Ok(CompanyMatch::Inactive(link)) => {
                    let reason = format!("company link is {}", link.state.as_str().to_lowercase());
                    for item in items {
                        self.finish(
                            item,
                            &link.customer_id,
                            None,
                            ChangeOutcome::SkippedInactiveLink,
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
                Ok(CompanyMatch::Unmatched(reason)) => {
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
}
