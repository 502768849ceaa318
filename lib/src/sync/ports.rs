//! The two APIs the consumer talks to, as ports: the real clients implement
//! them, and unit tests drive the consumer with in-memory doubles.

use std::future::Future;

use serde_json::{Map, Value};

use crate::hubspot::crm::{HubspotClient, HubspotError};
use crate::warp::{Customer, WarpClient, WarpError};

pub trait WarpApi: Send + Sync {
    fn get(&self, id: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send;
    fn by_ban(&self, ban: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send;
    fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Customer, WarpError>> + Send;
}

impl WarpApi for WarpClient {
    fn get(&self, id: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::get(self, id)
    }

    fn by_ban(&self, ban: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::by_ban(self, ban)
    }

    fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::update(self, id, body, if_match)
    }
}

/// The HubSpot property that names a company's WARP customer.
pub const WARP_BAN_PROPERTY: &str = "warp_ban";

pub trait CompanyDirectory: Send + Sync {
    /// The company's `warp_ban`; `Ok(None)` when the company does not exist
    /// or carries none.
    fn warp_ban(
        &self,
        company_id: &str,
    ) -> impl Future<Output = Result<Option<String>, HubspotError>> + Send;
}

impl CompanyDirectory for HubspotClient {
    async fn warp_ban(&self, company_id: &str) -> Result<Option<String>, HubspotError> {
        Ok(self
            .company(company_id, &[WARP_BAN_PROPERTY])
            .await?
            .and_then(|c| c.property(WARP_BAN_PROPERTY).map(str::to_string)))
    }
}
