use super::*;
use crate::reconcile::report::{
    self, Linked, OpenConflict as ReportConflict, PairDiff, Piece, RunError, RunFacts, Unmatched,
    Write,
};

const HOSTILE: &str = "<script>alert(\"x\")</script>'&amp;<img src=x onerror=y>";
const SHOWN: &str =
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;amp;&lt;img src=x onerror=y&gt;";
const EXPIRES: i64 = 1_764_313_200; // 2025-11-28T07:00:00Z

pub(crate) fn facts() -> RunFacts {
    RunFacts {
        run_id: "nightly-2026-11-25".into(),
        status: "COMPLETED".into(),
        dry_run: false,
        stop_reason: None,
        started_ms: 1_764_054_000_000,
        finished_ms: 1_764_054_093_000,
        invocations: 1,
        timezone: chrono_tz::America::Denver,
    }
}

fn diff(i: usize) -> PairDiff {
    PairDiff {
        customer_id: format!("c{i}"),
        ban: format!("ZT-{i}"),
        company_id: format!("{}", 900 + i),
        diff: serde_json::from_value(serde_json::json!({
            "field": "credit_limit", "property": "warp_credit_limit",
            "warp_value": "5000", "hubspot_value": "7500",
            "baseline": "5000", "decision": "write-warp", "reason": "HubSpot changed"
        }))
        .expect("a field difference"),
    }
}

fn write(i: usize) -> Write {
    Write {
        side: "warp".into(),
        customer_id: format!("c{i}"),
        ban: format!("ZT-{i}"),
        company_id: format!("{}", 900 + i),
        field: "credit_limit".into(),
        property: "warp_credit_limit".into(),
        before: Value::String("5000".into()),
        after: Value::String("7500".into()),
        status: "written".into(),
    }
}

pub(crate) fn conflict(id: &str) -> OpenConflict {
    OpenConflict {
        id: id.into(),
        customer_id: "c7".into(),
        field: "payment_terms".into(),
        property: "warp_payment_terms".into(),
        warp_value: "\"net30\"".into(),
        hubspot_value: "net45".into(),
        raised_at: "2025-11-24T18:00:00Z".into(),
        source: "run:nightly-2026-11-24".into(),
    }
}

pub(crate) fn as_report(c: &OpenConflict) -> ReportConflict {
    ReportConflict {
        customer_id: c.customer_id.clone(),
        field: c.field.clone(),
        property: c.property.clone(),
        warp_value: c.warp_value.clone(),
        hubspot_value: c.hubspot_value.clone(),
        source: c.source.clone(),
    }
}

fn input<'a>(report: &'a Report, conflicts: &'a [OpenConflict], max_rows: usize) -> EmailInput<'a> {
    EmailInput {
        report,
        conflicts,
        recipient: "ana@example.com",
        max_rows,
        links_expire_at: EXPIRES,
        full_report: Some("reports/nightly-2026-11-25/report.html"),
    }
}

fn link(id: &str, take: Take) -> String {
    format!("https://bridge.example.com/review/{id}.{}", take.as_str())
}

/// Every string of the report set to markup, as the report's own escaping
/// test does, and the conflicts' values and the recipient too: the HTML
/// shows each escaped and never as markup; the text shows each as it is.
#[test]
fn every_value_is_escaped_in_the_html_and_verbatim_in_the_text() {
    fn poison(v: &mut Value) {
        match v {
            Value::String(s) => *s = HOSTILE.into(),
            Value::Array(a) => a.iter_mut().for_each(poison),
            Value::Object(o) => o
                .iter_mut()
                .filter(|(k, _)| k.as_str() != "decision")
                .for_each(|(_, v)| poison(v)),
            _ => {}
        }
    }
    let mut p = Piece::default();
    p.differences.push(diff(1));
    p.writes.push(write(1));
    p.error(Some("c1"), None, "WARP PUT", "refused".into());
    p.unmatched_warp.push(Unmatched {
        customer_id: Some("c2".into()),
        ban: None,
        company_id: None,
        reason: "no company".into(),
    });
    p.linked.push(Linked {
        customer_id: "c3".into(),
        ban: "ZT-3".into(),
        company_id: "903".into(),
    });
    let mut f = facts();
    f.stop_reason = Some("s".into());
    let mut json = serde_json::to_value(report::assemble(
        &f,
        vec![p],
        vec![as_report(&conflict("a"))],
    ))
    .expect("a report serializes");
    poison(&mut json);
    let report: Report = serde_json::from_value(json).expect("the poisoned report reads back");
    let hostile = OpenConflict {
        id: HOSTILE.into(),
        customer_id: HOSTILE.into(),
        field: HOSTILE.into(),
        property: HOSTILE.into(),
        warp_value: serde_json::to_string(HOSTILE).unwrap(),
        hubspot_value: HOSTILE.into(),
        raised_at: HOSTILE.into(),
        source: HOSTILE.into(),
    };
    let conflicts = [hostile];
    let mut i = input(&report, &conflicts, 10);
    i.recipient = HOSTILE;
    i.full_report = Some(HOSTILE);
    // The link builder echoes what it was given: the id reaches the href.
    let email = compose(&i, |id, take| {
        format!("https://x/review/{id}?{}", take.as_str())
    });

    assert!(!email.html.contains("<script"), "markup reached the HTML");
    assert!(!email.html.contains("<img"), "markup reached the HTML");
    assert!(!email.html.contains(HOSTILE));
    assert!(!email.html.contains("<style"), "styles are inline");
    // Shown escaped: run id (title, heading), status, start, zone, stop
    // reason; a difference's customer, BAN, company, field, property, both
    // values, reason; a write's side, customer, BAN, company, field,
    // property, before, after, status; the conflict's customer, field,
    // property, both values, time, id, both links; the recipient; where
    // the full report is.
    let escaped = email.html.matches(SHOWN).count();
    assert!(escaped >= 34, "{escaped} values shown escaped");
    // Both links, escaped inside their attributes.
    assert_eq!(
        email
            .html
            .matches(&format!("href=\"https://x/review/{SHOWN}?"))
            .count(),
        2
    );
    let verbatim = email.text.matches(HOSTILE).count();
    assert!(verbatim >= 33, "{verbatim} values verbatim in the text");
    assert!(!email.text.contains(SHOWN), "the text is not HTML");
    assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
}

#[test]
fn the_subject_is_one_line_whatever_the_run_id_holds() {
    let mut report = report::assemble(&facts(), Vec::new(), Vec::new());
    report.run_id = "nightly\r\nBcc: eve@example.com".into();
    let email = compose(&input(&report, &[], 10), link);
    assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
    assert!(
        email.subject.contains("nothing needs you"),
        "{}",
        email.subject
    );
}

#[test]
fn rows_are_cut_at_max_rows_with_the_total() {
    let mut p = Piece::default();
    p.differences.extend((0..7).map(diff));
    p.writes.extend((0..3).map(write));
    let report = report::assemble(&facts(), vec![p], Vec::new());
    let email = compose(&input(&report, &[], 5), link);
    assert!(
        email.html.contains(">Differences (7)</h2>"),
        "{}",
        email.html
    );
    assert!(email.html.contains("2 more in the full report (7 in all)."));
    assert!(email.html.contains(">Writes (3)</h2>"));
    for i in 0..5 {
        assert!(email.html.contains(&format!(">c{i} (ZT-{i})<")), "row {i}");
        assert!(
            email.text.contains(&format!("- c{i} (ZT-{i}) | ")),
            "row {i}"
        );
    }
    for i in 5..7 {
        assert!(
            !email.html.contains(&format!("c{i} (ZT-{i})")),
            "row {i} is cut"
        );
        assert!(
            !email.text.contains(&format!("c{i} (ZT-{i})")),
            "row {i} is cut"
        );
    }
    assert!(email.text.contains("Differences (7)\n"));
    assert!(
        email.text.contains(
            "Differences (7)\n  customer | company | field | WARP | HubSpot | decision\n"
        )
    );
    assert!(
        email
            .text
            .contains("2 more in the full report (7 in all).\n")
    );
    assert!(email.text.contains("Writes (3)\n"));
    assert_eq!(email.html.matches("more in the full report").count(), 1);
    // No row at all still gives the total.
    let none = compose(&input(&report, &[], 0), link);
    assert!(none.html.contains("7 more in the full report (7 in all)."));
    assert!(none.text.contains("3 more in the full report (3 in all)."));
    assert!(!none.html.contains("<th"), "no empty table");
}

#[test]
fn each_conflict_has_both_links_built_from_its_id() {
    let report = report::assemble(&facts(), Vec::new(), vec![as_report(&conflict("3fa9c21e"))]);
    let conflicts = [conflict("3fa9c21e"), conflict("0b1d2e3f")];
    let email = compose(&input(&report, &conflicts, 10), link);
    for id in ["3fa9c21e", "0b1d2e3f"] {
        let keep = format!("https://bridge.example.com/review/{id}.warp");
        let take = format!("https://bridge.example.com/review/{id}.hubspot");
        assert!(
            email.html.contains(&format!(
                "<a href=\"{keep}\" style=\"{BUTTON}\">keep WARP&#39;s value</a>"
            )),
            "{id}"
        );
        assert!(
            email.html.contains(&format!(
                "<a href=\"{take}\" style=\"{BUTTON}\">take HubSpot&#39;s value</a>"
            )),
            "{id}"
        );
        assert!(
            email
                .text
                .contains(&format!("Keep WARP's value:    {keep}\n"))
        );
        assert!(
            email
                .text
                .contains(&format!("Take HubSpot's value: {take}\n"))
        );
    }
    // Both values, WARP's read from its JSON.
    assert!(email.html.contains(">net30</td>") && email.html.contains(">net45</td>"));
    assert!(email.text.contains("WARP:    net30\n   HubSpot: net45\n"));
    assert!(email.html.contains("Conflicts for you to decide (2)"));
    // Who the links are for, and until when (in the run's zone).
    let line = "These links are for ana@example.com alone and expire at \
                2025-11-28 00:00:00 MST: whoever opens one decides in that name, \
                so do not forward this e-mail.";
    assert!(email.text.contains(line), "{}", email.text);
    assert!(email.html.contains(line));
    assert!(
        email.subject.contains("2 conflicts to decide"),
        "{}",
        email.subject
    );
}

#[test]
fn the_summary_carries_the_reports_cards() {
    let mut p = Piece::default();
    p.counters.pairs_compared = 812;
    p.counters.pairs_in_sync = 790;
    p.counters.fixed_in_warp = 5;
    p.counters.fixed_in_hubspot = 6;
    p.counters.errors = 1;
    p.counters.hubspot_calls.batch_read = 9;
    p.counters.warp_calls.list = 9;
    p.errors.push(RunError {
        customer_id: Some("c1".into()),
        company_id: None,
        during: "WARP PUT".into(),
        message: "refused".into(),
    });
    let report = report::assemble(&facts(), vec![p], Vec::new());
    let page = report.to_html();
    let email = compose(&input(&report, &[], 10), link);
    for (label, n, _) in report.cards() {
        assert!(
            page.contains(&format!("<b>{n}</b><span>{label}</span>")),
            "the report has no card {n} {label}"
        );
        assert!(email.html.contains(&format!(
            ">{n}</b><span style=\"{CARD_LABEL}\">{label}</span>"
        )));
        assert!(email.text.contains(&format!("{n:>8}  {label}")), "{label}");
    }
    assert_eq!(email.html.matches(CARD_ALARM).count(), 1, "errors are red");
    assert!(email.text.contains("       1  errors  <- needs a person\n"));
    assert!(
        email
            .html
            .contains("COMPLETED &middot; started 2025-11-25 00:00:00 MST (America/Denver)")
    );
    assert!(email.text.starts_with(
        "Reconciliation nightly-2026-11-25: COMPLETED\nStarted 2025-11-25 00:00:00 MST (America/Denver)\n"
    ));
    assert_eq!(
        email.subject,
        "Reconciliation nightly-2026-11-25 COMPLETED: 1 error"
    );
}

#[test]
fn the_html_loads_nothing_and_runs_nothing() {
    let report = report::assemble(&facts(), vec![], vec![as_report(&conflict("3fa9c21e"))]);
    let email = compose(&input(&report, &[conflict("3fa9c21e")], 10), link);
    let lower = email.html.to_ascii_lowercase();
    for banned in [
        "<script",
        "<style",
        "<link",
        "<img",
        "src=",
        "url(",
        "@import",
        "javascript:",
        " onclick=",
        " onerror=",
        " onload=",
    ] {
        assert!(!lower.contains(banned), "{banned}");
    }
    // Every element that is styled is styled inline.
    assert!(!lower.contains("class="));
}

#[test]
fn a_quiet_night_needs_no_one_and_a_conflict_does() {
    let mut quiet = Piece::default();
    quiet.counters.pairs_compared = 300;
    quiet.counters.pairs_in_sync = 294;
    quiet.counters.fixed_in_warp = 4;
    quiet.counters.fixed_in_hubspot = 2;
    let night = report::assemble(&facts(), vec![quiet.clone()], Vec::new());
    assert!(!needs_attention(&night));

    let mut one = quiet.clone();
    one.counters.conflicts_for_review = 1;
    let c = as_report(&conflict("3fa9c21e"));
    assert!(needs_attention(&report::assemble(
        &facts(),
        vec![one],
        vec![c.clone()]
    )));
    // A conflict still open from a webhook or an earlier night waits for a
    // person too.
    assert!(needs_attention(&report::assemble(
        &facts(),
        vec![quiet.clone()],
        vec![c]
    )));

    let mut errors = quiet.clone();
    errors.counters.errors = 1;
    assert!(needs_attention(&report::assemble(
        &facts(),
        vec![errors],
        Vec::new()
    )));
    let mut unmatched = quiet.clone();
    unmatched.counters.unmatched_hubspot = 1;
    assert!(needs_attention(&report::assemble(
        &facts(),
        vec![unmatched],
        Vec::new()
    )));
    let mut stopped = facts();
    stopped.status = "STOPPED".into();
    stopped.stop_reason = Some("HubSpot's daily API limit was reached".into());
    assert!(needs_attention(&report::assemble(
        &stopped,
        vec![quiet],
        Vec::new()
    )));
}
