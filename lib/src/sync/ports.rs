//! What the consumer needs of HubSpot, as a port (WARP's is
//! [`crate::warp::WarpApi`]): the real client implements it, and unit tests
//! drive the consumer with in-memory doubles.

use std::future::Future;

use crate::hubspot::crm::{HubspotClient, HubspotError};

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
