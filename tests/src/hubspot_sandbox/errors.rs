//! HubSpot's error answers: every one in the OpenAPI `Error` shape
//! (`category`, `correlationId`, `message` required) plus the `status:
//! "error"` HubSpot adds, and its 429 bodies and headers.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

/// HubSpot's limits, as the sandbox's scripted faults name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// `TEN_SECONDLY_ROLLING`: the per-token rolling 10 s window.
    TenSecondly,
    /// Search's own per-second limit (`SECONDLY`).
    Secondly,
    /// The per-account daily cap (`DAILY`).
    Daily,
}

/// `fields` over `status` and a fresh `correlationId`.
pub(super) fn error(status: StatusCode, fields: Value) -> Response {
    let mut body = json!({
        "status": "error",
        "correlationId": uuid::Uuid::new_v4().to_string(),
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    (status, Json(body)).into_response()
}

pub(super) fn validation(message: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({"message": message.into(), "category": "VALIDATION_ERROR"}),
    )
}

/// A 400 with HubSpot's per-item details (`errors[]` of `ErrorDetail`:
/// `message`, `code`, `context.propertyName`). Its `message` is HubSpot's:
/// "Property values were not valid: " and the per-property results as a
/// JSON list (`isValid`, `message`, `error`, `name`).
pub(super) fn invalid_properties(details: Vec<Value>) -> Response {
    let results: Vec<Value> = details
        .iter()
        .map(|d| {
            json!({
                "isValid": false,
                "message": d["message"],
                "error": d["code"],
                "name": d["context"]["propertyName"][0],
            })
        })
        .collect();
    error(
        StatusCode::BAD_REQUEST,
        json!({
            "message": format!("Property values were not valid: {}", Value::Array(results)),
            "category": "VALIDATION_ERROR",
            "errors": details,
        }),
    )
}

/// HubSpot's 403 for a token without any of the operation's scopes
/// (HubSpot/hubspot-api-nodejs issue #268 quotes one whole; granular
/// scopes come under `requiredGranularScopes`, any one of which would do).
pub(super) fn missing_scopes(required: Vec<String>) -> Response {
    error(
        StatusCode::FORBIDDEN,
        json!({
            "message": "This app hasn't been granted all required scopes to make this call. \
                        Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "errors": [{
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": required},
            }],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        }),
    )
}

pub(super) fn not_found(message: impl Into<String>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        json!({"message": message.into(), "category": "OBJECT_NOT_FOUND"}),
    )
}

pub(super) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        json!({
            "message": "Authentication credentials not found. This API supports OAuth 2.0 \
                        authentication and you can find more details at \
                        https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "category": "INVALID_AUTHENTICATION",
        }),
    )
}

pub(super) fn server_error(status: StatusCode) -> Response {
    error(
        status,
        json!({
            "message": "internal error",
            "category": "INTERNAL_ERROR",
        }),
    )
}

pub(super) fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"message": "method not allowed on this route", "category": "VALIDATION_ERROR"}),
    )
}

/// A 429 of `kind`; `ten_secondly_max` is the window's size for its headers.
pub(super) fn throttled(
    kind: Throttle,
    ten_secondly_max: u32,
    retry_after: Option<u32>,
) -> Response {
    let (message, policy) = match kind {
        Throttle::TenSecondly => (
            "You have reached your ten_secondly_rolling limit.",
            "TEN_SECONDLY_ROLLING",
        ),
        Throttle::Secondly => ("You have reached your secondly limit.", "SECONDLY"),
        Throttle::Daily => ("You have reached your daily limit.", "DAILY"),
    };
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "message": message,
            "errorType": "RATE_LIMIT",
            "policyName": policy,
            "category": "RATE_LIMITS",
        }),
    );
    let headers = response.headers_mut();
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    match kind {
        Throttle::TenSecondly => {
            set(headers, "x-hubspot-ratelimit-max", ten_secondly_max.into());
            set(headers, "x-hubspot-ratelimit-remaining", 0u32.into());
            set(
                headers,
                "x-hubspot-ratelimit-interval-milliseconds",
                10_000u32.into(),
            );
        }
        Throttle::Daily => set(headers, "x-hubspot-ratelimit-daily-remaining", 0u32.into()),
        Throttle::Secondly => {}
    }
    response
}

pub(super) fn set(headers: &mut axum::http::HeaderMap, name: &'static str, value: HeaderValue) {
    headers.insert(HeaderName::from_static(name), value);
}
