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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use hubwarp::mapping::ValueType;
use hubwarp::reconcile::checkpoint::{RunRecord, RunStatus};
use hubwarp::reconcile::ports::RunStore;
use hubwarp::reconcile::run::Outcome;
use hubwarp::store::DynamoRunStore;
use integration_tests::fixtures::LOCAL_SECRET;
use integration_tests::hubspot_sandbox::HUBSPOT_SANDBOX_TOKEN;
use integration_tests::local::{Result, Sender, Sig, start_watch};
use integration_tests::moto::sdk_config_for;
use integration_tests::resources::{DEFAULT_PREFIX, Names, Resources, ensure};
use integration_tests::warp_sandbox::SANDBOX_TOKEN as WARP_SANDBOX_TOKEN;
use serde_json::{Map, Value, json};

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
    reconcile(&aws, &res, port, &sandboxes, &accepted).await
}

const OUT_OF_ORDER: &str = "ZT-487390106";
const DISPUTED: &str = "ZT-487390107";
const MERGED: &str = "ZT-487390108";

/// One HubSpot event, as its webhook carries it.
fn hubspot_event(event_id: i64, occurred_at: i64, company: &str, rest: Value) -> Value {
    let mut e = json!({
        "eventId": event_id, "subscriptionId": 2951763, "portalId": 62515,
        "appId": 1160452, "occurredAt": occurred_at, "attemptNumber": 0,
        "objectId": company.parse::<u64>().unwrap_or(0), "changeSource": "CRM_UI",
    });
    if let (Some(e), Some(rest)) = (e.as_object_mut(), rest.as_object()) {
        e.extend(rest.clone());
    }
    e
}

fn property_change(event_id: i64, at: i64, company: &str, property: &str, value: &str) -> String {
    json!([hubspot_event(
        event_id,
        at,
        company,
        json!({"subscriptionType": "company.propertyChange",
               "propertyName": property, "propertyValue": value}),
    )])
    .to_string()
}

/// Sends a delivery that must be accepted, then lets the consumer apply it.
async fn deliver(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sender: &Sender,
    label: &str,
    body: &str,
) -> Result<()> {
    let (status, answer) = sender.post(body, Sig::V3).await?;
    println!("  {status}  {label}");
    if status != 200 {
        return Err(format!("{label}: {status} {answer}"));
    }
    run_consumer(aws, res, port).await?;
    Ok(())
}

/// Out of order, a conflict left to a person, a merge that re-links: each
/// sent as HubSpot would, applied by the consumer, and checked. Returns the
/// deliveries, whose values HubSpot holds from then on.
async fn stories(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sender: &Sender,
    sandboxes: &Sandboxes,
) -> Result<Vec<String>> {
    let store = hubwarp::store::DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        res.names.sync_tables(),
        Duration::from_secs(86_400),
    );
    let mut told = Vec::new();
    let now = hubwarp::time::now_ms();

    println!("\nout of order: an older change of a city arrives after a newer one");
    let customer = sandboxes.customer(OUT_OF_ORDER).await?;
    let company = company_id(&customer)?;
    let newer = property_change(now, now, &company, "city", "Boulder");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{OUT_OF_ORDER} city \"Boulder\" at t"),
        &newer,
    )
    .await?;
    let since = hubwarp::time::now_ms();
    let older = property_change(now + 1, now - 60_000, &company, "city", "Tulsa");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{OUT_OF_ORDER} city \"Tulsa\" at t - 60 s, delivered later"),
        &older,
    )
    .await?;
    let city = sandboxes.customer(OUT_OF_ORDER).await?;
    let outcomes = count_since(
        aws,
        &res.names.sync_tables().sync_log,
        "at",
        "outcome",
        since,
    )
    .await?;
    println!(
        "  WARP city             {} (decisions since: {outcomes:?})",
        text(city.pointer("/address/city"))
    );
    if city.pointer("/address/city").and_then(Value::as_str) != Some("Boulder")
        || !outcomes.contains_key("skipped-stale")
    {
        return Err("the older change was not skipped as stale".into());
    }
    told.push(newer);

    println!(
        "\na conflict for a person: billing e-mail changed on both sides (MANUAL in this demo's mapping)"
    );
    let customer = sandboxes.customer(DISPUTED).await?;
    let company = company_id(&customer)?;
    let id = customer["id"].as_str().unwrap_or_default().to_string();
    let first = property_change(
        now + 2,
        now + 2,
        &company,
        "warp_contact_email",
        "ap@disputed.example",
    );
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{DISPUTED} e-mail \"ap@disputed.example\" (both sides agree after it)"),
        &first,
    )
    .await?;
    sandboxes
        .edit_customer(
            &id,
            json!({"contact": {"email": "finance@disputed.example"}}),
        )
        .await?;
    println!("  WARP    {DISPUTED} e-mail -> \"finance@disputed.example\" (no webhook)");
    let second = property_change(
        now + 3,
        hubwarp::time::now_ms(),
        &company,
        "warp_contact_email",
        "sales@disputed.example",
    );
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{DISPUTED} e-mail \"sales@disputed.example\" from HubSpot"),
        &second,
    )
    .await?;
    let after = sandboxes.customer(DISPUTED).await?;
    use hubwarp::store::sync::{ConflictQueue, LinkStore};
    let open = store.open_conflicts().await.map_err(|e| e.to_string())?;
    let mine: Vec<_> = open.iter().filter(|c| c.customer_id == id).collect();
    for c in &mine {
        println!(
            "  review queue          {} {}: WARP {} / HubSpot \"{}\"",
            c.customer_id, c.field, c.warp_value, c.hubspot_value
        );
    }
    println!(
        "  WARP e-mail           {} (untouched)",
        text(after.pointer("/contact/email"))
    );
    if mine.is_empty()
        || after.pointer("/contact/email").and_then(Value::as_str)
            != Some("finance@disputed.example")
    {
        return Err("the MANUAL conflict did not land in review with WARP untouched".into());
    }
    told.push(first);
    told.push(second);

    println!("\na merge re-links: a duplicate company absorbs the linked one");
    let customer = sandboxes.customer(MERGED).await?;
    let old = company_id(&customer)?;
    let name = customer["company_name"].as_str().unwrap_or("Customer");
    // A first change links the company to its customer (by warp_ban).
    let linking = property_change(now + 4, now + 4, &old, "city", "Denver");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{MERGED} city \"Denver\" (links company {old} to its customer)"),
        &linking,
    )
    .await?;
    let before = store.link(&old).await.map_err(|e| e.to_string())?;
    let duplicate = sandboxes
        .create_company(&format!("{name} (duplicate)"))
        .await?;
    sandboxes.merge_companies(&duplicate, &old).await?;
    println!("  HubSpot company {old} merged into {duplicate} (the duplicate kept as primary)");
    let merge = json!([hubspot_event(
        now + 5,
        hubwarp::time::now_ms(),
        &duplicate,
        json!({"subscriptionType": "company.merge",
               "primaryObjectId": duplicate.parse::<u64>().unwrap_or(0),
               "mergedObjectIds": [old.parse::<u64>().unwrap_or(0)],
               "newObjectId": duplicate.parse::<u64>().unwrap_or(0),
               "numberOfPropertiesMoved": 12}),
    )])
    .to_string();
    deliver(aws, res, port, sender, "company.merge webhook", &merge).await?;
    let (was, now_link) = (
        store.link(&old).await.map_err(|e| e.to_string())?,
        store.link(&duplicate).await.map_err(|e| e.to_string())?,
    );
    let show = |l: &Option<hubwarp::store::sync::Link>| {
        l.as_ref().map_or("none".to_string(), |l| {
            format!(
                "{} {}{}",
                l.customer_id,
                l.state.as_str(),
                l.merged_into
                    .as_ref()
                    .map(|m| format!(" into {m}"))
                    .unwrap_or_default()
            )
        })
    };
    println!("  link {old:<16} {} (before the merge)", show(&before));
    println!("  link {old:<16} {}", show(&was));
    println!("  link {duplicate:<16} {}", show(&now_link));
    if now_link.as_ref().map(|l| l.customer_id.as_str()) != customer["id"].as_str() {
        return Err("the merge did not re-link the customer to the surviving company".into());
    }
    // The linking change is not among them: its company is merged away.
    Ok(told)
}

/// The WARP and HubSpot sandboxes over their HTTP APIs, as the functions
/// see them.
struct Sandboxes {
    http: reqwest::Client,
    warp: String,
    hubspot: String,
}

impl Sandboxes {
    fn from_env() -> Result<Self> {
        let url = |name: &str, default: &str| {
            let url = std::env::var(name).unwrap_or_else(|_| default.into());
            if url.starts_with("http://127.0.0.1") {
                Ok(url)
            } else {
                Err(format!("the demo only talks to loopback, not {name}={url}"))
            }
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
            warp: url("WARP_API_URL", "http://127.0.0.1:9100")?,
            hubspot: url("HUBSPOT_API_URL", "http://127.0.0.1:9101")?,
        })
    }

    async fn call(what: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{what}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{what}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{what}: {e}: {text}"))
    }

    async fn customer(&self, ban: &str) -> Result<Value> {
        let url = format!("{}/v1/customers/by-ban/{ban}", self.warp);
        let v = Self::call(
            &format!("WARP GET {ban}"),
            self.http.get(url).bearer_auth(WARP_SANDBOX_TOKEN),
        )
        .await?;
        Ok(v["data"].clone())
    }

    /// A partial PUT, as someone editing in WARP's own screens would make.
    async fn edit_customer(&self, id: &str, patch: Value) -> Result<Value> {
        let url = format!("{}/v1/customers/{id}", self.warp);
        let v = Self::call(
            &format!("WARP PUT {id}"),
            self.http
                .put(url)
                .bearer_auth(WARP_SANDBOX_TOKEN)
                .json(&patch),
        )
        .await?;
        Ok(v["data"].clone())
    }

    async fn company(&self, id: &str, properties: &[&str]) -> Result<Map<String, Value>> {
        let url = format!(
            "{}/crm/v3/objects/companies/{id}?properties={}",
            self.hubspot,
            properties.join(",")
        );
        let v = Self::call(
            &format!("HubSpot GET company {id}"),
            self.http.get(url).bearer_auth(HUBSPOT_SANDBOX_TOKEN),
        )
        .await?;
        Ok(v["properties"].as_object().cloned().unwrap_or_default())
    }

    /// A new company, as a person adds one in HubSpot; returns its id.
    async fn create_company(&self, name: &str) -> Result<String> {
        let url = format!("{}/crm/v3/objects/companies", self.hubspot);
        let v = Self::call(
            "HubSpot create company",
            self.http
                .post(url)
                .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                .json(&json!({"properties": {"name": name}, "associations": []})),
        )
        .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("HubSpot create company answered {v}"))
    }

    /// HubSpot's merge: `other` into `primary`.
    async fn merge_companies(&self, primary: &str, other: &str) -> Result<()> {
        let url = format!("{}/crm/v3/objects/companies/merge", self.hubspot);
        Self::call(
            "HubSpot merge",
            self.http
                .post(url)
                .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                .json(&json!({"primaryObjectId": primary, "objectIdToMerge": other})),
        )
        .await
        .map(|_| ())
    }

    /// HubSpot's batch update (at most 100 companies a call).
    async fn update_companies(
        &self,
        companies: &BTreeMap<String, Map<String, Value>>,
    ) -> Result<()> {
        let inputs: Vec<Value> = companies
            .iter()
            .map(|(id, properties)| json!({ "id": id, "properties": properties }))
            .collect();
        for chunk in inputs.chunks(100) {
            let url = format!("{}/crm/v3/objects/companies/batch/update", self.hubspot);
            let answer = Self::call(
                "HubSpot batch update",
                self.http
                    .post(url)
                    .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                    .json(&json!({ "inputs": chunk })),
            )
            .await?;
            // A 207 is a success status with some inputs refused.
            if answer
                .get("errors")
                .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
            {
                return Err(format!(
                    "HubSpot batch update refused some companies: {}",
                    answer["errors"]
                ));
            }
        }
        Ok(())
    }
}

/// The newest value per company and property among `deliveries` (by
/// `occurredAt`, then event id): what HubSpot itself holds after the edits
/// its webhooks announced.
fn newest_values(deliveries: &[&str]) -> Result<BTreeMap<String, Map<String, Value>>> {
    let mut newest: BTreeMap<(String, String), ((i64, i64), String)> = BTreeMap::new();
    for body in deliveries {
        let events: Vec<Value> = serde_json::from_str(body).map_err(|e| e.to_string())?;
        for e in events {
            let (Some(company), Some(property), Some(value)) = (
                e["objectId"].as_u64(),
                e["propertyName"].as_str(),
                e["propertyValue"].as_str(),
            ) else {
                continue;
            };
            let at = (
                e["occurredAt"].as_i64().unwrap_or(0),
                e["eventId"].as_i64().unwrap_or(0),
            );
            let slot = newest
                .entry((company.to_string(), property.to_string()))
                .or_insert((at, value.to_string()));
            if at > slot.0 {
                *slot = (at, value.to_string());
            }
        }
    }
    let mut companies: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for ((company, property), (_, value)) in newest {
        companies
            .entry(company)
            .or_default()
            .insert(property, Value::String(value));
    }
    Ok(companies)
}

/// The WARP customer edited in WARP, and the one whose company is edited in
/// HubSpot; neither edit sends a webhook.
const WARP_EDITED: &str = "ZT-487390004";
const HUBSPOT_EDITED: &str = "ZT-487390005";
const TIERS: [&str; 4] = ["BRONZE", "SILVER", "GOLD", "PLATINUM"];

fn company_id(customer: &Value) -> Result<String> {
    customer
        .pointer("/external_ids/hubspot_company_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("customer {} names no HubSpot company", customer["ban"]))
}

fn text(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "null".into())
}

async fn invoke_reconciler(http: &reqwest::Client, url: &str, payload: &Value) -> Result<Outcome> {
    let resp = http
        .post(url)
        .json(payload)
        .send()
        .await
        .map_err(|e| format!("invoking nightly-reconciler: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("nightly-reconciler answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("nightly-reconciler answered {body}: {e}"))
}

/// Reads the run record until the run is COMPLETED or STOPPED.
async fn wait_for_run(runs: &DynamoRunStore, run_id: &str) -> Result<RunRecord> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let record = runs
            .get(run_id)
            .await
            .map_err(|e| format!("reading run {run_id}: {e}"))?;
        match record {
            Some(r) if r.status != RunStatus::Running => return Ok(r),
            _ if Instant::now() > deadline => {
                return Err(format!(
                    "run {run_id} did not end within 300 s; see .local/watch.log"
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// HubSpot made to hold what its webhooks said, one edit on each side that
/// no webhook announces, then the nightly reconciler through cargo lambda
/// watch's invoke API, its run record, its checks and its report.
async fn reconcile(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sandboxes: &Sandboxes,
    accepted: &[&str],
) -> Result<()> {
    println!("\nHubSpot sandbox <- the newest value of each property the webhooks announced");
    // A real HubSpot holds the values its webhooks announced; without them
    // the nightly run would rightly take HubSpot's older values for newer
    // edits there and put them back into WARP.
    let values = newest_values(accepted)?;
    sandboxes.update_companies(&values).await?;
    println!(
        "  batch update          {} companies, {} properties",
        values.len(),
        values.values().map(Map::len).sum::<usize>()
    );

    println!("\nedits no webhook announces");
    let warp_customer = sandboxes.customer(WARP_EDITED).await?;
    let warp_company = company_id(&warp_customer)?;
    let status = if warp_customer["status"] == "SUSPENDED" {
        "ACTIVE"
    } else {
        "SUSPENDED"
    };
    // From the clock, so a second demo on the same sandboxes edits again.
    let secs = hubwarp::time::now_ms() / 1000;
    let mut balance = format!("{}.{:02}", 100 + secs % 9_000, secs % 100);
    if warp_customer["current_balance"] == balance.as_str() {
        balance = format!("{}.{:02}", 9_200 + secs % 100, secs % 100);
    }
    let id = warp_customer["id"].as_str().unwrap_or_default();
    sandboxes
        .edit_customer(id, json!({ "status": status, "current_balance": balance }))
        .await?;
    println!(
        "  WARP    {WARP_EDITED} status {} -> \"{status}\", current_balance {} -> \"{balance}\" (WARP-owned)",
        text(warp_customer.get("status")),
        text(warp_customer.get("current_balance")),
    );
    let hubspot_customer = sandboxes.customer(HUBSPOT_EDITED).await?;
    let hubspot_company = company_id(&hubspot_customer)?;
    let tier_before = sandboxes.company(&hubspot_company, &["warp_tier"]).await?;
    let current = tier_before.get("warp_tier").and_then(Value::as_str);
    let at = TIERS.iter().position(|t| Some(*t) == current).unwrap_or(0);
    let tier = TIERS[(at + 1) % TIERS.len()];
    let mut edit = Map::new();
    edit.insert("warp_tier".into(), json!(tier));
    sandboxes
        .update_companies(&BTreeMap::from([(hubspot_company.clone(), edit)]))
        .await?;
    println!(
        "  HubSpot company {hubspot_company} ({HUBSPOT_EDITED}) warp_tier {} -> \"{tier}\" (HubSpot-owned)",
        text(tier_before.get("warp_tier")),
    );

    let invoke =
        format!("http://127.0.0.1:{port}/2015-03-31/functions/nightly-reconciler/invocations");
    // A run is one local night, and a second delivery of the same night is
    // the same run. Tonight, or on a local AWS that already ran tonight
    // (reused by a second demo), the latest night without a run.
    let runs = DynamoRunStore::new(aws_sdk_dynamodb::Client::new(aws), res.names.runs_table());
    let zone: chrono_tz::Tz = std::env::var("RECONCILE_TIMEZONE")
        .ok()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::America::New_York);
    let mut at = chrono::Utc::now();
    for _ in 0..366 {
        let request = hubwarp::reconcile::ReconcileRequest {
            scheduled_time: Some(at.to_rfc3339()),
            ..Default::default()
        };
        let id = request
            .run_id(hubwarp::time::now_ms(), zone)
            .map_err(|e| e.to_string())?;
        if runs.get(&id).await.map_err(|e| e.to_string())?.is_none() {
            break;
        }
        at -= chrono::Duration::days(1);
    }
    let scheduled = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let payload = json!({ "scheduled_time": scheduled });
    println!("\nnightly-reconciler <- {payload} (cargo lambda watch's invoke API)");
    // cargo lambda watch answers an invoke only when the function has, even
    // an asynchronous (Event) one, and runs one instance per function: a run
    // handing over to a fresh invocation of itself would wait on itself. So
    // the demo's run takes one invocation; tests/it/reconciler.rs carries a
    // run over several through Event invokes.
    println!(
        "  one invocation: cargo lambda watch cannot serve a self-invoke (see tests/it/reconciler.rs for handovers)"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let first = invoke_reconciler(&http, &invoke, &payload).await?;
    let answer_ms = t.elapsed().as_millis();
    println!(
        "  answer                {} in {answer_ms} ms: {}",
        first.status, first.message
    );
    let run = wait_for_run(&runs, &first.run_id).await?;
    let c = run.counters;
    println!(
        "  run record            {} {} after {} invocation(s), {} ms",
        run.run_id,
        run.status.as_str(),
        run.invocations,
        run.finished_ms.unwrap_or(run.updated_ms) - run.started_ms
    );
    if let Some(reason) = &run.stop_reason {
        println!("  stopped because       {reason}");
    }
    println!("  pairs compared        {}", c.pairs_compared);
    println!("  in sync               {}", c.pairs_in_sync);
    println!(
        "  fixed in WARP         {} field(s) in {} PUT(s)",
        c.fixed_in_warp, c.warp_writes
    );
    println!(
        "  fixed in HubSpot      {} field(s) on {} compan{}",
        c.fixed_in_hubspot,
        c.hubspot_updates,
        if c.hubspot_updates == 1 { "y" } else { "ies" }
    );
    println!("  conflicts for review  {}", c.conflicts_for_review);
    println!(
        "  unmatched             {} WARP, {} HubSpot",
        c.unmatched_warp, c.unmatched_hubspot
    );
    println!("  swept                 {}", c.swept);
    println!("  errors                {}", c.errors);
    println!(
        "  HubSpot calls         {} (list {}, batch read {}, batch update {})",
        c.hubspot_calls.total(),
        c.hubspot_calls.list,
        c.hubspot_calls.batch_read,
        c.hubspot_calls.batch_update
    );
    println!(
        "  WARP calls            {} (list {}, get {}, by BAN {}, PUT {})",
        c.warp_calls.total(),
        c.warp_calls.list,
        c.warp_calls.get,
        c.warp_calls.by_ban,
        c.warp_calls.put
    );
    println!("  invocations           {}", run.invocations);

    let again = invoke_reconciler(&http, &invoke, &payload).await?;
    println!(
        "  same payload again    {}: {}",
        again.status, again.message
    );

    // Each side's edit reached the other.
    let company = sandboxes
        .company(&warp_company, &["warp_status", "warp_current_balance"])
        .await?;
    let balance_in_hubspot = ValueType::Decimal
        .warp_to_hubspot(&json!(balance))
        .map_err(|e| e.to_string())?;
    println!(
        "  HubSpot {warp_company} warp_status {}, warp_current_balance {}",
        text(company.get("warp_status")),
        text(company.get("warp_current_balance"))
    );
    let customer = sandboxes.customer(HUBSPOT_EDITED).await?;
    println!(
        "  WARP    {HUBSPOT_EDITED} tier {}",
        text(customer.get("tier"))
    );

    let report_key = run
        .report_html_key
        .clone()
        .ok_or_else(|| format!("run {} names no HTML report", run.run_id))?;
    let html = hubwarp::store::reports::s3_client(aws)
        .get_object()
        .bucket(res.names.reports_bucket())
        .key(&report_key)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let dir = integration_tests::workspace_root().join(".local/reports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.html", run.run_id));
    std::fs::write(&path, &html).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "  report                s3://{}/{report_key} -> .local/reports/{}.html ({} bytes)",
        res.names.reports_bucket(),
        run.run_id,
        html.len()
    );

    let mut failures = Vec::new();
    if run.status != RunStatus::Completed {
        failures.push(format!("the run ended {}", run.status.as_str()));
    }
    if again.status != "already ran" || again.run_id != run.run_id {
        failures.push(format!(
            "a second delivery answered {} for {}",
            again.status, again.run_id
        ));
    }
    if company.get("warp_status").and_then(Value::as_str) != Some(status)
        || company.get("warp_current_balance").and_then(Value::as_str)
            != Some(balance_in_hubspot.as_str())
    {
        failures.push(format!(
            "the WARP edit of {WARP_EDITED} did not reach HubSpot"
        ));
    }
    if customer.get("tier").and_then(Value::as_str) != Some(tier) {
        failures.push(format!(
            "the HubSpot edit of {HUBSPOT_EDITED} did not reach WARP"
        ));
    }
    if !failures.is_empty() {
        return Err(format!("reconciliation: {}", failures.join("; ")));
    }
    println!(
        "\nthe WARP edit reached HubSpot and the HubSpot edit reached WARP; report: {}",
        path.display()
    );
    Ok(())
}
