//! A minimal Lambda Runtime API on loopback, and a function binary run
//! against it as Lambda would run it: what `make coldstart` times and what
//! the EMF test reads the log lines of.
//!
//! Only the four routes a runtime client uses are served (`next`,
//! `response`, `error`, `init/error`). `next` long-polls until an event is
//! pushed, as Lambda's does; the first `next` is the end of init.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    first_next: Option<Instant>,
    answers: HashMap<String, Answer>,
    init_error: Option<String>,
}

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub ok: bool,
    pub body: String,
    pub at: Instant,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl Shared {
    /// Runs `f` on the state; waiters are woken when `f` says it changed
    /// something they may wait for (a waiter woken by its own look would spin).
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> (T, bool)) -> T {
        let (out, changed) = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut inner)
        };
        if changed {
            self.changed.notify_waiters();
        }
        out
    }
}

/// The fake Runtime API. Dropping it stops the server.
pub struct RuntimeApi {
    pub address: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    next_id: u64,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(s): State<Shared>) -> (StatusCode, HeaderMap, String) {
    loop {
        // Enabled before the check, so a push in between is not missed.
        let notified = s.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let item = s.with(|i| {
            let first = i.first_next.is_none();
            i.first_next.get_or_insert_with(Instant::now);
            let item = i.queue.pop_front();
            let changed = first || item.is_some();
            (item, changed)
        });
        if let Some((id, event)) = item {
            let mut h = HeaderMap::new();
            let deadline = hubwarp::time::now_ms() + 900_000;
            let arn = "arn:aws:lambda:us-east-1:123456789012:function:runtime-api-test";
            for (k, v) in [
                ("lambda-runtime-aws-request-id", id.as_str()),
                ("lambda-runtime-deadline-ms", &deadline.to_string()),
                ("lambda-runtime-invoked-function-arn", arn),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                ),
            ] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            return (StatusCode::OK, h, event.to_string());
        }
        notified.await;
    }
}

async fn respond(
    State(s): State<Shared>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let answer = Answer {
        ok: kind == "response",
        body: String::from_utf8_lossy(&body).to_string(),
        at: Instant::now(),
    };
    s.with(|i| (i.answers.insert(id, answer), true));
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Shared>, body: Bytes) -> StatusCode {
    s.with(|i| {
        i.init_error = Some(String::from_utf8_lossy(&body).to_string());
        ((), true)
    });
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let (url, server) = crate::serve(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            app,
            "runtime-api",
        )
        .await?;
        Ok(Self {
            address: url.trim_start_matches("http://").to_string(),
            shared,
            server,
            next_id: 0,
        })
    }

    /// Queues an invocation; returns its request id.
    pub fn push(&mut self, event: Value) -> String {
        self.next_id += 1;
        let id = format!("req-{:04}", self.next_id);
        let queued = id.clone();
        self.shared
            .with(move |i| (i.queue.push_back((queued, event)), true));
        id
    }

    /// When the function first asked for an invocation (the end of its init).
    pub async fn first_next(&self, timeout: Duration) -> Result<Instant, String> {
        self.wait(timeout, |i| {
            if let Some(e) = &i.init_error {
                return Some(Err(format!("init error: {e}")));
            }
            i.first_next.map(Ok)
        })
        .await?
    }

    /// The function's answer to `request_id`.
    pub async fn answer(&self, request_id: &str, timeout: Duration) -> Result<Answer, String> {
        self.wait(timeout, |i| i.answers.get(request_id).cloned())
            .await
    }

    async fn wait<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&Inner) -> Option<T>,
    ) -> Result<T, String> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = {
                let inner = self.shared.inner.lock().unwrap_or_else(|p| p.into_inner());
                ready(&inner)
            };
            if let Some(v) = got {
                return Ok(v);
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return Err(format!("nothing within {timeout:?}"));
            }
        }
    }
}

/// A function binary running against a [`RuntimeApi`]; killed on drop.
/// Its stdout (the JSON log lines and EMF lines) is collected.
pub struct FunctionProcess {
    child: Child,
    pub spawned: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl FunctionProcess {
    pub fn spawn(
        binary: &Path,
        api: &RuntimeApi,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let mut cmd = Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "runtime-api-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "group")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        Ok(Self {
            child,
            spawned,
            lines,
        })
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resident memory now, in KiB (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings of all three functions for resources made by
/// [`crate::resources::ensure`] on `aws_endpoint` and sandboxes at the given
/// URLs, as `make watch` gives them (inline secrets, never ARNs).
pub fn function_settings(
    aws_endpoint: &str,
    res: &crate::resources::Resources,
    warp_url: &str,
    hubspot_url: &str,
) -> Vec<(String, String)> {
    let n = &res.names;
    let t = n.sync_tables();
    [
        ("AWS_ENDPOINT_URL", aws_endpoint.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("WEBHOOK_EVENTS_TABLE", n.events_table()),
        ("LINKS_TABLE", t.links),
        ("FIELD_STATE_TABLE", t.field_state),
        ("SYNC_LOG_TABLE", t.sync_log),
        ("CONFLICTS_TABLE", t.conflicts),
        ("BREAKERS_TABLE", n.breakers_table()),
        ("RUNS_TABLE", n.runs_table()),
        ("REPORTS_BUCKET", n.reports_bucket()),
        ("SYNC_QUEUE_URL", res.sync_queue_url.clone()),
        (
            "HUBSPOT_CLIENT_SECRET",
            crate::fixtures::LOCAL_SECRET.to_string(),
        ),
        ("WARP_API_URL", warp_url.to_string()),
        (
            "WARP_API_TOKEN",
            crate::warp_sandbox::SANDBOX_TOKEN.to_string(),
        ),
        ("HUBSPOT_API_URL", hubspot_url.to_string()),
        (
            "HUBSPOT_ACCESS_TOKEN",
            crate::hubspot_sandbox::HUBSPOT_SANDBOX_TOKEN.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A function's binary of the workspace's `profile` (debug or release).
pub fn function_binary(name: &str, profile: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join(profile).join(name)
}
