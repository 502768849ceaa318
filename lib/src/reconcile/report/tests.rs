use super::*;

fn facts() -> RunFacts {
    RunFacts {
        run_id: "nightly-2026-11-25".into(),
        status: "COMPLETED".into(),
        dry_run: false,
        stop_reason: None,
        started_ms: 1_764_054_000_000,
        finished_ms: 1_764_054_093_000,
        invocations: 2,
        timezone: chrono_tz::America::Denver,
    }
}

#[test]
fn pieces_sum_and_a_later_link_clears_an_unmatched_customer() {
    let mut a = Piece::default();
    a.counters.pairs_compared = 100;
    a.counters.unmatched_warp = 2;
    for c in ["c1", "c2"] {
        a.unmatched_warp.push(Unmatched {
            customer_id: Some(c.into()),
            ban: None,
            company_id: None,
            reason: "no company".into(),
        });
    }
    let mut b = Piece::default();
    b.counters.pairs_compared = 1;
    b.counters.linked = 1;
    b.linked.push(Linked {
        customer_id: "c2".into(),
        ban: "ZT-2".into(),
        company_id: "9".into(),
    });
    let r = assemble(&facts(), vec![a, b], Vec::new());
    assert_eq!(r.summary.pairs_compared, 101);
    assert_eq!(r.summary.unmatched_warp, 1);
    assert_eq!(r.unmatched_warp.len(), 1);
    assert_eq!(r.started_local, "2025-11-25 00:00:00 MST");
    assert_eq!(r.duration_ms, 93_000);
}

/// Every string a report holds, whatever its column, set to markup: the
/// page shows it as text. Walking the serialized report covers every
/// field, including any added later; a field typed as an enum (a
/// difference's outcome) cannot hold markup and is left as it is.
#[test]
fn every_value_that_reaches_the_page_is_escaped() {
    const HOSTILE: &str = "<script>alert(\"x\")</script>'&amp;<img src=x onerror=y>";
    const SHOWN: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;amp;&lt;img src=x onerror=y&gt;";
    fn poison(v: &mut Value) -> usize {
        match v {
            Value::String(s) => {
                *s = HOSTILE.into();
                1
            }
            Value::Array(a) => a.iter_mut().map(poison).sum(),
            Value::Object(o) => o
                .iter_mut()
                .filter(|(k, _)| k.as_str() != "decision")
                .map(|(_, v)| poison(v))
                .sum(),
            _ => 0,
        }
    }
    let diff: FieldDiff = serde_json::from_value(serde_json::json!({
        "field": "f", "property": "p", "warp_value": "w", "hubspot_value": "h",
        "baseline": "b", "decision": "write-warp", "reason": "r"
    }))
    .expect("a field difference");
    let row = |x: &str| Some(x.to_string());
    let mut p = Piece::default();
    p.differences.push(PairDiff {
        customer_id: "c".into(),
        ban: "b".into(),
        company_id: "1".into(),
        diff,
    });
    p.writes.push(Write {
        side: "warp".into(),
        customer_id: "c".into(),
        ban: "b".into(),
        company_id: "1".into(),
        field: "f".into(),
        property: "p".into(),
        before: Value::String("x".into()),
        after: Value::String("y".into()),
        status: "written".into(),
    });
    p.error(
        row("c").as_deref(),
        row("1").as_deref(),
        "WARP PUT",
        "m".into(),
    );
    let unmatched = Unmatched {
        customer_id: row("c"),
        ban: row("b"),
        company_id: row("1"),
        reason: "r".into(),
    };
    p.unmatched_warp.push(unmatched.clone());
    p.unmatched_hubspot.push(unmatched);
    p.linked.push(Linked {
        customer_id: "c2".into(),
        ban: "b".into(),
        company_id: "1".into(),
    });
    p.swept.push("k".into());
    let mut facts = facts();
    facts.stop_reason = Some("s".into());
    let conflict = OpenConflict {
        customer_id: "c".into(),
        field: "f".into(),
        property: "p".into(),
        warp_value: "w".into(),
        hubspot_value: "h".into(),
        source: "s".into(),
    };
    let mut json = serde_json::to_value(assemble(&facts, vec![p], vec![conflict]))
        .expect("a report serializes");
    let strings = poison(&mut json);
    let report: Report = serde_json::from_value(json).expect("the poisoned report reads back");
    let html = report.to_html();
    assert!(!html.contains("<script"), "markup reached the page");
    assert!(!html.contains("<img"), "markup reached the page");
    assert!(!html.contains(HOSTILE));
    // Every string but the two page-only times (started, finished) is
    // on the page, escaped.
    let shown = html.matches(SHOWN).count();
    assert!(
        shown + 2 >= strings && shown > 40,
        "{shown} of {strings} values shown escaped"
    );
}

#[test]
fn the_page_escapes_what_the_systems_hold_and_leads_with_the_summary() {
    let mut p = Piece::default();
    p.counters.errors = 1;
    p.errors.push(RunError {
        customer_id: Some("<script>alert(1)</script>".into()),
        company_id: None,
        during: "WARP PUT".into(),
        message: "refused".into(),
    });
    let html = assemble(&facts(), vec![p], Vec::new()).to_html();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
    let summary = html.find("pairs compared").unwrap();
    let differences = html.find("<h2>Differences").unwrap();
    assert!(summary < differences);
    assert!(html.contains("card alarm"), "errors are flagged");
}
