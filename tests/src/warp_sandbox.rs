//! WARP sandbox: an in-memory server on loopback that honours the customer API
//! contract of `warp-api.md` (routes, envelopes, partial PUT, ETag/If-Match),
//! with scripted faults and per-route call counts.
//!
//! It is the test peer of the WARP client and of the sync consumer, and the
//! WARP of the local demo (`warp-sandbox` binary). Anything it accepts or
//! refuses is what the contract says the gateway accepts or refuses, so a
//! client that passes against it is only wrong where the contract is.
//!
//! Beyond the contract page (choices the page leaves open):
//! - every successful PUT is a write: it bumps `etag` and `updated_at` even
//!   when it changes no value (WARP keeps no per-field timestamps);
//! - field values are type-checked (money is a decimal string, `status` one of
//!   the four values, `services.*` booleans, other fields strings; null is
//!   always allowed): a wrong type answers 422 `VALIDATION_ERROR`;
//! - `If-Match: *` matches any existing customer;
//! - faults apply before authentication, as a gateway's throttling would.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

use hubwarp::reconcile::ports::WarpCustomers;
use hubwarp::warp::WarpApi;
use hubwarp::warp::{Customer, Page, WarpError};

/// The bearer token the sandbox accepts; any other answers 401.
pub const SANDBOX_TOKEN: &str = "warp-sandbox-token";

const LIST_PATH: &str = "/v1/customers";
const ONE_PATH: &str = "/v1/customers/{id}";
const BY_BAN_PATH: &str = "/v1/customers/by-ban/{ban}";

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

/// Requests the sandbox answered, per route. Faulted and refused requests
/// count in their route too, and also in `rejected` when the answer was not
/// 2xx (requests matching no route count only there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub list: u32,
    pub get: u32,
    pub get_by_ban: u32,
    pub put: u32,
    /// 401/404/412/422/429/5xx (and 400) answers.
    pub rejected: u32,
}

/// A scripted misbehaviour for the next `times` API requests (all routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 429 `RATE_LIMITED` with `Retry-After: <retry_after_s>`.
    RateLimited {
        retry_after_s: u32,
        times: u32,
    },
    /// 500 `INTERNAL_ERROR`.
    ServerError {
        times: u32,
    },
    /// Sleeps `delay_ms`, then serves the request normally.
    Slow {
        delay_ms: u64,
        times: u32,
    },
}

/// A running sandbox. Dropping it stops the server, so keep it alive for as
/// long as its `base_url` is in use.
pub struct WarpSandbox {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    shared: Shared,
    /// None for a sandbox used only in process (no port bound).
    server: Option<tokio::task::JoinHandle<()>>,
}

impl WarpSandbox {
    /// Serves on an ephemeral loopback port, on a task of the current runtime.
    pub async fn start() -> WarpSandbox {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        match Self::start_on(addr).await {
            Ok(sandbox) => sandbox,
            Err(e) => panic!("binding the WARP sandbox on {addr}: {e}"),
        }
    }

    /// The sandbox without a server, for its in-process doors only
    /// (`WarpApi`, `WarpCustomers`): thousands of histories need no port.
    pub fn in_process() -> WarpSandbox {
        WarpSandbox {
            base_url: String::new(),
            shared: Shared::default(),
            server: None,
        }
    }

    /// Serves on `addr`, on a task of the current runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<WarpSandbox> {
        let shared = Shared::default();
        let (base_url, server) = crate::serve(addr, router(shared.clone()), "WARP").await?;
        Ok(WarpSandbox {
            base_url,
            shared,
            server: Some(server),
        })
    }

    /// Seeds a customer (replacing one with the same `id`). Fills `id` (uuid
    /// v4), `created_at` and `updated_at` when absent, `etag` (`"1"`) when
    /// absent or not of the form `"N"`, and every other contract field
    /// absent from `customer` with null. Returns the stored customer.
    ///
    /// Panics when `customer` is not a JSON object (a test bug).
    pub fn insert(&self, customer: Value) -> Value {
        let Value::Object(customer) = customer else {
            panic!("WarpSandbox::insert takes a JSON object, got {customer}");
        };
        let mut inner = self.shared.lock();
        let stamp = inner.clock.stamp();
        let customer = complete(customer, &stamp);
        let stored = Value::Object(customer.clone());
        inner.upsert(customer);
        stored
    }

    /// The stored customer with this `id`.
    pub fn customer(&self, id: &str) -> Option<Value> {
        let inner = self.shared.lock();
        inner
            .position(id)
            .map(|i| Value::Object(inner.customers[i].clone()))
    }

    /// Every customer, in list order (insertion order).
    pub fn customers(&self) -> Vec<Value> {
        let inner = self.shared.lock();
        inner.customers.iter().cloned().map(Value::Object).collect()
    }

    /// A WARP-side edit, as if a user changed the customer in WARP: the merge
    /// rules of PUT, then `etag` and `updated_at` bump. None when absent.
    ///
    /// Panics when `patch` would be refused by PUT (a test bug).
    pub fn edit(&self, id: &str, patch: Value) -> Option<Value> {
        let patch = match parse_patch(&patch).and_then(|p| check_patch(&p).map(|()| p)) {
            Ok(patch) => patch,
            Err(e) => panic!("WarpSandbox::edit: {}: {}", e.code, e.message),
        };
        let mut inner = self.shared.lock();
        let index = inner.position(id)?;
        Some(Value::Object(inner.write(index, patch)))
    }

    /// Requests answered since start or the last `reset_calls`.
    pub fn calls(&self) -> Calls {
        self.shared.lock().calls
    }

    pub fn reset_calls(&self) {
        self.shared.lock().calls = Calls::default();
    }

    /// Applies `fault` to the next `times` requests, then clears itself.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }
}

impl Drop for WarpSandbox {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A realistic customer number `n` (deterministic, including its `id`), for
/// seeding tests and the demo. Its HubSpot company id is `18476215990 + n`.
pub fn demo_customer(n: usize) -> Value {
    const NAMES: [&str; 16] = [
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
        "Stark",
        "Wayne",
        "Hooli",
        "Vandelay",
        "Soylent",
        "Cyberdyne",
        "Tyrell",
        "Wonka",
        "Oceanic",
        "Aperture",
        "Pied Piper",
        "Dunder",
    ];
    const KINDS: [&str; 8] = [
        "Corp",
        "Telecom",
        "Networks",
        "Logistics",
        "Health",
        "Labs",
        "Holdings",
        "Media",
    ];
    const PLACES: [(&str, &str, &str, &str); 8] = [
        ("Denver", "CO", "80202", "303"),
        ("Austin", "TX", "78701", "512"),
        ("Seattle", "WA", "98101", "206"),
        ("Chicago", "IL", "60601", "312"),
        ("Boston", "MA", "02108", "617"),
        ("Atlanta", "GA", "30303", "404"),
        ("Phoenix", "AZ", "85004", "602"),
        ("Portland", "OR", "97204", "503"),
    ];
    const PEOPLE: [(&str, &str); 8] = [
        ("Ada", "Lovelace"),
        ("Grace", "Hopper"),
        ("Alan", "Turing"),
        ("Katherine", "Johnson"),
        ("Edsger", "Dijkstra"),
        ("Barbara", "Liskov"),
        ("Donald", "Knuth"),
        ("Frances", "Allen"),
    ];
    // Mostly active, like a real book of business.
    const STATUS_MIX: [&str; 10] = [
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "SUSPENDED",
        "PENDING",
        "CLOSED",
    ];
    const TERMS: [&str; 4] = ["NET15", "NET30", "NET45", "NET60"];
    const TIERS: [&str; 4] = ["BRONZE", "SILVER", "GOLD", "PLATINUM"];

    let name = NAMES[n % NAMES.len()];
    let mut company_name = format!("{name} {}", KINDS[(n / NAMES.len()) % KINDS.len()]);
    let cycle = n / (NAMES.len() * KINDS.len());
    if cycle > 0 {
        company_name.push_str(&format!(" {}", cycle + 1));
    }
    let domain = format!("{}{n}.example", name.to_lowercase().replace(' ', ""));
    let (city, state, zip, area) = PLACES[n % PLACES.len()];
    let (first, last) = PEOPLE[(n / 3) % PEOPLE.len()];
    let limit_cents = 100_000 * (1 + n as u64 % 25);
    let balance_cents = (n as u64 * 7_919 * 13) % limit_cents;
    // Created one every eight hours from 6 Jan 2025, changed 1-30 days later.
    let created_ms = 1_736_121_600_000 + n as i64 * 86_400_000 / 3 + (n as i64 % 7) * 3_600_000;
    let updated_ms = created_ms + (1 + n as i64 % 30) * 86_400_000;
    json!({
        "id": demo_id(n),
        "ban": format!("ZT-48739{n:04}"),
        "company_name": company_name,
        "status": STATUS_MIX[n % STATUS_MIX.len()],
        "credit_limit": money(limit_cents),
        "current_balance": money(balance_cents),
        "payment_terms": TERMS[n % TERMS.len()],
        "tier": TIERS[(n / 2) % TIERS.len()],
        "services": {
            "voice": n % 4 != 3,
            "messaging": n.is_multiple_of(3),
            "data": n.is_multiple_of(2),
        },
        "contact": {
            "name": format!("{first} {last}"),
            "email": format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
            "phone": format!("+1{area}555{:04}", n % 10_000),
        },
        "address": {
            "line1": format!("{} Main St", 100 + (n * 37) % 900),
            "line2": n.is_multiple_of(5).then(|| format!("Suite {}", 100 + n % 400)),
            "city": city,
            "state": state,
            "postal_code": zip,
            "country": "US",
        },
        "external_ids": {"hubspot_company_id": (18_476_215_990 + n as u64).to_string()},
        "created_at": rfc3339(created_ms, false),
        "updated_at": rfc3339(updated_ms, false),
        "etag": "\"1\"",
    })
}

/// A uuid v4 derived from `n`, so the demo's ids survive a restart.
fn demo_id(n: usize) -> String {
    let mut bytes = [0u8; 16];
    let (hi, lo) = bytes.split_at_mut(8);
    hi.copy_from_slice(&splitmix64(n as u64).to_be_bytes());
    lo.copy_from_slice(&splitmix64(!(n as u64)).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

// ---------------------------------------------------------------------------
// Time

/// `epoch_ms` as RFC 3339 UTC (`2025-10-14T09:00:00.123Z`, or without the
/// fraction when `millis` is false). Shared with the HubSpot sandbox.
pub(crate) fn rfc3339(epoch_ms: i64, millis: bool) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
    );
    if millis {
        let ms = ms_of_day % 1000;
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), to avoid a date crate for one format.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The library's clock, so a test that models time (tests/model) dates
/// WARP's and HubSpot's writes on the same clock as the functions.
pub(crate) fn now_ms() -> i64 {
    hubwarp::time::now_ms()
}

/// Hands out write times that strictly increase, even within one
/// millisecond, so `updated_at` orders every write (last-writer-wins relies
/// on it).
#[derive(Default)]
struct Clock {
    last_ms: i64,
}

impl Clock {
    fn stamp(&mut self) -> String {
        self.last_ms = now_ms().max(self.last_ms + 1);
        rfc3339(self.last_ms, true)
    }
}

// ---------------------------------------------------------------------------
// Customer shape and the PUT rules

/// How a field's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Money,
    Status,
    Flag,
}

const READ_ONLY: [&str; 5] = ["id", "ban", "created_at", "updated_at", "etag"];

const SCALARS: [(&str, Kind); 6] = [
    ("company_name", Kind::Text),
    ("status", Kind::Status),
    ("credit_limit", Kind::Money),
    ("current_balance", Kind::Money),
    ("payment_terms", Kind::Text),
    ("tier", Kind::Text),
];

const NESTED: [(&str, &[&str], Kind); 4] = [
    ("services", &["voice", "messaging", "data"], Kind::Flag),
    ("contact", &["name", "email", "phone"], Kind::Text),
    (
        "address",
        &["line1", "line2", "city", "state", "postal_code", "country"],
        Kind::Text,
    ),
    ("external_ids", &["hubspot_company_id"], Kind::Text),
];

const STATUSES: [&str; 4] = ["ACTIVE", "SUSPENDED", "PENDING", "CLOSED"];

fn nested_keys(field: &str) -> Option<(&'static [&'static str], Kind)> {
    NESTED
        .iter()
        .find(|(name, _, _)| *name == field)
        .map(|&(_, keys, kind)| (keys, kind))
}

fn scalar_kind(field: &str) -> Option<Kind> {
    SCALARS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|&(_, kind)| kind)
}

fn nulls(keys: &[&str]) -> Map<String, Value> {
    keys.iter().map(|k| (k.to_string(), Value::Null)).collect()
}

/// A seeded customer with every contract field present, so that clients see
/// the full shape whatever a test chose to seed.
fn complete(mut customer: Map<String, Value>, stamp: &str) -> Map<String, Value> {
    if !customer.contains_key("id") {
        customer.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    }
    customer.entry("ban").or_insert(Value::Null);
    for (field, _) in SCALARS {
        customer.entry(field).or_insert(Value::Null);
    }
    for (field, keys, _) in NESTED {
        let slot = customer
            .entry(field)
            .or_insert_with(|| Value::Object(nulls(keys)));
        if let Value::Object(fields) = slot {
            for key in keys {
                fields.entry(*key).or_insert(Value::Null);
            }
        }
    }
    customer.entry("created_at").or_insert(stamp.into());
    customer.entry("updated_at").or_insert(stamp.into());
    let etag_ok = customer
        .get("etag")
        .and_then(Value::as_str)
        .and_then(etag_number)
        .is_some();
    if !etag_ok {
        customer.insert("etag".into(), "\"1\"".into());
    }
    customer
}

/// The N of an etag `"N"`.
fn etag_number(etag: &str) -> Option<u64> {
    etag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

fn parse_patch(body: &Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(patch) => Ok(patch.clone()),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            "the body must be a JSON object",
        )),
    }
}

/// The PUT body rules: read-only fields first (so the answer does not depend
/// on key order), then unknown fields and value types.
fn check_patch(patch: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(field) = patch.keys().find(|k| READ_ONLY.contains(&k.as_str())) {
        return Err(ApiError::unprocessable(
            "IMMUTABLE_FIELD",
            format!("field '{field}' cannot be changed"),
        ));
    }
    for (field, value) in patch {
        if let Some(kind) = scalar_kind(field) {
            check_value(field, kind, value)?;
        } else if let Some((keys, kind)) = nested_keys(field) {
            check_nested(field, keys, kind, value)?;
        } else {
            return Err(unknown_field(field));
        }
    }
    Ok(())
}

fn check_nested(field: &str, keys: &[&str], kind: Kind, value: &Value) -> Result<(), ApiError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(fields) => fields.iter().try_for_each(|(key, value)| {
            let path = format!("{field}.{key}");
            if keys.contains(&key.as_str()) {
                check_value(&path, kind, value)
            } else {
                Err(unknown_field(&path))
            }
        }),
        _ => Err(invalid_value(field, "an object or null")),
    }
}

fn check_value(field: &str, kind: Kind, value: &Value) -> Result<(), ApiError> {
    let ok = match (kind, value) {
        (_, Value::Null) => true,
        (Kind::Text, Value::String(_)) => true,
        (Kind::Money, Value::String(s)) => is_decimal(s),
        (Kind::Status, Value::String(s)) => STATUSES.contains(&s.as_str()),
        (Kind::Flag, Value::Bool(_)) => true,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::Text => "a string",
        Kind::Money => "a decimal string such as \"1234.56\"",
        Kind::Status => "one of ACTIVE, SUSPENDED, PENDING, CLOSED",
        Kind::Flag => "a boolean",
    };
    Err(invalid_value(field, expected))
}

/// `-?digits(.digits)?`: money is never a float nor an exponent.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

/// Merges a checked patch: top-level fields replace, nested objects merge
/// key by key, null sets a field (or a whole nested object) to null.
fn apply_patch(customer: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (field, value) in patch {
        match (nested_keys(&field), value) {
            (Some((keys, _)), Value::Object(fields)) => {
                let slot = customer.entry(field).or_insert(Value::Null);
                if !slot.is_object() {
                    *slot = Value::Object(nulls(keys));
                }
                if let Value::Object(target) = slot {
                    target.extend(fields);
                }
            }
            (_, value) => {
                customer.insert(field, value);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// State

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    /// The state stays usable after a panicking test thread: a poisoned lock
    /// still holds consistent data (every write completes under the lock).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    /// In list order (insertion order).
    customers: Vec<Map<String, Value>>,
    /// Positions in `customers` by `id`, and by `ban` (the first customer
    /// in list order with it). A scan per lookup made seeding quadratic:
    /// 100,000 customers took longer than the run they were seeded for.
    /// `id` and `ban` are read-only to PUT, so only `upsert` moves them.
    by_id: HashMap<String, usize>,
    by_ban: HashMap<String, usize>,
    calls: Calls,
    fault: Fault,
    clock: Clock,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            customers: Vec::new(),
            by_id: HashMap::new(),
            by_ban: HashMap::new(),
            calls: Calls::default(),
            fault: Fault::None,
            clock: Clock::default(),
        }
    }
}

fn text<'a>(customer: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    customer.get(field).and_then(Value::as_str)
}

impl Inner {
    fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn by_ban(&self, ban: &str) -> Option<&Map<String, Value>> {
        self.by_ban.get(ban).map(|&i| &self.customers[i])
    }

    fn upsert(&mut self, customer: Map<String, Value>) {
        let id = text(&customer, "id").map(str::to_string);
        let ban = text(&customer, "ban").map(str::to_string);
        let index = match id.as_deref().and_then(|id| self.position(id)) {
            Some(i) => {
                let old = std::mem::replace(&mut self.customers[i], customer);
                if let Some(old_ban) = text(&old, "ban")
                    && ban.as_deref() != Some(old_ban)
                {
                    self.unindex_ban(old_ban, i);
                }
                i
            }
            None => {
                self.customers.push(customer);
                let i = self.customers.len() - 1;
                if let Some(id) = id {
                    self.by_id.insert(id, i);
                }
                i
            }
        };
        if let Some(ban) = ban {
            // The first in list order keeps the BAN, as a scan would find it.
            let first = self.by_ban.entry(ban).or_insert(index);
            *first = (*first).min(index);
        }
    }

    /// Customer `index` no longer has `ban`: the next one in list order with
    /// it, if any, takes the index (a rare replacement; a scan is fine).
    fn unindex_ban(&mut self, ban: &str, index: usize) {
        if self.by_ban.get(ban) != Some(&index) {
            return;
        }
        match self
            .customers
            .iter()
            .position(|c| text(c, "ban") == Some(ban))
        {
            Some(next) => self.by_ban.insert(ban.to_string(), next),
            None => self.by_ban.remove(ban),
        };
    }

    /// Applies a checked patch to customer `index` as one write.
    fn write(&mut self, index: usize, patch: Map<String, Value>) -> Map<String, Value> {
        let stamp = self.clock.stamp();
        let customer = &mut self.customers[index];
        apply_patch(customer, patch);
        let next = customer
            .get("etag")
            .and_then(Value::as_str)
            .and_then(etag_number)
            .unwrap_or(0)
            + 1;
        customer.insert("etag".into(), format!("\"{next}\"").into());
        customer.insert("updated_at".into(), stamp.into());
        customer.clone()
    }

    /// The fault for this request, if any, counting it down.
    fn take_fault(&mut self) -> Fault {
        let fault = self.fault;
        let times = match &mut self.fault {
            Fault::None => return Fault::None,
            Fault::RateLimited { times, .. }
            | Fault::ServerError { times }
            | Fault::Slow { times, .. } => times,
        };
        // `times: 0` is a fault that never fires.
        let fires = *times > 0;
        *times = times.saturating_sub(1);
        if *times == 0 {
            self.fault = Fault::None;
        }
        if fires { fault } else { Fault::None }
    }

    fn count(&mut self, route: Option<Route>) {
        let calls = &mut self.calls;
        match route {
            Some(Route::List) => calls.list += 1,
            Some(Route::Get) => calls.get += 1,
            Some(Route::GetByBan) => calls.get_by_ban += 1,
            Some(Route::Put) => calls.put += 1,
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------
// In process

/// The sandbox's own state and PUT rules without the HTTP hop, for tests
/// that drive thousands of histories (tests/model): the same customers,
/// validation, ETags and `updated_at` as over HTTP, read into the client's
/// `Customer` by the client's own reader.
impl WarpSandbox {
    fn answer(customer: &Map<String, Value>) -> Result<Customer, WarpError> {
        Customer::from_json(Value::Object(customer.clone()), None)
    }

    fn refusal(e: ApiError) -> WarpError {
        match e.status {
            StatusCode::NOT_FOUND => WarpError::NotFound,
            StatusCode::PRECONDITION_FAILED => WarpError::PreconditionFailed,
            s => WarpError::Rejected {
                status: s.as_u16(),
                code: e.code.to_string(),
                message: e.message,
            },
        }
    }
}

impl WarpApi for WarpSandbox {
    async fn get(&self, id: &str) -> Result<Customer, WarpError> {
        let inner = self.shared.lock();
        let index = inner.position(id).ok_or(WarpError::NotFound)?;
        Self::answer(&inner.customers[index])
    }

    async fn by_ban(&self, ban: &str) -> Result<Customer, WarpError> {
        let inner = self.shared.lock();
        inner
            .by_ban(ban)
            .ok_or(WarpError::NotFound)
            .and_then(Self::answer)
    }

    async fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Customer, WarpError> {
        let mut inner = self.shared.lock();
        let index = inner.position(id).ok_or(WarpError::NotFound)?;
        check_patch(body).map_err(Self::refusal)?;
        let mut headers = HeaderMap::new();
        if let Some(tag) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(IF_MATCH, tag);
        }
        check_if_match(&headers, &inner.customers[index]).map_err(Self::refusal)?;
        Self::answer(&inner.write(index, body.clone()))
    }
}

impl WarpCustomers for WarpSandbox {
    async fn list_page(&self, page: u32, per_page: u32) -> Result<Page, WarpError> {
        let inner = self.shared.lock();
        let per = u64::from(per_page.clamp(1, MAX_PER_PAGE as u32));
        let total = inner.customers.len() as u64;
        let start = (u64::from(page.max(1)) - 1).saturating_mul(per).min(total) as usize;
        let end = (start + per as usize).min(total as usize);
        let items = inner.customers[start..end]
            .iter()
            .map(Self::answer)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            page: page.max(1),
            total_pages: total.div_ceil(per) as u32,
            total,
        })
    }
}

// ---------------------------------------------------------------------------
// HTTP

#[derive(Clone, Copy)]
enum Route {
    List,
    Get,
    GetByBan,
    Put,
}

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

fn router(shared: Shared) -> Router {
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
fn check_if_match(headers: &HeaderMap, customer: &Map<String, Value>) -> Result<(), ApiError> {
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

/// An answer in the error envelope.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
}

fn unknown_field(field: &str) -> ApiError {
    ApiError::unprocessable("UNKNOWN_FIELD", format!("unknown field '{field}'"))
}

fn invalid_value(field: &str, expected: &str) -> ApiError {
    ApiError::unprocessable(
        "VALIDATION_ERROR",
        format!("field '{field}' must be {expected}"),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": {"code": self.code, "message": self.message},
        });
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, true), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_760_432_400_000, false), "2025-10-14T09:00:00Z");
        assert_eq!(rfc3339(951_782_400_123, true), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(-1, true), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn money_must_be_a_plain_decimal() {
        for ok in ["0", "5000.00", "-12.5", "1234.56"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", "1e3", "1.", ".5", "12,00", "NaN", "--1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn demo_customers_are_complete_and_distinct() {
        let a = demo_customer(12);
        assert_eq!(a["ban"], "ZT-487390012");
        assert_eq!(a["external_ids"]["hubspot_company_id"], "18476216002");
        assert_eq!(a, demo_customer(12));
        assert_ne!(a["id"], demo_customer(13)["id"]);
        let mut patch = a.as_object().cloned().unwrap_or_default();
        patch.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
        assert!(check_patch(&patch).is_ok(), "{patch:?}");
    }
}
