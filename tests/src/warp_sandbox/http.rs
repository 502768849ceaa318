//! The HTTP API: the routes, the gate every request passes (counts, the
//! scripted fault, the token) and the handlers.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, ETAG, IF_MATCH, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::shape::{check_patch, parse_patch};
use super::state::Shared;
use super::{
    BY_BAN_PATH, DEFAULT_PER_PAGE, Fault, LIST_PATH, MAX_PER_PAGE, ONE_PATH, Route, SANDBOX_TOKEN,
};

impl Route {
    /// The route a request is for, by the same rules as the router. (Parsed
    /// here because axum's `matched-path` feature is not enabled.)
    fn of(method: &Method, path: &str) -> Option<Route> {
        let rest = path.strip_prefix(LIST_PATH)?;
        let segment = |s: &str| !s.is_empty() && !s.contains('/');
        let route = if rest.is_empty() {
            Route::List
        } else if let Some(ban) = rest.strip_prefix("/by-ban/") {
            segment(ban).then_some(Route::GetByBan)?
        } else {
            let id = rest.strip_prefix('/')?;
            segment(id).then_some(Route::Get)?
        };
        match (method.as_str(), route) {
            ("GET", route) => Some(route),
            ("PUT", Route::Get) => Some(Route::Put),
            _ => None,
        }
    }
}

pub(super) fn router(shared: Shared) -> Router {
    Router::new()
        .route(LIST_PATH, get(list_customers))
        .route(ONE_PATH, get(get_customer).put(put_customer))
        .route(BY_BAN_PATH, get(get_by_ban))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed on this route",
            )
        })
        // Outermost, so that it sees (and counts) every answer, fallbacks
        // included.
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Counts, injects the scripted fault, then authenticates.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let route = Route::of(request.method(), request.uri().path());
    let fault = {
        let mut inner = shared.lock();
        inner.count(route);
        inner.take_fault()
    };
    let response = match fault {
        Fault::RateLimited { retry_after_s, .. } => Some(rate_limited(retry_after_s)),
        Fault::ServerError { .. } => Some(
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "injected server error",
            )
            .into_response(),
        ),
        Fault::Slow { delay_ms, .. } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
        Fault::None => None,
    };
    let response = match response {
        Some(response) => response,
        None if !authorized(request.headers()) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or invalid bearer token",
        )
        .into_response(),
        None => next.run(request).await,
    };
    if !response.status().is_success() {
        shared.lock().calls.rejected += 1;
    }
    response
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim() == SANDBOX_TOKEN
        })
}

fn rate_limited(retry_after_s: u32) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "rate limit exceeded, retry later",
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

async fn list_customers(
    State(shared): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let page = query_number(&query, "page", 1, u64::MAX)?;
    let per_page = query_number(&query, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let inner = shared.lock();
    let total = inner.customers.len() as u64;
    let start = (page - 1).saturating_mul(per_page).min(total) as usize;
    let end = (start + per_page as usize).min(total as usize);
    let items: Vec<Value> = inner.customers[start..end]
        .iter()
        .cloned()
        .map(Value::Object)
        .collect();
    Ok(success(json!({
        "items": items,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_pages": total.div_ceil(per_page),
        },
    })))
}

/// A positive integer query parameter at most `max`, `default` when absent.
fn query_number(
    query: &[(String, String)],
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    let Some((_, raw)) = query.iter().rev().find(|(k, _)| k == name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ if max == u64::MAX => Err(ApiError::validation(format!(
            "{name} must be an integer of at least 1, got '{raw}'"
        ))),
        _ => Err(ApiError::validation(format!(
            "{name} must be an integer from 1 to {max}, got '{raw}'"
        ))),
    }
}

async fn get_customer(
    State(shared): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let inner = shared.lock();
    let index = inner
        .position(&id)
        .ok_or_else(|| ApiError::not_found(format!("customer {id} not found")))?;
    Ok(customer_response(&inner.customers[index]))
}

async fn get_by_ban(
    State(shared): State<Shared>,
    ban: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let ban = path_param(ban)?;
    let inner = shared.lock();
    let customer = inner
        .by_ban(&ban)
        .ok_or_else(|| ApiError::not_found(format!("no customer with ban {ban}")))?;
    Ok(customer_response(customer))
}

async fn put_customer(
    State(shared): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let mut inner = shared.lock();
    let index = inner
        .position(&id)
        .ok_or_else(|| ApiError::not_found(format!("customer {id} not found")))?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            format!("invalid JSON: {e}"),
        )
    })?;
    let patch = parse_patch(&body)?;
    check_patch(&patch)?;
    check_if_match(&headers, &inner.customers[index])?;
    Ok(customer_response(&inner.write(index, patch)))
}

/// 412 when an `If-Match` header names another etag than the current one.
pub(super) fn check_if_match(
    headers: &HeaderMap,
    customer: &Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(wanted) = headers.get(IF_MATCH) else {
        return Ok(());
    };
    let current = customer.get("etag").and_then(Value::as_str).unwrap_or("");
    let wanted = wanted.to_str().unwrap_or("").trim();
    if wanted == "*" || wanted == current {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
        format!("If-Match {wanted} does not match the current etag {current}"),
    ))
}

fn path_param(param: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    param
        .map(|Path(p)| p)
        .map_err(|e| ApiError::validation(e.body_text()))
}

fn success(data: Value) -> Response {
    Json(json!({"success": true, "data": data})).into_response()
}

fn customer_response(customer: &Map<String, Value>) -> Response {
    let mut response = success(Value::Object(customer.clone()));
    let etag = customer.get("etag").and_then(Value::as_str);
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}
