//! The run report. Each page of a run writes a [`Piece`] under the run's
//! prefix, so a page redone after a crash replaces its own piece and the
//! report of a run split over several invocations equals the report of one.
//! At the end the pieces are assembled into one [`Report`], written as JSON
//! (every difference, write, error and unmatched record) and as a
//! self-contained HTML page whose summary comes first.
//!
//! About 600 lines, whole on purpose: the report's types and the one page
//! that renders them change together (a column added is both), and the
//! escaping test walks them as one.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::FieldDiff;

/// HubSpot calls by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubspotCalls {
    pub list: u64,
    pub batch_read: u64,
    pub batch_update: u64,
    /// Pages of the companies that carry `warp_ban` (search).
    #[serde(default)]
    pub search: u64,
}

impl HubspotCalls {
    pub fn total(&self) -> u64 {
        self.list + self.batch_read + self.batch_update + self.search
    }
}

/// WARP calls by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarpCalls {
    pub list: u64,
    pub get: u64,
    pub by_ban: u64,
    pub put: u64,
}

impl WarpCalls {
    pub fn total(&self) -> u64 {
        self.list + self.get + self.by_ban + self.put
    }
}

/// A run's figures; each piece has its own, the report sums them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub pairs_compared: u64,
    pub pairs_in_sync: u64,
    pub fields_in_sync: u64,
    /// Fields written into WARP, and the `PUT`s that carried them.
    pub fixed_in_warp: u64,
    pub warp_writes: u64,
    /// Fields written into HubSpot, and the companies updated.
    pub fixed_in_hubspot: u64,
    pub hubspot_updates: u64,
    pub conflicts_for_review: u64,
    /// Differences left as they are (direction NONE, a strategy that keeps
    /// a one-way field's owner).
    pub kept: u64,
    pub unmatched_warp: u64,
    pub unmatched_hubspot: u64,
    pub linked: u64,
    pub swept: u64,
    pub errors: u64,
    /// Customers phase 1 set aside until the index had read their
    /// company (once per pass that did).
    #[serde(default)]
    pub deferred: u64,
    pub hubspot_calls: HubspotCalls,
    pub warp_calls: WarpCalls,
    pub rate_limit_waits: u64,
    pub rate_limit_waited_ms: u64,
    pub throttled: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.pairs_compared += o.pairs_compared;
        self.pairs_in_sync += o.pairs_in_sync;
        self.fields_in_sync += o.fields_in_sync;
        self.fixed_in_warp += o.fixed_in_warp;
        self.warp_writes += o.warp_writes;
        self.fixed_in_hubspot += o.fixed_in_hubspot;
        self.hubspot_updates += o.hubspot_updates;
        self.conflicts_for_review += o.conflicts_for_review;
        self.kept += o.kept;
        self.unmatched_warp += o.unmatched_warp;
        self.unmatched_hubspot += o.unmatched_hubspot;
        self.linked += o.linked;
        self.swept += o.swept;
        self.errors += o.errors;
        self.deferred += o.deferred;
        self.hubspot_calls.list += o.hubspot_calls.list;
        self.hubspot_calls.batch_read += o.hubspot_calls.batch_read;
        self.hubspot_calls.batch_update += o.hubspot_calls.batch_update;
        self.hubspot_calls.search += o.hubspot_calls.search;
        self.warp_calls.list += o.warp_calls.list;
        self.warp_calls.get += o.warp_calls.get;
        self.warp_calls.by_ban += o.warp_calls.by_ban;
        self.warp_calls.put += o.warp_calls.put;
        self.rate_limit_waits += o.rate_limit_waits;
        self.rate_limit_waited_ms += o.rate_limit_waited_ms;
        self.throttled += o.throttled;
    }

    /// The run's figures as CloudWatch metrics (the alarms' names).
    pub fn count(&self) {
        use crate::metrics::name;
        crate::metrics::counts(&[
            (name::PAIRS_COMPARED, self.pairs_compared),
            (name::FIXED_IN_WARP, self.fixed_in_warp),
            (name::FIXED_IN_HUBSPOT, self.fixed_in_hubspot),
            (name::CONFLICTS_FOR_REVIEW, self.conflicts_for_review),
            (
                name::UNMATCHED,
                self.unmatched_warp + self.unmatched_hubspot,
            ),
            (name::RUN_ERRORS, self.errors),
        ]);
    }

    /// Something a person should look at.
    pub fn needs_attention(&self) -> bool {
        self.conflicts_for_review > 0
            || self.errors > 0
            || self.unmatched_warp > 0
            || self.unmatched_hubspot > 0
    }
}

/// One field difference of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairDiff {
    pub customer_id: String,
    pub ban: String,
    pub company_id: String,
    #[serde(flatten)]
    pub diff: FieldDiff,
}

/// One field written (or, in a dry run, that would have been).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// `warp` or `hubspot`.
    pub side: String,
    pub customer_id: String,
    pub ban: String,
    pub company_id: String,
    pub field: String,
    pub property: String,
    pub before: Value,
    pub after: Value,
    /// `written`, `failed` or `dry-run`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub customer_id: Option<String>,
    pub company_id: Option<String>,
    /// What was being done (`WARP PUT`, `HubSpot batch update`, ...).
    pub during: String,
    pub message: String,
}

/// A record with no partner on the other side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmatched {
    pub customer_id: Option<String>,
    pub ban: Option<String>,
    pub company_id: Option<String>,
    pub reason: String,
}

/// A pair linked by this run (an exact BAN match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub customer_id: String,
    pub ban: String,
    pub company_id: String,
}

/// The part of a report one page of a run produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    pub counters: Counters,
    pub differences: Vec<PairDiff>,
    pub writes: Vec<Write>,
    pub errors: Vec<RunError>,
    pub unmatched_warp: Vec<Unmatched>,
    pub unmatched_hubspot: Vec<Unmatched>,
    pub linked: Vec<Linked>,
    /// Companies paired on this page: the index that tells, when HubSpot's
    /// companies are listed, which ones no customer named.
    pub paired_companies: Vec<String>,
    /// Dedup keys of stuck events queued again.
    pub swept: Vec<String>,
}

impl Piece {
    /// Adds another piece's figures and rows to this one.
    pub fn absorb(&mut self, p: Piece) {
        self.counters.add(&p.counters);
        self.differences.extend(p.differences);
        self.writes.extend(p.writes);
        self.errors.extend(p.errors);
        self.unmatched_warp.extend(p.unmatched_warp);
        self.unmatched_hubspot.extend(p.unmatched_hubspot);
        self.linked.extend(p.linked);
        self.paired_companies.extend(p.paired_companies);
        self.swept.extend(p.swept);
    }

    pub fn error(
        &mut self,
        customer_id: Option<&str>,
        company_id: Option<&str>,
        during: &str,
        message: String,
    ) {
        self.counters.errors += 1;
        self.errors.push(RunError {
            customer_id: customer_id.map(str::to_string),
            company_id: company_id.map(str::to_string),
            during: during.to_string(),
            message,
        });
    }
}

/// An open MANUAL conflict, as the review queue holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConflict {
    pub customer_id: String,
    pub field: String,
    pub property: String,
    pub warp_value: String,
    pub hubspot_value: String,
    pub source: String,
}

/// The whole report of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run_id: String,
    pub status: String,
    pub dry_run: bool,
    pub stop_reason: Option<String>,
    pub started: String,
    pub finished: String,
    /// The same two times in the reconciler's time zone.
    pub started_local: String,
    pub timezone: String,
    pub duration_ms: i64,
    pub invocations: u32,
    pub summary: Counters,
    pub differences: Vec<PairDiff>,
    pub writes: Vec<Write>,
    pub errors: Vec<RunError>,
    pub unmatched_warp: Vec<Unmatched>,
    pub unmatched_hubspot: Vec<Unmatched>,
    pub linked: Vec<Linked>,
    pub swept: Vec<String>,
    pub open_conflicts: Vec<OpenConflict>,
}

/// What the report says of the run itself.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub status: String,
    pub dry_run: bool,
    pub stop_reason: Option<String>,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub invocations: u32,
    pub timezone: chrono_tz::Tz,
}

/// Sums the pieces into the report. A customer the first pass found without
/// a company but the second pass linked by BAN is linked, not unmatched.
pub fn assemble(facts: &RunFacts, pieces: Vec<Piece>, open_conflicts: Vec<OpenConflict>) -> Report {
    let mut all = Piece::default();
    for p in pieces {
        all.absorb(p);
    }
    let mut summary = all.counters;
    let mut r = Report {
        run_id: facts.run_id.clone(),
        status: facts.status.clone(),
        dry_run: facts.dry_run,
        stop_reason: facts.stop_reason.clone(),
        started: crate::time::iso(facts.started_ms),
        finished: crate::time::iso(facts.finished_ms),
        started_local: chrono::DateTime::from_timestamp_millis(facts.started_ms)
            .unwrap_or_default()
            .with_timezone(&facts.timezone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        timezone: facts.timezone.name().to_string(),
        duration_ms: facts.finished_ms - facts.started_ms,
        invocations: facts.invocations,
        summary: Counters::default(),
        differences: all.differences,
        writes: all.writes,
        errors: all.errors,
        unmatched_warp: all.unmatched_warp,
        unmatched_hubspot: all.unmatched_hubspot,
        linked: all.linked,
        swept: all.swept,
        open_conflicts,
    };
    let linked: HashSet<&str> = r.linked.iter().map(|l| l.customer_id.as_str()).collect();
    let before = r.unmatched_warp.len();
    r.unmatched_warp
        .retain(|u| !u.customer_id.as_deref().is_some_and(|c| linked.contains(c)));
    summary.unmatched_warp -= (before - r.unmatched_warp.len()) as u64;
    r.summary = summary;
    r
}

impl Report {
    /// The summary's figures, in the report's order and words; `true`
    /// marks those shown as an alarm when not zero. The HTML report and
    /// the e-mail both show these.
    pub(crate) fn cards(&self) -> [(&'static str, u64, bool); 12] {
        let s = &self.summary;
        [
            ("pairs compared", s.pairs_compared, false),
            ("in sync", s.pairs_in_sync, false),
            ("fixed in WARP", s.fixed_in_warp, false),
            ("fixed in HubSpot", s.fixed_in_hubspot, false),
            ("conflicts for review", s.conflicts_for_review, true),
            ("unmatched in WARP", s.unmatched_warp, true),
            ("unmatched in HubSpot", s.unmatched_hubspot, true),
            ("linked by BAN", s.linked, false),
            ("stuck events re-queued", s.swept, false),
            ("errors", s.errors, true),
            ("HubSpot calls", s.hubspot_calls.total(), false),
            ("WARP calls", s.warp_calls.total(), false),
        ]
    }

    /// A few lines for an alert or a log.
    pub fn short_summary(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "Run {} {}{}: {} pairs compared, {} in sync, {} fields fixed in WARP, {} in HubSpot, \
             {} conflicts for review, {} unmatched in WARP, {} unmatched in HubSpot, {} errors, \
             {} stuck events re-queued.",
            self.run_id,
            self.status.to_lowercase(),
            if self.dry_run { " (dry run)" } else { "" },
            s.pairs_compared,
            s.pairs_in_sync,
            s.fixed_in_warp,
            s.fixed_in_hubspot,
            s.conflicts_for_review,
            s.unmatched_warp,
            s.unmatched_hubspot,
            s.errors,
            s.swept,
        );
        if let Some(why) = &self.stop_reason {
            out.push_str(&format!(" Stopped: {why}."));
        }
        if !self.open_conflicts.is_empty() {
            out.push_str(&format!(
                " {} MANUAL conflicts are open in the review queue.",
                self.open_conflicts.len()
            ));
        }
        out
    }

    /// A self-contained page: no scripts, no external styles or fonts.
    pub fn to_html(&self) -> String {
        let s = &self.summary;
        let mut h = String::with_capacity(16 * 1024);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Reconciliation {id}</title><style>{css}</style></head><body>\
             <h1>Reconciliation <code>{id}</code></h1>\
             <p class=\"meta\">{status}{dry} &middot; started {local} ({tz}) &middot; {dur} \
             &middot; {inv} invocation(s)</p>",
            id = esc(&self.run_id),
            css = CSS,
            status = esc(&self.status),
            dry = if self.dry_run {
                " &middot; <strong>dry run: nothing was written</strong>"
            } else {
                ""
            },
            local = esc(&self.started_local),
            tz = esc(&self.timezone),
            dur = duration(self.duration_ms),
            inv = self.invocations,
        );
        if let Some(why) = &self.stop_reason {
            let _ = write!(h, "<p class=\"stop\">Stopped early: {}</p>", esc(why));
        }
        h.push_str("<section class=\"summary\">");
        for (label, n, alarm) in self.cards() {
            let class = if alarm && n > 0 { "card alarm" } else { "card" };
            let _ = write!(
                h,
                "<div class=\"{class}\"><b>{n}</b><span>{label}</span></div>"
            );
        }
        let _ = write!(
            h,
            "</section><p class=\"meta\">HubSpot: {} search, {} list, {} batch read, {} batch update; \
             rate limit: {} waits ({} in all), {} answered 429. WARP: {} list, {} get, {} by BAN, \
             {} PUT. {} fields already in sync.</p>",
            s.hubspot_calls.search,
            s.hubspot_calls.list,
            s.hubspot_calls.batch_read,
            s.hubspot_calls.batch_update,
            s.rate_limit_waits,
            duration(s.rate_limit_waited_ms as i64),
            s.throttled,
            s.warp_calls.list,
            s.warp_calls.get,
            s.warp_calls.by_ban,
            s.warp_calls.put,
            s.fields_in_sync,
        );

        table(
            &mut h,
            "Differences",
            &[
                "customer", "BAN", "company", "field", "WARP", "HubSpot", "baseline", "decision",
                "reason",
            ],
            self.differences.iter().map(|d| {
                vec![
                    d.customer_id.clone(),
                    d.ban.clone(),
                    d.company_id.clone(),
                    format!("{} / {}", d.diff.field, d.diff.property),
                    show(&d.diff.warp_value),
                    d.diff
                        .hubspot_value
                        .clone()
                        .unwrap_or_else(|| "(none)".into()),
                    d.diff
                        .baseline
                        .as_ref()
                        .map_or_else(|| "(none)".into(), show),
                    d.diff.decision.to_string(),
                    d.diff.reason.clone(),
                ]
            }),
        );
        table(
            &mut h,
            "Writes",
            &[
                "side", "customer", "company", "field", "before", "after", "status",
            ],
            self.writes.iter().map(|w| {
                vec![
                    w.side.clone(),
                    format!("{} ({})", w.customer_id, w.ban),
                    w.company_id.clone(),
                    format!("{} / {}", w.field, w.property),
                    show(&w.before),
                    show(&w.after),
                    w.status.clone(),
                ]
            }),
        );
        table(
            &mut h,
            "Conflicts for review (open)",
            &["customer", "field", "WARP", "HubSpot", "source"],
            self.open_conflicts.iter().map(|c| {
                vec![
                    c.customer_id.clone(),
                    format!("{} / {}", c.field, c.property),
                    c.warp_value.clone(),
                    c.hubspot_value.clone(),
                    c.source.clone(),
                ]
            }),
        );
        let unmatched = |u: &Unmatched| {
            vec![
                u.customer_id.clone().unwrap_or_default(),
                u.ban.clone().unwrap_or_default(),
                u.company_id.clone().unwrap_or_default(),
                u.reason.clone(),
            ]
        };
        let cols = ["customer", "BAN", "company", "reason"];
        table(
            &mut h,
            "Unmatched in WARP",
            &cols,
            self.unmatched_warp.iter().map(unmatched),
        );
        table(
            &mut h,
            "Unmatched in HubSpot",
            &cols,
            self.unmatched_hubspot.iter().map(unmatched),
        );
        table(
            &mut h,
            "Linked by BAN",
            &["customer", "BAN", "company"],
            self.linked
                .iter()
                .map(|l| vec![l.customer_id.clone(), l.ban.clone(), l.company_id.clone()]),
        );
        table(
            &mut h,
            "Errors",
            &["customer", "company", "during", "message"],
            self.errors.iter().map(|e| {
                vec![
                    e.customer_id.clone().unwrap_or_default(),
                    e.company_id.clone().unwrap_or_default(),
                    e.during.clone(),
                    e.message.clone(),
                ]
            }),
        );
        table(
            &mut h,
            "Stuck events re-queued",
            &["dedup key"],
            self.swept.iter().map(|k| vec![k.clone()]),
        );
        h.push_str("</body></html>\n");
        h
    }
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1200px}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}\
code{font-size:13px}.meta{color:#555;margin:4px 0 12px}.stop{background:#fff3cd;padding:8px 12px;border-radius:6px}\
.summary{display:grid;grid-template-columns:repeat(6,1fr);gap:10px;margin:16px 0}\
.card{border:1px solid #d8dde6;border-radius:8px;padding:10px 12px;background:#f7f9fc}\
.card b{display:block;font-size:24px}.card span{color:#555;font-size:12px}\
.card.alarm{background:#fdecea;border-color:#f5b7b1}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f0f3f8}.none{color:#777}";

/// Rows shown per table on the page; the JSON report has all of them.
const HTML_ROWS: usize = 500;

fn table<I>(h: &mut String, title: &str, columns: &[&str], rows: I)
where
    I: Iterator<Item = Vec<String>>,
{
    let rows: Vec<Vec<String>> = rows.collect();
    let _ = write!(h, "<h2>{} ({})</h2>", esc(title), rows.len());
    if rows.is_empty() {
        h.push_str("<p class=\"none\">None.</p>");
        return;
    }
    h.push_str("<table><thead><tr>");
    for c in columns {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(HTML_ROWS) {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{}</td>", esc(cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    if rows.len() > HTML_ROWS {
        let _ = write!(
            h,
            "<p class=\"none\">{} more in the JSON report.</p>",
            rows.len() - HTML_ROWS
        );
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn duration(ms: i64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// HTML text escaping: every value on the page comes from the two systems.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
