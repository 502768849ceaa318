//! `hubwarp undo <run id> [--dry-run]`: reverts the writes one reconcile
//! run made, from the before-values its report recorded.
//!
//! Each written field is read now. Where it still holds what the run wrote
//! (compared after conversion), the value from before the run is written
//! back through the normal paths (WARP `PUT` with `If-Match`, HubSpot batch
//! update) and the field's baseline goes back to the one the run decided
//! against. Anything changed since is left alone and listed. The undo is a
//! run of its own (`undo-<run id>-<time>-<random>`, in the runs table) with a report
//! made by the reports' own machinery; `--dry-run` writes only the report.
//!
//! An undo is an exact inverse: values and baselines are as they were
//! before the run, so the next run decides those fields as that run did.
//! If the cause is still there (a bad value on the side that flowed), fix
//! it there first, or the next run writes the same again.
//!
//! About 600 lines, whole on purpose: claiming the undo as a run, weighing
//! each field on both sides and writing both back are one procedure that
//! a reader follows top to bottom.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use tracing::{info, warn};

use super::OperateError;
use crate::hubspot::crm::CompanyUpdate;
use crate::mapping::conflict::FieldState;
use crate::mapping::{FieldMapping, MappingSet, WarpField};
use crate::reconcile::checkpoint::Cursor;
use crate::reconcile::checkpoint::{Claim, RunRecord, RunStatus};
use crate::reconcile::plan::{DiffOutcome, FieldDiff, MODIFIED_PROPERTY};
use crate::reconcile::ports::{HubspotCompanies, ReportStore, RunStore};
use crate::reconcile::report::{self, PairDiff, Piece, Report, RunFacts, Write};
use crate::store::sync::FieldStateStore;
use crate::warp::WarpApi;
use crate::warp::{Customer, WarpError, WriteError, update_if_match};

/// What an undo did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoOutcome {
    /// The undo's own run id; `None` when there was nothing to undo.
    pub undo_run_id: Option<String>,
    pub of_run: String,
    pub dry_run: bool,
    /// Fields put back: `before` is the value found now (what the run
    /// wrote), `after` the value restored.
    pub restored: Vec<Write>,
    /// Fields left alone, with why (changed since, gone, ...).
    pub left_alone: Vec<PairDiff>,
    pub errors: Vec<report::RunError>,
    pub report_json_key: Option<String>,
    pub report_html_key: Option<String>,
    pub message: String,
}

/// Where undo reports go and in which zone their local times are.
#[derive(Debug, Clone)]
pub struct UndoSettings {
    pub report_prefix: String,
    pub timezone: chrono_tz::Tz,
}

impl Default for UndoSettings {
    fn default() -> Self {
        Self {
            report_prefix: "reports/".into(),
            timezone: chrono_tz::UTC,
        }
    }
}

/// The stores and clients an undo writes through.
pub struct Sides<'a, W, H, S, R, P> {
    pub warp: &'a W,
    pub hubspot: &'a H,
    pub store: &'a S,
    pub runs: &'a R,
    pub reports: &'a P,
    pub mappings: &'a MappingSet,
}

/// One field write of the run, as the undo weighs it.
struct Candidate<'w> {
    write: &'w Write,
    mapping: Option<FieldMapping>,
}

pub async fn undo<W, H, S, R, P>(
    sides: &Sides<'_, W, H, S, R, P>,
    settings: &UndoSettings,
    run_id: &str,
    dry_run: bool,
) -> Result<UndoOutcome, OperateError>
where
    W: WarpApi,
    H: HubspotCompanies,
    S: FieldStateStore,
    R: RunStore,
    P: ReportStore,
{
    let run = sides.runs.get(run_id).await?.ok_or_else(|| {
        OperateError::NotFound(format!("no run {run_id}: `hubwarp runs list` shows them"))
    })?;
    let nothing = |message: String| UndoOutcome {
        undo_run_id: None,
        of_run: run_id.to_string(),
        dry_run,
        restored: Vec::new(),
        left_alone: Vec::new(),
        errors: Vec::new(),
        report_json_key: None,
        report_html_key: None,
        message,
    };
    if run.status == RunStatus::Running {
        return Err(OperateError::Invalid(format!(
            "run {run_id} is still running; undo it once it has finished"
        )));
    }
    if run.dry_run {
        return Ok(nothing(format!(
            "run {run_id} was a dry run: it wrote nothing, so there is nothing to undo"
        )));
    }
    let key = run.report_json_key.clone().ok_or_else(|| {
        OperateError::NotFound(format!(
            "run {run_id} has no report, so its writes are unknown"
        ))
    })?;
    let report: Report = super::runs::load_report(sides.reports, &key)
        .await?
        .ok_or_else(|| OperateError::NotFound(format!("run {run_id}'s report {key} is missing")))?;
    let written: Vec<&Write> = report
        .writes
        .iter()
        .filter(|w| w.status == "written")
        .collect();
    if written.is_empty() {
        return Ok(nothing(format!(
            "run {run_id} wrote nothing, so there is nothing to undo"
        )));
    }

    let started = crate::time::now_ms();
    // Random like a manual run's: two undos of one run in the same second
    // are two runs.
    let undo_id = format!(
        "undo-{run_id}-{}-{}",
        crate::time::compact(chrono::DateTime::from_timestamp_millis(started).unwrap_or_default()),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    // The baselines the run decided against, to put back with the values.
    let baselines: HashMap<(&str, &str), Option<&Value>> = report
        .differences
        .iter()
        .map(|d| {
            (
                (d.customer_id.as_str(), d.diff.field.as_str()),
                d.diff.baseline.as_ref(),
            )
        })
        .collect();
    let mut by_customer: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for w in written {
        by_customer
            .entry(w.customer_id.as_str())
            .or_default()
            .push(Candidate {
                write: w,
                mapping: None,
            });
    }
    let mut piece = Piece::default();
    for (customer_id, mut candidates) in by_customer {
        let ban = candidates[0].write.ban.clone();
        let fields = sides.mappings.fields_for(customer_id, &ban);
        for c in candidates.iter_mut() {
            c.mapping = fields
                .iter()
                .find(|m| m.warp.as_str() == c.write.field)
                .map(|m| (*m).clone());
        }
        undo_customer(
            sides,
            customer_id,
            &candidates,
            &baselines,
            dry_run,
            &mut piece,
        )
        .await;
    }

    let finished = crate::time::now_ms();
    let facts = RunFacts {
        run_id: undo_id.clone(),
        status: RunStatus::Completed.as_str().to_string(),
        dry_run,
        stop_reason: None,
        started_ms: started,
        finished_ms: finished,
        invocations: 1,
        timezone: settings.timezone,
    };
    let undo_report = report::assemble(&facts, vec![piece], Vec::new());
    let base = format!("{}{undo_id}/report", settings.report_prefix);
    let (json_key, html_key) = (format!("{base}.json"), format!("{base}.html"));
    let json = serde_json::to_vec_pretty(&undo_report).unwrap_or_default();
    sides
        .reports
        .put(&json_key, json, "application/json")
        .await?;
    sides
        .reports
        .put(
            &html_key,
            undo_report.to_html().into_bytes(),
            "text/html; charset=utf-8",
        )
        .await?;
    if !dry_run {
        record_run(
            sides.runs,
            &undo_id,
            &undo_report,
            &json_key,
            &html_key,
            started,
            finished,
        )
        .await?;
    }
    let s = &undo_report.summary;
    let message = format!(
        "{}{} of {} fields restored ({} in WARP, {} in HubSpot), {} left alone, {} errors",
        if dry_run { "dry run: " } else { "" },
        s.fixed_in_warp + s.fixed_in_hubspot,
        s.fixed_in_warp + s.fixed_in_hubspot + s.kept + s.errors,
        s.fixed_in_warp,
        s.fixed_in_hubspot,
        s.kept,
        s.errors,
    );
    info!(run_id = %undo_id, of_run = run_id, dry_run, restored_warp = s.fixed_in_warp, restored_hubspot = s.fixed_in_hubspot, left_alone = s.kept, errors = s.errors, "undo finished");
    Ok(UndoOutcome {
        undo_run_id: Some(undo_id),
        of_run: run_id.to_string(),
        dry_run,
        restored: undo_report.writes,
        left_alone: undo_report.differences,
        errors: undo_report.errors,
        report_json_key: Some(json_key),
        report_html_key: Some(html_key),
        message,
    })
}

/// Records the undo in the runs table as a finished run.
async fn record_run<R: RunStore>(
    runs: &R,
    undo_id: &str,
    report: &Report,
    json_key: &str,
    html_key: &str,
    started: i64,
    finished: i64,
) -> Result<(), OperateError> {
    let owner = format!("undo:{}", uuid::Uuid::new_v4().simple());
    let mut record = RunRecord {
        run_id: undo_id.to_string(),
        status: RunStatus::Running,
        dry_run: false,
        customers: None,
        scheduled_ms: None,
        started_ms: started,
        updated_ms: started,
        finished_ms: None,
        invocations: 1,
        cursor: Cursor::default(),
        counters: report.summary,
        stop_reason: None,
        report_json_key: None,
        report_html_key: None,
        email: None,
    };
    match runs
        .claim(undo_id, Some(&record), &owner, finished + 60_000, finished)
        .await?
    {
        Claim::Held(_) => {}
        Claim::Finished(_) | Claim::Busy(_) => {
            return Err(OperateError::Invalid(format!(
                "run {undo_id} already exists"
            )));
        }
    }
    record.status = RunStatus::Completed;
    record.finished_ms = Some(finished);
    record.updated_ms = finished;
    record.report_json_key = Some(json_key.to_string());
    record.report_html_key = Some(html_key.to_string());
    runs.checkpoint(&record, &owner, 0).await?;
    Ok(())
}

/// What to do with one field: restore, or leave alone and why.
enum Verdict {
    Restore,
    Leave(String),
}

fn weigh(mapping: &FieldMapping, now: &Value, wrote: &Value, before: &Value) -> Verdict {
    let ty = mapping.value_type;
    if ty.same_warp_value(now, wrote) {
        Verdict::Restore
    } else if ty.same_warp_value(now, before) {
        Verdict::Leave("already holds its value from before the run (undone already?)".into())
    } else {
        Verdict::Leave(format!("changed since the run: now {}", show(now)))
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A HubSpot value (as the report keeps it: a string, or null for none)
/// in WARP's form, for comparing after conversion.
fn hubspot_as_warp(mapping: &FieldMapping, v: &Value) -> Option<Value> {
    let raw = v.as_str().unwrap_or_default();
    mapping.value_type.hubspot_to_warp(raw).ok()
}

fn left_alone(piece: &mut Piece, w: &Write, now: Value, hubspot_now: Option<String>, why: String) {
    piece.counters.kept += 1;
    piece.differences.push(PairDiff {
        customer_id: w.customer_id.clone(),
        ban: w.ban.clone(),
        company_id: w.company_id.clone(),
        diff: FieldDiff {
            field: w.field.clone(),
            property: w.property.clone(),
            warp_value: now,
            hubspot_value: hubspot_now,
            baseline: None,
            decision: if w.side == "warp" {
                DiffOutcome::LeftAloneWarp
            } else {
                DiffOutcome::LeftAloneHubspot
            },
            reason: why,
            rule: "undo".into(),
        },
    });
}

async fn undo_customer<W, H, S, R, P>(
    sides: &Sides<'_, W, H, S, R, P>,
    customer_id: &str,
    candidates: &[Candidate<'_>],
    baselines: &HashMap<(&str, &str), Option<&Value>>,
    dry_run: bool,
    piece: &mut Piece,
) where
    W: WarpApi,
    H: HubspotCompanies,
    S: FieldStateStore,
{
    let status = if dry_run { "dry-run" } else { "written" };
    let mut restored_fields: Vec<(String, Value)> = Vec::new();

    // WARP: one PUT for every field still holding the run's value.
    let warp_side: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.write.side == "warp")
        .collect();
    if !warp_side.is_empty() {
        let gone = |piece: &mut Piece| {
            for c in &warp_side {
                let why = "the WARP customer no longer exists".to_string();
                left_alone(piece, c.write, Value::Null, None, why);
            }
        };
        match sides.warp.get(customer_id).await {
            Err(WarpError::NotFound) => gone(piece),
            Err(e) => piece.error(Some(customer_id), None, "WARP read", e.to_string()),
            Ok(current) => {
                // Each field weighed on what WARP holds now; a 412 weighs
                // them again on what it holds then (warp::update_if_match).
                let decide = |current: &Customer| {
                    let mut body = Map::new();
                    let mut restore = Vec::new();
                    let mut leave = Vec::new();
                    for c in &warp_side {
                        let field = WarpField::new(c.write.field.clone());
                        let now = field.get(&current.raw).cloned().unwrap_or(Value::Null);
                        let Some(mapping) = &c.mapping else {
                            leave.push((c.write, now, "no longer mapped".to_string()));
                            continue;
                        };
                        match weigh(mapping, &now, &c.write.after, &c.write.before) {
                            Verdict::Restore => {
                                field.set_in(&mut body, c.write.before.clone());
                                restore.push((c.write, now));
                            }
                            Verdict::Leave(why) => leave.push((c.write, now, why)),
                        }
                    }
                    (body, (restore, leave))
                };
                let ((restore, leave), written) = if dry_run {
                    (decide(&current).1, Ok(None))
                } else {
                    let w = update_if_match(sides.warp, current, decide).await;
                    (w.decision, w.written)
                };
                // Where the read after a 412 failed, as if the first read
                // had: nothing of this decision is reported.
                let status = match written {
                    Ok(Some(_)) => {
                        piece.counters.warp_writes += 1;
                        Some(status)
                    }
                    Ok(None) => Some(status),
                    Err(WriteError::Reread(WarpError::NotFound)) => {
                        gone(piece);
                        None
                    }
                    Err(WriteError::Reread(e)) => {
                        piece.error(Some(customer_id), None, "WARP read", e.to_string());
                        None
                    }
                    Err(e) => {
                        piece.error(Some(customer_id), None, "WARP PUT", e.to_string());
                        Some("failed")
                    }
                };
                if let Some(status) = status {
                    for (w, now, why) in leave {
                        left_alone(piece, w, now, None, why);
                    }
                    for (w, now) in restore {
                        restored(piece, w, now, status);
                        if status != "failed" {
                            restored_fields.push((w.field.clone(), w.before.clone()));
                        }
                    }
                }
            }
        }
    }

    // HubSpot: one batch update of the company's fields still holding the
    // run's value.
    let hubspot_side: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.write.side == "hubspot")
        .collect();
    if let Some(first) = hubspot_side.first() {
        let company_id = first.write.company_id.clone();
        let properties: Vec<&str> = hubspot_side
            .iter()
            .map(|c| c.write.property.as_str())
            .chain([MODIFIED_PROPERTY])
            .collect();
        match sides
            .hubspot
            .batch_read(std::slice::from_ref(&company_id), &properties)
            .await
        {
            Err(e) => piece.error(
                Some(customer_id),
                Some(&company_id),
                "HubSpot batch read",
                e.to_string(),
            ),
            Ok(read) => match read.found.into_iter().next() {
                None => {
                    for c in &hubspot_side {
                        left_alone(
                            piece,
                            c.write,
                            Value::Null,
                            None,
                            format!("HubSpot has no company {company_id} any more"),
                        );
                    }
                }
                Some(company) => {
                    let mut update = BTreeMap::new();
                    let mut plan = Vec::new();
                    for c in &hubspot_side {
                        let raw = company.properties.get(&c.write.property).cloned().flatten();
                        let now = raw.clone().map_or(Value::Null, Value::String);
                        let Some(mapping) = &c.mapping else {
                            left_alone(piece, c.write, Value::Null, raw, "no longer mapped".into());
                            continue;
                        };
                        let (Some(n), Some(wrote), Some(before)) = (
                            hubspot_as_warp(mapping, &now),
                            hubspot_as_warp(mapping, &c.write.after),
                            hubspot_as_warp(mapping, &c.write.before),
                        ) else {
                            left_alone(
                                piece,
                                c.write,
                                Value::Null,
                                raw,
                                "a value does not convert; compared nothing".into(),
                            );
                            continue;
                        };
                        match weigh(mapping, &n, &wrote, &before) {
                            Verdict::Restore => {
                                update.insert(
                                    c.write.property.clone(),
                                    c.write.before.as_str().unwrap_or_default().to_string(),
                                );
                                plan.push((c.write, now, before));
                            }
                            Verdict::Leave(why) => {
                                left_alone(piece, c.write, Value::Null, raw, why)
                            }
                        }
                    }
                    let mut ok = true;
                    if !update.is_empty() && !dry_run {
                        let input = CompanyUpdate {
                            id: company_id.clone(),
                            properties: update,
                        };
                        match sides
                            .hubspot
                            .batch_update(std::slice::from_ref(&input))
                            .await
                        {
                            Ok(r) if r.failed.is_empty() => piece.counters.hubspot_updates += 1,
                            Ok(r) => {
                                ok = false;
                                let why: Vec<String> =
                                    r.failed.iter().map(|f| f.message.clone()).collect();
                                piece.error(
                                    Some(customer_id),
                                    Some(&company_id),
                                    "HubSpot batch update",
                                    why.join("; "),
                                );
                            }
                            Err(e) => {
                                ok = false;
                                piece.error(
                                    Some(customer_id),
                                    Some(&company_id),
                                    "HubSpot batch update",
                                    e.to_string(),
                                );
                            }
                        }
                    }
                    for (w, now, before) in plan {
                        restored(piece, w, now, if ok { status } else { "failed" });
                        if ok {
                            restored_fields.push((w.field.clone(), before));
                        }
                    }
                }
            },
        }
    }

    // Baselines as the run found them, for the fields restored.
    if dry_run || restored_fields.is_empty() {
        return;
    }
    let states = match sides.store.field_states(customer_id).await {
        Ok(s) => s,
        Err(e) => {
            piece.error(
                Some(customer_id),
                None,
                "reading field state",
                crate::error::error_chain(&e),
            );
            return;
        }
    };
    for (field, _) in restored_fields {
        let Some(baseline) = baselines.get(&(customer_id, field.as_str())) else {
            // The report kept no difference for it: leave the baseline.
            continue;
        };
        let state = FieldState {
            synced_value: baseline.cloned(),
            ..states.get(&field).cloned().unwrap_or_default()
        };
        if let Err(e) = sides
            .store
            .put_field_state(customer_id, &field, &state)
            .await
        {
            warn!(customer_id, field, error = %crate::error::error_chain(&e), "baseline not restored");
            piece.error(
                Some(customer_id),
                None,
                "restoring the baseline",
                crate::error::error_chain(&e),
            );
        }
    }
}

fn restored(piece: &mut Piece, w: &Write, now: Value, status: &str) {
    if status == "written" || status == "dry-run" {
        if w.side == "warp" {
            piece.counters.fixed_in_warp += 1;
        } else {
            piece.counters.fixed_in_hubspot += 1;
        }
    }
    piece.writes.push(Write {
        side: w.side.clone(),
        customer_id: w.customer_id.clone(),
        ban: w.ban.clone(),
        company_id: w.company_id.clone(),
        field: w.field.clone(),
        property: w.property.clone(),
        before: now,
        after: w.before.clone(),
        status: status.to_string(),
    });
}
