//! Where a run stands between invocations: the run record (status, lease
//! holder's claim, totals) with its cursor (phase, the place in each
//! phase, and the HubSpot fixes not yet sent), checkpointed after every
//! page. The ports (`ports.rs`) keep only the traits that store it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::NewBaseline;
use super::report::Counters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// HubSpot's marked companies, read once into the run's index (a run
    /// of everyone; a record from before the index starts at `Customers`).
    Index,
    #[default]
    Customers,
    Companies,
    Sweep,
    Finish,
}

/// A HubSpot fix waiting for its batch update; carried in the checkpoint so
/// a handover or a crash loses none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    pub company_id: String,
    pub customer_id: String,
    pub ban: String,
    /// property -> (WARP field, value before, value to write).
    pub properties: BTreeMap<String, (String, Option<String>, String)>,
    pub baselines: Vec<NewBaseline>,
    pub warp_updated_at: Option<i64>,
}

/// Where the next invocation picks up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub phase: Phase,
    /// The index's search pages done, and the id the next starts after.
    #[serde(default)]
    pub index_pages: u32,
    #[serde(default)]
    pub index_after: Option<String>,
    /// WARP pages (or selection pages) done.
    pub customer_pages: u32,
    pub companies_after: Option<String>,
    pub company_pages: u32,
    pub sweep_start: Option<String>,
    pub sweep_pages: u32,
    pub pending_hubspot: Vec<PendingUpdate>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Completed,
    /// Ended early on purpose (HubSpot's daily limit): the report says why.
    Stopped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RUNNING" => Some(Self::Running),
            "COMPLETED" => Some(Self::Completed),
            "STOPPED" => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// The run record: one per run id, checkpointed after every page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub status: RunStatus,
    pub dry_run: bool,
    /// The manual run's selection (ids or BANs); `None`: everyone.
    pub customers: Option<Vec<String>>,
    pub scheduled_ms: Option<i64>,
    pub started_ms: i64,
    pub updated_ms: i64,
    pub finished_ms: Option<i64>,
    pub invocations: u32,
    /// Where the next invocation picks up.
    pub cursor: Cursor,
    /// Totals so far (summed from the report's pieces).
    pub counters: Counters,
    pub stop_reason: Option<String>,
    pub report_json_key: Option<String>,
    pub report_html_key: Option<String>,
    /// What the report e-mail came to, once the run finished (absent in
    /// records from before the e-mail, and while running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<super::mail::Delivery>,
}

/// What claiming a run found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This invocation holds the run (new, resumed or continued).
    Held(RunRecord),
    /// The run already finished: a second delivery does nothing.
    Finished(RunRecord),
    /// Another invocation holds the run right now.
    Busy(RunRecord),
}
