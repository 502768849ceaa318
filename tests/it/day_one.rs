//! Day one in HubSpot, as a new operator lives it: the `hubwarp` binary
//! against a portal that starts without the bridge's custom properties
//! (the HubSpot sandbox, held to HubSpot's properties document), WARP's
//! sandbox and the stack's tables, queues and bucket on moto. `setup`
//! creates what the mapping needs and nothing twice; `doctor` names what is
//! wrong; `link` joins the records that exist and only the exact ones.
//!
//! Multi-threaded runtimes: the binary runs as a blocking child process
//! while the sandboxes answer it from this runtime's other worker.

use std::time::Duration;

use hubwarp::aws::Caller;
use hubwarp::mapping::MappingSet;
use hubwarp::operate::reconcile;
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::report::Counters;
use hubwarp::reconcile::run::Outcome;
use hubwarp::store::sync::LinkStore;
use integration_tests::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox};
use integration_tests::warp_sandbox::{SANDBOX_TOKEN, WarpSandbox, demo_customer};
use serde_json::{Map, Value, json};

use crate::binary::{hubwarp, printed};
use crate::consumer::company_id;
use crate::utils::Harness;

/// A stack on moto, WARP with `customers` demo customers, and a HubSpot
/// portal as a new account has it: each customer's company exists with its
/// name only, and no property of the bridge's exists.
struct Stack {
    h: Harness,
    warp: WarpSandbox,
    hubspot: HubspotSandbox,
}

impl Stack {
    async fn new(test: &str, customers: usize) -> Self {
        let h = Harness::new(test).await;
        let warp = WarpSandbox::start().await;
        let hubspot = HubspotSandbox::start().await;
        for n in 0..customers {
            let c = warp.insert(demo_customer(n));
            let mut p = Map::new();
            p.insert("name".into(), c["company_name"].clone());
            hubspot.upsert_company(&company_id(n), p);
        }
        Self { h, warp, hubspot }
    }

    /// The settings an operator exports (the stack's outputs, the tokens).
    fn vars(&self) -> Vec<(&'static str, String)> {
        let names = &self.h.res.names;
        let tables = names.sync_tables();
        vec![
            (
                "AWS_ENDPOINT_URL",
                self.h.aws.endpoint_url().unwrap().to_string(),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("WEBHOOK_EVENTS_TABLE", names.events_table()),
            ("LINKS_TABLE", tables.links),
            ("FIELD_STATE_TABLE", tables.field_state),
            ("SYNC_LOG_TABLE", tables.sync_log),
            ("CONFLICTS_TABLE", tables.conflicts),
            ("RUNS_TABLE", names.runs_table()),
            ("REPORTS_BUCKET", names.reports_bucket()),
            ("SYNC_QUEUE_URL", self.h.res.sync_queue_url.clone()),
            ("WARP_API_URL", self.warp.base_url.clone()),
            ("WARP_API_TOKEN", SANDBOX_TOKEN.into()),
            ("HUBSPOT_API_URL", self.hubspot.base_url.clone()),
            ("HUBSPOT_ACCESS_TOKEN", HUBSPOT_SANDBOX_TOKEN.into()),
        ]
    }

    fn with(&self, name: &'static str, value: &str) -> Vec<(&'static str, String)> {
        let mut vars = self.vars();
        vars.retain(|(k, _)| *k != name);
        vars.push((name, value.to_string()));
        vars
    }

    /// `hubwarp <args> --json`: exit code and the answer.
    fn json(&self, args: &[&str], vars: &[(&str, String)]) -> (Option<i32>, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = hubwarp(&all, vars);
        let (stdout, stderr) = printed(&out);
        let answer = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}\n{stderr}"));
        (out.status.code(), answer)
    }

    /// The nightly run, as the function runs it: its counters.
    async fn night(&self) -> Counters {
        let config = crate::utils::reconciler_config(
            &self.h,
            &self.warp.base_url,
            &self.hubspot.base_url,
            MappingSet::default_mapping().unwrap(),
            hubwarp::reconcile::run::RunSettings {
                reserve: Duration::ZERO,
                ..Default::default()
            },
        );
        let f = nightly_reconciler::build(&config, &self.h.aws_as(Caller::NightlyReconciler))
            .await
            .unwrap();
        let outcome: Outcome = reconcile::run_here(&f.reconciler, &ReconcileRequest::default())
            .await
            .unwrap();
        outcome.summary.expect("a finished run's counters")
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn options(property: &Value) -> Vec<String> {
    property["options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const BRIDGE: [&str; 8] = [
    "warp_ban",
    "warp_contact_email",
    "warp_credit_limit",
    "warp_current_balance",
    "warp_payment_terms",
    "warp_services",
    "warp_status",
    "warp_tier",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_what_an_empty_portal_lacks_once_and_the_night_then_fixes_hubspot() {
    let s = Stack::new("day_one_setup", 6).await;
    for p in BRIDGE {
        assert!(s.hubspot.property(p).is_none(), "a new portal has no {p}");
    }
    // Before setup, the night's batch updates are refused: the problem
    // this issue is about, as HubSpot shows it.
    let before = s.night().await;
    assert!(before.errors > 0, "{:?}", before);
    // And a property HubSpot lacks (or holds no value in yet) is no
    // decision to clear WARP: every HubSpot-owned field is intact.
    let untouched = |when: &str| {
        for n in 0..6 {
            let want = demo_customer(n);
            let id = want["id"].as_str().unwrap();
            let now = s.warp.customer(id).unwrap();
            for field in ["tier", "payment_terms", "credit_limit", "contact"] {
                assert_eq!(now[field], want[field], "{when}: customer {n} {field}");
            }
        }
    };
    untouched("a night before setup");

    let (code, dry) = s.json(&["setup", "--dry-run"], &s.vars());
    assert_eq!(code, Some(0), "{dry}");
    assert_eq!(names(&dry["created"]), BRIDGE, "{dry}");
    assert_eq!(dry["group_created"], "warp");
    assert!(
        s.hubspot.property("warp_ban").is_none(),
        "a dry run writes nothing"
    );

    let out = hubwarp(&["setup"], &s.vars());
    let (text, err) = printed(&out);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(text.contains("created property group warp"), "{text}");
    assert!(
        text.contains(
            "created warp_status (enumeration/select) options ACTIVE, SUSPENDED, PENDING, CLOSED"
        ),
        "{text}"
    );
    let kind = |p: &str| {
        let d = s
            .hubspot
            .property(p)
            .unwrap_or_else(|| panic!("{p} created"));
        (
            d["type"].as_str().unwrap_or("").to_string(),
            d["fieldType"].as_str().unwrap_or("").to_string(),
            d["groupName"].as_str().unwrap_or("").to_string(),
        )
    };
    let want = |t: &str, f: &str| (t.to_string(), f.to_string(), "warp".to_string());
    assert_eq!(kind("warp_ban"), want("string", "text"));
    assert_eq!(kind("warp_credit_limit"), want("number", "number"));
    assert_eq!(kind("warp_current_balance"), want("number", "number"));
    assert_eq!(kind("warp_status"), want("enumeration", "select"));
    assert_eq!(kind("warp_services"), want("enumeration", "checkbox"));
    assert_eq!(kind("warp_tier"), want("enumeration", "select"));
    assert_eq!(
        options(&s.hubspot.property("warp_services").unwrap()),
        ["voice", "messaging", "data"]
    );
    // Tiers and terms: what WARP's six customers hold.
    let mut tiers: Vec<String> = (0..6)
        .map(|n| demo_customer(n)["tier"].as_str().unwrap().to_string())
        .collect();
    tiers.sort();
    tiers.dedup();
    assert_eq!(options(&s.hubspot.property("warp_tier").unwrap()), tiers);
    let status = s.hubspot.property("warp_status").unwrap();
    assert!(
        status["description"]
            .as_str()
            .unwrap_or("")
            .contains("WARP overwrites"),
        "{status}"
    );

    let (code, again) = s.json(&["setup"], &s.vars());
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["created"], json!([]), "{again}");
    assert_eq!(again["group_created"], Value::Null);
    let out = hubwarp(&["setup"], &s.vars());
    assert!(
        printed(&out).0.contains("0 change(s): nothing to do"),
        "{}",
        printed(&out).0
    );

    let night = s.night().await;
    assert_eq!(night.errors, 0, "{:?}", night);
    assert!(night.fixed_in_hubspot > 0, "{:?}", night);
    untouched("the first night after setup");
    let c0 = demo_customer(0);
    let company = s.hubspot.company(&company_id(0)).unwrap();
    assert_eq!(company["warp_ban"], c0["ban"]);
    assert_eq!(company["warp_status"], c0["status"]);
    assert_eq!(
        company["warp_credit_limit"], c0["credit_limit"],
        "seeded from WARP"
    );
    assert_eq!(company["warp_contact_email"], c0["contact"]["email"]);
    assert!(
        company.get("warp_tier").is_none_or(Value::is_null),
        "HubSpot owns tier: not written against its direction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_of_the_wrong_type_is_reported_and_left_as_it_is() {
    let s = Stack::new("day_one_wrong_type", 2).await;
    // Someone made a text field for the credit limit before the bridge came.
    s.hubspot
        .create_property(json!({
            "name": "warp_credit_limit", "label": "Credit limit", "type": "string",
            "fieldType": "text", "groupName": "companyinformation",
        }))
        .unwrap();
    let out = hubwarp(&["setup"], &s.vars());
    let (text, err) = printed(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(
        text.contains(
            "PROBLEM warp_credit_limit: is string/text where the mapping needs number/number"
        ),
        "{text}\n{err}"
    );
    assert!(
        text.contains("7 change(s)") || text.contains("8 change(s)"),
        "{text}"
    );
    let kept = s.hubspot.property("warp_credit_limit").unwrap();
    assert_eq!(kept["type"], "string", "never changed: {kept}");
    assert_eq!(kept["label"], "Credit limit");
    for p in BRIDGE.iter().filter(|p| **p != "warp_credit_limit") {
        assert!(s.hubspot.property(p).is_some(), "{p} created beside it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_is_all_green_on_a_ready_stack_and_names_each_problem() {
    let s = Stack::new("day_one_doctor", 3).await;
    let (code, _) = s.json(&["setup"], &s.vars());
    assert_eq!(code, Some(0));
    let night = s.night().await;
    assert_eq!(night.errors, 0, "{:?}", night);

    let out = hubwarp(&["doctor"], &s.vars());
    let (text, err) = printed(&out);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(!text.contains('✗'), "{text}");
    for line in [
        "✓ WARP API: reachable, token accepted (3 customers)",
        "✓ HubSpot token: accepted",
        "✓ HubSpot properties: all 13 mapped properties present",
        "✓ table WEBHOOK_EVENTS_TABLE",
        "✓ bucket REPORTS_BUCKET",
        "✓ dead-letter queue: empty",
        "✓ last night's run",
        "✓ open conflicts: none",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    let failing = |vars: &[(&str, String)], expect: &str| {
        let (code, answer) = s.json(&["doctor"], vars);
        assert_eq!(code, Some(1), "{answer}");
        assert_eq!(answer["ok"], false);
        let bad: Vec<String> = answer["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| format!("{}: {} (fix: {})", c["check"], c["detail"], c["fix"]))
            .collect();
        assert!(
            bad.iter().any(|b| b.contains(expect)),
            "expected a ✗ with {expect:?}: {bad:#?}"
        );
        bad
    };
    let bad = failing(&s.with("WARP_API_TOKEN", "wrong"), "WARP refused the token");
    assert_eq!(bad.len(), 1, "only WARP's line: {bad:#?}");
    failing(
        // Another stack's name (a wrong prefix): the operator policy covers
        // the name, and DynamoDB has no such table.
        &s.with(
            "WEBHOOK_EVENTS_TABLE",
            &integration_tests::resources::Names::unique("day_one_gone").events_table(),
        ),
        "table WEBHOOK_EVENTS_TABLE",
    );
    s.hubspot.add_token(
        "pat-read-only",
        &["crm.objects.companies.read", "crm.schemas.companies.read"],
    );
    let bad = failing(
        &s.with("HUBSPOT_ACCESS_TOKEN", "pat-read-only"),
        "lacks crm.objects.companies.write",
    );
    assert!(
        bad.iter()
            .any(|b| b.contains("crm.schemas.companies.write")),
        "{bad:#?}"
    );

    // A portal where someone deleted a property the mapping needs.
    let fresh = HubspotSandbox::start().await;
    let bad = failing(
        &s.with("HUBSPOT_API_URL", &fresh.base_url),
        "warp_status: missing; `hubwarp setup` creates it",
    );
    assert!(bad.iter().all(|b| !b.contains("WARP API")), "{bad:#?}");

    // WARP later holds a tier HubSpot's options lack: the next write of it
    // would be refused, so doctor says so before a night does.
    let id = demo_customer(0)["id"].as_str().unwrap().to_string();
    s.warp.edit(&id, json!({"tier": "DIAMOND"}));
    let bad = failing(&s.vars(), "warp_tier: lacks the option(s) DIAMOND");
    assert_eq!(bad.len(), 1, "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_joins_the_exact_matches_only_and_a_second_apply_changes_nothing() {
    let h = Harness::new("day_one_link").await;
    let warp = WarpSandbox::start().await;
    let hubspot = HubspotSandbox::start().await;
    // Customers imported into WARP with no HubSpot id at all.
    let customers: Vec<Value> = (0..5)
        .map(|n| {
            let mut c = demo_customer(n);
            c["external_ids"] = json!({});
            warp.insert(c)
        })
        .collect();
    let s = Stack { h, warp, hubspot };
    s.json(&["setup"], &s.vars());
    let ban = |n: usize| customers[n]["ban"].as_str().unwrap().to_string();
    let company = |id: &str, props: Value| {
        let Value::Object(p) = props else {
            unreachable!()
        };
        s.hubspot.upsert_company(id, p);
    };
    // 0: a person typed the BAN into HubSpot: exact.
    company("9001", json!({"name": "Zero Inc", "warp_ban": ban(0)}));
    // 1: the same name, told apart only by its legal form: a suggestion.
    let name1 = customers[1]["company_name"].as_str().unwrap();
    company("9002", json!({"name": format!("{name1}, Inc.")}));
    // 2: the contact's mail domain is the company's web site: a suggestion.
    let mail2 = customers[2]["contact"]["email"].as_str().unwrap();
    let domain2 = mail2.rsplit_once('@').unwrap().1;
    company(
        "9003",
        json!({"name": "Other name", "domain": format!("www.{domain2}")}),
    );
    // 3: two companies carry one BAN: left alone.
    company("9004", json!({"name": "Three A", "warp_ban": ban(3)}));
    company("9005", json!({"name": "Three B", "warp_ban": ban(3)}));
    // 4: nothing alike.
    company("9006", json!({"name": "Unrelated Widgets"}));

    let before: Vec<Value> = (0..5)
        .map(|n| {
            s.warp
                .customer(customers[n]["id"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let (code, dry) = s.json(&["link"], &s.vars());
    assert_eq!(code, Some(0), "{dry}");
    let kinds: Vec<(String, String)> = dry["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["company_id"]
                    .as_str()
                    .map_or_else(|| p["company_ids"].to_string(), str::to_string),
            )
        })
        .collect();
    let has =
        |kind: &str, company: &str| kinds.iter().any(|(k, c)| k == kind && c.contains(company));
    assert!(has("link", "9001"), "{kinds:?}");
    assert!(has("suggestion", "9002"), "{kinds:?}");
    assert!(has("suggestion", "9003"), "{kinds:?}");
    assert!(
        has("conflict", "9004") && has("conflict", "9005"),
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|(_, c)| c.contains("9006")), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|(k, _)| k == "link").count(),
        1,
        "{kinds:?}"
    );
    for (n, b) in before.iter().enumerate() {
        let now = s
            .warp
            .customer(customers[n]["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(&now, b, "a dry run writes nothing to WARP");
    }
    let store = hubwarp::store::DynamoSyncStore::new(
        hubwarp::aws::dynamodb(&s.h.aws_as(Caller::Operator)),
        s.h.res.names.sync_tables(),
        Duration::from_secs(86_400),
    );
    assert!(
        store.link("9001").await.unwrap().is_none(),
        "nor to the links table"
    );

    let out = hubwarp(&["link", "--apply"], &s.vars());
    let (text, err) = printed(&out);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(text.contains("1 linked now"), "{text}");
    let c0 = s
        .warp
        .customer(customers[0]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(c0["external_ids"]["hubspot_company_id"], "9001");
    let link = store.link("9001").await.unwrap().expect("linked");
    assert_eq!(link.customer_id, customers[0]["id"].as_str().unwrap());
    for n in 1..5 {
        let now = s
            .warp
            .customer(customers[n]["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(now, before[n], "customer {n} is no exact match: untouched");
    }
    for id in ["9002", "9003", "9006"] {
        assert!(
            s.hubspot
                .company(id)
                .unwrap()
                .get("warp_ban")
                .is_none_or(Value::is_null),
            "{id} is not linked"
        );
    }

    let (code, again) = s.json(&["link", "--apply"], &s.vars());
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["linked"], 0, "{again}");
    assert!(
        !again["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "link"),
        "{again}"
    );
}

/// The app definition the day-one guide ships asks for exactly the scopes
/// doctor checks the token for.
#[test]
fn the_apps_definition_asks_for_the_scopes_doctor_checks() {
    let path = integration_tests::workspace_root().join("infra/hubspot/app-hsmeta.json");
    let app: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(app["type"], "app");
    assert_eq!(app["config"]["distribution"], "private");
    assert_eq!(app["config"]["auth"]["type"], "static");
    let asked: Vec<&str> = app["config"]["auth"]["requiredScopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let checked: Vec<&str> = hubwarp::operate::doctor::SCOPES
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(asked, checked);
}
