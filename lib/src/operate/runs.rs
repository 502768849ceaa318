//! `hubwarp runs list` / `runs show <id>`: past runs (nightly, manual,
//! undo) with their counters and report keys; `show` adds what the run
//! wrote, from its report.

use serde::Serialize;

use super::OperateError;
use crate::reconcile::checkpoint::RunRecord;
use crate::reconcile::ports::RunHistory;
use crate::reconcile::ports::{ReportStore, RunStore};
use crate::reconcile::report::{Report, Write};

pub async fn list<R: RunHistory>(runs: &R, limit: usize) -> Result<Vec<RunRecord>, OperateError> {
    let mut all = runs.runs().await?;
    all.truncate(limit);
    Ok(all)
}

/// A run and, once it has a report, what it wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub run: RunRecord,
    pub writes: Vec<Write>,
    /// Why the writes are missing, when they are.
    pub note: Option<String>,
}

pub async fn show<R: RunStore, P: ReportStore>(
    runs: &R,
    reports: &P,
    run_id: &str,
) -> Result<Shown, OperateError> {
    let run = runs.get(run_id).await?.ok_or_else(|| {
        OperateError::NotFound(format!("no run {run_id}: `hubwarp runs list` shows them"))
    })?;
    let (writes, note) = match &run.report_json_key {
        None => (
            Vec::new(),
            Some("no report yet: the run has not finished".to_string()),
        ),
        Some(key) => match load_report(reports, key).await? {
            Some(r) => (r.writes, None),
            None => (
                Vec::new(),
                Some(format!("its report {key} is missing from the bucket")),
            ),
        },
    };
    Ok(Shown { run, writes, note })
}

/// A run's JSON report, if it is there.
pub async fn load_report<P: ReportStore>(
    reports: &P,
    key: &str,
) -> Result<Option<Report>, OperateError> {
    let Some(body) = reports.get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| OperateError::Invalid(format!("report {key} is not a run report: {e}")))
}
