//! What a run talks to, as ports: the real clients and AWS adapters
//! implement them, unit tests use in-memory doubles.

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::checkpoint::{Claim, RunRecord};
use super::mail::{Delivery, Night};
use crate::hubspot::crm::{
    BatchRead, BatchUpdate, Company, CompanyPage, CompanyUpdate, HubspotClient, HubspotError,
};
use crate::store::StoreError;
/// Where reports and their pieces are kept: a store of bytes by key, so it
/// lives with the stores (`store::reports`).
pub use crate::store::reports::ReportStore;
use crate::warp::WarpApi;
use crate::warp::{Page, WarpClient, WarpError};

/// WARP's customers: the consumer's calls plus the list a run pages through.
pub trait WarpCustomers: WarpApi {
    fn list_page(
        &self,
        page: u32,
        per_page: u32,
    ) -> impl Future<Output = Result<Page, WarpError>> + Send;
}

impl WarpCustomers for WarpClient {
    fn list_page(
        &self,
        page: u32,
        per_page: u32,
    ) -> impl Future<Output = Result<Page, WarpError>> + Send {
        WarpClient::list_page(self, page, per_page)
    }
}

/// Rate-limit figures of the HubSpot client, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStats {
    /// Calls the limiter held back, and for how long in all.
    pub waits: u64,
    pub waited_ms: u64,
    /// 429 answers received (each waited out and retried).
    pub throttled: u64,
}

/// One page of the companies that carry `warp_ban`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarkedPage {
    pub companies: Vec<Company>,
    /// Where the next page starts (the last id here), when there is one.
    pub next: Option<String>,
    /// How many marked companies lie past this page (search's `total`
    /// counts the query's matches, this page's included): how far the
    /// index has come, so phase 1 knows when to start.
    pub left: u64,
}

impl MarkedPage {
    /// A page of `companies` out of the `total` its query matched.
    pub fn new(companies: Vec<Company>, next: Option<String>, total: u64) -> Self {
        let left = total.saturating_sub(companies.len() as u64);
        Self {
            companies,
            next,
            left,
        }
    }
}

/// HubSpot's companies, as a run reads and repairs them.
pub trait HubspotCompanies: Send + Sync {
    fn list_page(
        &self,
        properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<CompanyPage, HubspotError>> + Send;
    fn batch_read(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> impl Future<Output = Result<BatchRead, HubspotError>> + Send;
    fn batch_update(
        &self,
        inputs: &[CompanyUpdate],
    ) -> impl Future<Output = Result<BatchUpdate, HubspotError>> + Send;
    /// The companies that carry `warp_ban` (a WARP customer's, or one that
    /// was), up to 200 by ascending id after `after_id`, and where the next
    /// page starts (HubSpot's search: [`HubspotClient::marked_page`]).
    /// Companies without it (prospects, partners) are never read.
    fn bridge_page(
        &self,
        properties: &[&str],
        after_id: Option<&str>,
    ) -> impl Future<Output = Result<MarkedPage, HubspotError>> + Send;
    /// Totals since the client was built.
    fn rate_stats(&self) -> RateStats;
}

impl HubspotCompanies for HubspotClient {
    fn list_page(
        &self,
        properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<CompanyPage, HubspotError>> + Send {
        HubspotClient::list_page(self, properties, after, limit)
    }

    fn batch_read(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> impl Future<Output = Result<BatchRead, HubspotError>> + Send {
        HubspotClient::batch_read(self, ids, properties)
    }

    fn batch_update(
        &self,
        inputs: &[CompanyUpdate],
    ) -> impl Future<Output = Result<BatchUpdate, HubspotError>> + Send {
        HubspotClient::batch_update(self, inputs)
    }

    async fn bridge_page(
        &self,
        properties: &[&str],
        after_id: Option<&str>,
    ) -> Result<MarkedPage, HubspotError> {
        let (companies, next, total) = self
            .marked_page(crate::sync::ports::WARP_BAN_PROPERTY, properties, after_id)
            .await?;
        Ok(MarkedPage::new(companies, next, total))
    }

    fn rate_stats(&self) -> RateStats {
        let c = self.calls();
        RateStats {
            waits: c.rate_limit_waits,
            waited_ms: c.waited_ms,
            throttled: c.rate_limited_429s,
        }
    }
}

pub trait RunStore: Send + Sync {
    /// Creates the run from `fresh` (a continuation has none: the run must
    /// exist), or takes it over when its lease lapsed or was released, in
    /// one conditional write.
    fn claim(
        &self,
        run_id: &str,
        fresh: Option<&RunRecord>,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Saves progress; fails when `owner` no longer holds the lease.
    fn checkpoint(
        &self,
        record: &RunRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;
}

/// Starts the next invocation of a run that ran short of time.
pub trait Continuation: Send + Sync {
    fn continue_run(&self, run_id: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// Tells people about a finished run: an alert (SNS) when it needs a
/// person, and the report e-mail (SES) when one is configured.
pub trait Alerts: Send + Sync {
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// The night's e-mail to each recipient ([`super::mail::deliver`]);
    /// `None` when no e-mail is configured. Never fails the run: refusals
    /// are counted in the [`Delivery`].
    fn mail_report(&self, night: &Night<'_>) -> impl Future<Output = Option<Delivery>> + Send {
        let _ = night;
        async { None }
    }
}

/// Records handovers instead of invoking a function, for whoever plays the
/// platform (tests, the model test) and invokes again with the run id.
#[derive(Debug, Default)]
pub struct RecordedHandovers(std::sync::Mutex<Vec<String>>);

impl RecordedHandovers {
    /// The newest handover not yet taken.
    pub fn take_last(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }
}

impl Continuation for RecordedHandovers {
    async fn continue_run(&self, run_id: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(run_id.to_string());
        Ok(())
    }
}

/// No alert topic configured.
pub struct NoAlerts;

impl Alerts for NoAlerts {
    async fn publish(&self, _subject: &str, _message: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Every run, for `hubwarp runs` (the run store lists what it keeps).
pub trait RunHistory: Send + Sync {
    /// Every run record, newest first.
    fn runs(&self) -> impl Future<Output = Result<Vec<RunRecord>, StoreError>> + Send;
}
