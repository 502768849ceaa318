//! HubSpot's CRM v3 companies API. For now the single-company read the
//! consumer needs to link a company to its WARP customer; the reconciler
//! grows it (list, batch read, batch update, rate limiting).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::http::{self, Attempt, RetryPolicy, Token, with_retries};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubspotError {
    /// 429 (`TEN_SECONDLY_ROLLING`, `DAILY`), 5xx, timeouts.
    #[error("HubSpot unavailable: {0}")]
    Transient(String),
    /// 401/403: the token is wrong or lacks scopes; retrying cannot help.
    #[error("HubSpot refused the token ({0}); check HUBSPOT_ACCESS_TOKEN and its scopes")]
    Unauthorized(u16),
    #[error("HubSpot refused the request: {status} {category}")]
    Rejected { status: u16, category: String },
    #[error("HubSpot answered something unreadable: {0}")]
    Malformed(String),
}

impl HubspotError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// A company and the properties asked for (values are strings; a property
/// without a value is absent or null).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Company {
    pub id: String,
    #[serde(default)]
    pub properties: HashMap<String, Option<String>>,
    #[serde(default)]
    pub archived: bool,
}

impl Company {
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .and_then(Option::as_deref)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    category: String,
}

#[derive(Debug, Clone)]
pub struct HubspotClient {
    http: reqwest::Client,
    base_url: String,
    token: Token,
    retry: RetryPolicy,
}

impl HubspotClient {
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
        })
    }

    /// `GET /crm/v3/objects/companies/{id}?properties=...`; `None` when the
    /// company does not exist.
    pub async fn company(
        &self,
        id: &str,
        properties: &[&str],
    ) -> Result<Option<Company>, HubspotError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HubspotError::Rejected {
                status: 400,
                category: "company ids are numeric".into(),
            });
        }
        let url = format!(
            "{}/crm/v3/objects/companies/{id}?properties={}",
            self.base_url,
            properties.join(",")
        );
        with_retries(&self.retry, "GET company", || {
            let req = self
                .http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, self.token.bearer());
            async move {
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        return Attempt::Retry {
                            error: HubspotError::Transient(
                                if e.is_timeout() {
                                    "timed out"
                                } else {
                                    "request failed"
                                }
                                .into(),
                            ),
                            retry_after: None,
                        };
                    }
                };
                let status = resp.status();
                if status.is_success() {
                    return Attempt::Done(
                        resp.json::<Company>()
                            .await
                            .map(Some)
                            .map_err(|e| HubspotError::Malformed(e.to_string())),
                    );
                }
                if http::is_transient(status) {
                    let retry_after = http::retry_after(&resp);
                    return Attempt::Retry {
                        error: HubspotError::Transient(status.to_string()),
                        retry_after,
                    };
                }
                Attempt::Done(match status {
                    StatusCode::NOT_FOUND => Ok(None),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        Err(HubspotError::Unauthorized(status.as_u16()))
                    }
                    _ => {
                        let category = resp
                            .json::<ErrorBody>()
                            .await
                            .map(|b| b.category)
                            .unwrap_or_default();
                        Err(HubspotError::Rejected {
                            status: status.as_u16(),
                            category,
                        })
                    }
                })
            }
        })
        .await
    }
}

