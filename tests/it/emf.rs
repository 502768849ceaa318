//! The functions' metrics, read from their log lines as CloudWatch Logs
//! would read them: the real binaries run against a Runtime API on
//! loopback, moto and the sandboxes, and every `_aws` line on stdout must
//! be a valid embedded-metric-format document carrying the counts of what
//! happened.

use std::collections::BTreeMap;
use std::time::Duration;

use hubwarp::metrics::name;
use integration_tests::fixtures::{
    LOCAL_SECRET, Signing, function_url_event, property_changes, sign_event,
};
use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::moto::MotoServer;
use integration_tests::resources::{self, Names};
use integration_tests::runtime_api::{
    FunctionProcess, RuntimeApi, function_binary, function_settings,
};
use integration_tests::warp_sandbox::WarpSandbox;
use serde_json::{Value, json};

const NAMESPACE: &str = "HubSpotWarp/emf-test";

/// One EMF document, checked against the format's rules: a millisecond
/// timestamp, one directive with a namespace, dimension sets whose keys are
/// top-level strings, and metrics whose values are top-level numbers (or
/// arrays of numbers, at most 100).
#[derive(Debug)]
struct Document {
    dimensions: BTreeMap<String, String>,
    values: BTreeMap<String, f64>,
}

fn parse_emf(line: &str) -> Option<Document> {
    let v: Value = serde_json::from_str(line).ok()?;
    let aws = v.get("_aws")?;
    let ts = aws["Timestamp"].as_i64().expect("Timestamp is an integer");
    let now = hubwarp::time::now_ms();
    assert!((now - ts).abs() < 600_000, "Timestamp {ts} is ms near now");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert_eq!(directives.len(), 1, "{line}");
    let d = &directives[0];
    assert_eq!(d["Namespace"], NAMESPACE, "{line}");
    let sets = d["Dimensions"].as_array().expect("Dimensions");
    assert!(!sets.is_empty(), "{line}");
    let mut dimensions = BTreeMap::new();
    for set in sets {
        let keys = set.as_array().expect("a dimension set is an array");
        assert!(
            !keys.is_empty() && keys.len() <= 30,
            "1-30 dimensions: {line}"
        );
        for k in keys {
            let k = k.as_str().expect("dimension key");
            let value = v[k]
                .as_str()
                .unwrap_or_else(|| panic!("dimension {k} has a string value: {line}"));
            dimensions.insert(k.to_string(), value.to_string());
        }
    }
    let metrics = d["Metrics"].as_array().expect("Metrics");
    assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
    let mut values = BTreeMap::new();
    for m in metrics {
        let n = m["Name"].as_str().expect("metric Name");
        assert!(
            name::ALL.contains(&n),
            "{n} is not one of hubwarp::metrics::name"
        );
        if let Some(unit) = m.get("Unit") {
            assert!(unit.is_string(), "{line}");
        }
        let total = match &v[n] {
            Value::Number(x) => x.as_f64().expect("number"),
            Value::Array(xs) => {
                assert!(xs.len() <= 100, "{line}");
                xs.iter().map(|x| x.as_f64().expect("number")).sum()
            }
            other => panic!("{n} has value {other}: {line}"),
        };
        values.insert(n.to_string(), total);
    }
    Some(Document { dimensions, values })
}

/// Sum of `metric` over the documents whose dimensions include `with`.
fn total(docs: &[Document], metric: &str, with: &[(&str, &str)]) -> f64 {
    docs.iter()
        .filter(|d| {
            with.iter()
                .all(|(k, v)| d.dimensions.get(*k).map(String::as_str) == Some(*v))
        })
        .filter_map(|d| d.values.get(metric))
        .sum()
}

struct Stack {
    env: Vec<(String, String)>,
    _moto: &'static MotoServer,
    warp: WarpSandbox,
    hubspot: HubspotSandbox,
    sync_queue: String,
}

async fn stack(prefix: &str) -> Stack {
    let moto = MotoServer::shared();
    let aws = moto.sdk_config().await;
    let res = resources::ensure(&aws, &Names::unique(prefix))
        .await
        .unwrap();
    let warp = WarpSandbox::start().await;
    let hubspot = HubspotSandbox::start().await;
    // The bridge's properties, as `hubwarp setup` creates them (the first
    // eight demo customers hold every tier and payment term).
    integration_tests::hubspot_setup::install_bridge_properties(
        &hubspot,
        &(0..8)
            .map(integration_tests::warp_sandbox::demo_customer)
            .collect::<Vec<_>>(),
    );
    let mut env = function_settings(&moto.endpoint, &res, &warp.base_url, &hubspot.base_url);
    env.push(("METRICS_NAMESPACE".into(), NAMESPACE.into()));
    env.push(("RUST_LOG".into(), "info".into()));
    Stack {
        env,
        _moto: moto,
        warp,
        hubspot,
        sync_queue: res.names.sync_queue(),
    }
}

/// The function's debug binary, built when `cargo test` was asked for the
/// integration tests alone.
fn binary(package: &str) -> std::path::PathBuf {
    let path = function_binary(package, "debug");
    if !path.exists() {
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", package, "--bin", package])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "building {package}");
    }
    path
}

async fn invoke(api: &mut RuntimeApi, event: Value) -> String {
    let id = api.push(event);
    let answer = api.answer(&id, Duration::from_secs(60)).await.unwrap();
    assert!(answer.ok, "{}", answer.body);
    answer.body
}

/// Waits until the EMF lines of `invocations` flushes have been written
/// (the flush follows the answer).
async fn emf_lines(process: &FunctionProcess, at_least: usize) -> Vec<Document> {
    for _ in 0..100 {
        let docs: Vec<Document> = process
            .lines()
            .iter()
            .filter_map(|l| parse_emf(l))
            .collect();
        if docs.len() >= at_least {
            return docs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} EMF lines: {:#?}", process.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_counts_events_and_rejections_by_reason() {
    let s = stack("emf-rx").await;
    let mut api = RuntimeApi::start().await.unwrap();
    let process = FunctionProcess::spawn(&binary("webhook-receiver"), &api, &s.env).unwrap();

    let host = "abc.execute-api.us-east-1.amazonaws.com";
    let mut good = function_url_event(host, "/hubspot/webhooks", "", &property_changes(3, 700));
    sign_event(
        &mut good,
        LOCAL_SECRET,
        Signing::V3(hubwarp::time::now_ms()),
        None,
    );
    let answer: Value = serde_json::from_str(&invoke(&mut api, good.clone()).await).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    // The same delivery again: three duplicates.
    invoke(&mut api, good).await;
    let mut forged = function_url_event(host, "/hubspot/webhooks", "", &property_changes(1, 900));
    sign_event(
        &mut forged,
        LOCAL_SECRET,
        Signing::Wrong(hubwarp::time::now_ms()),
        None,
    );
    let answer: Value = serde_json::from_str(&invoke(&mut api, forged).await).unwrap();
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let mut not_json = function_url_event(host, "/hubspot/webhooks", "", "{\"not\":\"an array\"}");
    sign_event(
        &mut not_json,
        LOCAL_SECRET,
        Signing::V3(hubwarp::time::now_ms()),
        None,
    );
    invoke(&mut api, not_json).await;

    let docs = emf_lines(&process, 4).await;
    let rx = [("Function", "webhook-receiver")];
    assert_eq!(total(&docs, name::EVENTS_RECEIVED, &rx), 6.0);
    assert_eq!(total(&docs, name::EVENTS_NEW, &rx), 3.0);
    assert_eq!(total(&docs, name::EVENTS_DUPLICATE, &rx), 3.0);
    let by = |reason| {
        total(
            &docs,
            name::REQUESTS_REJECTED,
            &[("Function", "webhook-receiver"), ("Reason", reason)],
        )
    };
    assert_eq!(by("signature"), 1.0, "{docs:#?}");
    assert_eq!(by("payload"), 1.0, "{docs:#?}");
    // Counts start from zero after each flush: nothing is counted twice.
    assert_eq!(total(&docs, name::REQUESTS_REJECTED, &rx), 2.0);
    // Metrics lines never carry the secret or a signature.
    for line in process.lines() {
        assert!(!line.contains(LOCAL_SECRET), "{line}");
        assert!(!line.contains("X-HubSpot-Signature"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_counts_a_finished_run() {
    let s = stack("emf-rc").await;
    let mut api = RuntimeApi::start().await.unwrap();
    let process = FunctionProcess::spawn(&binary("nightly-reconciler"), &api, &s.env).unwrap();
    let body = invoke(&mut api, json!({"scheduled_time": "2026-11-25T07:00:00Z"})).await;
    let outcome: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["status"], "completed", "{outcome}");

    let docs = emf_lines(&process, 1).await;
    let rc = [("Function", "nightly-reconciler")];
    assert_eq!(total(&docs, name::RUNS_FINISHED, &rc), 1.0, "{docs:#?}");
    assert_eq!(total(&docs, name::RUNS_STOPPED, &rc), 0.0);
    assert!(
        docs.iter()
            .any(|d| d.values.contains_key(name::RUN_DURATION)),
        "{docs:#?}"
    );
    // Listing both empty sides took HubSpot calls, counted as they went.
    assert!(total(&docs, name::HUBSPOT_CALLS, &rc) >= 1.0, "{docs:#?}");
    assert!(total(&docs, name::WARP_CALLS, &rc) >= 1.0, "{docs:#?}");
}

/// WARP down: the consumer's first failed call opens WARP's circuit
/// (BREAKER_FAILURES=1 here), the next message's call is refused; both are
/// metrics with the `Dependency` dimension the alarm watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_counts_its_breakers_transitions_and_refusals() {
    use integration_tests::warp_sandbox::{Fault, demo_customer};
    let mut s = stack("emf-brk").await;
    s.env.push(("BREAKER_FAILURES".into(), "1".into()));
    let mut records = Vec::new();
    for n in 0..2 {
        let customer = s.warp.insert(demo_customer(n));
        let company = (7_000_000 + n).to_string();
        let mut props = serde_json::Map::new();
        props.insert("warp_ban".into(), customer["ban"].clone());
        s.hubspot.upsert_company(&company, props);
        let event = json!({"eventId": 4200 + n, "subscriptionId": 1, "portalId": 62515,
            "appId": 1, "occurredAt": 1_763_700_000_000u64 + n as u64,
            "subscriptionType": "company.propertyChange", "attemptNumber": 0,
            "objectId": 7_000_000 + n, "changeSource": "CRM_UI",
            "propertyName": "warp_credit_limit", "propertyValue": "10.00"});
        let body = json!({"v": 1, "dedupKey": format!("emf-brk-{n}"),
            "receivedAt": 1_763_700_000_000u64, "event": event});
        records.push(
            json!({"messageId": format!("m{n}"), "receiptHandle": format!("r{n}"),
            "body": body.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", s.sync_queue)}),
        );
    }
    s.warp.set_fault(Fault::ServerError { times: 100 });
    let mut api = RuntimeApi::start().await.unwrap();
    let process = FunctionProcess::spawn(&binary("sync-consumer"), &api, &s.env).unwrap();
    let answer: Value =
        serde_json::from_str(&invoke(&mut api, json!({"Records": records})).await).unwrap();
    assert_eq!(
        answer["batchItemFailures"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );

    let docs = emf_lines(&process, 1).await;
    let warp = |extra: &[(&'static str, &'static str)]| {
        let mut with = vec![("Function", "sync-consumer"), ("Dependency", "warp")];
        with.extend_from_slice(extra);
        with
    };
    assert_eq!(
        total(
            &docs,
            name::BREAKER_TRANSITIONS,
            &warp(&[("State", "open")])
        ),
        1.0,
        "{docs:#?}"
    );
    assert_eq!(
        total(&docs, name::CALLS_REFUSED, &warp(&[])),
        1.0,
        "{docs:#?}"
    );
    assert!(
        docs.iter()
            .any(|d| d.values.contains_key(name::DEPENDENCY_DOWN)
                && d.dimensions.get("Dependency").map(String::as_str) == Some("warp")),
        "{docs:#?}"
    );
    assert!(
        process.lines().iter().any(|l| l.contains("circuit open")),
        "the opening is a log line"
    );
}
