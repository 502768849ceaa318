//! What every step of a run shares: the invocation's view of the run, and
//! how a step ends early (the run fails and is retried, or stops for the
//! day).

use crate::error::error_chain;
use crate::hubspot::crm::HubspotError;
use crate::store::StoreError;
use crate::warp::WarpError;

use super::RequestError;

/// Why an invocation failed; the platform's retry resumes from the last
/// checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("run {0} does not exist, so it cannot be continued")]
    UnknownRun(String),
    #[error("{during}: {}", error_chain(.source))]
    Store {
        during: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("WARP: {0}")]
    Warp(WarpError),
    #[error("HubSpot: {0}")]
    Hubspot(HubspotError),
    #[error("the reader of {0} stopped before its last page")]
    ReaderStopped(&'static str),
    #[error("starting the next invocation failed: {0}")]
    Continue(String),
}

/// Ends a step early: the run fails (and is retried) or stops cleanly.
pub(super) enum Interrupt {
    Fail(RunFailure),
    /// HubSpot's daily limit: nothing more can be read or written today.
    Daily(String),
}

impl From<RunFailure> for Interrupt {
    fn from(e: RunFailure) -> Self {
        Self::Fail(e)
    }
}

pub(super) fn hubspot(e: HubspotError) -> Interrupt {
    if e.is_daily_limit() {
        Interrupt::Daily(e.to_string())
    } else {
        Interrupt::Fail(RunFailure::Hubspot(e))
    }
}

pub(super) fn store(during: &'static str) -> impl FnOnce(StoreError) -> RunFailure {
    move |source| RunFailure::Store { during, source }
}

/// One invocation's view of the run.
pub(super) struct Ctx<'a> {
    pub(super) run_id: &'a str,
    pub(super) dry_run: bool,
}
