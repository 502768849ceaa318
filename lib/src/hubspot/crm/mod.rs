//! HubSpot's CRM v3 companies API: the single read the consumer needs to
//! link a company to its WARP customer, and the list, batch and search calls
//! the reconciler walks the CRM with, all under one shared rate limiter.

mod batch;
mod counts;
mod list;
mod properties;
mod search;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::http::{self, RetryPolicy, Token};
use crate::hubspot::rate::RateLimiter;

pub use batch::{BatchFailure, BatchRead, BatchUpdate, CompanyUpdate, MAX_BATCH_INPUTS};
pub use counts::CallCounts;
pub use list::{CompanyPage, MAX_LIST_LIMIT};
pub use properties::{PropertyDef, PropertyGroup, PropertyOption, TokenInfo};
pub use search::{
    Direction, Filter, FilterGroup, MAX_SEARCH_LIMIT, MAX_SEARCH_RESULTS, Operator, SearchCursor,
    SearchPage, SearchRequest, Sort,
};

use counts::Shared;
use transport::Kind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubspotError {
    /// 429 (`TEN_SECONDLY_ROLLING`, secondly) beyond what the call waits
    /// out, 5xx, timeouts.
    #[error("HubSpot unavailable: {0}")]
    Transient(String),
    /// 401/403: the token is wrong or lacks scopes; retrying cannot help.
    #[error("HubSpot refused the token ({0}); check HUBSPOT_ACCESS_TOKEN and its scopes")]
    Unauthorized(u16),
    /// 403 `MISSING_SCOPES`: the token works but its app lacks a scope
    /// this call needs (HubSpot names it).
    #[error("HubSpot's token lacks the scope {0}; add it to the app and reinstall")]
    MissingScopes(String),
    #[error("HubSpot refused the request: {status} {category}")]
    Rejected { status: u16, category: String },
    #[error("HubSpot answered something unreadable: {0}")]
    Malformed(String),
    /// The token's daily cap is used up. Nothing is sent before
    /// `retry_at_ms` (epoch ms): HubSpot's `Retry-After` when it gave one,
    /// else the next midnight UTC. HubSpot resets the cap at midnight in the
    /// account's time zone, which the API does not tell, so a run may still
    /// meet the cap again right after and wait another round.
    #[error("HubSpot's daily request limit is reached; retry after epoch ms {retry_at_ms}")]
    DailyLimit { retry_at_ms: i64 },
}

impl HubspotError {
    /// Worth trying again soon: rate limits of seconds, 5xx, timeouts. The
    /// daily cap is not (see [`HubspotError::is_daily_limit`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    pub fn is_daily_limit(&self) -> bool {
        matches!(self, Self::DailyLimit { .. })
    }

    fn rejected(category: impl Into<String>) -> Self {
        Self::Rejected {
            status: 400,
            category: category.into(),
        }
    }
}

/// A company and the properties asked for (values are strings; a property
/// without a value is absent or null).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Company {
    pub id: String,
    #[serde(default)]
    pub properties: HashMap<String, Option<String>>,
    #[serde(default)]
    pub archived: bool,
    /// `updatedAt`: when anything on the company last changed (ISO 8601).
    #[serde(default, rename = "updatedAt")]
    pub updated_at: Option<String>,
}

impl Company {
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .and_then(Option::as_deref)
            .filter(|v| !v.is_empty())
    }
}

/// A HubSpot client. Clones share their counters, their memory of the
/// daily cap and (with [`HubspotClient::with_limiter`]) one rate limiter.
#[derive(Debug, Clone)]
pub struct HubspotClient {
    http: reqwest::Client,
    base_url: String,
    token: Token,
    retry: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    shared: Arc<Shared>,
}

impl HubspotClient {
    /// Without a limiter (the consumer), a 429 is one more transient
    /// failure under `retry`, and the queue's redelivery does the waiting.
    pub fn new(
        base_url: &str,
        token: Token,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, HubspotError> {
        Ok(Self {
            http: http::client(timeout).map_err(|e| HubspotError::Malformed(e.to_string()))?,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            retry,
            limiter: None,
            shared: Arc::default(),
        })
    }

    /// Every call waits for `limiter`'s budget, and waits out
    /// `TEN_SECONDLY_ROLLING` and secondly 429s in-process (up to the
    /// limiter's `max_throttled_retries` per call) instead of failing: one
    /// limiter per run, shared by all its clients.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// What this client and its clones have sent and waited so far.
    pub fn calls(&self) -> CallCounts {
        self.shared.counts()
    }

    /// `GET /crm/v3/objects/companies/{id}?properties=...`; `None` when the
    /// company does not exist.
    pub async fn company(
        &self,
        id: &str,
        properties: &[&str],
    ) -> Result<Option<Company>, HubspotError> {
        check_id(id)?;
        let mut url = self.url(&format!("/crm/v3/objects/companies/{id}"))?;
        if !properties.is_empty() {
            url.query_pairs_mut()
                .append_pair("properties", &properties.join(","));
        }
        let answer = self.send(Kind::Get, || self.http.get(url.clone())).await?;
        match answer.status.as_u16() {
            200 => answer.json().map(Some),
            404 => Ok(None),
            _ => Err(answer.rejected()),
        }
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, HubspotError> {
        reqwest::Url::parse(&format!("{}{path}", self.base_url))
            .map_err(|e| HubspotError::Malformed(format!("base URL: {e}")))
    }
}

/// Object ids are numeric; anything else would address another route.
fn check_id(id: &str) -> Result<(), HubspotError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HubspotError::rejected("company ids are numeric"));
    }
    Ok(())
}
