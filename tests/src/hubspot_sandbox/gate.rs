//! HubSpot's edge, before any operation runs: every request counted and
//! logged, scripted faults, the token and its scopes (the operation's, from
//! the vendored documents: scopes.rs), then the rate limits (the token's
//! rolling ten-secondly window, search's secondly one, the daily cap), and
//! the `X-HubSpot-RateLimit-*` headers on what passes. Token info names its
//! token in the body or path, and needs no `Authorization`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::errors::{self, Throttle, set};
use super::{Received, Route, Shared, scopes};

/// HubSpot's smallest daily cap (Free/Starter private apps).
const DAILY_CAP: u64 = 250_000;
const BODY_LIMIT: usize = 8 << 20;
const TEN_SECONDS: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

impl Route {
    fn of(method: &Method, path: &str) -> Self {
        if let Some(rest) = path.strip_prefix("/crm/v3/properties/") {
            return Self::of_properties(method, rest);
        }
        match (method, path) {
            (&Method::POST, "/oauth/v2/private-apps/get/access-token-info") => {
                return Self::TokenInfo;
            }
            (&Method::GET, p)
                if p.strip_prefix("/oauth/v1/access-tokens/")
                    .is_some_and(|t| !t.is_empty() && !t.contains('/')) =>
            {
                return Self::TokenInfo;
            }
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/crm/v3/objects/companies") else {
            return Self::Other;
        };
        match (method, rest) {
            (&Method::GET, "" | "/") => Self::List,
            (&Method::POST, "/batch/read") => Self::BatchRead,
            (&Method::POST, "/batch/update") => Self::BatchUpdate,
            (&Method::POST, "/search") => Self::Search,
            (&Method::GET, id) if id.len() > 1 && !id[1..].contains('/') => Self::Get,
            _ => Self::Other,
        }
    }

    /// `rest`: what follows `/crm/v3/properties/` (any object type: an
    /// unsupported one is still a call of the route).
    fn of_properties(method: &Method, rest: &str) -> Self {
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Self::Other;
        }
        match (method, parts.as_slice()) {
            (&Method::GET, [_]) => Self::PropertyList,
            (&Method::POST, [_]) => Self::PropertyCreate,
            (&Method::POST, [_, "batch", "create"]) => Self::PropertyBatchCreate,
            (&Method::GET, [_, "groups"]) => Self::GroupList,
            (&Method::POST, [_, "groups"]) => Self::GroupCreate,
            (&Method::GET, [_, "groups", _]) => Self::GroupGet,
            (&Method::GET, [_, _]) => Self::PropertyGet,
            _ => Self::Other,
        }
    }
}

/// A fault the next requests answer with, whatever their route.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    Throttle {
        kind: Throttle,
        retry_after: Option<u32>,
    },
    ServerError(StatusCode),
}

/// The rate limits and scripted faults in force.
#[derive(Default)]
pub(super) struct Limits {
    pub ten_secondly: Option<u32>,
    pub search_per_second: Option<u32>,
    general: VecDeque<Instant>,
    searches: VecDeque<Instant>,
    daily_used: u64,
    pub script: VecDeque<(Fault, u32)>,
}

/// What the rate-limit headers of a passing answer say.
struct Budget {
    /// `(max, remaining)` of the ten-secondly window, when one is set.
    window: Option<(u32, u32)>,
    daily_remaining: u64,
}

/// Keeps `log` to the requests of the last `window` and admits one more
/// when fewer than `max` are in it. Refused requests are not logged: a
/// client that waits, then retries, gets in once the window has room.
fn admit(log: &mut VecDeque<Instant>, max: u32, window: Duration, now: Instant) -> Option<u32> {
    while log
        .front()
        .is_some_and(|&t| now.duration_since(t) >= window)
    {
        log.pop_front();
    }
    if log.len() >= max as usize {
        return None;
    }
    log.push_back(now);
    Some(max - log.len() as u32)
}

impl Limits {
    pub(super) fn next_fault(&mut self) -> Option<Fault> {
        let (fault, times) = self.script.front_mut()?;
        let fault = *fault;
        *times -= 1;
        if *times == 0 {
            self.script.pop_front();
        }
        Some(fault)
    }

    fn admit(&mut self, route: Route, now: Instant) -> Result<Budget, Throttle> {
        if self.daily_used >= DAILY_CAP {
            return Err(Throttle::Daily);
        }
        let window = if route == Route::Search {
            if let Some(max) = self.search_per_second {
                admit(&mut self.searches, max, ONE_SECOND, now).ok_or(Throttle::Secondly)?;
            }
            None
        } else {
            match self.ten_secondly {
                Some(max) => Some((
                    max,
                    admit(&mut self.general, max, TEN_SECONDS, now).ok_or(Throttle::TenSecondly)?,
                )),
                None => None,
            }
        };
        self.daily_used += 1;
        Ok(Budget {
            window,
            daily_remaining: DAILY_CAP - self.daily_used,
        })
    }

    /// The window size the 429 headers report.
    fn window_max(&self) -> u32 {
        self.ten_secondly.unwrap_or(100)
    }
}

pub(super) async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let route = Route::of(request.method(), request.uri().path());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return errors::validation("request body too large");
    };
    let fault = {
        let mut inner = shared.lock();
        inner.calls.count(route);
        inner.received.push(Received {
            route,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(String::from),
            body: serde_json::from_slice::<Value>(&bytes).ok(),
        });
        inner
            .limits
            .next_fault()
            .map(|fault| (fault, inner.limits.window_max()))
    };
    match fault {
        Some((Fault::Throttle { kind, retry_after }, max)) => {
            shared.lock().calls.rate_limited += 1;
            return errors::throttled(kind, max, retry_after);
        }
        Some((Fault::ServerError(status), _)) => {
            shared.lock().calls.server_errors += 1;
            return errors::server_error(status);
        }
        None => {}
    }
    if route != Route::TokenInfo {
        let token = bearer(&parts.headers);
        let granted = token.and_then(|t| shared.lock().tokens.get(t).map(|g| g.scopes.clone()));
        let Some(granted) = granted else {
            return errors::unauthorized();
        };
        let path = parts.uri.path();
        if let Some(op) = scopes::operation(&parts.method, path)
            && !op.allows(&granted)
        {
            return errors::missing_scopes(op.named_for(path));
        }
    }
    let admitted = {
        let mut inner = shared.lock();
        let admitted = inner.limits.admit(route, Instant::now());
        if admitted.is_err() {
            inner.calls.rate_limited += 1;
        }
        admitted.map_err(|kind| (kind, inner.limits.window_max()))
    };
    let budget = match admitted {
        Ok(budget) => budget,
        // HubSpot's own window 429s name no Retry-After: the client waits
        // out the interval the headers give.
        Err((kind, max)) => return errors::throttled(kind, max, None),
    };
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if route != Route::Search {
        let headers = response.headers_mut();
        if let Some((max, remaining)) = budget.window {
            set(headers, "x-hubspot-ratelimit-max", max.into());
            set(headers, "x-hubspot-ratelimit-remaining", remaining.into());
            set(
                headers,
                "x-hubspot-ratelimit-interval-milliseconds",
                HeaderValue::from(TEN_SECONDS.as_millis() as u64),
            );
        }
        set(headers, "x-hubspot-ratelimit-daily", DAILY_CAP.into());
        set(
            headers,
            "x-hubspot-ratelimit-daily-remaining",
            budget.daily_remaining.into(),
        );
    }
    response
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}
