//! `GET /crm/v3/objects/companies`: every company, by id, a page at a time.

use serde::Deserialize;

use super::transport::Kind;
use super::{Company, HubspotClient, HubspotError};

/// HubSpot's largest list page.
pub const MAX_LIST_LIMIT: u32 = 100;

/// One page; `next_after` is the cursor of the next one, `None` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyPage {
    pub results: Vec<Company>,
    pub next_after: Option<String>,
}

#[derive(Deserialize)]
struct Collection {
    results: Vec<Company>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    pub next: Option<NextPage>,
}

#[derive(Deserialize)]
pub(super) struct NextPage {
    pub after: String,
}

impl HubspotClient {
    /// One page of companies. `limit` is clamped to 1..=100 and always sent:
    /// HubSpot's default is 10, which would take ten times the calls.
    pub async fn list_page(
        &self,
        properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<CompanyPage, HubspotError> {
        let mut url = self.url("/crm/v3/objects/companies")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.clamp(1, MAX_LIST_LIMIT).to_string());
            if let Some(after) = after {
                query.append_pair("after", after);
            }
            if !properties.is_empty() {
                query.append_pair("properties", &properties.join(","));
            }
        }
        let answer = self.send(Kind::List, || self.http.get(url.clone())).await?;
        if answer.status.as_u16() != 200 {
            return Err(answer.rejected());
        }
        let page: Collection = answer.json()?;
        Ok(CompanyPage {
            results: page.results,
            next_after: page.paging.and_then(|p| p.next).map(|n| n.after),
        })
    }
}
