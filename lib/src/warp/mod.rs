//! WARP's customer API (shared/warp-api.md), in code. Every request and
//! response shape lives in this one module, so a difference found against
//! the live gateway is a one-file change.

mod api;
pub mod write;

use std::time::Duration;

use chrono::DateTime;
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{self, Attempt, RetryPolicy, Token, with_retries};

pub use api::WarpApi;
pub use write::{WriteBack, WriteError, update_if_match, update_if_match_with};

/// A WARP customer: the fields the sync reads by name, and the whole JSON
/// object for the mapped fields (read by dotted path).
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: String,
    pub ban: String,
    /// `updated_at` in epoch ms; WARP keeps no per-field times.
    pub updated_at_ms: Option<i64>,
    /// For `If-Match`, as WARP sent it (quotes included).
    pub etag: String,
    pub hubspot_company_id: Option<String>,
    pub raw: Value,
}

impl Customer {
    /// Reads a customer from WARP's JSON (an ETag header, when given, wins
    /// over the body's `etag`). Public for test doubles that hold WARP's
    /// JSON themselves, so they read it exactly as the client does.
    pub fn from_json(raw: Value, header_etag: Option<String>) -> Result<Self, WarpError> {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        let id = text("id").ok_or_else(|| WarpError::Malformed("customer without id".into()))?;
        let ban = text("ban").ok_or_else(|| WarpError::Malformed("customer without ban".into()))?;
        let updated_at_ms = text("updated_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_millis());
        let etag = header_etag
            .or_else(|| text("etag"))
            .ok_or_else(|| WarpError::Malformed("customer without etag".into()))?;
        let hubspot_company_id = raw
            .pointer("/external_ids/hubspot_company_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(Self {
            id,
            ban,
            updated_at_ms,
            etag,
            hubspot_company_id,
            raw,
        })
    }
}

/// One page of the customer list.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Customer>,
    pub page: u32,
    pub total_pages: u32,
    pub total: u64,
}

/// WARP's answer, classified: what to retry, what to record and drop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarpError {
    #[error("WARP has no such customer")]
    NotFound,
    #[error("WARP customer changed since it was read (412)")]
    PreconditionFailed,
    /// 400/401/403/409/422: retrying the same request cannot succeed.
    #[error("WARP refused the request: {status} {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// 429, 5xx, timeouts, connection failures.
    #[error("WARP unavailable: {0}")]
    Transient(String),
    #[error("WARP answered something unreadable: {0}")]
    Malformed(String),
    /// An id or BAN that cannot be one path segment: empty, or dots only,
    /// which a URL resolves as `.` or `..` (a HubSpot user can type `..`
    /// into `warp_ban`). Refused before WARP is asked.
    #[error(
        "{0:?} cannot name a WARP customer: an empty or dots-only path segment would leave /v1/customers"
    )]
    NotAnId(String),
}

impl WarpError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ListData {
    items: Vec<Value>,
    pagination: Pagination,
}

#[derive(Deserialize)]
struct Pagination {
    page: u32,
    total: u64,
    total_pages: u32,
}

/// The client: one per cold start.
#[derive(Debug, Clone)]
pub struct WarpClient {
    http: reqwest::Client,
    base_url: String,
    token: Token,
    retry: RetryPolicy,
}

impl WarpClient {
    pub fn new(
        base_url: &str,
        token: Token,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, WarpError> {
        Ok(Self {
            http: http::client(timeout).map_err(|e| WarpError::Malformed(e.to_string()))?,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            retry,
        })
    }

    /// `GET /v1/customers?page=P&per_page=N` (N at most 100).
    pub async fn list_page(&self, page: u32, per_page: u32) -> Result<Page, WarpError> {
        let path = format!("/v1/customers?page={page}&per_page={}", per_page.min(100));
        let (data, _) = self.call(Method::GET, &path, None, None).await?;
        let list: ListData =
            serde_json::from_value(data).map_err(|e| WarpError::Malformed(e.to_string()))?;
        let items = list
            .items
            .into_iter()
            .map(|raw| Customer::from_json(raw, None))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            page: list.pagination.page,
            total_pages: list.pagination.total_pages,
            total: list.pagination.total,
        })
    }

    /// `GET /v1/customers/{id}`.
    pub async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        let (data, etag) = self
            .call(
                Method::GET,
                &format!("/v1/customers/{}", segment(id)?),
                None,
                None,
            )
            .await?;
        Customer::from_json(data, etag)
    }

    /// `GET /v1/customers/by-ban/{ban}`.
    pub async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        let path = format!("/v1/customers/by-ban/{}", segment(ban)?);
        let (data, etag) = self.call(Method::GET, &path, None, None).await?;
        Customer::from_json(data, etag)
    }

    /// `PUT /v1/customers/{id}`: a partial update; with `if_match`, 412 when
    /// the customer changed since that etag.
    pub async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        let path = format!("/v1/customers/{}", segment(id)?);
        let body = Value::Object(body.clone());
        let (data, etag) = self.call(Method::PUT, &path, Some(&body), if_match).await?;
        Customer::from_json(data, etag)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(Value, Option<String>), WarpError> {
        let url = format!("{}{path}", self.base_url);
        with_retries(&self.retry, path, || {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::AUTHORIZATION, self.token.bearer());
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Some(tag) = if_match {
                req = req.header(reqwest::header::IF_MATCH, tag);
            }
            async move {
                crate::metrics::warp_call();
                match req.send().await {
                    Ok(resp) => read(resp).await,
                    Err(e) => Attempt::Retry {
                        error: WarpError::Transient(transport_reason(&e)),
                        retry_after: None,
                    },
                }
            }
        })
        .await
    }
}

/// Ids and BANs go into the path; keep them one segment. Percent-encoding
/// cannot save a dots-only one: URL parsers read `%2E%2E` as `..` too.
fn segment(s: &str) -> Result<String, WarpError> {
    if s.bytes().all(|b| b == b'.') {
        return Err(WarpError::NotAnId(s.to_string()));
    }
    Ok(s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect())
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

async fn read(resp: Response) -> Attempt<(Value, Option<String>), WarpError> {
    let status = resp.status();
    let retry_after = http::retry_after(&resp);
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let envelope: Option<Envelope> = resp.json().await.ok();
    if status.is_success() {
        return Attempt::Done(match envelope {
            Some(Envelope {
                success: true,
                data,
                ..
            }) => Ok((data, etag)),
            _ => Err(WarpError::Malformed(format!(
                "{status} without a success envelope"
            ))),
        });
    }
    let (code, message) = envelope
        .and_then(|e| e.error)
        .map_or_else(|| (String::new(), String::new()), |e| (e.code, e.message));
    if http::is_transient(status) {
        return Attempt::Retry {
            error: WarpError::Transient(format!("{status} {code}")),
            retry_after,
        };
    }
    Attempt::Done(Err(match status {
        StatusCode::NOT_FOUND => WarpError::NotFound,
        StatusCode::PRECONDITION_FAILED => WarpError::PreconditionFailed,
        _ => WarpError::Rejected {
            status: status.as_u16(),
            code,
            message,
        },
    }))
}

/// WARP's partial update as the contract describes it (nested objects merge,
/// everything else replaces): the in-memory WARP doubles of the consumer's
/// and the reconciler's tests both apply their PUTs with it.
#[cfg(test)]
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    if let (Value::Object(t), Value::Object(p)) = (target, patch) {
        for (k, v) in p {
            match (t.get_mut(k), v) {
                (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_patch(existing, v),
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("ZT-487392012").unwrap(), "ZT-487392012");
        assert_eq!(segment("a/b c").unwrap(), "a%2Fb%20c");
        assert_eq!(segment(".a.").unwrap(), ".a.");
    }

    #[test]
    fn dots_only_and_empty_segments_are_refused() {
        for s in ["", ".", "..", "..."] {
            assert!(matches!(segment(s), Err(WarpError::NotAnId(_))), "{s:?}");
        }
    }

    #[test]
    fn customers_need_id_ban_and_etag() {
        let raw = serde_json::json!({"id": "c1", "ban": "ZT-1", "etag": "\"3\"", "updated_at": "2025-10-14T09:00:00Z",
            "external_ids": {"hubspot_company_id": "987654"}});
        let c = Customer::from_json(raw.clone(), None).unwrap();
        assert_eq!(c.etag, "\"3\"");
        assert_eq!(c.updated_at_ms, Some(1_760_432_400_000));
        assert_eq!(c.hubspot_company_id.as_deref(), Some("987654"));
        let header = Customer::from_json(raw, Some("\"4\"".into())).unwrap();
        assert_eq!(header.etag, "\"4\"", "the header wins");
        assert!(Customer::from_json(serde_json::json!({"id": "c1"}), None).is_err());
    }
}
