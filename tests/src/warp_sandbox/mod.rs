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
//!
//! Here: the public types and the sandbox's own methods; its time, the
//! customer's shape and PUT rules, its state, the HTTP API, the error
//! envelope, the in-process doors and the demo's customers are submodules.

mod demo;
mod direct;
mod errors;
mod http;
mod shape;
mod state;
mod time;

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::Value;

pub use demo::{demo_company_id, demo_customer, shuffled_company_id};
pub(crate) use time::{now_ms, rfc3339};

use http::router;
use shape::{check_patch, complete, parse_patch};
use state::Shared;

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

#[derive(Clone, Copy)]
enum Route {
    List,
    Get,
    GetByBan,
    Put,
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
