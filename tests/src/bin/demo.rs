//! `make demo`: the system on this machine, end to end over real HTTP.
//!
//! Needs the local AWS of `make local-up` (AWS_ENDPOINT_URL). Starts the
//! functions under `cargo lambda watch`, sends signed HubSpot webhooks to the
//! receiver's Function URL, and prints what each answer was and what landed
//! in DynamoDB and SQS. Event ids come from the clock, so the demo can run
//! again on the same local AWS.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::fixtures::LOCAL_SECRET;
use integration_tests::local::{Result, Sender, Sig, start_watch};
use integration_tests::moto::sdk_config_for;
use integration_tests::resources::{DEFAULT_PREFIX, Names, Resources, ensure};

/// `n` company property changes with ids from `base` (the clock).
fn deliveries(base: u64, n: usize, offset: usize, attempt: u32) -> String {
    let props = [
        "warp_credit_limit",
        "name",
        "warp_tier",
        "city",
        "warp_contact_email",
    ];
    let events: Vec<String> = (offset..offset + n)
        .map(|i| {
            format!(
                r#"{{"eventId":{},"subscriptionId":2951763,"portalId":62515,"appId":1160452,"occurredAt":{},"subscriptionType":"company.propertyChange","attemptNumber":{attempt},"objectId":{},"changeSource":"CRM_UI","propertyName":"{}","propertyValue":"{}"}}"#,
                base + i as u64,
                base + i as u64,
                // The sandbox's companies 1..=50, each linked by warp_ban.
                18_476_215_991u64 + (i % 50) as u64,
                props[i % props.len()],
                value(props[i % props.len()], i)
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// A value HubSpot could send for the property.
fn value(property: &str, i: usize) -> String {
    match property {
        "warp_credit_limit" => format!("{}.00", 1000 + i),
        "warp_tier" => ["BRONZE", "SILVER", "GOLD", "PLATINUM"][i % 4].to_string(),
        "warp_contact_email" => format!("billing{i}@example.com"),
        "city" => ["Denver", "Boulder", "Austin", "Tulsa"][i % 4].to_string(),
        _ => format!("Company {i}"),
    }
}

/// Lambda's SQS event source mapping, by hand: batches of up to 10 from the
/// queue to `sync-consumer` through cargo lambda's invoke API; messages the
/// function reports as failed become visible again, the others are deleted.
async fn run_consumer(aws: &SdkConfig, res: &Resources, port: u16) -> Result<(usize, usize)> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let invoke = format!("http://127.0.0.1:{port}/2015-03-31/functions/sync-consumer/invocations");
    let (mut batches, mut retried) = (0, 0);
    while batches < 500 {
        let msgs = sqs
            .receive_message()
            .queue_url(&res.sync_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .messages
            .unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        let records: Vec<serde_json::Value> = msgs
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                    "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hubspot-warp-sync", "awsRegion": "us-east-1"
                })
            })
            .collect();
        let answer: serde_json::Value = http
            .post(&invoke)
            .json(&serde_json::json!({ "Records": records }))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let failed: Vec<String> = answer["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        batches += 1;
        retried += failed.len();
        for m in msgs {
            let handle = m.receipt_handle.unwrap_or_default();
            if failed
                .iter()
                .any(|f| Some(f.as_str()) == m.message_id.as_deref())
            {
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&res.sync_queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(1)
                    .send()
                    .await;
            } else {
                sqs.delete_message()
                    .queue_url(&res.sync_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
    }
    Ok((batches, retried))
}

async fn queue_depth(aws: &SdkConfig, res: &Resources) -> Result<u64> {
    let attrs = aws_sdk_sqs::Client::new(aws)
        .get_queue_attributes()
        .queue_url(&res.sync_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(attrs
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Items of `table` whose numeric `time_attr` is at least `since_ms`,
/// counted by their `group_attr`.
async fn count_since(
    aws: &SdkConfig,
    table: &str,
    time_attr: &str,
    group_attr: &str,
    since_ms: i64,
) -> Result<BTreeMap<String, u64>> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let mut counts = BTreeMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        for item in page.items.unwrap_or_default() {
            let at: i64 = item
                .get(time_attr)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if at >= since_ms {
                let group = item
                    .get(group_attr)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                *counts.entry(group).or_insert(0) += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(counts);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "run through `make demo` (AWS_ENDPOINT_URL unset)")?;
    if !endpoint.starts_with("http://127.0.0.1") {
        return Err(format!("the demo only talks to loopback, not {endpoint}"));
    }
    let port: u16 = std::env::var("INVOKE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9000);
    let aws = sdk_config_for(&endpoint).await;
    let prefix = std::env::var("RESOURCE_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.to_string());
    let res = ensure(&aws, &Names::new(prefix))
        .await
        .map_err(|e| e.to_string())?;

    let url = format!("http://127.0.0.1:{port}/lambda-url/webhook-receiver/");
    println!(
        "starting the functions under cargo lambda watch on 127.0.0.1:{port} (log: .local/watch.log)"
    );
    let _watch = start_watch(port, &url, false)?;
    let sender = Sender::new(&url, LOCAL_SECRET)?;

    let started = hubwarp::time::now_ms();
    let depth_before = queue_depth(&aws, &res).await?;
    let base = started as u64;
    let three = deliveries(base, 3, 0, 0);
    let mut rows: Vec<(String, u16, String)> = Vec::new();
    let mut send = |label: &str, (status, body): (u16, String)| {
        println!("  {status}  {label}");
        rows.push((label.to_string(), status, body));
    };

    println!("\nwebhooks -> {url}");
    // The first call compiles and starts the function.
    send("3 changes, signed v3", sender.post(&three, Sig::V3).await?);
    let retry = three.replace(r#""attemptNumber":0"#, r#""attemptNumber":1"#);
    send(
        "HubSpot's retry of them, signed v1",
        sender.post(&retry, Sig::V1).await?,
    );
    send(
        "stale v3 timestamp (10 min)",
        sender.post(&three, Sig::StaleV3).await?,
    );
    send(
        "signed with another app's secret",
        sender.post(&three, Sig::WrongSecret).await?,
    );
    send(
        "body that is not an event array",
        sender.post(r#"{"hello":"world"}"#, Sig::V3).await?,
    );
    send("GET instead of POST", (sender.get().await?, String::new()));
    let hundred = deliveries(base, 100, 1_000, 0);
    let t = Instant::now();
    send(
        "100 changes in one delivery, signed v3",
        sender.post(&hundred, Sig::V3).await?,
    );
    let hundred_ms = t.elapsed().as_millis();

    let bodies: Vec<String> = (0..10)
        .map(|k| deliveries(base, 20, 2_000 + k * 5, 0))
        .collect();
    let parallel = futures::future::join_all(bodies.iter().map(|b| sender.post(b, Sig::V3))).await;
    let ok = parallel
        .iter()
        .filter(|r| matches!(r, Ok((200, _))))
        .count();
    send(
        &format!("10 parallel overlapping deliveries (65 distinct changes): {ok}/10 answered 200"),
        (if ok == 10 { 200 } else { 503 }, String::new()),
    );

    let depth_after = queue_depth(&aws, &res).await?;
    let records = count_since(
        &aws,
        &res.names.events_table(),
        "first_received_at",
        "status",
        started,
    )
    .await?;
    let expected_new = 3 + 100 + 65;

    println!("\nreport");
    println!(
        "  answers               {}",
        rows.iter()
            .map(|(_, s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("  100-event delivery    {hundred_ms} ms end to end (debug build, moto)");
    println!("  events recorded       {records:?}");
    println!(
        "  sync queue            {depth_before} -> {depth_after} messages (+{})",
        depth_after.saturating_sub(depth_before)
    );
    println!("  distinct changes sent {expected_new}");
    for (label, status, body) in &rows {
        if *status != 200 && !body.is_empty() {
            println!("  {status} {label}: {body}");
        }
    }
    let queued = depth_after.saturating_sub(depth_before);
    let expected_answers = [200, 200, 401, 401, 400, 405, 200, 200];
    let answers: Vec<u16> = rows.iter().map(|(_, s, _)| *s).collect();
    if answers != expected_answers || queued != expected_new {
        return Err(format!(
            "demo expected answers {expected_answers:?} and {expected_new} queued, got {answers:?} and {queued}"
        ));
    }
    println!("  every change queued exactly once; every bad request refused with nothing recorded");

    println!("\nsync-consumer <- SQS (batches of 10, partial batch responses) -> WARP sandbox");
    let warp_url = std::env::var("WARP_API_URL").unwrap_or_else(|_| "http://127.0.0.1:9100".into());
    let read_customer = |ban: &'static str| {
        let http = reqwest::Client::new();
        let url = format!("{warp_url}/v1/customers/by-ban/{ban}");
        async move {
            let v: serde_json::Value = http
                .get(url)
                .bearer_auth("warp-sandbox-token")
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(v["data"].clone())
        }
    };
    let before = read_customer("ZT-487390001").await?;
    let t = Instant::now();
    let (batches, retried) = run_consumer(&aws, &res, port).await?;
    let sync_ms = t.elapsed().as_millis();
    let after = read_customer("ZT-487390001").await?;
    let outcomes = count_since(
        &aws,
        &res.names.sync_tables().sync_log,
        "at",
        "outcome",
        started,
    )
    .await?;
    let records = count_since(
        &aws,
        &res.names.events_table(),
        "first_received_at",
        "status",
        started,
    )
    .await?;
    println!("  batches               {batches} in {sync_ms} ms ({retried} messages retried)");
    println!("  field decisions       {outcomes:?}");
    println!("  events now            {records:?}");
    for (label, pointer) in [
        ("company_name", "/company_name"),
        ("credit_limit", "/credit_limit"),
        ("tier", "/tier"),
        ("address.city", "/address/city"),
    ] {
        println!(
            "  ZT-487390001 {label:<13} {} -> {}",
            before.pointer(pointer).unwrap_or(&serde_json::Value::Null),
            after.pointer(pointer).unwrap_or(&serde_json::Value::Null)
        );
    }
    if before == after {
        return Err("the consumer changed nothing in WARP".into());
    }
    println!(
        "\nHubSpot changes reached WARP through the mappings; see .local/watch.log for the JSON decision lines"
    );
    Ok(())
}
