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
