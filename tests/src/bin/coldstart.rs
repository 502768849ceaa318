//! Cold start of the three functions beside a hello-world `lambda_runtime`
//! binary, all built with the workspace's release profile and measured in
//! the same run, from outside: a minimal Runtime API on loopback times
//! spawn -> first `next` (init) and the first invocation (event handed over
//! -> answer posted). The first invocations do real work against a moto
//! server and the WARP and HubSpot sandboxes: a signed delivery recorded and
//! queued, an SQS batch applied, a dry-run reconciliation written to S3.
//!
//! `make coldstart` (RUNS=20). Prints a table and checks the receiver's
//! init against 3x the hello-world floor.

use std::path::Path;
use std::time::Duration;

use integration_tests::hubspot_sandbox::HubspotSandbox;
use integration_tests::moto::MotoServer;
use integration_tests::resources::{self, Names};
use integration_tests::runtime_api::{
    FunctionProcess, RuntimeApi, function_binary, function_settings,
};
use integration_tests::warp_sandbox::WarpSandbox;
use serde_json::Value;

type Result<T> = std::result::Result<T, String>;

struct Figures {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    rss_kib: Vec<u64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get((s.len() * 9 / 10).min(s.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

fn fixture(name: &str) -> Result<Value> {
    let path = integration_tests::workspace_root()
        .join("events")
        .join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

async fn measure(
    binary: &Path,
    env: &[(String, String)],
    event: &dyn Fn(usize) -> Value,
    runs: usize,
) -> Result<Figures> {
    let mut f = Figures {
        init_ms: Vec::new(),
        first_ms: Vec::new(),
        rss_kib: Vec::new(),
    };
    for run in 0..runs {
        let mut api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let process = FunctionProcess::spawn(binary, &api, env)?;
        let ready = api.first_next(Duration::from_secs(20)).await?;
        f.init_ms
            .push(ready.duration_since(process.spawned).as_secs_f64() * 1000.0);
        if let Some(rss) = process.rss_kib() {
            f.rss_kib.push(rss);
        }
        // Handed over now: the runtime is already waiting on `next`.
        let handed = std::time::Instant::now();
        let id = api.push(event(run));
        let answer = api.answer(&id, Duration::from_secs(60)).await?;
        if !answer.ok {
            return Err(format!(
                "{} failed its invocation: {}",
                binary.display(),
                answer.body
            ));
        }
        f.first_ms
            .push(answer.at.duration_since(handed).as_secs_f64() * 1000.0);
    }
    Ok(f)
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let moto = MotoServer::start()?;
    let aws = moto.sdk_config().await;
    let res = resources::ensure(&aws, &Names::new("coldstart"))
        .await
        .map_err(|e| e.to_string())?;
    let warp = WarpSandbox::start().await;
    let hubspot = HubspotSandbox::start().await;
    // The bridge's properties, as `hubwarp setup` creates them (the first
    // eight demo customers hold every tier and payment term).
    let book: Vec<Value> = (0..8)
        .map(integration_tests::warp_sandbox::demo_customer)
        .collect();
    integration_tests::hubspot_setup::install_bridge_properties(&hubspot, &book);
    let mut env = function_settings(&moto.endpoint, &res, &warp.base_url, &hubspot.base_url);
    env.push(("RUST_LOG".into(), "info".into()));

    let (delivery, batch) = (fixture("webhook-v1.json")?, fixture("sqs-batch.json")?);
    // A run of its own each time (the scheduled time is the run id), so the
    // first invocation always does a whole, small run, never "already ran".
    let nightly = |run: usize| serde_json::json!({"scheduled_time": format!("2026-11-25T07:{:02}:{:02}Z", run / 60, run % 60)});
    let cases: [(&str, &dyn Fn(usize) -> Value); 4] = [
        ("hello-lambda", &|_| serde_json::json!({"hello": "world"})),
        ("webhook-receiver", &|_| delivery.clone()),
        ("sync-consumer", &|_| batch.clone()),
        ("nightly-reconciler", &nightly),
    ];
    println!("cold start, release profile, {runs} starts each (median / p90)");
    println!(
        "{:<20} {:>16} {:>10} {:>22} {:>9}",
        "function", "init ms", "x floor", "first invocation ms", "RSS MiB"
    );
    let mut floor = f64::NAN;
    let mut receiver_ratio = f64::NAN;
    for (name, event) in &cases {
        let binary = function_binary(name, "release");
        if !binary.exists() {
            return Err(format!(
                "{} missing: `make coldstart` builds it",
                binary.display()
            ));
        }
        let f = measure(&binary, &env, *event, runs).await?;
        let init = median(&f.init_ms);
        if *name == "hello-lambda" {
            floor = init;
        }
        let ratio = init / floor;
        if *name == "webhook-receiver" {
            receiver_ratio = ratio;
        }
        let rss = f.rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
        println!(
            "{:<20} {:>7.2} / {:<6.2} {:>9.2}x {:>10.2} / {:<9.2} {:>9.1}",
            name,
            init,
            p90(&f.init_ms),
            ratio,
            median(&f.first_ms),
            p90(&f.first_ms),
            rss
        );
    }
    let goal = 3.0;
    let verdict = if receiver_ratio <= goal {
        "ok"
    } else {
        "MISSED"
    };
    println!("receiver init / hello-world init = {receiver_ratio:.2}x (goal <= {goal}x) {verdict}");
    if receiver_ratio > goal {
        return Err("the receiver's init is over its goal".into());
    }
    Ok(())
}
