//! The nightly report as an e-mail to one recipient: the run's summary, its
//! differences and writes (cut at `max_rows` each, with the totals), and
//! every open MANUAL conflict with two signed links, "keep WARP's value"
//! and "take HubSpot's value".
//!
//! Pure: [`compose`] takes a finished run's [`Report`], the open conflicts
//! (as [`OpenConflict`], which carries the id a link names; the reconciler
//! lists the queue's records at the end of a run and
//! `OpenConflict::from(&record)` gives them), the recipient and a link
//! builder, and returns the subject and both parts. The caller signs the
//! links ([`crate::review::token::sign`]), sends the e-mail, and decides
//! whether to ([`needs_attention`]).
//!
//! The HTML part escapes every value with the report's own escaping
//! (`report::esc`), carries no script and loads nothing (no
//! images, fonts or style sheets), and styles every element inline: mail
//! clients drop `<style>` blocks more often than `style` attributes. The
//! text part says the same, values verbatim.

use std::fmt::Write as _;

use serde_json::Value;

use super::report::{Report, esc};
use crate::operate::conflicts::{OpenConflict, Take};

/// One e-mail, ready to be put in a MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// One line, no control characters (safe as a header once encoded).
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// What one recipient's e-mail is made of.
#[derive(Debug, Clone, Copy)]
pub struct EmailInput<'a> {
    pub report: &'a Report,
    /// The open MANUAL conflicts, each with the links for this recipient.
    pub conflicts: &'a [OpenConflict],
    /// The address the e-mail goes to, and the one its links are signed for.
    pub recipient: &'a str,
    /// Rows of differences, and of writes, shown; the rest are counted.
    pub max_rows: usize,
    /// When the links stop working (epoch seconds), shown in the run's zone.
    pub links_expire_at: i64,
    /// Where the full report is (its S3 key or a URL), shown as text.
    pub full_report: Option<&'a str>,
}

/// Whether a night needs a person: errors, conflicts (raised by this run,
/// or still open from a webhook or an earlier night: each waits for a
/// person until resolved), unmatched records, or a run that did not
/// complete. A quiet night does not, and in the "only nights that need
/// attention" mode sends nothing.
pub fn needs_attention(report: &Report) -> bool {
    report.summary.needs_attention()
        || !report.open_conflicts.is_empty()
        || report.stop_reason.is_some()
        || report.status != "COMPLETED"
}

/// The e-mail for `input.recipient`. `link(conflict_id, take)` returns the
/// absolute URL of that conflict's link for that choice, signed for this
/// recipient.
pub fn compose(input: &EmailInput<'_>, link: impl Fn(&str, Take) -> String) -> Email {
    let r = input.report;
    let conflicts: Vec<Shown> = input
        .conflicts
        .iter()
        .map(|c| Shown {
            c,
            warp_value: warp_text(&c.warp_value),
            hubspot_value: if c.hubspot_value.is_empty() {
                "(none)".to_string()
            } else {
                c.hubspot_value.clone()
            },
            keep_warp: link(&c.id, Take::Warp),
            take_hubspot: link(&c.id, Take::Hubspot),
        })
        .collect();
    let differences: Vec<Row> = r
        .differences
        .iter()
        .map(|d| Row {
            cells: vec![
                format!("{} ({})", d.customer_id, d.ban),
                d.company_id.clone(),
                format!("{} / {}", d.diff.field, d.diff.property),
                value_text(&d.diff.warp_value),
                d.diff
                    .hubspot_value
                    .clone()
                    .unwrap_or_else(|| "(none)".into()),
                format!("{}: {}", d.diff.decision, d.diff.reason),
            ],
        })
        .collect();
    let writes: Vec<Row> = r
        .writes
        .iter()
        .map(|w| Row {
            cells: vec![
                w.side.clone(),
                format!("{} ({})", w.customer_id, w.ban),
                w.company_id.clone(),
                format!("{} / {}", w.field, w.property),
                value_text(&w.before),
                value_text(&w.after),
                w.status.clone(),
            ],
        })
        .collect();
    let expiry = local_time(r, input.links_expire_at);
    let parts = Parts {
        input,
        conflicts: &conflicts,
        differences: &differences,
        writes: &writes,
        expiry: &expiry,
    };
    Email {
        subject: subject(r, input.conflicts.len()),
        html: parts.html(),
        text: parts.text(),
    }
}

const DIFF_COLUMNS: [&str; 6] = [
    "customer", "company", "field", "WARP", "HubSpot", "decision",
];
const WRITE_COLUMNS: [&str; 7] = [
    "side", "customer", "company", "field", "before", "after", "status",
];

struct Shown<'a> {
    c: &'a OpenConflict,
    warp_value: String,
    hubspot_value: String,
    keep_warp: String,
    take_hubspot: String,
}

struct Row {
    cells: Vec<String>,
}

struct Parts<'a> {
    input: &'a EmailInput<'a>,
    conflicts: &'a [Shown<'a>],
    differences: &'a [Row],
    writes: &'a [Row],
    expiry: &'a str,
}

fn subject(r: &Report, open: usize) -> String {
    let s = &r.summary;
    let mut needs = Vec::new();
    let mut count = |n: u64, one: &str, many: &str| {
        if n > 0 {
            needs.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    };
    count(open as u64, "conflict to decide", "conflicts to decide");
    count(s.errors, "error", "errors");
    count(
        s.unmatched_warp + s.unmatched_hubspot,
        "unmatched record",
        "unmatched records",
    );
    let what = if needs.is_empty() {
        format!(
            "{} pairs compared, {} fixed, nothing needs you",
            s.pairs_compared,
            s.fixed_in_warp + s.fixed_in_hubspot
        )
    } else {
        needs.join(", ")
    };
    let line = format!(
        "Reconciliation {} {}{}: {what}",
        r.run_id,
        r.status,
        if r.dry_run { " (dry run)" } else { "" },
    );
    // A header is one line: nothing from a value may start another.
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Parts<'_> {
    fn html(&self) -> String {
        let r = self.input.report;
        let mut h = String::with_capacity(16 * 1024);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Reconciliation {id}</title></head>\
             <body style=\"{BODY}\">\
             <h1 style=\"{H1}\">Reconciliation <code>{id}</code></h1>\
             <p style=\"{META}\">{status}{dry} &middot; started {local} ({tz})</p>",
            id = esc(&r.run_id),
            status = esc(&r.status),
            dry = if r.dry_run {
                " &middot; <strong>dry run: nothing was written</strong>"
            } else {
                ""
            },
            local = esc(&r.started_local),
            tz = esc(&r.timezone),
        );
        if let Some(why) = &r.stop_reason {
            let _ = write!(h, "<p style=\"{STOP}\">Stopped early: {}</p>", esc(why));
        }
        let _ = write!(h, "<table role=\"presentation\" style=\"{CARDS}\">");
        for row in r.cards().chunks(6) {
            h.push_str("<tr>");
            for &(label, n, alarm) in row {
                let style = if alarm && n > 0 { CARD_ALARM } else { CARD };
                let _ = write!(
                    h,
                    "<td style=\"{style}\"><b style=\"{CARD_N}\">{n}</b>\
                     <span style=\"{CARD_LABEL}\">{label}</span></td>"
                );
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");

        let _ = write!(
            h,
            "<h2 style=\"{H2}\">Conflicts for you to decide ({})</h2>",
            self.conflicts.len()
        );
        if self.conflicts.is_empty() {
            let _ = write!(h, "<p style=\"{NONE}\">None open.</p>");
        }
        for s in self.conflicts {
            let c = s.c;
            let _ = write!(
                h,
                "<table role=\"presentation\" style=\"{CONFLICT}\">\
                 <tr><td style=\"{KEY}\">customer</td><td style=\"{VAL}\">{customer}</td></tr>\
                 <tr><td style=\"{KEY}\">field</td><td style=\"{VAL}\">{field} / {property}</td></tr>\
                 <tr><td style=\"{KEY}\">WARP</td><td style=\"{VAL}\">{warp}</td></tr>\
                 <tr><td style=\"{KEY}\">HubSpot</td><td style=\"{VAL}\">{hubspot}</td></tr>\
                 <tr><td style=\"{KEY}\">raised</td><td style=\"{VAL}\">{raised} (conflict {id})</td></tr>\
                 <tr><td></td><td style=\"{VAL}\">\
                 <a href=\"{keep}\" style=\"{BUTTON}\">keep WARP&#39;s value</a> \
                 <a href=\"{take}\" style=\"{BUTTON}\">take HubSpot&#39;s value</a>\
                 </td></tr></table>",
                customer = esc(&c.customer_id),
                field = esc(&c.field),
                property = esc(&c.property),
                warp = esc(&s.warp_value),
                hubspot = esc(&s.hubspot_value),
                raised = esc(&c.raised_at),
                id = esc(&c.id),
                keep = esc(&s.keep_warp),
                take = esc(&s.take_hubspot),
            );
        }
        if !self.conflicts.is_empty() {
            let _ = write!(h, "<p style=\"{META}\">{}</p>", esc(&self.links_line()));
        }

        html_table(
            &mut h,
            "Differences",
            &DIFF_COLUMNS,
            self.differences,
            self.input.max_rows,
        );
        html_table(
            &mut h,
            "Writes",
            &WRITE_COLUMNS,
            self.writes,
            self.input.max_rows,
        );
        let _ = writeln!(
            h,
            "<p style=\"{META}\">{}</p></body></html>",
            esc(&self.footer())
        );
        h
    }

    fn text(&self) -> String {
        let r = self.input.report;
        let mut t = String::with_capacity(8 * 1024);
        let _ = writeln!(t, "Reconciliation {}: {}", r.run_id, r.status);
        let _ = writeln!(t, "Started {} ({})", r.started_local, r.timezone);
        if r.dry_run {
            t.push_str("Dry run: nothing was written.\n");
        }
        if let Some(why) = &r.stop_reason {
            let _ = writeln!(t, "Stopped early: {why}");
        }
        t.push_str("\nSummary\n");
        for (label, n, alarm) in r.cards() {
            let flag = if alarm && n > 0 {
                "  <- needs a person"
            } else {
                ""
            };
            let _ = writeln!(t, "  {n:>8}  {label}{flag}");
        }

        let _ = writeln!(
            t,
            "\nConflicts for you to decide ({})",
            self.conflicts.len()
        );
        if self.conflicts.is_empty() {
            t.push_str("  None open.\n");
        }
        for (i, s) in self.conflicts.iter().enumerate() {
            let c = s.c;
            let _ = writeln!(
                t,
                "{n}. Customer {customer}, {field} / {property} (conflict {id}, raised {raised})\n   \
                 WARP:    {warp}\n   HubSpot: {hubspot}\n   \
                 Keep WARP's value:    {keep}\n   Take HubSpot's value: {take}",
                n = i + 1,
                customer = c.customer_id,
                field = c.field,
                property = c.property,
                id = c.id,
                raised = c.raised_at,
                warp = s.warp_value,
                hubspot = s.hubspot_value,
                keep = s.keep_warp,
                take = s.take_hubspot,
            );
        }
        if !self.conflicts.is_empty() {
            let _ = writeln!(t, "\n{}", self.links_line());
        }

        text_rows(
            &mut t,
            "Differences",
            &DIFF_COLUMNS,
            self.differences,
            self.input.max_rows,
        );
        text_rows(
            &mut t,
            "Writes",
            &WRITE_COLUMNS,
            self.writes,
            self.input.max_rows,
        );
        let _ = writeln!(t, "\n{}", self.footer());
        t
    }

    fn links_line(&self) -> String {
        format!(
            "These links are for {} alone and expire at {}: whoever opens one decides \
             in that name, so do not forward this e-mail. Opening one changes nothing by \
             itself: it shows the conflict as it is now, and a button that decides it.",
            self.input.recipient, self.expiry
        )
    }

    fn footer(&self) -> String {
        match self.input.full_report {
            Some(at) => format!("The full report, every row: {at}"),
            None => "The full report has every row.".to_string(),
        }
    }
}

fn html_table(h: &mut String, title: &str, columns: &[&str], rows: &[Row], max_rows: usize) {
    let _ = write!(h, "<h2 style=\"{H2}\">{} ({})</h2>", esc(title), rows.len());
    if rows.is_empty() {
        let _ = write!(h, "<p style=\"{NONE}\">None.</p>");
        return;
    }
    let shown = rows.len().min(max_rows);
    if shown > 0 {
        let _ = write!(h, "<table style=\"{TABLE}\"><tr>");
        for c in columns {
            let _ = write!(h, "<th style=\"{TH}\">{}</th>", esc(c));
        }
        h.push_str("</tr>");
        for row in &rows[..shown] {
            h.push_str("<tr>");
            for cell in &row.cells {
                let _ = write!(h, "<td style=\"{TD}\">{}</td>", esc(cell));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    }
    if rows.len() > shown {
        let _ = write!(
            h,
            "<p style=\"{NONE}\">{} more in the full report ({} in all).</p>",
            rows.len() - shown,
            rows.len()
        );
    }
}

fn text_rows(t: &mut String, title: &str, columns: &[&str], rows: &[Row], max_rows: usize) {
    let _ = writeln!(t, "\n{title} ({})", rows.len());
    if rows.is_empty() {
        t.push_str("  None.\n");
        return;
    }
    let shown = rows.len().min(max_rows);
    if shown > 0 {
        let _ = writeln!(t, "  {}", columns.join(" | "));
    }
    for row in &rows[..shown] {
        let _ = writeln!(t, "- {}", row.cells.join(" | "));
    }
    if rows.len() > shown {
        let _ = writeln!(
            t,
            "{} more in the full report ({} in all).",
            rows.len() - shown,
            rows.len()
        );
    }
}

/// A JSON value as a person reads it: a string without its quotes.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// WARP's value of a conflict, held as JSON text.
fn warp_text(json: &str) -> String {
    serde_json::from_str::<Value>(json).map_or_else(|_| json.to_string(), |v| value_text(&v))
}

/// Epoch seconds in the run's zone, as the report writes its start.
fn local_time(r: &Report, at: i64) -> String {
    let at = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default();
    match r.timezone.parse::<chrono_tz::Tz>() {
        Ok(zone) => at
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

// Inline styles: the whole look of the e-mail.
const BODY: &str = "margin:0;padding:16px;font:14px/1.45 Arial,Helvetica,sans-serif;color:#1d2330;background:#ffffff";
const H1: &str = "font-size:18px;margin:0 0 4px";
const H2: &str = "font-size:16px;margin:24px 0 8px";
const META: &str = "color:#555555;margin:4px 0 12px";
const STOP: &str = "background:#fff3cd;padding:8px 12px;border-radius:6px";
const NONE: &str = "color:#777777";
const CARDS: &str = "border-collapse:separate;border-spacing:6px;margin:8px 0";
const CARD: &str = "border:1px solid #d8dde6;border-radius:6px;padding:8px 10px;background:#f7f9fc;vertical-align:top";
const CARD_ALARM: &str = "border:1px solid #f5b7b1;border-radius:6px;padding:8px 10px;background:#fdecea;vertical-align:top";
const CARD_N: &str = "display:block;font-size:20px";
const CARD_LABEL: &str = "color:#555555;font-size:12px";
const CONFLICT: &str = "border:1px solid #d8dde6;border-radius:6px;margin:0 0 12px;padding:6px;border-collapse:separate";
const KEY: &str = "color:#555555;padding:2px 8px;vertical-align:top;white-space:nowrap";
const VAL: &str = "padding:2px 8px;vertical-align:top";
const BUTTON: &str = "display:inline-block;padding:8px 14px;margin:6px 8px 2px 0;border-radius:6px;\
background:#1d4ed8;color:#ffffff;text-decoration:none;font-weight:bold";
const TABLE: &str = "border-collapse:collapse;width:100%;font-size:13px";
const TH: &str = "border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top;background:#f0f3f8";
const TD: &str =
    "border-bottom:1px solid #e3e7ee;padding:4px 8px;text-align:left;vertical-align:top";

#[cfg(test)]
pub(crate) mod tests;
