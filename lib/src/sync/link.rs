//! From a HubSpot company to its WARP customer: the link table, else the
//! company's `warp_ban` and WARP's customer with that BAN agreeing.

use serde_json::Map;
use tracing::info;

use super::ports::CompanyDirectory;
use super::{CompanyMatch, Consumer, Transient};
use crate::store::EventLog;
use crate::store::sync::{ConflictQueue, FieldStateStore, Link, LinkState, LinkStore, SyncLog};
use crate::warp::WarpApi;
use crate::warp::{Customer, WarpError};

impl<E, S, W, H> Consumer<E, S, W, H>
where
    E: EventLog,
    S: LinkStore + FieldStateStore + SyncLog + ConflictQueue,
    W: WarpApi,
    H: CompanyDirectory,
{
    /// Resolves a company to its WARP customer, linking on first sight:
    /// the company's `warp_ban`, the customer with that BAN, and the
    /// customer's `external_ids.hubspot_company_id` agreeing (or empty, then
    /// set).
    pub(super) async fn resolve(&self, company_id: &str) -> Result<CompanyMatch, Transient> {
        if let Some(link) = self.store.link(company_id).await? {
            return Ok(if link.state == LinkState::Active {
                CompanyMatch::Linked(link)
            } else {
                CompanyMatch::Inactive(link)
            });
        }
        let ban = match self.hubspot.warp_ban(company_id).await {
            Ok(ban) => ban,
            Err(e @ crate::hubspot::crm::HubspotError::Rejected { .. }) => {
                return Ok(CompanyMatch::Unmatched(format!(
                    "HubSpot refused the company read: {e}"
                )));
            }
            // Transient, or a token problem: back to the queue (and the DLQ
            // if it lasts), never dropped.
            Err(e) => return Err(Transient::Hubspot(e)),
        };
        let Some(ban) = ban else {
            return Ok(CompanyMatch::Unmatched(
                "company has no warp_ban (or does not exist)".into(),
            ));
        };
        let customer = match self.warp.by_ban(&ban).await {
            Ok(c) => c,
            Err(WarpError::NotFound) => {
                return Ok(CompanyMatch::Unmatched(
                    "no WARP customer has the company's warp_ban".into(),
                ));
            }
            Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
            Err(e) => {
                return Ok(CompanyMatch::Unmatched(format!(
                    "WARP lookup by BAN refused: {e}"
                )));
            }
        };
        match customer.hubspot_company_id.as_deref() {
            Some(id) if id != company_id => {
                return Ok(CompanyMatch::Unmatched(format!(
                    "WARP customer is linked to company {id}, not this one"
                )));
            }
            Some(_) => {}
            None => match self.set_company_id(&customer.id, company_id).await {
                Ok(_) => {}
                Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
                Err(e) => {
                    return Ok(CompanyMatch::Unmatched(format!(
                        "WARP refused the link: {e}"
                    )));
                }
            },
        }
        let link = Link::active(company_id, &customer.id, &customer.ban);
        self.store.put_link(&link).await?;
        info!(company_id, customer_id = %link.customer_id, "company linked to WARP customer");
        Ok(CompanyMatch::Linked(link))
    }

    /// The WARP customer of merged companies none of which was linked yet
    /// (links are made by a company's first change or by the nightly run):
    /// the survivor's `warp_ban` (a merge keeps the merged company's when
    /// the survivor had none) names it, followed only when WARP names one
    /// of the merged companies, the survivor, or none. Err: why not.
    pub(super) async fn merged_customer(
        &self,
        survivor: &str,
        merged: &[String],
    ) -> Result<Result<Customer, String>, Transient> {
        let ban = match self.hubspot.warp_ban(survivor).await {
            Ok(Some(ban)) => ban,
            Ok(None) => {
                return Ok(Err(
                    "no merged company was linked, and the survivor has no warp_ban".into(),
                ));
            }
            Err(e @ crate::hubspot::crm::HubspotError::Rejected { .. }) => {
                return Ok(Err(format!("HubSpot refused the survivor's read: {e}")));
            }
            Err(e) => return Err(Transient::Hubspot(e)),
        };
        let customer = match self.warp.by_ban(&ban).await {
            Ok(c) => c,
            Err(WarpError::NotFound) => {
                return Ok(Err(
                    "no merged company was linked, and no WARP customer has the survivor's warp_ban"
                        .into(),
                ));
            }
            Err(e) if e.is_transient() => return Err(Transient::Warp(e)),
            Err(e) => return Ok(Err(format!("WARP lookup by BAN refused: {e}"))),
        };
        match customer.hubspot_company_id.as_deref() {
            Some(id) if id != survivor && !merged.iter().any(|m| m == id) => Ok(Err(format!(
                "WARP customer {} with the survivor's warp_ban is linked to company {id}, not one merged",
                customer.id
            ))),
            _ => Ok(Ok(customer)),
        }
    }

    /// Points WARP's `external_ids.hubspot_company_id` at `company_id`.
    pub(super) async fn set_company_id(
        &self,
        customer_id: &str,
        company_id: &str,
    ) -> Result<Customer, WarpError> {
        let mut body = Map::new();
        body.insert(
            "external_ids".into(),
            serde_json::json!({ "hubspot_company_id": company_id }),
        );
        self.warp.update(customer_id, &body, None).await
    }
}
