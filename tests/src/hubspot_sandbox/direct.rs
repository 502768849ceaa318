//! The sandbox's portal without the HTTP hop, for tests that drive
//! thousands of histories (tests/model): the same companies, property rules
//! (`""` clears; read-only or unknown properties, and values their
//! definitions do not take, refused: the same `Portal::settable` as over
//! HTTP) and `hs_lastmodifieddate` as over HTTP, read into the client's
//! `Company` by serde as the client does.

use hubwarp::hubspot::crm::{
    BatchFailure, BatchRead, BatchUpdate, Company, CompanyPage, CompanyUpdate, HubspotError,
};
use hubwarp::reconcile::ports::{HubspotCompanies, MarkedPage, RateStats};
use hubwarp::sync::ports::{CompanyDirectory, WARP_BAN_PROPERTY};
use serde_json::{Map, Value};

use super::HubspotSandbox;
use super::store::{Asked, IdKey, Portal, Stored};

fn company(portal: &Portal, id: &str, stored: &Stored, properties: &[&str]) -> Company {
    let properties: Vec<String> = properties.iter().map(|p| p.to_string()).collect();
    let asked = Asked {
        properties: &properties,
        with_history: &[],
    };
    let rendered = portal.render(id, stored, &asked);
    serde_json::from_value(rendered).unwrap_or_else(|e| panic!("sandbox company {id}: {e}"))
}

impl CompanyDirectory for HubspotSandbox {
    async fn warp_ban(&self, company_id: &str) -> Result<Option<String>, HubspotError> {
        let inner = self.shared.lock();
        Ok(inner
            .portal
            .get(company_id)
            .and_then(|c| c.value(WARP_BAN_PROPERTY))
            .filter(|b| !b.is_empty())
            .map(str::to_string))
    }
}

impl HubspotCompanies for HubspotSandbox {
    async fn list_page(
        &self,
        properties: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<CompanyPage, HubspotError> {
        let inner = self.shared.lock();
        let portal = &inner.portal;
        let limit = limit.clamp(1, 100) as usize;
        let from = match after {
            Some(after) => portal.companies.range(IdKey::new(after)..),
            None => portal.companies.range::<IdKey, _>(..),
        };
        let mut page: Vec<(&IdKey, &Stored)> = from.take(limit + 1).collect();
        let next_after = (page.len() > limit).then(|| page.remove(limit).0.id().to_string());
        let results = page
            .into_iter()
            .map(|(key, c)| company(portal, key.id(), c, properties))
            .collect();
        Ok(CompanyPage {
            results,
            next_after,
        })
    }

    async fn batch_read(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> Result<BatchRead, HubspotError> {
        let inner = self.shared.lock();
        let portal = &inner.portal;
        let mut out = BatchRead::default();
        for id in ids {
            match portal.get(id) {
                Some(c) => out.found.push(company(portal, id, c, properties)),
                None => out.missing.push(id.clone()),
            }
        }
        Ok(out)
    }

    async fn bridge_page(
        &self,
        properties: &[&str],
        after_id: Option<&str>,
    ) -> Result<MarkedPage, HubspotError> {
        let inner = self.shared.lock();
        let portal = &inner.portal;
        let from = match after_id {
            Some(after) => portal.companies.range((
                std::ops::Bound::Excluded(IdKey::new(after)),
                std::ops::Bound::Unbounded,
            )),
            None => portal.companies.range::<IdKey, _>(..),
        };
        let mut page: Vec<(&IdKey, &Stored)> = from
            .filter(|(_, c)| c.value(WARP_BAN_PROPERTY).is_some_and(|b| !b.is_empty()))
            .collect();
        // Search's total: every match of the query, this page's included.
        let total = page.len() as u64;
        let more = page.len() > 200;
        page.truncate(200);
        let results: Vec<Company> = page
            .into_iter()
            .map(|(key, c)| company(portal, key.id(), c, properties))
            .collect();
        let next = more.then(|| results.last().map(|c| c.id.clone())).flatten();
        Ok(MarkedPage::new(results, next, total))
    }

    async fn batch_update(&self, inputs: &[CompanyUpdate]) -> Result<BatchUpdate, HubspotError> {
        let mut inner = self.shared.lock();
        let portal = &mut inner.portal;
        // The whole batch is refused when any value is, as over HTTP (a
        // 400, which the client reports as Rejected).
        let mut details = Vec::new();
        let mut changes = Vec::with_capacity(inputs.len());
        for input in inputs {
            let properties: Map<String, Value> = input
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            changes.push(portal.settable(&properties, &mut details));
        }
        if !details.is_empty() {
            return Err(HubspotError::Rejected {
                status: 400,
                category: "VALIDATION_ERROR".into(),
            });
        }
        let mut out = BatchUpdate::default();
        for (input, set) in inputs.iter().zip(changes) {
            let key = IdKey::new(&input.id);
            if !portal.companies.contains_key(&key) {
                out.failed.push(BatchFailure {
                    ids: vec![input.id.clone()],
                    category: "OBJECT_NOT_FOUND".into(),
                    message: "resource not found".into(),
                });
                continue;
            }
            let names: Vec<&str> = input.properties.keys().map(String::as_str).collect();
            portal.update(&key, set);
            if let Some(c) = portal.companies.get(&key) {
                out.updated.push(company(portal, &input.id, c, &names));
            }
        }
        Ok(out)
    }

    fn rate_stats(&self) -> RateStats {
        RateStats::default()
    }
}
