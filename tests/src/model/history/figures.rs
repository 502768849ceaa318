//! A history's figures: what it sent, delivered, applied and met, summed
//! over many for the reports.

use std::collections::BTreeMap;

use serde_json::Value;

use super::checks::names_company;
use super::{World, company_id};
use crate::model::backend::Backend;

/// Counts of one history (summed over many for the soak's figures).
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub histories: u64,
    /// HubSpot edits and deletions, each one webhook event.
    pub events_sent: u64,
    /// Deliveries posted (first attempts, HubSpot's retries, duplicates).
    pub deliveries: u64,
    /// Distinct events with a record in the event log.
    pub recorded: u64,
    /// Distinct events that reached the queue.
    pub queued: u64,
    /// Events settled by the consumer.
    pub applied: u64,
    pub lost: u64,
    pub doubled: u64,
    pub stale: u64,
    pub dlq: u64,
    pub dlq_reasons: BTreeMap<String, u64>,
    pub faults: u64,
    pub warp_edits: u64,
    /// Company merges (a duplicate absorbing the company, or absorbed).
    pub merges: u64,
    /// HubSpot 429 storms (5-40 calls in a row refused).
    pub storms: u64,
    /// Customers WARP names a merge's survivor for at the end.
    pub relinked: u64,
    pub nightly_invocations: u64,
    /// Timed outages met, by kind (`WARP down 6 h`, ...).
    pub outages: BTreeMap<String, u64>,
}

impl Figures {
    /// The timed outages met, as the reports print them.
    pub fn outages_line(&self) -> String {
        if self.outages.is_empty() {
            return "none".into();
        }
        let kinds: Vec<String> = self
            .outages
            .iter()
            .map(|(what, n)| format!("{what} x{n}"))
            .collect();
        kinds.join(", ")
    }

    pub fn add(&mut self, o: &Figures) {
        self.histories += o.histories;
        self.events_sent += o.events_sent;
        self.deliveries += o.deliveries;
        self.recorded += o.recorded;
        self.queued += o.queued;
        self.applied += o.applied;
        self.lost += o.lost;
        self.doubled += o.doubled;
        self.stale += o.stale;
        self.dlq += o.dlq;
        for (k, v) in &o.dlq_reasons {
            *self.dlq_reasons.entry(k.clone()).or_default() += v;
        }
        self.faults += o.faults;
        self.warp_edits += o.warp_edits;
        self.merges += o.merges;
        self.storms += o.storms;
        self.relinked += o.relinked;
        self.nightly_invocations += o.nightly_invocations;
        for (k, v) in &o.outages {
            *self.outages.entry(k.clone()).or_default() += v;
        }
    }
}

impl<B: Backend> World<B> {
    /// Customers whose WARP record names a company made by a merge: the
    /// consumer followed the merge.
    pub(super) async fn relinked(&mut self) -> u64 {
        let mut n = 0;
        for (i, cust) in self.model.custs.iter().enumerate() {
            let warp = self.warp.customer(&cust.id).unwrap_or(Value::Null);
            if names_company(&warp) != company_id(i) {
                n += 1;
            }
        }
        n
    }
}
