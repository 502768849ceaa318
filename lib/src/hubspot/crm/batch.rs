//! `POST /crm/v3/objects/companies/batch/{read,update}`: up to 100 companies
//! in one call, with a 207 naming the ids that failed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::transport::{Answer, Kind};
use super::{Company, HubspotClient, HubspotError, check_id};

/// HubSpot's limit on batch inputs (50 for reads with history, which this
/// client never asks for).
pub const MAX_BATCH_INPUTS: usize = 100;

/// The companies found, and the ids HubSpot reported not found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchRead {
    pub found: Vec<Company>,
    pub missing: Vec<String>,
}

/// New values for one company's properties; `""` clears a property (HubSpot
/// ignores null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyUpdate {
    pub id: String,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchUpdate {
    pub updated: Vec<Company>,
    pub failed: Vec<BatchFailure>,
}

/// One `StandardError` of a 207: the ids it is about (`context.ids`), when
/// HubSpot names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub ids: Vec<String>,
    pub category: String,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody<'a> {
    inputs: Vec<IdInput<'a>>,
    properties: &'a [&'a str],
    /// Required by the schema; empty keeps the limit at 100 inputs.
    properties_with_history: [&'a str; 0],
}

#[derive(Serialize)]
struct IdInput<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct UpdateBody<'a> {
    inputs: &'a [CompanyUpdate],
}

#[derive(Deserialize)]
struct BatchResponse {
    results: Vec<Company>,
    #[serde(default)]
    errors: Vec<StandardError>,
}

#[derive(Deserialize)]
struct StandardError {
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    context: HashMap<String, Vec<String>>,
}

impl StandardError {
    fn ids(&mut self) -> Vec<String> {
        self.context.remove("ids").unwrap_or_default()
    }
}

const NOT_FOUND: &str = "OBJECT_NOT_FOUND";

impl HubspotClient {
    /// Reads up to 100 companies in one call. More than 100 ids is refused
    /// before anything is sent; none sends nothing.
    pub async fn batch_read(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> Result<BatchRead, HubspotError> {
        check_size(ids.len())?;
        if ids.is_empty() {
            return Ok(BatchRead::default());
        }
        for id in ids {
            check_id(id)?;
        }
        let body = ReadBody {
            inputs: ids.iter().map(|id| IdInput { id }).collect(),
            properties,
            properties_with_history: [],
        };
        let url = self.url("/crm/v3/objects/companies/batch/read")?;
        let answer = self
            .send(Kind::BatchRead, || self.http.post(url.clone()).json(&body))
            .await?;
        let response = batch_response(&answer)?;
        let mut missing = Vec::new();
        for mut error in response.errors {
            if error.category != NOT_FOUND {
                return Err(HubspotError::Rejected {
                    status: answer.status.as_u16(),
                    category: error.category,
                });
            }
            missing.extend(error.ids());
        }
        Ok(BatchRead {
            found: response.results,
            missing,
        })
    }

    /// Updates up to 100 companies in one call. More than 100, or the same
    /// id twice (which update would win is not defined), is refused before
    /// anything is sent.
    pub async fn batch_update(
        &self,
        inputs: &[CompanyUpdate],
    ) -> Result<BatchUpdate, HubspotError> {
        check_size(inputs.len())?;
        if inputs.is_empty() {
            return Ok(BatchUpdate::default());
        }
        let mut seen = HashSet::with_capacity(inputs.len());
        for input in inputs {
            check_id(&input.id)?;
            if !seen.insert(input.id.as_str()) {
                return Err(HubspotError::rejected(
                    "the same company twice in one batch update",
                ));
            }
        }
        let body = UpdateBody { inputs };
        let url = self.url("/crm/v3/objects/companies/batch/update")?;
        let answer = self
            .send(Kind::BatchUpdate, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let response = batch_response(&answer)?;
        Ok(BatchUpdate {
            updated: response.results,
            failed: response
                .errors
                .into_iter()
                .map(|mut e| BatchFailure {
                    ids: e.ids(),
                    category: e.category,
                    message: e.message,
                })
                .collect(),
        })
    }
}

fn check_size(n: usize) -> Result<(), HubspotError> {
    if n > MAX_BATCH_INPUTS {
        return Err(HubspotError::rejected(format!(
            "{n} inputs; HubSpot takes at most {MAX_BATCH_INPUTS} per batch"
        )));
    }
    Ok(())
}

/// 200 (all done) and 207 (some failed) carry the same body.
fn batch_response(answer: &Answer) -> Result<BatchResponse, HubspotError> {
    match answer.status.as_u16() {
        200 | 207 => answer.json(),
        _ => Err(answer.rejected()),
    }
}
