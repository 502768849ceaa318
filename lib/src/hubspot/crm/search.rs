//! `POST /crm/v3/objects/companies/search`: filtered, sorted pages of up to
//! 200, and a cursor that walks past HubSpot's 10,000-results cap.
//!
//! Sorts go as `{propertyName, direction}` objects, as HubSpot's search
//! guide shows and its API honours; the OpenAPI document types them as
//! strings, which HubSpot ignores (see tests/contracts/hubspot/SOURCES.md).

use serde::Serialize;

use super::list::Paging;
use super::transport::Kind;
use super::{Company, HubspotClient, HubspotError};

/// HubSpot's largest search page.
pub const MAX_SEARCH_LIMIT: u32 = 200;
/// HubSpot answers at most this many results for one query (`after` plus
/// `limit` beyond it is a 400).
pub const MAX_SEARCH_RESULTS: u32 = 10_000;
const MAX_FILTER_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 6;
const MAX_FILTERS: usize = 18;
const OBJECT_ID: &str = "hs_object_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

/// One condition. Values are strings, as everywhere in HubSpot (numbers as
/// text, datetimes as epoch ms or ISO 8601).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: Operator,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Filter {
    /// A comparison with one value (EQ, NEQ, LT, LTE, GT, GTE,
    /// CONTAINS_TOKEN, NOT_CONTAINS_TOKEN).
    pub fn compare(property: &str, operator: Operator, value: impl Into<String>) -> Self {
        Self {
            property_name: property.to_string(),
            operator,
            value: Some(value.into()),
            high_value: None,
            values: Vec::new(),
        }
    }

    pub fn eq(property: &str, value: impl Into<String>) -> Self {
        Self::compare(property, Operator::Eq, value)
    }

    pub fn gt(property: &str, value: impl Into<String>) -> Self {
        Self::compare(property, Operator::Gt, value)
    }

    pub fn between(property: &str, low: impl Into<String>, high: impl Into<String>) -> Self {
        Self {
            high_value: Some(high.into()),
            ..Self::compare(property, Operator::Between, low)
        }
    }

    pub fn is_in(property: &str, values: Vec<String>) -> Self {
        Self {
            property_name: property.to_string(),
            operator: Operator::In,
            value: None,
            high_value: None,
            values,
        }
    }

    pub fn has_property(property: &str) -> Self {
        Self {
            property_name: property.to_string(),
            operator: Operator::HasProperty,
            value: None,
            high_value: None,
            values: Vec::new(),
        }
    }

    pub fn not_has_property(property: &str) -> Self {
        Self {
            operator: Operator::NotHasProperty,
            ..Self::has_property(property)
        }
    }
}

/// Filters that must all hold (AND); groups are alternatives (OR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct FilterGroup {
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort {
    pub property_name: String,
    pub direction: Direction,
}

impl Sort {
    pub fn ascending(property: &str) -> Self {
        Self {
            property_name: property.to_string(),
            direction: Direction::Ascending,
        }
    }
}

/// One search call. Every field the schema requires is always sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub filter_groups: Vec<FilterGroup>,
    pub sorts: Vec<Sort>,
    pub properties: Vec<String>,
    /// Clamped to 1..=200.
    pub limit: u32,
    /// The offset HubSpot gave as `paging.next.after`; `None` for the first page.
    pub after: Option<String>,
    pub query: Option<String>,
}

impl Default for SearchRequest {
    fn default() -> Self {
        Self {
            filter_groups: Vec::new(),
            sorts: Vec::new(),
            properties: Vec::new(),
            limit: MAX_SEARCH_LIMIT,
            after: None,
            query: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    filter_groups: &'a [FilterGroup],
    sorts: &'a [Sort],
    properties: &'a [String],
    limit: u32,
    after: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Matches of the whole query, not only of this page.
    pub total: u64,
    pub results: Vec<Company>,
    pub next_after: Option<String>,
}

#[derive(serde::Deserialize)]
struct Collection {
    #[serde(default)]
    total: u64,
    results: Vec<Company>,
    #[serde(default)]
    paging: Option<Paging>,
}

impl SearchRequest {
    /// What HubSpot would refuse with a 400, refused before the call.
    fn check(&self, limit: u32) -> Result<u32, HubspotError> {
        let filters: usize = self.filter_groups.iter().map(|g| g.filters.len()).sum();
        if self.filter_groups.len() > MAX_FILTER_GROUPS
            || self
                .filter_groups
                .iter()
                .any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
            || filters > MAX_FILTERS
        {
            return Err(HubspotError::rejected(format!(
                "HubSpot search takes at most {MAX_FILTER_GROUPS} filter groups of \
                 {MAX_FILTERS_PER_GROUP} filters, {MAX_FILTERS} in all"
            )));
        }
        let offset = match self.after.as_deref() {
            None => 0,
            Some(after) => after.parse::<u32>().map_err(|_| {
                HubspotError::rejected(format!("search cursor '{after}' is not an offset"))
            })?,
        };
        if offset.saturating_add(limit) > MAX_SEARCH_RESULTS {
            return Err(HubspotError::rejected(format!(
                "HubSpot search stops at {MAX_SEARCH_RESULTS} results; use search_all to go past"
            )));
        }
        Ok(offset)
    }
}

impl HubspotClient {
    /// One page (up to 200) of the companies that carry `marker`, by
    /// ascending id, after `after_id`; and the id the next page starts
    /// after, when there may be one; and how many the query matched, this
    /// page's included (search's `total`). Every page is a query of its own
    /// (`hs_object_id > after_id`), never an `after` offset: the walk has
    /// no 10,000-result window, and its cursor is an id a checkpoint keeps.
    pub async fn marked_page(
        &self,
        marker: &str,
        properties: &[&str],
        after_id: Option<&str>,
    ) -> Result<(Vec<Company>, Option<String>, u64), HubspotError> {
        let mut filters = vec![Filter::has_property(marker)];
        if let Some(id) = after_id {
            filters.push(Filter::gt(OBJECT_ID, id));
        }
        let req = SearchRequest {
            filter_groups: vec![FilterGroup { filters }],
            sorts: vec![Sort::ascending(OBJECT_ID)],
            properties: properties.iter().map(|p| p.to_string()).collect(),
            limit: MAX_SEARCH_LIMIT,
            after: None,
            query: None,
        };
        let page = self.search_page(&req).await?;
        let next = match (&page.next_after, page.results.last()) {
            (Some(_), Some(last)) => Some(last.id.clone()),
            _ => None,
        };
        Ok((page.results, next, page.total))
    }

    pub async fn search_page(&self, req: &SearchRequest) -> Result<SearchPage, HubspotError> {
        let limit = req.limit.clamp(1, MAX_SEARCH_LIMIT);
        let offset = req.check(limit)?.to_string();
        let body = Body {
            filter_groups: &req.filter_groups,
            sorts: &req.sorts,
            properties: &req.properties,
            limit,
            after: &offset,
            query: req.query.as_deref(),
        };
        let url = self.url("/crm/v3/objects/companies/search")?;
        let answer = self
            .send(Kind::Search, || self.http.post(url.clone()).json(&body))
            .await?;
        if answer.status.as_u16() != 200 {
            return Err(answer.rejected());
        }
        let page: Collection = answer.json()?;
        Ok(SearchPage {
            total: page.total,
            results: page.results,
            next_after: page.paging.and_then(|p| p.next).map(|n| n.after),
        })
    }

    /// Every company matching all of `filters`, in pages of up to 200 by
    /// ascending id. Past 10,000 results it starts a new query for ids
    /// greater than the last one seen, so it needs one filter of the group
    /// for that: at most 5 filters here.
    pub fn search_all(&self, filters: Vec<Filter>, properties: Vec<String>) -> SearchCursor {
        SearchCursor {
            filters,
            properties,
            above_id: None,
            after: None,
            last_id: None,
            done: false,
        }
    }
}

/// Walks a search page by page; see [`HubspotClient::search_all`].
#[derive(Debug, Clone)]
pub struct SearchCursor {
    filters: Vec<Filter>,
    properties: Vec<String>,
    /// The id the current query starts above (after a restart).
    above_id: Option<u64>,
    after: Option<String>,
    last_id: Option<u64>,
    done: bool,
}

impl SearchCursor {
    /// The next page, or `None` when every match has been returned.
    pub async fn next_page(
        &mut self,
        client: &HubspotClient,
    ) -> Result<Option<Vec<Company>>, HubspotError> {
        if self.done {
            return Ok(None);
        }
        if self.filters.len() >= MAX_FILTERS_PER_GROUP {
            return Err(HubspotError::rejected(format!(
                "search_all takes at most {} filters",
                MAX_FILTERS_PER_GROUP - 1
            )));
        }
        let offset = self.after.as_deref().map_or(Ok(0), |a| {
            a.parse::<u32>()
                .map_err(|_| HubspotError::Malformed(format!("search cursor '{a}'")))
        })?;
        if offset + MAX_SEARCH_LIMIT > MAX_SEARCH_RESULTS {
            // A new query: same filters, ids above the last one seen.
            self.above_id = self.last_id;
            self.after = None;
            tracing::debug!(
                above_id = self.above_id,
                "search reached HubSpot's 10,000-result cap; continuing above the last id"
            );
        }
        let mut filters = self.filters.clone();
        if let Some(id) = self.above_id {
            filters.push(Filter::gt(OBJECT_ID, id.to_string()));
        }
        let req = SearchRequest {
            filter_groups: if filters.is_empty() {
                Vec::new()
            } else {
                vec![FilterGroup { filters }]
            },
            sorts: vec![Sort::ascending(OBJECT_ID)],
            properties: self.properties.clone(),
            limit: MAX_SEARCH_LIMIT,
            after: self.after.clone(),
            query: None,
        };
        let page = client.search_page(&req).await?;
        if let Some(last) = page.results.last() {
            let id = last.id.parse::<u64>().map_err(|_| {
                HubspotError::Malformed(format!("company id '{}' is not numeric", last.id))
            })?;
            self.last_id = Some(id);
        }
        self.after = page.next_after;
        self.done = self.after.is_none() || page.results.is_empty();
        if page.results.is_empty() {
            return Ok(None);
        }
        Ok(Some(page.results))
    }
}
