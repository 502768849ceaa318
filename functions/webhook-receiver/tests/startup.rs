//! A cold start with a missing or malformed setting fails at once and names
//! the setting, before any request is served.

use std::process::Command;
use std::time::{Duration, Instant};

fn start(env: &[(&str, &str)]) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_webhook-receiver"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The runtime API is never reached: config fails first.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, started.elapsed())
}

const GOOD: [(&str, &str); 3] = [
    ("WEBHOOK_EVENTS_TABLE", "t"),
    ("SYNC_QUEUE_URL", "http://127.0.0.1:9/123/q"),
    ("HUBSPOT_CLIENT_SECRET", "s3cret-value"),
];

#[test]
fn missing_setting_stops_the_start_and_is_named() {
    let (ok, text, elapsed) = start(&GOOD[1..]);
    assert!(!ok);
    assert!(text.contains("WEBHOOK_EVENTS_TABLE"), "{text}");
    assert!(elapsed < Duration::from_secs(5), "fails at once");
}

#[test]
fn malformed_setting_is_named_and_the_secret_is_not_logged() {
    let mut env = GOOD.to_vec();
    env.push(("HUBSPOT_SIGNATURE_MIN_VERSION", "v9"));
    let (ok, text, _) = start(&env);
    assert!(!ok);
    assert!(text.contains("HUBSPOT_SIGNATURE_MIN_VERSION"), "{text}");
    assert!(!text.contains("s3cret-value"), "{text}");
    // The log line is JSON.
    let line = text
        .lines()
        .find(|l| l.contains("cannot start"))
        .expect("error logged");
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(parsed["level"], "ERROR");
}
