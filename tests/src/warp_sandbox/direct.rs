//! The sandbox in process: `WarpApi` and `WarpCustomers` on its own state
//! and rules, without the HTTP hop.

use axum::http::header::IF_MATCH;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use hubwarp::reconcile::ports::WarpCustomers;
use hubwarp::warp::WarpApi;
use hubwarp::warp::{Customer, Page, WarpError};

use super::errors::ApiError;
use super::http::check_if_match;
use super::shape::check_patch;
use super::{MAX_PER_PAGE, WarpSandbox};

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
