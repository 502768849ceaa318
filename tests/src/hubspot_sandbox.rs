//! HubSpot sandbox: an in-memory CRM v3 companies API on loopback, answering
//! with HubSpot's shapes (string property values, its error bodies, its 429
//! headers). For now it reads one company at a time; it grows with the
//! client.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::warp_sandbox::{now_ms, rfc3339};

/// The private-app token the sandbox accepts; any other answers 401.
pub const HUBSPOT_SANDBOX_TOKEN: &str = "pat-sandbox-token";

/// Always returned, asked for or not, as HubSpot does.
const SYSTEM_PROPERTIES: [&str; 3] = ["hs_object_id", "createdate", "hs_lastmodifieddate"];

/// What HubSpot returns when no `properties` are asked for.
const DEFAULT_PROPERTIES: [&str; 2] = ["name", "domain"];

/// A running sandbox. Dropping it stops the server.
pub struct HubspotSandbox {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl HubspotSandbox {
    /// Serves on an ephemeral loopback port, on a task of the current runtime.
    pub async fn start() -> HubspotSandbox {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        match Self::start_on(addr).await {
            Ok(sandbox) => sandbox,
            Err(e) => panic!("binding the HubSpot sandbox on {addr}: {e}"),
        }
    }

    /// Serves on `addr` (the demo's fixed port).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<HubspotSandbox> {
        let shared = Shared::default();
        let (base_url, server) = crate::serve(addr, router(shared.clone()), "HubSpot").await?;
        Ok(HubspotSandbox {
            base_url,
            shared,
            server,
        })
    }

    /// Creates company `id` or merges `properties` into it. Values should be
    /// strings (HubSpot's wire type): numbers and booleans are stored as
    /// their text, null as a property without a value. `hs_object_id` is set
    /// to `id`; `createdate` (on creation) and `hs_lastmodifieddate` are set
    /// to now unless `properties` gives them, so tests can date changes.
    pub fn upsert_company(&self, id: &str, properties: Map<String, Value>) {
        let now = rfc3339(now_ms(), true);
        let mut inner = self.shared.lock();
        let company = inner.companies.entry(id.to_string()).or_default();
        company
            .entry("createdate")
            .or_insert_with(|| now.clone().into());
        company.insert("hs_lastmodifieddate".into(), now.into());
        for (name, value) in properties {
            company.insert(name, as_property_value(value));
        }
        company.insert("hs_object_id".into(), id.into());
    }

    /// Every stored property of company `id`, system properties included.
    pub fn company(&self, id: &str) -> Option<Map<String, Value>> {
        self.shared.lock().companies.get(id).cloned()
    }

    /// Requests received (refused ones included) since start or the last
    /// `reset_calls`.
    pub fn calls(&self) -> u32 {
        self.shared.lock().calls
    }

    pub fn reset_calls(&self) {
        self.shared.lock().calls = 0;
    }

    /// The next `times` requests answer 429 (ten-secondly limit).
    pub fn set_rate_limited(&self, times: u32) {
        self.shared.lock().rate_limited = times;
    }
}

impl Drop for HubspotSandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn as_property_value(value: Value) -> Value {
    match value {
        Value::String(_) | Value::Null => value,
        other => Value::String(other.to_string()),
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    /// A poisoned lock still holds consistent data (each write completes
    /// under the lock), so a panicking test does not break the others.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Inner {
    companies: HashMap<String, Map<String, Value>>,
    calls: u32,
    rate_limited: u32,
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/crm/v3/objects/companies/{id}", get(get_company))
        .fallback(|| async {
            hubspot_error(
                StatusCode::NOT_FOUND,
                json!({"message": "no such route", "category": "OBJECT_NOT_FOUND"}),
            )
        })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Counts, throttles, then authenticates, in the order HubSpot's edge does.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let throttled = {
        let mut inner = shared.lock();
        inner.calls += 1;
        let throttled = inner.rate_limited > 0;
        inner.rate_limited = inner.rate_limited.saturating_sub(1);
        throttled
    };
    if throttled {
        rate_limited()
    } else if !authorized(request.headers()) {
        unauthorized()
    } else {
        next.run(request).await
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim() == HUBSPOT_SANDBOX_TOKEN
        })
}

async fn get_company(
    State(shared): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let (Ok(Path(id)), Ok(Query(query))) = (id, query) else {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "invalid request", "category": "VALIDATION_ERROR"}),
        );
    };
    let Some(company) = shared.lock().companies.get(&id).cloned() else {
        return hubspot_error(
            StatusCode::NOT_FOUND,
            json!({"message": "resource not found", "category": "OBJECT_NOT_FOUND"}),
        );
    };
    Json(company_json(&id, &company, &asked_properties(&query))).into_response()
}

/// `properties=a,b` and repeated `properties=a&properties=b` both work on
/// HubSpot; without any, it returns its default set.
fn asked_properties(query: &[(String, String)]) -> Vec<String> {
    let asked: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    if asked.is_empty() {
        DEFAULT_PROPERTIES.iter().map(|p| p.to_string()).collect()
    } else {
        asked
    }
}

fn company_json(id: &str, company: &Map<String, Value>, asked: &[String]) -> Value {
    let wanted = |name: &str| SYSTEM_PROPERTIES.contains(&name) || asked.iter().any(|a| a == name);
    let properties: Map<String, Value> = company
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    json!({
        "id": id,
        "properties": properties,
        "createdAt": company.get("createdate").cloned().unwrap_or(Value::Null),
        "updatedAt": company.get("hs_lastmodifieddate").cloned().unwrap_or(Value::Null),
        "archived": false,
    })
}

/// HubSpot's error body: `status`, `message`, a category, a correlation id.
fn hubspot_error(status: StatusCode, fields: Value) -> Response {
    let mut body = json!({
        "status": "error",
        "correlationId": uuid::Uuid::new_v4().to_string(),
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    hubspot_error(
        StatusCode::UNAUTHORIZED,
        json!({
            "message": "Authentication credentials not found. This API supports OAuth 2.0 \
                        authentication and you can find more details at \
                        https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "category": "INVALID_AUTHENTICATION",
        }),
    )
}

fn rate_limited() -> Response {
    let mut response = hubspot_error(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        }),
    );
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    for (name, value) in [
        ("x-hubspot-ratelimit-max", "100"),
        ("x-hubspot-ratelimit-remaining", "0"),
        ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}
