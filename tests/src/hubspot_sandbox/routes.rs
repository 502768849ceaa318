//! The CRM v3 companies operations the bridge uses, as the OpenAPI
//! document (tests/contracts/hubspot/companies.v3.json) describes them and
//! HubSpot's prose docs limit them.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::Shared;
use super::errors::{self, invalid_properties, not_found, validation};
use super::search::{self, Filter, GroupIn, MAX_FILTERS, MAX_FILTERS_PER_GROUP, MAX_GROUPS, Sort};
use super::store::{Asked, DEFAULT_PROPERTIES, IdKey, MergeRefused};
use crate::warp_sandbox::{now_ms, rfc3339};

const LIST_DEFAULT_LIMIT: usize = 10;
const LIST_MAX_LIMIT: usize = 100;
const BATCH_MAX: usize = 100;
const BATCH_MAX_WITH_HISTORY: usize = 50;
const SEARCH_DEFAULT_LIMIT: usize = 10;
const SEARCH_MAX_LIMIT: usize = 200;
/// HubSpot's prose docs: a search query answers at most 10,000 results.
const SEARCH_MAX_RESULTS: usize = 10_000;

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `name=a,b` and repeated `name=a&name=b` both work on HubSpot.
fn list_param(query: &[(String, String)], name: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asked-for properties, or HubSpot's default set when none are.
fn or_default(asked: Vec<String>) -> Vec<String> {
    if asked.is_empty() {
        DEFAULT_PROPERTIES.iter().map(|p| p.to_string()).collect()
    } else {
        asked
    }
}

/// Refusals carry the message of HubSpot's 400 (`validation` makes it).
type Refusal = String;

fn archived(query: &[(String, String)]) -> Result<bool, Refusal> {
    match param(query, "archived") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("archived must be true or false, not '{other}'")),
    }
}

fn now() -> String {
    rfc3339(now_ms(), true)
}

/// A JSON body parsed into `T`, or HubSpot's 400.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| format!("Invalid input JSON: {e}"))
}

// ---------------------------------------------------------------------------
// GET list and GET by id

pub(super) async fn list(
    State(shared): State<Shared>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let Ok(Query(query)) = query else {
        return validation("invalid query string");
    };
    let limit = match param(&query, "limit").map(str::parse::<usize>) {
        None => LIST_DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=LIST_MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return validation(format!(
                "limit must be an integer from 1 to {LIST_MAX_LIMIT}"
            ));
        }
    };
    let archived = match archived(&query) {
        Ok(a) => a,
        Err(message) => return validation(message),
    };
    let after = param(&query, "after");
    if after.is_some_and(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit())) {
        return validation("after must be the paging cursor of a previous page");
    }
    let properties = or_default(list_param(&query, "properties"));
    let with_history = list_param(&query, "propertiesWithHistory");
    let asked = Asked {
        properties: &properties,
        with_history: &with_history,
    };
    let inner = shared.lock();
    let portal = &inner.portal;
    // The cursor is the id of the next page's first company.
    let from = match after {
        Some(after) => portal.companies.range(IdKey::new(after)..),
        None => portal.companies.range::<IdKey, _>(..),
    };
    // No company is ever archived in the sandbox.
    let mut page: Vec<(&IdKey, _)> = if archived {
        Vec::new()
    } else {
        from.take(limit + 1).collect()
    };
    let next = (page.len() > limit).then(|| page.remove(limit).0.id().to_string());
    let results: Vec<Value> = page
        .into_iter()
        .map(|(key, company)| portal.render(key.id(), company, &asked))
        .collect();
    let mut body = json!({ "results": results });
    if let Some(after) = next {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        body["paging"] = json!({"next": {
            "after": after,
            "link": format!("http://{host}/crm/v3/objects/companies?limit={limit}&after={after}"),
        }});
    }
    Json(body).into_response()
}

pub(super) async fn get(
    State(shared): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let (Ok(Path(id)), Ok(Query(query))) = (id, query) else {
        return validation("invalid request");
    };
    let archived = match archived(&query) {
        Ok(a) => a,
        Err(message) => return validation(message),
    };
    let properties = or_default(list_param(&query, "properties"));
    let with_history = list_param(&query, "propertiesWithHistory");
    let asked = Asked {
        properties: &properties,
        with_history: &with_history,
    };
    let inner = shared.lock();
    let portal = &inner.portal;
    let found = match param(&query, "idProperty") {
        Some(name) if name != "hs_object_id" => portal
            .find_by(name, &id)
            .map(|(key, c)| (key.id().to_string(), c)),
        _ => portal.get(&id).map(|c| (id.clone(), c)),
    };
    match found {
        Some((id, company)) if !archived => {
            Json(portal.render(&id, company, &asked)).into_response()
        }
        _ => not_found("resource not found"),
    }
}

// ---------------------------------------------------------------------------
// Batch read and update

#[derive(Deserialize)]
struct IdInput {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    inputs: Vec<IdInput>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    id: String,
    properties: Map<String, Value>,
    #[serde(default)]
    id_property: Option<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    inputs: Vec<UpdateInput>,
}

/// `BatchResponseSimplePublicObject`, or `...WithErrors` (207) when some
/// ids were not found.
fn batch_answer(
    started: String,
    results: Vec<Value>,
    missing: Vec<String>,
    verb: &str,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now(),
    });
    if missing.is_empty() {
        return Json(body).into_response();
    }
    body["numErrors"] = json!(1);
    body["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": format!("Could not {verb} some COMPANY objects, they may be deleted or not exist. Check that ids are valid."),
        "context": {"ids": missing},
        "errors": [],
        "links": {},
    }]);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}

pub(super) async fn batch_read(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let started = now();
    let req: ReadBody = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return validation(message),
    };
    let max = if req.properties_with_history.is_empty() {
        BATCH_MAX
    } else {
        BATCH_MAX_WITH_HISTORY
    };
    if req.inputs.len() > max {
        return validation(format!(
            "Too many inputs: {} (at most {max} per batch read{})",
            req.inputs.len(),
            if max == BATCH_MAX {
                ""
            } else {
                " with propertiesWithHistory"
            }
        ));
    }
    let properties = or_default(req.properties);
    let asked = Asked {
        properties: &properties,
        with_history: &req.properties_with_history,
    };
    let inner = shared.lock();
    let portal = &inner.portal;
    let mut seen = HashSet::new();
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for input in req.inputs.iter().filter(|i| seen.insert(i.id.as_str())) {
        let found = match req.id_property.as_deref() {
            Some(name) if name != "hs_object_id" => portal
                .find_by(name, &input.id)
                .map(|(key, c)| (key.id().to_string(), c)),
            _ => portal.get(&input.id).map(|c| (input.id.clone(), c)),
        };
        match found {
            Some((id, company)) => results.push(portal.render(&id, company, &asked)),
            None => missing.push(input.id.clone()),
        }
    }
    batch_answer(started, results, missing, "get")
}

pub(super) async fn batch_update(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let started = now();
    let req: UpdateBody = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return validation(message),
    };
    if req.inputs.len() > BATCH_MAX {
        return validation(format!(
            "Too many inputs: {} (at most {BATCH_MAX} per batch update)",
            req.inputs.len()
        ));
    }
    let mut seen = HashSet::new();
    let duplicates: Vec<&str> = req
        .inputs
        .iter()
        .filter(|i| !seen.insert(i.id.as_str()))
        .map(|i| i.id.as_str())
        .collect();
    if !duplicates.is_empty() {
        return validation(format!(
            "Duplicate IDs found in batch input: {duplicates:?}. IDs must be unique"
        ));
    }
    if req.inputs.iter().any(|i| i.id_property.is_some()) {
        return validation("idProperty is not supported by the sandbox's batch update");
    }
    let mut inner = shared.lock();
    let portal = &mut inner.portal;
    // The whole batch is refused when any value is invalid, as HubSpot does.
    let mut details = Vec::new();
    let mut changes = Vec::with_capacity(req.inputs.len());
    for input in &req.inputs {
        changes.push((
            input.id.clone(),
            portal.settable(&input.properties, &mut details),
        ));
    }
    if !details.is_empty() {
        return invalid_properties(details);
    }
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for (id, set) in changes {
        let key = IdKey::new(&id);
        if !portal.companies.contains_key(&key) {
            missing.push(id);
            continue;
        }
        let asked: Vec<String> = set.iter().map(|(name, _)| name.clone()).collect();
        portal.update(&key, set);
        if let Some(company) = portal.companies.get(&key) {
            let asked = Asked {
                properties: &asked,
                with_history: &[],
            };
            results.push(portal.render(&id, company, &asked));
        }
    }
    batch_answer(started, results, missing, "update")
}

// ---------------------------------------------------------------------------
// Create and merge: what a person does in HubSpot (the demo's duplicate
// company and its merge); the bridge itself never calls them.

#[derive(Deserialize)]
struct CreateBody {
    properties: Map<String, Value>,
    /// Required by `SimplePublicObjectInputForCreate`; the sandbox keeps no
    /// associations.
    #[allow(dead_code)]
    associations: Vec<Value>,
}

pub(super) async fn create(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let req: CreateBody = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return validation(message),
    };
    let mut inner = shared.lock();
    let portal = &mut inner.portal;
    let mut details = Vec::new();
    let set = portal.settable(&req.properties, &mut details);
    if !details.is_empty() {
        return invalid_properties(details);
    }
    let id = portal.create(set);
    let asked: Vec<String> = req.properties.keys().cloned().collect();
    let Some(company) = portal.get(&id) else {
        return not_found(format!("company {id} vanished"));
    };
    let object = portal.render(
        &id,
        company,
        &Asked {
            properties: &asked,
            with_history: &[],
        },
    );
    (StatusCode::CREATED, Json(object)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeBody {
    primary_object_id: String,
    object_id_to_merge: String,
}

/// The merged-away company is gone; the primary keeps its own values and
/// takes the other's where it has none, as HubSpot's merge does.
pub(super) async fn merge(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let req: MergeBody = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return validation(message),
    };
    let mut inner = shared.lock();
    let portal = &mut inner.portal;
    let asked = match portal.merge(&req.primary_object_id, &req.object_id_to_merge) {
        Ok(asked) => asked,
        Err(MergeRefused::Itself) => return validation("Cannot merge a company into itself"),
        Err(MergeRefused::Missing(id)) => {
            return not_found(format!("Object not found. objectId={id}"));
        }
    };
    let Some(company) = portal.get(&req.primary_object_id) else {
        return not_found("the primary company vanished");
    };
    let object = portal.render(
        &req.primary_object_id,
        company,
        &Asked {
            properties: &asked,
            with_history: &[],
        },
    );
    Json(object).into_response()
}

// ---------------------------------------------------------------------------
// Search

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<GroupIn>,
    #[serde(default)]
    sorts: Vec<Value>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    limit: Option<i64>,
    /// A string offset; older SDKs sent a number.
    #[serde(default)]
    after: Option<Value>,
    #[serde(default)]
    query: Option<String>,
}

struct SearchQuery {
    groups: Vec<Vec<Filter>>,
    sorts: Vec<Sort>,
    limit: usize,
    offset: usize,
}

fn check_search(req: &SearchBody) -> Result<SearchQuery, Refusal> {
    let filters: usize = req.filter_groups.iter().map(|g| g.filters.len()).sum();
    if req.filter_groups.len() > MAX_GROUPS
        || req
            .filter_groups
            .iter()
            .any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
        || filters > MAX_FILTERS
    {
        return Err(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups of {MAX_FILTERS_PER_GROUP} \
             filters, {MAX_FILTERS} in all"
        ));
    }
    let groups = req
        .filter_groups
        .iter()
        .map(|g| {
            g.filters
                .iter()
                .map(Filter::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sorts = req
        .sorts
        .iter()
        .filter_map(|s| Sort::parse(s).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let limit = match req.limit {
        None => SEARCH_DEFAULT_LIMIT,
        Some(n) if (0..=SEARCH_MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(format!(
                "limit {n} is invalid: it must be from 0 to {SEARCH_MAX_LIMIT}"
            ));
        }
    };
    let offset = match &req.after {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).ok_or(()),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => s.parse::<usize>().map_err(|_| ()),
        Some(_) => Err(()),
    }
    .map_err(|()| "after must be the paging cursor of a previous page".to_string())?;
    if offset + limit > SEARCH_MAX_RESULTS {
        return Err(format!(
            "Search can page through at most {SEARCH_MAX_RESULTS} results; \
             after ({offset}) plus limit ({limit}) goes past it"
        ));
    }
    Ok(SearchQuery {
        groups,
        sorts,
        limit,
        offset,
    })
}

pub(super) async fn search(State(shared): State<Shared>, bytes: Bytes) -> Response {
    let req: SearchBody = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return validation(message),
    };
    let q = match check_search(&req) {
        Ok(q) => q,
        Err(message) => return validation(message),
    };
    let properties = or_default(req.properties.clone());
    let asked = Asked {
        properties: &properties,
        with_history: &[],
    };
    let inner = shared.lock();
    let portal = &inner.portal;
    let from = match search::id_floor(&q.groups) {
        Some(floor) => portal.companies.range(floor..),
        None => portal.companies.range(..),
    };
    let mut matched: Vec<_> = from
        .filter(|(_, c)| {
            q.groups.is_empty() || q.groups.iter().any(|g| g.iter().all(|f| f.matches(c)))
        })
        .filter(|(_, c)| {
            req.query
                .as_deref()
                .is_none_or(|text| search::matches_query(c, text))
        })
        .collect();
    if !search::in_id_order(&q.sorts, matched.iter().map(|(k, _)| *k)) {
        matched.sort_by(|a, b| search::order(&q.sorts, *a, *b));
    }
    let total = matched.len();
    let results: Vec<Value> = matched
        .iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|(key, c)| portal.render(key.id(), c, &asked))
        .collect();
    let mut body = json!({"total": total, "results": results});
    let next = q.offset + q.limit;
    if q.limit > 0 && next < total {
        body["paging"] =
            json!({"next": {"after": next.to_string(), "link": format!("?after={next}")}});
    }
    Json(body).into_response()
}

pub(super) async fn unknown_route() -> Response {
    not_found("no such route")
}

pub(super) async fn wrong_method() -> Response {
    errors::method_not_allowed()
}
