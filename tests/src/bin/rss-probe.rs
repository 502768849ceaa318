//! Memory of the receiver after many invocations: starts the release build
//! under `cargo lambda watch`, sends N signed deliveries of K events over
//! HTTP, and prints the function process's resident memory (now and peak)
//! and the latency of the deliveries.
//!
//! `make rss` (defaults N=1000, K=1: moto, not the function, is the slow part). Needs `make local-up`.

use std::time::Instant;

use integration_tests::fixtures::{LOCAL_SECRET, property_changes};
use integration_tests::local::{Result, Sender, Sig, start_watch};

fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The pid of the running `webhook-receiver` function process.
fn function_pid() -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let first = cmdline.split(|b| *b == 0).next()?;
            String::from_utf8_lossy(first)
                .ends_with("release/webhook-receiver")
                .then_some(pid)
        })
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let k: usize = std::env::var("K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let port: u16 = std::env::var("INVOKE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9000);
    let url = format!("http://127.0.0.1:{port}/lambda-url/webhook-receiver/");
    // Build first: the first invoke would otherwise wait for a release build.
    let built = std::process::Command::new("cargo")
        .args(["build", "--quiet", "--release", "-p", "webhook-receiver"])
        .status()
        .map_err(|e| e.to_string())?;
    if !built.success() {
        return Err("release build failed".into());
    }
    let _watch = start_watch(port, &url, true)?;
    let sender = Sender::new(&url, LOCAL_SECRET)?;
    // Fresh ids per run, so every delivery records and queues new events.
    let base = (hubwarp::time::now_ms() as usize) % 1_000_000_000;

    let (status, body) = sender.post(&property_changes(k, base), Sig::V3).await?;
    if status != 200 {
        return Err(format!("first delivery answered {status}: {body}"));
    }
    let pid = function_pid().ok_or("function process not found")?;
    let rss_first = status_kb(&pid, "VmRSS:").unwrap_or(0);

    let mut latencies = Vec::with_capacity(n);
    for i in 1..n {
        let body = property_changes(k, base + i * k);
        let t = Instant::now();
        let (status, answer) = sender.post(&body, Sig::V3).await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        if status != 200 {
            return Err(format!("delivery {i} answered {status}: {answer}"));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    let rss = status_kb(&pid, "VmRSS:").unwrap_or(0);
    let hwm = status_kb(&pid, "VmHWM:").unwrap_or(0);
    println!("deliveries        {n} x {k} events (v3-signed, release build, moto on loopback)");
    println!("RSS after first   {:.1} MB", rss_first as f64 / 1024.0);
    println!(
        "RSS after {n:<6}  {:.1} MB (peak {:.1} MB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "latency ms        p50 {:.1}  p90 {:.1}  p99 {:.1}  (HTTP via cargo lambda watch + moto)",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    Ok(())
}
