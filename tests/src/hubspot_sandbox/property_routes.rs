//! CRM properties v3 for companies (tests/contracts/hubspot/
//! properties.v3.json): definitions and groups read and created; and what a
//! token says of itself (HubSpot's private-app token info). Other object
//! types: one HubSpot knows answers 404 (the sandbox's portal holds
//! companies only), any other name HubSpot's 400 "Unable to infer object
//! type from: ...".

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{HOST, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::Shared;
use super::errors::{self, not_found, validation};
use super::properties::Refused;
use super::scopes::token_info as describe;
use crate::warp_sandbox::{now_ms, rfc3339};

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// CRM object types HubSpot knows by name or id, which the sandbox does
/// not serve.
const OTHER_OBJECT_TYPES: [&str; 16] = [
    "contacts",
    "deals",
    "tickets",
    "products",
    "line_items",
    "quotes",
    "calls",
    "emails",
    "meetings",
    "notes",
    "tasks",
    "0-1",
    "0-3",
    "0-5",
    "0-7",
    "0-8",
];

/// `companies` (or its id `0-2`), else HubSpot's answer for the name.
fn companies(object_type: &str) -> Result<(), Refused> {
    match object_type {
        "companies" | "0-2" => Ok(()),
        other if OTHER_OBJECT_TYPES.contains(&other) => Err(Refused::not_found(format!(
            "the sandbox's portal holds company properties only, not {other}"
        ))),
        other => Err(Refused::invalid(format!(
            "Unable to infer object type from: {other}"
        ))),
    }
}

fn now() -> String {
    rfc3339(now_ms(), true)
}

fn json_body(bytes: &Bytes) -> Result<Value, Refused> {
    serde_json::from_slice(bytes).map_err(|e| Refused::invalid(format!("Invalid input JSON: {e}")))
}

/// A 201 with the `Location` of the new resource, as the document has it.
fn created(headers: &HeaderMap, path: String, body: Value) -> Response {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("http://{host}{path}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `archived=true` asks for archived definitions only; the sandbox
/// archives none.
fn archived(query: &[(String, String)]) -> Result<bool, Refused> {
    match param(query, "archived") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Refused::invalid(format!(
            "archived must be true or false, not '{other}'"
        ))),
    }
}

// ---------------------------------------------------------------------------
// Properties

/// `CollectionResponsePropertyNoPaging`: every definition, or those
/// `properties` names.
pub(super) async fn list(
    State(shared): State<Shared>,
    object_type: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let (Ok(Path(object_type)), Ok(Query(query))) = (object_type, query) else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let archived = match archived(&query) {
        Ok(a) => a,
        Err(refused) => return refused.response(),
    };
    let wanted: Vec<&str> = param(&query, "properties")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let inner = shared.lock();
    let results: Vec<Value> = inner
        .portal
        .schema
        .all()
        .filter(|_| !archived)
        .filter(|p| {
            wanted.is_empty()
                || p["name"]
                    .as_str()
                    .is_some_and(|name| wanted.contains(&name))
        })
        .cloned()
        .collect();
    Json(json!({ "results": results })).into_response()
}

pub(super) async fn get(
    State(shared): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let (Ok(Path((object_type, name))), Ok(Query(query))) = (path, query) else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let archived = match archived(&query) {
        Ok(a) => a,
        Err(refused) => return refused.response(),
    };
    match shared.lock().portal.schema.get(&name) {
        Some(property) if !archived => Json(property.clone()).into_response(),
        _ => not_found(format!("Property {name} does not exist")),
    }
}

/// `PropertyCreate` → 201 `Property`; 409 for a name taken, 400 for a
/// definition HubSpot refuses (properties.rs says which).
pub(super) async fn create(
    State(shared): State<Shared>,
    object_type: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let Ok(Path(object_type)) = object_type else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let input = match json_body(&bytes) {
        Ok(v) => v,
        Err(refused) => return refused.response(),
    };
    let created_property = shared.lock().portal.create_property(&input);
    match created_property {
        Ok(property) => {
            let name = property["name"].as_str().unwrap_or_default().to_string();
            created(
                &headers,
                format!("/crm/v3/properties/{object_type}/{name}"),
                property,
            )
        }
        Err(refused) => refused.response(),
    }
}

/// `BatchInputPropertyCreate` → 201 `BatchResponseProperty` when every
/// definition was created, else 207 `BatchResponsePropertyWithErrors`
/// naming each refused one (the others are created).
pub(super) async fn batch_create(
    State(shared): State<Shared>,
    object_type: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Response {
    let started = now();
    let Ok(Path(object_type)) = object_type else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let input = match json_body(&bytes) {
        Ok(v) => v,
        Err(refused) => return refused.response(),
    };
    let Some(inputs) = input.get("inputs").and_then(Value::as_array) else {
        return validation("Invalid input JSON: some of required attributes are not set [inputs]");
    };
    let mut inner = shared.lock();
    let (mut results, mut failed) = (Vec::new(), Vec::new());
    for input in inputs {
        match inner.portal.create_property(input) {
            Ok(property) => results.push(property),
            Err(refused) => {
                let name = input["name"].as_str().unwrap_or_default();
                failed.push(json!({
                    "status": "error",
                    "category": refused.category,
                    "message": refused.message,
                    "context": {"propertyName": [name]},
                    "errors": [],
                    "links": {},
                }));
            }
        }
    }
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now(),
    });
    if failed.is_empty() {
        return (StatusCode::CREATED, Json(body)).into_response();
    }
    body["numErrors"] = json!(failed.len());
    body["errors"] = Value::Array(failed);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}

// ---------------------------------------------------------------------------
// Groups

/// `CollectionResponsePropertyGroupNoPaging`.
pub(super) async fn groups(
    State(shared): State<Shared>,
    object_type: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(object_type)) = object_type else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let results: Vec<Value> = shared.lock().portal.schema.groups().cloned().collect();
    Json(json!({ "results": results })).into_response()
}

pub(super) async fn group(
    State(shared): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((object_type, name))) = path else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    match shared.lock().portal.schema.group(&name) {
        Some(group) => Json(group.clone()).into_response(),
        None => not_found(format!("Property group {name} does not exist")),
    }
}

/// `PropertyGroupCreate` → 201 `PropertyGroup`; 409 for a name taken.
pub(super) async fn create_group(
    State(shared): State<Shared>,
    object_type: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let Ok(Path(object_type)) = object_type else {
        return validation("invalid request");
    };
    if let Err(refused) = companies(&object_type) {
        return refused.response();
    }
    let input = match json_body(&bytes) {
        Ok(v) => v,
        Err(refused) => return refused.response(),
    };
    let created_group = shared.lock().portal.schema.create_group(&input);
    match created_group {
        Ok(group) => {
            let name = group["name"].as_str().unwrap_or_default().to_string();
            created(
                &headers,
                format!("/crm/v3/properties/{object_type}/groups/{name}"),
                group,
            )
        }
        Err(refused) => refused.response(),
    }
}

// ---------------------------------------------------------------------------
// Token info

/// `POST /oauth/v2/private-apps/get/access-token-info` with `{"tokenKey":
/// token}`: `userId`, `hubId`, `appId`, `scopes` of a token the sandbox
/// issued (the body names the token, so no scope is needed); 401 for any
/// other.
pub(super) async fn private_app_token(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let input = match json_body(&bytes) {
        Ok(v) => v,
        Err(refused) => return refused.response(),
    };
    let Some(token) = input.get("tokenKey").and_then(Value::as_str) else {
        return validation(
            "Invalid input JSON: some of required attributes are not set [tokenKey]",
        );
    };
    match shared.lock().tokens.get(token) {
        Some(grant) => Json(describe(grant)).into_response(),
        None => errors::unauthorized(),
    }
}

/// `GET /oauth/v1/access-tokens/{token}` describes OAuth access tokens; the
/// sandbox issues private-app tokens only.
pub(super) async fn oauth_token() -> Response {
    not_found("Token not found: the sandbox issues private-app tokens only")
}
