//! What each subcommand prints: tables for a person, or the same answer as
//! JSON (`--json`) for a script.

use std::fmt::Write as _;

use hubwarp::operate::conflicts::{OpenConflict, Resolved};
use hubwarp::operate::dlq::{DeadLetter, Redrive};
use hubwarp::operate::explain::Explanation;
use hubwarp::operate::replay::ReplayReport;
use hubwarp::operate::runs::Shown;
use hubwarp::operate::undo::UndoOutcome;
use hubwarp::reconcile::checkpoint::RunRecord;
use hubwarp::reconcile::report::{Counters, Write};
use hubwarp::reconcile::run::Outcome;
use hubwarp::store::records::EventRecord;
use hubwarp::time::iso;
use serde::Serialize;
use serde_json::Value;

use crate::table::Table;

fn as_json<T: Serialize + ?Sized>(v: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

fn value(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn opt_value(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "(none)".into(), value)
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), iso)
}

pub fn explain(x: &Explanation, json: bool) -> String {
    if json {
        return as_json(x);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Customer {} (BAN {}), HubSpot company {}{}",
        opt(&x.customer_id),
        opt(&x.ban),
        opt(&x.company_id),
        x.field
            .as_ref()
            .map(|f| format!(", field {f}"))
            .unwrap_or_default()
    );
    let mut t = Table::new(&[
        "WHEN", "SOURCE", "FIELD", "OUTCOME", "RULE", "WARP", "HUBSPOT", "BASELINE", "REASON",
    ]);
    for d in x.history.iter().chain(&x.unmatched) {
        t.row(vec![
            d.at.clone(),
            d.source.to_string(),
            d.field.clone().unwrap_or_else(|| d.property.clone()),
            d.outcome.clone(),
            opt(&d.rule),
            opt_value(&d.warp_value),
            opt(&d.hubspot_value),
            opt_value(&d.baseline),
            d.reason.clone(),
        ]);
    }
    let _ = writeln!(
        out,
        "\nHistory, newest first ({} decision{}):",
        t_len(&x.history, &x.unmatched),
        if t_len(&x.history, &x.unmatched) == 1 {
            ""
        } else {
            "s"
        }
    );
    if t.is_empty() {
        out.push_str("  none logged (fields found in sync by the nightly run are not logged)\n");
    } else {
        out.push_str(&t.render());
    }
    if !x.now.is_empty() {
        out.push_str("\nNow:\n");
        let mut t = Table::new(&[
            "FIELD",
            "PROPERTY",
            "DIRECTION",
            "CONFLICT",
            "WARP",
            "HUBSPOT",
            "BASELINE",
            "STATE",
        ]);
        for f in &x.now {
            t.row(vec![
                f.field.clone(),
                f.property.clone(),
                f.direction.clone(),
                f.conflict.clone(),
                value(&f.warp_value),
                f.hubspot_value.clone().unwrap_or_else(|| "(none)".into()),
                opt_value(&f.baseline),
                f.state.clone(),
            ]);
        }
        out.push_str(&t.render());
        if let [one] = x.now.as_slice() {
            let _ = if one.agree {
                writeln!(out, "\n{} agrees on both sides now.", one.field)
            } else {
                writeln!(
                    out,
                    "\n{} {}.",
                    one.field,
                    one.state.replacen("differ", "differs", 1)
                )
            };
        }
    }
    for n in &x.notes {
        let _ = writeln!(out, "\nNote: {n}");
    }
    out
}

fn t_len<A, B>(a: &[A], b: &[B]) -> usize {
    a.len() + b.len()
}

pub fn events(records: &[EventRecord], json: bool) -> String {
    if json {
        return as_json(records);
    }
    let mut t = Table::new(&[
        "RECEIVED",
        "STATUS",
        "COMPANY",
        "TYPE",
        "PROPERTY",
        "REASON / LAST ERROR",
        "KEY",
    ]);
    for r in records {
        let why = match (&r.reason, &r.last_error) {
            (Some(reason), _) => reason.clone(),
            (None, Some(e)) => format!("{} failure(s), last: {e}", r.failures),
            (None, None) => "-".into(),
        };
        t.row(vec![
            opt_time(r.received_at_ms),
            r.status.clone(),
            opt(&r.company_id),
            opt(&r.subscription_type),
            opt(&r.property),
            why,
            r.dedup_key.clone(),
        ]);
    }
    format!("{}{} event(s)\n", t.render(), records.len())
}

pub fn replay(r: &ReplayReport, json: bool) -> String {
    if json {
        return as_json(r);
    }
    let mut out = format!("Re-queued {} event(s).\n", r.requeued.len());
    if !r.requeued.is_empty() {
        let mut t = Table::new(&["WAS", "EXPECT", "KEY"]);
        for e in &r.requeued {
            t.row(vec![e.was.clone(), e.expect.clone(), e.dedup_key.clone()]);
        }
        out.push_str(&t.render());
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(out, "Not replayed: {}", r.skipped.len());
        let mut t = Table::new(&["STATUS", "WHY", "KEY"]);
        for e in &r.skipped {
            t.row(vec![e.status.clone(), e.why.clone(), e.dedup_key.clone()]);
        }
        out.push_str(&t.render());
    }
    out
}

pub fn dead_letters(d: &[DeadLetter], json: bool) -> String {
    if json {
        return as_json(d);
    }
    let mut t = Table::new(&["SENT", "RECEIVES", "EVENT", "MESSAGE", "WHY", "KEY"]);
    for m in d {
        t.row(vec![
            opt_time(m.sent_at_ms),
            m.receive_count
                .map_or_else(|| "-".into(), |n| n.to_string()),
            opt(&m.event_status),
            m.message_id.clone(),
            m.why.clone(),
            opt(&m.dedup_key),
        ]);
    }
    format!(
        "{}{} message(s) in the dead-letter queue\n",
        t.render(),
        d.len()
    )
}

pub fn redrive(r: &Redrive, json: bool) -> String {
    if json {
        return as_json(r);
    }
    format!(
        "Moved {} message(s) from {} back to {}.\n",
        r.moved, r.from, r.to
    )
}

pub fn conflicts(c: &[OpenConflict], json: bool) -> String {
    if json {
        return as_json(c);
    }
    let mut t = Table::new(&[
        "ID", "CUSTOMER", "FIELD", "WARP", "HUBSPOT", "RAISED", "SOURCE",
    ]);
    for x in c {
        t.row(vec![
            x.id.clone(),
            x.customer_id.clone(),
            x.field.clone(),
            // JSON text in the record; shown as the other values are.
            serde_json::from_str::<Value>(&x.warp_value)
                .map(|v| value(&v))
                .unwrap_or_else(|_| x.warp_value.clone()),
            x.hubspot_value.clone(),
            x.raised_at.clone(),
            x.source.clone(),
        ]);
    }
    format!("{}{} open conflict(s)\n", t.render(), c.len())
}

pub fn resolved(r: &Resolved, json: bool) -> String {
    if json {
        return as_json(r);
    }
    let wrote = match r.wrote.as_str() {
        "warp" => "written into WARP".to_string(),
        "hubspot" => format!("written into HubSpot company {}", r.company_id),
        _ => "both sides already held it: nothing written".to_string(),
    };
    format!(
        "Conflict {} resolved by {}: {} takes {}'s value {} ({wrote}); baseline updated, conflict closed.\n",
        r.id,
        r.by,
        r.field,
        r.take.as_str(),
        value(&r.value),
    )
}

fn summary_table(s: &Counters) -> String {
    let mut t = Table::new(&["", "COUNT"]);
    for (label, n) in [
        ("pairs compared", s.pairs_compared),
        ("pairs in sync", s.pairs_in_sync),
        ("fixed in WARP", s.fixed_in_warp),
        ("fixed in HubSpot", s.fixed_in_hubspot),
        ("conflicts for review", s.conflicts_for_review),
        ("kept / left alone", s.kept),
        ("unmatched in WARP", s.unmatched_warp),
        ("unmatched in HubSpot", s.unmatched_hubspot),
        ("linked by BAN", s.linked),
        ("stuck events re-queued", s.swept),
        ("errors", s.errors),
        ("HubSpot calls", s.hubspot_calls.total()),
        ("WARP calls", s.warp_calls.total()),
    ] {
        t.row(vec![label.to_string(), n.to_string()]);
    }
    t.render()
}

fn report_line(key: &Option<String>, bucket: Option<&str>) -> String {
    match (key, bucket) {
        (Some(k), Some(b)) => format!("s3://{b}/{k}"),
        (Some(k), None) => k.clone(),
        (None, _) => "-".into(),
    }
}

pub fn outcome(o: &Outcome, bucket: Option<&str>, json: bool) -> String {
    if json {
        return as_json(o);
    }
    // A finished run's message is its summary, naming the run.
    let mut out = if o.message.starts_with("Run ") {
        format!("{}\n", o.message)
    } else {
        format!(
            "Run {}: {}{}: {}\n",
            o.run_id,
            o.status,
            if o.dry_run { " (dry run)" } else { "" },
            o.message
        )
    };
    if let Some(s) = &o.summary {
        out.push('\n');
        out.push_str(&summary_table(s));
    }
    let _ = writeln!(
        out,
        "\nReport: {}\n        {}",
        report_line(&o.report_json_key, bucket),
        report_line(&o.report_html_key, bucket)
    );
    out
}

pub fn runs(r: &[RunRecord], json: bool) -> String {
    if json {
        return as_json(r);
    }
    let mut t = Table::new(&[
        "RUN",
        "STATUS",
        "DRY",
        "STARTED",
        "PAIRS",
        "IN SYNC",
        "FIXED WARP",
        "FIXED HUBSPOT",
        "CONFLICTS",
        "ERRORS",
    ]);
    for x in r {
        let c = &x.counters;
        t.row(vec![
            x.run_id.clone(),
            x.status.as_str().to_string(),
            if x.dry_run { "yes" } else { "" }.to_string(),
            iso(x.started_ms),
            c.pairs_compared.to_string(),
            c.pairs_in_sync.to_string(),
            c.fixed_in_warp.to_string(),
            c.fixed_in_hubspot.to_string(),
            c.conflicts_for_review.to_string(),
            c.errors.to_string(),
        ]);
    }
    format!("{}{} run(s)\n", t.render(), r.len())
}

fn writes_table(w: &[Write]) -> String {
    let mut t = Table::new(&[
        "SIDE", "CUSTOMER", "COMPANY", "FIELD", "BEFORE", "AFTER", "STATUS",
    ]);
    for x in w {
        t.row(vec![
            x.side.clone(),
            x.customer_id.clone(),
            x.company_id.clone(),
            x.field.clone(),
            value(&x.before),
            value(&x.after),
            x.status.clone(),
        ]);
    }
    t.render()
}

pub fn run(s: &Shown, bucket: Option<&str>, json: bool) -> String {
    if json {
        return as_json(s);
    }
    let r = &s.run;
    let mut out = format!(
        "Run {}: {}{}, started {}, finished {}, {} invocation(s){}\n\n",
        r.run_id,
        r.status.as_str(),
        if r.dry_run { " (dry run)" } else { "" },
        iso(r.started_ms),
        opt_time(r.finished_ms),
        r.invocations,
        r.stop_reason
            .as_ref()
            .map(|w| format!("; stopped: {w}"))
            .unwrap_or_default()
    );
    out.push_str(&summary_table(&r.counters));
    let _ = writeln!(
        out,
        "\nReport: {}\n        {}",
        report_line(&r.report_json_key, bucket),
        report_line(&r.report_html_key, bucket)
    );
    if let Some(e) = &r.email {
        let _ = writeln!(
            out,
            "E-mail: {}",
            match (&e.skipped, &e.error) {
                (Some(why), _) => format!("not sent ({why})"),
                (None, Some(error)) => format!("{} sent, {} refused: {}", e.sent, e.failed, error),
                (None, None) => format!("{} sent", e.sent),
            }
        );
    }
    let _ = writeln!(out, "\nWrites ({}):", s.writes.len());
    if let Some(n) = &s.note {
        let _ = writeln!(out, "  {n}");
    } else if !s.writes.is_empty() {
        out.push_str(&writes_table(&s.writes));
    }
    out
}

pub fn undone(u: &UndoOutcome, bucket: Option<&str>, json: bool) -> String {
    if json {
        return as_json(u);
    }
    let Some(id) = &u.undo_run_id else {
        return format!("{}\n", u.message);
    };
    let mut out = format!("Undo {id} of run {}: {}\n", u.of_run, u.message);
    if !u.restored.is_empty() {
        let _ = writeln!(
            out,
            "\n{} (BEFORE: the value the run wrote, AFTER: the value from before the run):",
            if u.dry_run {
                "Would restore"
            } else {
                "Restored"
            }
        );
        out.push_str(&writes_table(&u.restored));
    }
    if !u.left_alone.is_empty() {
        out.push_str("\nLeft alone:\n");
        let mut t = Table::new(&["SIDE", "CUSTOMER", "FIELD", "WHY"]);
        for d in &u.left_alone {
            t.row(vec![
                d.diff
                    .decision
                    .as_str()
                    .trim_start_matches("left-alone-")
                    .to_string(),
                d.customer_id.clone(),
                d.diff.field.clone(),
                d.diff.reason.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    for e in &u.errors {
        let _ = writeln!(
            out,
            "Error: {} ({}): {}",
            e.during,
            opt(&e.customer_id),
            e.message
        );
    }
    let _ = writeln!(
        out,
        "\nReport: {}\n        {}",
        report_line(&u.report_json_key, bucket),
        report_line(&u.report_html_key, bucket)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_value_reaches_the_terminal_escaped() {
        let hostile = "\u{1b}[2J\u{1b}[1A\rACME".to_string();
        let c = OpenConflict {
            id: "abcd1234".into(),
            customer_id: "cust-1".into(),
            field: "company_name".into(),
            property: "name".into(),
            warp_value: format!("\"{hostile}\""),
            hubspot_value: hostile.clone(),
            raised_at: "2026-12-02T02:00:00Z".into(),
            source: "run:nightly".into(),
        };
        for json in [false, true] {
            let shown = crate::terminal::printable(&conflicts(std::slice::from_ref(&c), json));
            assert!(
                !shown.contains('\u{1b}') && !shown.contains('\r'),
                "{shown}"
            );
            assert!(shown.contains("[2J"), "the value is still shown: {shown}");
        }
    }

    #[test]
    fn report_keys_are_shown_as_s3_uris_when_the_bucket_is_known() {
        let key = Some("reports/nightly-2026-11-24/report.html".to_string());
        assert_eq!(
            report_line(&key, Some("hubspot-warp-reports")),
            "s3://hubspot-warp-reports/reports/nightly-2026-11-24/report.html"
        );
        assert_eq!(
            report_line(&key, None),
            "reports/nightly-2026-11-24/report.html"
        );
        assert_eq!(report_line(&None, Some("b")), "-");
    }
}
