//! The SAM template and the local resources agree on names and keys, and
//! the function's environment names the settings the code reads.

use hubwarp::store::dynamo_events;
use integration_tests::resources::{self, DEFAULT_PREFIX};
use integration_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value under a `!Ref` (or other) tag.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

fn sub(v: &Value) -> String {
    match v {
        Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str().unwrap_or_default().to_string(),
        other => panic!("expected !Sub, got {other:?}"),
    }
}

#[test]
fn sam_template_matches_local_resources() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(
        t["Parameters"]["ResourcePrefix"]["Default"].as_str(),
        Some(DEFAULT_PREFIX)
    );

    for (logical_id, spec) in [
        "WebhookEventsTable",
        "LinksTable",
        "FieldStateTable",
        "SyncLogTable",
        "ConflictsTable",
        "BreakersTable",
        "RunsTable",
    ]
    .iter()
    .zip(resources::TABLES)
    {
        let table = &r[*logical_id]["Properties"];
        assert_eq!(
            sub(&table["TableName"]),
            format!("${{ResourcePrefix}}-{}", spec.suffix),
            "{logical_id}"
        );
        let keys: Vec<(&str, &str)> = table["KeySchema"]
            .as_sequence()
            .map(|k| {
                k.iter()
                    .map(|e| {
                        (
                            e["AttributeName"].as_str().unwrap_or(""),
                            e["KeyType"].as_str().unwrap_or(""),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut expected = vec![(spec.hash, "HASH")];
        expected.extend(spec.range.map(|r| (r, "RANGE")));
        assert_eq!(keys, expected, "{logical_id}");
        assert_eq!(
            table["TimeToLiveSpecification"]["AttributeName"].as_str(),
            spec.ttl,
            "{logical_id}"
        );
    }
    assert_eq!(resources::TABLES[0].hash, dynamo_events::KEY);

    let queue = &r["SyncQueue"]["Properties"];
    assert_eq!(
        sub(&queue["QueueName"]),
        format!("${{ResourcePrefix}}-{}", resources::SYNC_QUEUE_SUFFIX)
    );
    assert_eq!(
        queue["VisibilityTimeout"].as_u64(),
        Some(u64::from(resources::SYNC_VISIBILITY_TIMEOUT_S))
    );
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(resources::MAX_RECEIVE_COUNT))
    );
    assert_eq!(
        queue["MessageRetentionPeriod"].as_u64(),
        Some(u64::from(resources::SYNC_RETENTION_S))
    );
    assert!(
        sub(&r["ReportsBucket"]["Properties"]["BucketName"]).starts_with(&format!(
            "${{ResourcePrefix}}-{}",
            resources::REPORTS_SUFFIX
        )),
        "reports bucket name"
    );
    let dlq = &r["SyncDeadLetterQueue"]["Properties"];
    assert_eq!(
        sub(&dlq["QueueName"]),
        format!("${{ResourcePrefix}}-{}", resources::SYNC_DLQ_SUFFIX)
    );
}

#[test]
fn receiver_environment_names_every_setting_it_reads() {
    let t = template();
    let vars = &t["Resources"]["WebhookReceiverFunction"]["Properties"]["Environment"]["Variables"];
    for name in [
        "WEBHOOK_EVENTS_TABLE",
        "SYNC_QUEUE_URL",
        "HUBSPOT_CLIENT_SECRET_ARN",
        "HUBSPOT_SIGNATURE_MIN_VERSION",
        "WEBHOOK_PUBLIC_URL",
        "MAX_BODY_BYTES",
        "EVENT_RETENTION_DAYS",
    ] {
        assert!(!vars[name].is_null(), "template does not set {name}");
    }
    assert!(
        vars["HUBSPOT_CLIENT_SECRET"].is_null(),
        "the secret itself never goes in the template"
    );
}

#[test]
fn consumer_environment_and_trigger() {
    let t = template();
    let f = &t["Resources"]["SyncConsumerFunction"]["Properties"];
    let vars = &f["Environment"]["Variables"];
    for name in [
        "WEBHOOK_EVENTS_TABLE",
        "LINKS_TABLE",
        "FIELD_STATE_TABLE",
        "SYNC_LOG_TABLE",
        "CONFLICTS_TABLE",
        "BREAKERS_TABLE",
        "WARP_API_URL",
        "WARP_API_TOKEN_ARN",
        "HUBSPOT_API_URL",
        "HUBSPOT_ACCESS_TOKEN_ARN",
    ] {
        assert!(!vars[name].is_null(), "template does not set {name}");
    }
    let events = f["Events"].as_mapping().expect("events");
    let sqs = events.values().next().expect("one event");
    assert_eq!(sqs["Type"].as_str(), Some("SQS"));
    assert_eq!(
        sqs["Properties"]["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    // The queue's visibility timeout stays six times the function's timeout.
    let timeout = f["Timeout"].as_u64().expect("timeout");
    assert_eq!(u64::from(resources::SYNC_VISIBILITY_TIMEOUT_S), 6 * timeout);
}

#[test]
fn reconciler_environment_and_schedule() {
    let t = template();
    let f = &t["Resources"]["NightlyReconcilerFunction"]["Properties"];
    let vars = &f["Environment"]["Variables"];
    for name in [
        "WEBHOOK_EVENTS_TABLE",
        "LINKS_TABLE",
        "FIELD_STATE_TABLE",
        "SYNC_LOG_TABLE",
        "CONFLICTS_TABLE",
        "RUNS_TABLE",
        "REPORTS_BUCKET",
        "SYNC_QUEUE_URL",
        "WARP_API_URL",
        "WARP_API_TOKEN_ARN",
        "HUBSPOT_API_URL",
        "HUBSPOT_ACCESS_TOKEN_ARN",
        "HUBSPOT_RATE_LIMIT_PER_10S",
        "RECONCILE_TIMEZONE",
    ] {
        assert!(!vars[name].is_null(), "template does not set {name}");
    }
    let schedule = &f["Events"]["Nightly"];
    assert_eq!(schedule["Type"].as_str(), Some("ScheduleV2"));
    assert_eq!(
        schedule["Properties"]["ScheduleExpression"].as_str(),
        Some("cron(0 2 * * ? *)")
    );
    // The payload carries the scheduled time, which is the run's id.
    let input: serde_json::Value =
        serde_json::from_str(schedule["Properties"]["Input"].as_str().unwrap_or_default())
            .unwrap_or_default();
    let request: hubwarp::reconcile::ReconcileRequest =
        serde_json::from_value(input).unwrap_or_default();
    assert_eq!(
        request.scheduled_time.as_deref(),
        Some("<aws.scheduler.scheduled-time>")
    );
}

const FUNCTIONS: [(&str, &str); 4] = [
    ("WebhookReceiverFunction", "webhook-receiver"),
    ("SyncConsumerFunction", "sync-consumer"),
    ("NightlyReconcilerFunction", "nightly-reconciler"),
    ("ReviewPageFunction", "review-page"),
];

#[test]
fn each_function_is_built_by_cargo_lambda_from_its_crate() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(
        t["Parameters"]["Architecture"]["Default"].as_str(),
        Some("arm64")
    );
    for (logical_id, package) in FUNCTIONS {
        let f = &t["Resources"][logical_id];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{logical_id}"
        );
        let code_uri = f["Properties"]["CodeUri"].as_str().unwrap_or_default();
        let manifest = workspace_root()
            .join("infra")
            .join(code_uri)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("{logical_id}: {}: {e}", manifest.display()));
        assert!(
            text.contains(&format!("name = \"{package}\"")),
            "{logical_id}: {} is not the {package} crate",
            manifest.display()
        );
        // Its own log group, with the stack's retention.
        let group = tagged(&f["Properties"]["LoggingConfig"]["LogGroup"], "!Ref")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert_eq!(
            tagged(
                &t["Resources"][group]["Properties"]["RetentionInDays"],
                "!Ref"
            )
            .and_then(Value::as_str),
            Some("LogRetentionDays"),
            "{logical_id}: log group {group}"
        );
    }
}

/// Gives each `!Ref`, `!Sub`, `!GetAtt` and `!If` of an environment a value
/// of the shape AWS would: a parameter's default, a table's name, a
/// queue's URL, a secret's or topic's ARN.
fn resolve(t: &Value, v: &Value) -> Option<String> {
    let prefix = t["Parameters"]["ResourcePrefix"]["Default"]
        .as_str()
        .unwrap_or_default();
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(tag) => match tag.tag.to_string().as_str() {
            "!Sub" => Some(
                tag.value
                    .as_str()?
                    .replace("${ResourcePrefix}", prefix)
                    .replace("${AWS::Region}", "us-east-1")
                    .replace("${AWS::AccountId}", "123456789012"),
            ),
            "!If" => {
                // The branch that sets a value.
                let branches = tag.value.as_sequence()?;
                resolve(t, branches.get(1)?)
            }
            "!Ref" => {
                let name = tag.value.as_str()?;
                if name == "AWS::NoValue" {
                    return None;
                }
                if let Some(p) = t["Parameters"].get(name) {
                    let address = p["AllowedPattern"]
                        .as_str()
                        .is_some_and(|a| a.contains('@'));
                    return match &p["Default"] {
                        Value::String(s) if s.is_empty() && address => {
                            Some("finance@example.com".into())
                        }
                        Value::String(s) if s.is_empty() => Some("https://example.com/hook".into()),
                        d => resolve(t, d),
                    };
                }
                let kind = t["Resources"][name]["Type"].as_str().unwrap_or_default();
                Some(match kind {
                    "AWS::SQS::Queue" => {
                        format!("https://sqs.us-east-1.amazonaws.com/123456789012/{name}")
                    }
                    "AWS::SecretsManager::Secret" => {
                        format!(
                            "arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
                        )
                    }
                    "AWS::SNS::Topic" => format!("arn:aws:sns:us-east-1:123456789012:{name}"),
                    _ => format!("{prefix}-{name}"),
                })
            }
            other => panic!("unexpected {other} in an environment"),
        },
        _ => None,
    }
}

/// The template sets exactly the settings each function's config reads:
/// every required one (the config starts from the template's environment
/// alone) and nothing the code never reads (a renamed setting left behind).
#[test]
fn each_function_environment_is_what_its_config_reads() {
    use hubwarp::settings::Env;
    let t = template();
    for (logical_id, _) in FUNCTIONS {
        let vars = t["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{logical_id} has no environment"));
        let set: Vec<(String, String)> = vars
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), resolve(&t, v)?)))
            .collect();
        let env = Env::from_pairs(set.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let started = match logical_id {
            "WebhookReceiverFunction" => webhook_receiver::Config::from_env(&env).map(|_| ()),
            "SyncConsumerFunction" => sync_consumer::Config::from_env(&env).map(|_| ()),
            "ReviewPageFunction" => review_page::Config::from_env(&env).map(|_| ()),
            _ => nightly_reconciler::Config::from_env(&env).map(|_| ()),
        };
        if let Err(e) = started {
            panic!("{logical_id} cannot start from the template's environment: {e}");
        }
        let asked = env.names_asked();
        for (name, _) in &set {
            // Read by the tracing subscriber before any config exists.
            if name == "RUST_LOG" {
                continue;
            }
            assert!(
                asked.contains(name),
                "{logical_id} sets {name}, which its config never reads"
            );
        }
        for name in vars.keys().filter_map(|k| k.as_str()) {
            assert!(
                !name.ends_with("_TOKEN") && !name.ends_with("_SECRET"),
                "{logical_id}: {name} would put a secret in the template; use {name}_ARN"
            );
        }
    }
}

/// Every alarm on the functions' own metrics watches a name the code emits,
/// in the namespace the functions are given, from the function that emits
/// it, with exactly the dimension set the code gives it.
#[test]
fn alarms_watch_metrics_the_functions_emit() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("resources");
    let namespace = "HubSpotWarp/${ResourcePrefix}";
    for (logical_id, _) in FUNCTIONS {
        let vars = &t["Resources"][logical_id]["Properties"]["Environment"]["Variables"];
        assert_eq!(sub(&vars["METRICS_NAMESPACE"]), namespace, "{logical_id}");
    }
    let mut watched = 0;
    let mut check = |alarm: &str, metric: &Value| {
        let Some(ns) = tagged(&metric["Namespace"], "!Sub") else {
            return;
        };
        assert_eq!(ns.as_str(), Some(namespace), "{alarm}");
        let name = metric["MetricName"].as_str().unwrap_or_default();
        assert!(
            hubwarp::metrics::name::ALL.contains(&name),
            "{alarm} watches {name}, which no function emits"
        );
        let function = metric["Dimensions"]
            .as_sequence()
            .and_then(|d| d.iter().find(|d| d["Name"].as_str() == Some("Function")))
            .and_then(|d| d["Value"].as_str())
            .unwrap_or_default();
        assert!(
            FUNCTIONS.iter().any(|(_, f)| *f == function),
            "{alarm}: Function dimension {function:?}"
        );
        // The whole dimension set, as the code emits the metric.
        let (_, functions, extra) = EMITTED
            .iter()
            .find(|(m, ..)| *m == name)
            .unwrap_or_else(|| panic!("{alarm}: {name} is not in EMITTED"));
        assert!(
            functions.contains(&function),
            "{alarm}: {name} comes from {functions:?}, not Function={function:?}"
        );
        let mut keys: Vec<&str> = metric["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|d| d["Name"].as_str())
            .filter(|k| *k != "Function")
            .collect();
        let mut expected = extra.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            keys, expected,
            "{alarm}: {name} is emitted with Function and {extra:?}"
        );
        watched += 1;
    };
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let id = id.as_str().unwrap_or_default();
        let p = &r["Properties"];
        assert!(
            p["AlarmActions"]
                .as_sequence()
                .is_some_and(|a| !a.is_empty()),
            "{id} tells no one"
        );
        check(id, p);
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            check(id, &m["MetricStat"]["Metric"]);
        }
    }
    assert!(
        watched >= 5,
        "only {watched} alarms on the functions' metrics"
    );
}

/// The reconciler's asynchronous invocations (the schedule's and its own
/// continuations) that fail for good land in an encrypted SQS queue kept
/// 14 days, and an alarm watches its depth.
#[test]
fn reconciler_failures_land_in_a_watched_queue() {
    let t = template();
    let r = &t["Resources"];
    let on_failure = &r["NightlyReconcilerFunction"]["Properties"]["EventInvokeConfig"]["DestinationConfig"]
        ["OnFailure"];
    assert_eq!(on_failure["Type"].as_str(), Some("SQS"));
    let queue = tagged(&on_failure["Destination"], "!GetAtt")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_suffix(".Arn"))
        .expect("OnFailure destination is !GetAtt <queue>.Arn");
    assert_eq!(r[queue]["Type"].as_str(), Some("AWS::SQS::Queue"));
    let p = &r[queue]["Properties"];
    assert_eq!(p["MessageRetentionPeriod"].as_u64(), Some(14 * 24 * 3600));
    assert_eq!(p["SqsManagedSseEnabled"].as_bool(), Some(true));
    let watched = t["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|a| a["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .any(|a| {
            a["Properties"]["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|d| {
                    tagged(&d["Value"], "!GetAtt").and_then(Value::as_str)
                        == Some(&format!("{queue}.QueueName"))
                })
        });
    assert!(watched, "no alarm watches {queue}");
}

/// Deleting or replacing the stack keeps the secrets' real values, and the
/// reports bucket refuses requests without TLS, on itself and its objects.
#[test]
fn secrets_are_retained_and_reports_need_tls() {
    let t = template();
    let r = &t["Resources"];
    for secret in ["HubSpotClientSecret", "HubSpotAccessToken", "WarpApiToken"] {
        assert_eq!(
            r[secret]["DeletionPolicy"].as_str(),
            Some("Retain"),
            "{secret}"
        );
        assert_eq!(
            r[secret]["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{secret}"
        );
    }
    let policy = r
        .as_mapping()
        .expect("resources")
        .values()
        .find(|p| {
            p["Type"].as_str() == Some("AWS::S3::BucketPolicy")
                && tagged(&p["Properties"]["Bucket"], "!Ref").and_then(Value::as_str)
                    == Some("ReportsBucket")
        })
        .expect("a bucket policy on ReportsBucket");
    let deny = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|s| {
            s["Effect"].as_str() == Some("Deny")
                && s["Condition"]["Bool"]["aws:SecureTransport"].as_str() == Some("false")
        })
        .expect("a Deny on aws:SecureTransport false");
    assert_eq!(deny["Principal"].as_str(), Some("*"));
    let resources = deny["Resource"].as_sequence().expect("bucket and objects");
    assert!(
        resources
            .iter()
            .any(|v| tagged(v, "!GetAtt").and_then(Value::as_str) == Some("ReportsBucket.Arn"))
    );
    assert!(
        resources
            .iter()
            .any(|v| tagged(v, "!Sub").and_then(Value::as_str) == Some("${ReportsBucket.Arn}/*"))
    );
}

/// The functions whose `Function` dimension each metric carries, and the
/// dimensions the code adds to it (lib/src/metrics.rs): CloudWatch matches
/// a metric only with its whole dimension set.
const EMITTED: &[(&str, &[&str], &[&str])] = {
    use hubwarp::metrics::name::*;
    const RX: &[&str] = &["webhook-receiver"];
    const SC: &[&str] = &["sync-consumer"];
    const NR: &[&str] = &["nightly-reconciler"];
    const APIS: &[&str] = &["sync-consumer", "nightly-reconciler"];
    const RP: &[&str] = &["review-page"];
    &[
        (EVENTS_RECEIVED, RX, &[]),
        (EVENTS_NEW, RX, &[]),
        (EVENTS_DUPLICATE, RX, &[]),
        (EVENTS_REQUEUED, RX, &[]),
        (EVENTS_IGNORED, RX, &[]),
        (EVENTS_UNREADABLE, RX, &[]),
        (REQUESTS_REJECTED, RX, &["Reason"]),
        (MESSAGES, SC, &[]),
        (MESSAGES_DUPLICATE, SC, &[]),
        (MESSAGES_UNREADABLE, SC, &[]),
        (MESSAGES_RETRIED, SC, &[]),
        (CHANGES_APPLIED, SC, &[]),
        (CHANGES_IN_SYNC, SC, &[]),
        (CHANGES_SKIPPED, SC, &["Reason"]),
        (CONFLICTS, SC, &[]),
        (CHANGES_FAILED, SC, &[]),
        (BREAKER_TRANSITIONS, SC, &["Dependency", "State"]),
        (CALLS_REFUSED, SC, &["Dependency"]),
        (DEPENDENCY_DOWN, SC, &["Dependency"]),
        (RUNS_FINISHED, NR, &[]),
        (RUNS_STOPPED, NR, &[]),
        (RUNS_FAILED, NR, &[]),
        (RUN_DURATION, NR, &[]),
        (PAIRS_COMPARED, NR, &[]),
        (FIXED_IN_WARP, NR, &[]),
        (FIXED_IN_HUBSPOT, NR, &[]),
        (CONFLICTS_FOR_REVIEW, NR, &[]),
        (UNMATCHED, NR, &[]),
        (REPORT_EMAILS_SENT, NR, &[]),
        (REPORT_EMAILS_FAILED, NR, &[]),
        (REVIEW_LINKS, RP, &["Outcome"]),
        (RUN_ERRORS, NR, &[]),
        (HUBSPOT_CALLS, APIS, &[]),
        (HUBSPOT_429S, APIS, &[]),
        (RATE_LIMIT_WAITS, APIS, &[]),
        (RATE_LIMIT_WAITED, APIS, &[]),
        (WARP_CALLS, APIS, &[]),
    ]
};

fn read_source(path: &str) -> String {
    let path = workspace_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `EMITTED` names every metric once, and its added dimensions are the
/// labels lib/src/metrics.rs gives the metric in its `counter!`, `gauge!`
/// and `histogram!` calls (a metric counted through `counts` has none).
#[test]
fn emitted_dimensions_are_the_codes() {
    let all = hubwarp::metrics::name::ALL;
    for n in all {
        assert_eq!(
            EMITTED.iter().filter(|(m, ..)| m == n).count(),
            1,
            "{n} in EMITTED"
        );
    }
    assert_eq!(EMITTED.len(), all.len());
    let source = read_source("lib/src/metrics.rs");
    // `pub const CHANGES_SKIPPED: &str = "ChangesSkipped";`
    let value_of = |ident: &str| -> String {
        let line = source
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("pub const {ident}: &str = "))
            })
            .unwrap_or_else(|| panic!("no const {ident} in lib/src/metrics.rs"));
        line.split('"').nth(1).unwrap_or_default().to_string()
    };
    let mut labelled = Vec::new();
    for mac in [
        "metrics::counter!(",
        "metrics::gauge!(",
        "metrics::histogram!(",
    ] {
        for (at, _) in source.match_indices(mac) {
            let call = &source[at + mac.len()..];
            let call = &call[..call.find(')').unwrap_or(call.len())];
            let Some(ident) = call.trim().strip_prefix("name::") else {
                continue; // count(name, n): no labels
            };
            let ident: String = ident
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let keys: Vec<&str> = call
                .split("=>")
                .filter_map(|before| before.trim_end().strip_suffix('"'))
                .filter_map(|before| before.rsplit('"').next())
                .collect();
            labelled.push((value_of(&ident), keys));
        }
    }
    assert!(labelled.len() >= 5, "{labelled:?}");
    for (metric, keys) in &labelled {
        let (_, _, dims) = EMITTED
            .iter()
            .find(|(m, ..)| m == metric)
            .unwrap_or_else(|| panic!("{metric} is not in name::ALL"));
        assert_eq!(dims, keys, "{metric}: dimensions in lib/src/metrics.rs");
    }
    for (metric, _, dims) in EMITTED {
        if !dims.is_empty() {
            assert!(
                labelled.iter().any(|(m, k)| m == metric && k == dims),
                "{metric}: no call in lib/src/metrics.rs sets {dims:?}"
            );
        }
    }
}

/// `!Sub` text with its placeholders given values of the shape AWS would:
/// parameters' defaults, a queue's name, an alarm's ARN, an API's id.
fn substitute(t: &Value, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("closing }") + at;
        let key = &rest[at + 2..end];
        rest = &rest[end + 1..];
        let value = match key {
            "AWS::Region" => "us-east-1".to_string(),
            "AWS::AccountId" => "123456789012".to_string(),
            "AWS::Partition" => "aws".to_string(),
            "AWS::URLSuffix" => "amazonaws.com".to_string(),
            _ if t["Parameters"].get(key).is_some() => match &t["Parameters"][key]["Default"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("parameter {key} has default {other:?}"),
            },
            _ => {
                let (id, attr) = key.split_once('.').unwrap_or((key, ""));
                let r = &t["Resources"][id];
                let kind = r["Type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("${{{key}}} names no resource or parameter"));
                match (kind, attr) {
                    (_, "") => format!("ref-{id}"),
                    ("AWS::SQS::Queue", "QueueName") => {
                        substitute(t, &sub(&r["Properties"]["QueueName"]))
                    }
                    ("AWS::CloudWatch::Alarm", "Arn") => format!(
                        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
                        substitute(t, &sub(&r["Properties"]["AlarmName"]))
                    ),
                    _ => panic!("${{{key}}}: no value for {kind}.{attr}"),
                }
            }
        };
        out.push_str(&value);
    }
    out.push_str(rest);
    out
}

/// A dashboard's metric row (`[namespace, name, dim, value, ..., {options}]`,
/// "." repeating the row above) as namespace, name and dimensions.
fn metric_row(
    row: &[serde_json::Value],
    above: &[String],
) -> (String, String, Vec<(String, String)>) {
    let items: Vec<String> = row
        .iter()
        .filter_map(serde_json::Value::as_str)
        .enumerate()
        .map(|(i, s)| match s {
            "." => above.get(i).cloned().expect("\".\" with nothing above"),
            s => s.to_string(),
        })
        .collect();
    assert!(
        items.len() >= 2 && items.len().is_multiple_of(2),
        "metric row {row:?}"
    );
    let dims = items[2..]
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect();
    (items[0].clone(), items[1].clone(), dims)
}

/// The dashboard shows metrics that exist: each of the functions' own is
/// one the code emits, from the function that emits it, with exactly the
/// dimensions the code sets (and their values); each SQS metric names one
/// of the template's queues; the API's name the template's HTTP API; the
/// alarm widget lists every alarm. The stack outputs its URL.
#[test]
fn dashboard_shows_metrics_that_exist() {
    let t = template();
    let r = &t["Resources"];
    let dashboard = r
        .as_mapping()
        .expect("resources")
        .values()
        .find(|v| v["Type"].as_str() == Some("AWS::CloudWatch::Dashboard"))
        .expect("a dashboard");
    let p = &dashboard["Properties"];
    assert_eq!(sub(&p["DashboardName"]), "${ResourcePrefix}-sync");
    let name = substitute(&t, &sub(&p["DashboardName"]));
    let text = substitute(&t, &sub(&p["DashboardBody"]));
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("DashboardBody: {e}\n{text}"));

    let url = substitute(&t, &sub(&t["Outputs"]["DashboardUrl"]["Value"]));
    assert_eq!(
        url,
        format!(
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name={name}"
        )
    );

    let namespace = substitute(&t, "HubSpotWarp/${ResourcePrefix}");
    let queues: Vec<String> = r
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|v| v["Type"].as_str() == Some("AWS::SQS::Queue"))
        .map(|q| substitute(&t, &sub(&q["Properties"]["QueueName"])))
        .collect();
    let alarms: Vec<String> = r
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, _)| substitute(&t, &format!("${{{}.Arn}}", id.as_str().unwrap_or_default())))
        .collect();
    let breaker = read_source("lib/src/sync/breaker.rs");
    let receiver = read_source("functions/webhook-receiver/src/handler.rs");
    let value_ok = |metric: &str, key: &str, value: &str| match key {
        "Dependency" => [
            hubwarp::sync::breaker::Dependency::Warp,
            hubwarp::sync::breaker::Dependency::Hubspot,
        ]
        .iter()
        .any(|d| d.as_str() == value),
        "State" => breaker.contains(&format!("breaker_transition(dep, \"{value}\")")),
        "Reason" if metric == hubwarp::metrics::name::REQUESTS_REJECTED => {
            receiver.contains(&format!("=> \"{value}\","))
        }
        _ => false,
    };

    // (namespace, metric, dimension names) of everything shown.
    let mut shown: Vec<(String, String, Vec<String>)> = Vec::new();
    let own = |metric: &str, dims: &[(String, String)], widget: &str| {
        let (_, functions, extra) = EMITTED
            .iter()
            .find(|(m, ..)| *m == metric)
            .unwrap_or_else(|| panic!("{widget}: {metric} is not a metric the code emits"));
        let function = dims
            .iter()
            .find(|(k, _)| k == "Function")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        assert!(
            functions.contains(&function),
            "{widget}: {metric} comes from {functions:?}, not Function={function:?}"
        );
        let mut keys: Vec<&str> = dims
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "Function")
            .collect();
        let mut expected = extra.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            keys, expected,
            "{widget}: {metric} is emitted with Function and {extra:?}"
        );
    };

    let widgets = body["widgets"].as_array().expect("widgets");
    let mut alarm_widget = false;
    for w in widgets {
        let props = &w["properties"];
        let title = props["title"].as_str().unwrap_or("(untitled)");
        match w["type"].as_str() {
            Some("alarm") => {
                let listed: Vec<&str> = props["alarms"]
                    .as_array()
                    .expect("alarms")
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect();
                for a in &alarms {
                    assert!(listed.contains(&a.as_str()), "{title} lacks {a}");
                }
                assert_eq!(listed.len(), alarms.len(), "{title}: {listed:?}");
                alarm_widget = true;
                continue;
            }
            Some("metric") => {}
            _ => continue,
        }
        assert_eq!(props["region"].as_str(), Some("us-east-1"), "{title}");
        let mut above: Vec<String> = Vec::new();
        for row in props["metrics"].as_array().expect("metrics") {
            let row = row.as_array().expect("a metric row is an array");
            if let Some(expr) = row.first().and_then(|o| o["expression"].as_str()) {
                // SEARCH('{namespace,dim,...} MetricName="X" Function="f"', ...)
                let Some(at) = expr.find("SEARCH('{") else {
                    panic!("{title}: expression {expr} is not a SEARCH");
                };
                let schema = &expr[at + "SEARCH('{".len()..];
                let schema: Vec<&str> = schema[..schema.find('}').expect("}")].split(',').collect();
                assert_eq!(schema[0], namespace, "{title}: {expr}");
                let term = |k: &str| {
                    let from = expr.find(&format!("{k}=\"")).map(|i| i + k.len() + 2)?;
                    Some(expr[from..from + expr[from..].find('"')?].to_string())
                };
                let metric = term("MetricName").unwrap_or_else(|| panic!("{title}: {expr}"));
                let function = term("Function").unwrap_or_else(|| panic!("{title}: {expr}"));
                let mut dims: Vec<(String, String)> = schema[1..]
                    .iter()
                    .map(|k| (k.to_string(), String::new()))
                    .collect();
                for d in dims.iter_mut().filter(|(k, _)| k == "Function") {
                    d.1 = function.clone();
                }
                own(&metric, &dims, title);
                shown.push((
                    namespace.clone(),
                    metric,
                    schema[1..].iter().map(|s| s.to_string()).collect(),
                ));
                continue;
            }
            let (ns, metric, dims) = metric_row(row, &above);
            above = std::iter::once(ns.clone())
                .chain(std::iter::once(metric.clone()))
                .chain(dims.iter().flat_map(|(k, v)| [k.clone(), v.clone()]))
                .collect();
            match ns.as_str() {
                n if n == namespace => {
                    own(&metric, &dims, title);
                    for (k, v) in dims.iter().filter(|(k, _)| k != "Function") {
                        assert!(
                            value_ok(&metric, k, v),
                            "{title}: {metric} is never emitted with {k}={v}"
                        );
                    }
                }
                "AWS/SQS" => {
                    assert!(
                        [
                            "ApproximateNumberOfMessagesVisible",
                            "ApproximateAgeOfOldestMessage"
                        ]
                        .contains(&metric.as_str()),
                        "{title}: {metric}"
                    );
                    assert_eq!(dims.len(), 1, "{title}: {dims:?}");
                    assert_eq!(dims[0].0, "QueueName", "{title}");
                    assert!(
                        queues.contains(&dims[0].1),
                        "{title}: {} is none of the template's queues {queues:?}",
                        dims[0].1
                    );
                }
                "AWS/ApiGateway" => {
                    // An HTTP API's metrics (not a REST API's 4XXError, 5XXError).
                    assert!(
                        ["Count", "4xx", "5xx", "Latency", "IntegrationLatency"]
                            .contains(&metric.as_str()),
                        "{title}: {metric}"
                    );
                    let api = r["WebhookApi"]["Type"].as_str();
                    assert_eq!(api, Some("AWS::Serverless::HttpApi"));
                    assert_eq!(
                        dims,
                        [
                            ("ApiId".to_string(), "ref-WebhookApi".to_string()),
                            ("Stage".to_string(), "$default".to_string())
                        ],
                        "{title}"
                    );
                }
                other => panic!("{title}: namespace {other} is not checked here"),
            }
            shown.push((
                ns,
                metric,
                dims.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(alarm_widget, "no alarm status widget");

    use hubwarp::metrics::name::*;
    let has = |ns: &str, metric: &str| shown.iter().any(|(n, m, _)| n == ns && m == metric);
    for metric in [
        EVENTS_RECEIVED,
        EVENTS_NEW,
        REQUESTS_REJECTED,
        CHANGES_APPLIED,
        CHANGES_SKIPPED,
        CHANGES_FAILED,
        CONFLICTS,
        DEPENDENCY_DOWN,
        BREAKER_TRANSITIONS,
        CALLS_REFUSED,
        PAIRS_COMPARED,
        FIXED_IN_WARP,
        FIXED_IN_HUBSPOT,
        CONFLICTS_FOR_REVIEW,
        RUN_ERRORS,
        RUN_DURATION,
        HUBSPOT_CALLS,
        HUBSPOT_429S,
    ] {
        assert!(has(&namespace, metric), "the dashboard lacks {metric}");
    }
    for metric in ["Count", "4xx", "5xx"] {
        assert!(
            has("AWS/ApiGateway", metric),
            "the dashboard lacks {metric}"
        );
    }
    for metric in [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
    ] {
        assert!(has("AWS/SQS", metric), "the dashboard lacks {metric}");
    }
}

/// The review page: only with the e-mail, on the webhook's HTTP API (its
/// throttle and access log) at `GET|POST /review/{token}`, the URL the
/// reconciler signs links for, and a role of its own that grants the
/// resolve path and nothing else (the recorded calls hold it to that too:
/// `make iam-check`).
#[test]
fn the_review_page_is_routed_on_the_webhook_api_with_its_own_narrow_role() {
    let t = template();
    let r = &t["Resources"];
    for id in [
        "ReviewPageFunction",
        "ReviewPageRole",
        "ReviewPageLogs",
        "ReviewLinkKey",
    ] {
        assert_eq!(r[id]["Condition"].as_str(), Some("ReportEmailOn"), "{id}");
    }
    let f = &r["ReviewPageFunction"]["Properties"];
    let mut routes: Vec<(String, String)> = f["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .map(|e| {
            assert_eq!(e["Type"].as_str(), Some("HttpApi"));
            let p = &e["Properties"];
            assert_eq!(
                tagged(&p["ApiId"], "!Ref").and_then(Value::as_str),
                Some("WebhookApi")
            );
            (
                p["Method"].as_str().unwrap_or_default().to_string(),
                p["Path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET".to_string(), "/review/{token}".to_string()),
            ("POST".to_string(), "/review/{token}".to_string())
        ]
    );
    assert_eq!(
        tagged(&f["Role"], "!GetAtt").and_then(Value::as_str),
        Some("ReviewPageRole.Arn")
    );
    let base = &r["NightlyReconcilerFunction"]["Properties"]["Environment"]["Variables"]["REVIEW_BASE_URL"];
    let url = tagged(base, "!If")
        .and_then(|b| b.get(1))
        .map(sub)
        .unwrap_or_default();
    assert!(
        url.starts_with("https://${WebhookApi}.execute-api.") && url.ends_with("/review/"),
        "{url}"
    );

    let statements =
        r["ReviewPageRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("statements");
    let mut granted = Vec::new();
    for s in statements {
        assert_eq!(s["Effect"].as_str(), Some("Allow"));
        let actions: Vec<&str> = match &s["Action"] {
            Value::Sequence(a) => a.iter().filter_map(Value::as_str).collect(),
            a => a.as_str().into_iter().collect(),
        };
        let resources: Vec<&Value> = match &s["Resource"] {
            Value::Sequence(r) => r.iter().collect(),
            one => vec![one],
        };
        for res in resources {
            assert_ne!(res.as_str(), Some("*"), "{actions:?} on every resource");
        }
        granted.extend(actions);
    }
    granted.sort_unstable();
    assert_eq!(
        granted,
        [
            "dynamodb:BatchWriteItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
        ],
        "the resolve path's calls, and the function's logs"
    );
}
