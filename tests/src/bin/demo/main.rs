//! `make demo`: the system on this machine, end to end over real HTTP.
//!
//! Needs the local AWS of `make local-up` (AWS_ENDPOINT_URL) and the
//! sandboxes of `make sandboxes`. Starts the functions under
//! `cargo lambda watch`, sends signed HubSpot webhooks to the receiver's
//! Function URL, and prints what each answer was and what landed in DynamoDB
//! and SQS; drains the queue into the consumer; then edits each side behind
//! the other's back and runs the nightly reconciler, and prints its run and
//! report. Event ids and the run's scheduled time come from the clock, so the
//! demo can run again on the same local AWS.
//!
//! Here: `main`, the demo in order (the functions started, the bulk
//! webhooks and what landed, the consumer's drain, then the stories and
//! the reconciliation); each stage and what the stages share is a module.

mod consumer;
mod counts;
mod reconcile;
mod review;
mod sandboxes;
mod stories;
mod webhooks;

use std::time::Instant;

use integration_tests::fixtures::LOCAL_SECRET;
use integration_tests::local::{Result, Sender, Sig, start_watch};
use integration_tests::moto::sdk_config_for;
use integration_tests::resources::{DEFAULT_PREFIX, Names, ensure};

use consumer::run_consumer;
use counts::{count_since, queue_depth};
use reconcile::reconcile;
use sandboxes::Sandboxes;
use stories::stories;
use webhooks::deliveries;

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

    // Every delivery the receiver accepted, for HubSpot to hold their values.
    let mut accepted: Vec<&str> = vec![&three, &hundred];
    accepted.extend(bodies.iter().map(String::as_str));

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
    let sandboxes = Sandboxes::from_env()?;
    let before = sandboxes.customer("ZT-487390001").await?;
    let t = Instant::now();
    let (batches, retried) = run_consumer(&aws, &res, port).await?;
    let sync_ms = t.elapsed().as_millis();
    let after = sandboxes.customer("ZT-487390001").await?;
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

    let told = stories(&aws, &res, port, &sender, &sandboxes).await?;
    accepted.extend(told.iter().map(String::as_str));
    let run_id = reconcile(&aws, &res, port, &sandboxes, &accepted).await?;
    review::review(&aws, &res, &sandboxes, &run_id, stories::DISPUTED).await
}
