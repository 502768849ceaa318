//! HubSpot sandbox: an in-memory CRM v3 companies API on loopback that
//! answers as HubSpot's OpenAPI document (tests/contracts/hubspot/) and its
//! prose docs say: list with cursors, read by id, batch read and update
//! (207 for missing ids), search with filters, sorts and the 10,000-result
//! cap, every error in HubSpot's `Error` shape, and its rate limits (a
//! rolling ten-secondly window, search's secondly limit, the daily cap) as
//! enforced limits or scripted faults.
//!
//!
//! Like a real portal it knows which properties exist, with their
//! definitions (CRM properties v3, tests/contracts/hubspot/
//! properties.v3.json): a fresh portal holds HubSpot's standard company
//! properties and groups and none of the bridge's, which `hubwarp setup`
//! (or, in tests, [`crate::hubspot_setup::install_bridge_properties`])
//! creates. Asking for an unknown property leaves it out; asking for a
//! known one the company has no value for answers `null`; writing an
//! unknown one, or a value its definition does not take, is a 400.
//!
//! Tokens carry scopes, and each operation needs one of the scopes the
//! vendored documents' `security` lists for it (403 `MISSING_SCOPES`
//! otherwise); a token describes itself at HubSpot's private-app token
//! info.

mod direct;
mod errors;
mod gate;
mod properties;
mod property_routes;
mod routes;
mod scopes;
mod search;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use serde_json::{Map, Value};

pub use errors::Throttle;
use gate::{Fault, Limits};
use scopes::Tokens;
pub use scopes::{BRIDGE_SCOPES, HUBSPOT_SANDBOX_HUB_ID};
use store::Portal;

/// The private-app token the sandbox issues, with every scope the bridge
/// needs ([`BRIDGE_SCOPES`]). Tokens it did not issue answer 401; see
/// [`HubspotSandbox::add_token`] for one with other scopes.
pub const HUBSPOT_SANDBOX_TOKEN: &str = "pat-sandbox-token";

/// The operations, as the sandbox counts and logs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    Get,
    BatchRead,
    BatchUpdate,
    Search,
    /// `GET /crm/v3/properties/{objectType}`.
    PropertyList,
    /// `GET /crm/v3/properties/{objectType}/{propertyName}`.
    PropertyGet,
    /// `POST /crm/v3/properties/{objectType}`.
    PropertyCreate,
    /// `POST /crm/v3/properties/{objectType}/batch/create`.
    PropertyBatchCreate,
    /// `GET /crm/v3/properties/{objectType}/groups`.
    GroupList,
    /// `GET /crm/v3/properties/{objectType}/groups/{groupName}`.
    GroupGet,
    /// `POST /crm/v3/properties/{objectType}/groups`.
    GroupCreate,
    /// What a token says of itself: `POST /oauth/v2/private-apps/get/
    /// access-token-info` and `GET /oauth/v1/access-tokens/{token}`.
    TokenInfo,
    /// Unknown routes and methods.
    Other,
}

/// Requests received per route (refused ones included), and how many the
/// sandbox refused for rate limits or failed on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubspotCalls {
    pub total: u32,
    pub list: u32,
    pub get: u32,
    pub batch_read: u32,
    pub batch_update: u32,
    pub search: u32,
    pub property_list: u32,
    pub property_get: u32,
    pub property_create: u32,
    pub property_batch_create: u32,
    pub group_list: u32,
    pub group_get: u32,
    pub group_create: u32,
    pub token_info: u32,
    pub other: u32,
    pub rate_limited: u32,
    pub server_errors: u32,
}

impl HubspotCalls {
    fn count(&mut self, route: Route) {
        self.total += 1;
        *match route {
            Route::List => &mut self.list,
            Route::Get => &mut self.get,
            Route::BatchRead => &mut self.batch_read,
            Route::BatchUpdate => &mut self.batch_update,
            Route::Search => &mut self.search,
            Route::PropertyList => &mut self.property_list,
            Route::PropertyGet => &mut self.property_get,
            Route::PropertyCreate => &mut self.property_create,
            Route::PropertyBatchCreate => &mut self.property_batch_create,
            Route::GroupList => &mut self.group_list,
            Route::GroupGet => &mut self.group_get,
            Route::GroupCreate => &mut self.group_create,
            Route::TokenInfo => &mut self.token_info,
            Route::Other => &mut self.other,
        } += 1;
    }
}

/// One request as received, so tests can check what a client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub route: Route,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The body when it was JSON.
    pub body: Option<Value>,
}

/// A running sandbox. Dropping it stops the server.
pub struct HubspotSandbox {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    shared: Shared,
    /// None for a sandbox used only in process (no port bound).
    server: Option<tokio::task::JoinHandle<()>>,
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

    /// The sandbox without a server, for its in-process doors only
    /// (`CompanyDirectory`, `HubspotCompanies`).
    pub fn in_process() -> HubspotSandbox {
        HubspotSandbox {
            base_url: String::new(),
            shared: Shared::default(),
            server: None,
        }
    }

    /// Serves on `addr` (the demo's fixed port).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<HubspotSandbox> {
        let shared = Shared::default();
        let (base_url, server) = crate::serve(addr, router(shared.clone()), "HubSpot").await?;
        Ok(HubspotSandbox {
            base_url,
            shared,
            server: Some(server),
        })
    }

    /// Creates company `id` or merges `properties` into it: a test seeding
    /// data, not an API write. Values should be strings (HubSpot's wire
    /// type): numbers and booleans are stored as their text, null as a
    /// property without a value; none is checked against its definition.
    /// As a test convenience (HubSpot has no such thing) a property new to
    /// the portal is defined on the fly as text (`string`/`text`); seed after
    /// [`crate::hubspot_setup::install_bridge_properties`] for the bridge's
    /// properties to have their real types. `hs_object_id` is set to `id`;
    /// `createdate` (on creation) and `hs_lastmodifieddate` are set to now
    /// unless `properties` gives them, so tests can date changes.
    pub fn upsert_company(&self, id: &str, properties: Map<String, Value>) {
        self.shared.lock().portal.upsert(id, properties);
    }

    /// Deletes company `id` (HubSpot's deletion, or a merge's loser): reads
    /// no longer find it. False when there was none.
    pub fn delete_company(&self, id: &str) -> bool {
        self.shared
            .lock()
            .portal
            .companies
            .remove(&store::IdKey::new(id))
            .is_some()
    }

    /// Merges company `other` into `primary`, as a person does in HubSpot
    /// (and `POST /crm/v3/objects/companies/merge`): `primary` keeps its
    /// values and takes `other`'s where it has none; `other` is gone.
    /// False when either is missing or they are the same company.
    pub fn merge_companies(&self, primary: &str, other: &str) -> bool {
        self.shared.lock().portal.merge(primary, other).is_ok()
    }

    /// Every stored property of company `id`, system properties included.
    pub fn company(&self, id: &str) -> Option<Map<String, Value>> {
        self.shared
            .lock()
            .portal
            .get(id)
            .map(|c| c.properties.clone())
    }

    /// Makes `name` a text property of the portal (`string`/`text`), as
    /// creating one in HubSpot does, without giving any company a value. A
    /// test convenience; [`HubspotSandbox::create_property`] takes a whole
    /// definition.
    pub fn define_property(&self, name: &str) {
        self.shared.lock().portal.define(name);
    }

    /// Creates a company property from a `PropertyCreate`, checked as
    /// `POST /crm/v3/properties/companies` checks it; the refusal's message
    /// otherwise (a name taken, an unknown group, a type and field type
    /// that do not go together, an enumeration without options, ...).
    pub fn create_property(&self, def: Value) -> Result<(), String> {
        self.shared
            .lock()
            .portal
            .create_property(&def)
            .map(|_| ())
            .map_err(|refused| refused.message)
    }

    /// The company property `name` as `GET /crm/v3/properties/companies/
    /// {name}` shows it (HubSpot's `Property`).
    pub fn property(&self, name: &str) -> Option<Value> {
        self.shared.lock().portal.schema.get(name).cloned()
    }

    /// Every company property definition, as `GET /crm/v3/properties/
    /// companies` lists them.
    pub fn properties(&self) -> Vec<Value> {
        self.shared.lock().portal.schema.all().cloned().collect()
    }

    /// Every company property group (HubSpot's `PropertyGroup`).
    pub fn property_groups(&self) -> Vec<Value> {
        self.shared.lock().portal.schema.groups().cloned().collect()
    }

    /// Creates a company property group from a `PropertyGroupCreate`, as
    /// `POST /crm/v3/properties/companies/groups` does.
    pub fn create_property_group(&self, group: Value) -> Result<(), String> {
        self.shared
            .lock()
            .portal
            .schema
            .create_group(&group)
            .map(|_| ())
            .map_err(|refused| refused.message)
    }

    /// Issues `token`, holding exactly `scopes` (for tests of a token that
    /// lacks one; [`HUBSPOT_SANDBOX_TOKEN`] holds [`BRIDGE_SCOPES`]). Issuing
    /// a token again replaces its scopes.
    pub fn add_token(&self, token: &str, scopes: &[&str]) {
        self.shared.lock().tokens.add(token, scopes);
    }

    /// Requests received (refused ones included) since start or the last
    /// `reset_calls`.
    pub fn calls(&self) -> u32 {
        self.shared.lock().calls.total
    }

    /// The same, per route.
    pub fn call_counts(&self) -> HubspotCalls {
        self.shared.lock().calls
    }

    /// Clears the counts and the log of received requests.
    pub fn reset_calls(&self) {
        let mut inner = self.shared.lock();
        inner.calls = HubspotCalls::default();
        inner.received.clear();
    }

    /// Every request received on `route`, oldest first.
    pub fn received(&self, route: Route) -> Vec<Received> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|r| r.route == route)
            .cloned()
            .collect()
    }

    /// The JSON bodies received on `route`, oldest first.
    pub fn request_bodies(&self, route: Route) -> Vec<Value> {
        self.received(route)
            .into_iter()
            .filter_map(|r| r.body)
            .collect()
    }

    /// The next `times` requests answer 429 (ten-secondly limit, with
    /// `Retry-After: 1`), replacing any scripted faults.
    pub fn set_rate_limited(&self, times: u32) {
        let mut inner = self.shared.lock();
        inner.limits.script.clear();
        drop(inner);
        self.throttle_next(Throttle::TenSecondly, times);
    }

    /// After the faults already scripted, the next `times` requests (any
    /// route) answer a 429 of `kind`. Seconds-long limits come with
    /// `Retry-After: 1`, so tests stay fast; the daily one without, as
    /// HubSpot leaves the reset time unsaid.
    pub fn throttle_next(&self, kind: Throttle, times: u32) {
        let retry_after = match kind {
            Throttle::TenSecondly | Throttle::Secondly => Some(1),
            Throttle::Daily => None,
        };
        self.throttle_next_with_retry_after(kind, times, retry_after);
    }

    /// [`HubspotSandbox::throttle_next`] with a chosen `Retry-After` (seconds).
    pub fn throttle_next_with_retry_after(
        &self,
        kind: Throttle,
        times: u32,
        retry_after: Option<u32>,
    ) {
        self.script(Fault::Throttle { kind, retry_after }, times);
    }

    /// After the faults already scripted, the next `times` requests answer
    /// `status` (a 5xx) in HubSpot's error shape, and change nothing.
    pub fn fail_next(&self, status: u16, times: u32) {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(StatusCode::is_server_error)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.script(Fault::ServerError(status), times);
    }

    fn script(&self, fault: Fault, times: u32) {
        if times > 0 {
            self.shared.lock().limits.script.push_back((fault, times));
        }
    }

    /// Enforces HubSpot's rolling ten-secondly window: more than `n`
    /// requests (search excluded) within any 10 s answer 429. `None` (the
    /// default) enforces nothing and sends no window headers.
    pub fn set_ten_secondly_limit(&self, n: Option<u32>) {
        self.shared.lock().limits.ten_secondly = n;
    }

    /// Enforces search's own limit: more than `n` searches within any
    /// second answer 429 (`SECONDLY`). `None` (the default) enforces nothing.
    pub fn set_search_per_second(&self, n: Option<u32>) {
        self.shared.lock().limits.search_per_second = n;
    }
}

impl Drop for HubspotSandbox {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
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
    portal: Portal,
    tokens: Tokens,
    calls: HubspotCalls,
    received: Vec<Received>,
    limits: Limits,
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/crm/v3/objects/companies",
            get(routes::list).post(routes::create),
        )
        .route("/crm/v3/objects/companies/merge", post(routes::merge))
        .route("/crm/v3/objects/companies/{id}", get(routes::get))
        .route(
            "/crm/v3/objects/companies/batch/read",
            post(routes::batch_read),
        )
        .route(
            "/crm/v3/objects/companies/batch/update",
            post(routes::batch_update),
        )
        .route("/crm/v3/objects/companies/search", post(routes::search))
        .route(
            "/crm/v3/properties/{object_type}",
            get(property_routes::list).post(property_routes::create),
        )
        .route(
            "/crm/v3/properties/{object_type}/batch/create",
            post(property_routes::batch_create),
        )
        .route(
            "/crm/v3/properties/{object_type}/groups",
            get(property_routes::groups).post(property_routes::create_group),
        )
        .route(
            "/crm/v3/properties/{object_type}/groups/{group_name}",
            get(property_routes::group),
        )
        .route(
            "/crm/v3/properties/{object_type}/{property_name}",
            get(property_routes::get),
        )
        .route(
            "/oauth/v2/private-apps/get/access-token-info",
            post(property_routes::private_app_token),
        )
        .route(
            "/oauth/v1/access-tokens/{token}",
            get(property_routes::oauth_token),
        )
        .fallback(routes::unknown_route)
        .method_not_allowed_fallback(routes::wrong_method)
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared)
}
