//! `make demo`: the system on this machine, end to end over real HTTP.
//!
//! Needs the local AWS of `make local-up` (AWS_ENDPOINT_URL). Starts the
//! functions under `cargo lambda watch`, sends signed HubSpot webhooks to the
//! receiver's Function URL, and prints what each answer was and what landed
//! in DynamoDB and SQS. Event ids come from the clock, so the demo can run
//! again on the same local AWS.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use hubwarp::hubspot::signature::{self, ClientSecret};
use integration_tests::fixtures::LOCAL_SECRET;
use integration_tests::moto::sdk_config_for;
use integration_tests::resources::{DEFAULT_PREFIX, Names, Resources, ensure};
use integration_tests::workspace_root;

type Result<T> = std::result::Result<T, String>;

/// `cargo lambda watch`, stopped with its whole process group on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn start_watch(port: u16, public_url: &str) -> Result<Watch> {
    let root = workspace_root();
    let log_path = root.join(".local/watch.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .current_dir(&root)
        // The URL HubSpot would be configured with; a set variable wins over
        // the function's local defaults.
        .env("WEBHOOK_PUBLIC_URL", public_url)
        .stdout(log)
        .stderr(err)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start cargo lambda watch (make venv?): {e}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(
                "cargo lambda watch did not listen within 60 s; see .local/watch.log".into(),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Watch(child))
}

struct Sender {
    http: reqwest::Client,
    url: String,
    secret: ClientSecret,
}

#[derive(Clone, Copy)]
enum Sig {
    V1,
    V3,
    StaleV3,
    WrongSecret,
}

impl Sender {
    async fn post(&self, body: &str, sig: Sig) -> Result<(u16, String)> {
        let now = hubwarp::time::now_ms();
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        match sig {
            Sig::V1 => {
                req = req
                    .header(
                        signature::HEADER_SIGNATURE,
                        signature::sign_v1(&self.secret, body.as_bytes()),
                    )
                    .header(signature::HEADER_SIGNATURE_VERSION, "v1");
            }
            Sig::V3 | Sig::StaleV3 | Sig::WrongSecret => {
                let ts = if matches!(sig, Sig::StaleV3) {
                    now - 600_000
                } else {
                    now
                }
                .to_string();
                let key = if matches!(sig, Sig::WrongSecret) {
                    ClientSecret::new("someone-elses-secret")
                } else {
                    self.secret.clone()
                };
                let v3 = signature::sign_v3(&key, "POST", &self.url, body.as_bytes(), &ts);
                req = req
                    .header(signature::HEADER_SIGNATURE_V3, v3)
                    .header(signature::HEADER_TIMESTAMP, ts);
            }
        }
        let resp = req
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    async fn get(&self) -> Result<u16> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }
}

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
                r#"{{"eventId":{},"subscriptionId":2951763,"portalId":62515,"appId":1160452,"occurredAt":{},"subscriptionType":"company.propertyChange","attemptNumber":{attempt},"objectId":{},"changeSource":"CRM_UI","propertyName":"{}","propertyValue":"value {i}"}}"#,
                base + i as u64,
                base + i as u64,
                18_476_215_990u64 + (i % 50) as u64,
                props[i % props.len()]
            )
        })
        .collect();
    format!("[{}]", events.join(","))
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

async fn records_by_status(
    aws: &SdkConfig,
    res: &Resources,
    since_ms: i64,
) -> Result<BTreeMap<String, u64>> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let mut counts = BTreeMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(res.names.events_table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        for item in page.items.unwrap_or_default() {
            let first: i64 = item
                .get("first_received_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if first >= since_ms {
                let status = item
                    .get("status")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                *counts.entry(status).or_insert(0) += 1;
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
    let _watch = start_watch(port, &url)?;
    let sender = Sender {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?,
        url: url.clone(),
        secret: ClientSecret::new(LOCAL_SECRET),
    };

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
    let records = records_by_status(&aws, &res, started).await?;
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
    println!("\nevery change queued exactly once; every bad request refused with nothing recorded");
    Ok(())
}
