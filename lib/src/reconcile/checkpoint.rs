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
    /// Marked companies past `index_after`, as HubSpot last counted them.
    #[serde(default)]
    pub index_left: Option<u64>,
    /// Phase 1's passes while the index is read (a run of everyone).
    #[serde(default)]
    pub passes: Passes,
    /// WARP pages (or selection pages) done.
    pub customer_pages: u32,
    pub companies_after: Option<String>,
    pub company_pages: u32,
    pub sweep_start: Option<String>,
    pub sweep_pages: u32,
    pub pending_hubspot: Vec<PendingUpdate>,
}

impl Cursor {
    /// Whether the index has every marked company (its last search page
    /// said there was no more).
    pub fn index_done(&self) -> bool {
        self.index_pages > 0 && self.index_after.is_none()
    }

    /// Whether the index has read past `company_id`: the company is in it,
    /// or carries no `warp_ban` (as of the read). Search walks ascending
    /// numeric ids; an id that is no number comes last.
    pub fn index_covers(&self, company_id: &str) -> bool {
        if self.index_done() {
            return true;
        }
        let Some(after) = self.index_after.as_deref() else {
            return false;
        };
        match (company_id.parse::<u64>(), after.parse::<u64>()) {
            (Ok(id), Ok(after)) => id <= after,
            _ => false,
        }
    }
}

/// Phase 1 of a run of everyone works while HubSpot's search fills the
/// index (search's rate limit is the night's floor), instead of after it:
/// it begins once a third of the index is in and decides each customer
/// whose company the index has read past, deferring the others to the
/// report store's scratch; a further pass takes those up once half of
/// what was left is in, until a pass defers none (`phase::index_step`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passes {
    /// 0: WARP's pages; n: the customers pass n - 1 deferred.
    pub pass: u32,
    /// Steps taken in this pass (names its report pieces).
    pub steps: u32,
    /// Pieces pass n - 1 deferred, and how many of them this pass read.
    pub to_read: u32,
    pub read: u32,
    /// Pieces this pass deferred so far.
    pub deferred: u32,
    /// A pass deferred nothing: phase 1 is over.
    pub done: bool,
    /// The marked companies the index lacked when this pass began.
    pub began_with_left: Option<u64>,
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
