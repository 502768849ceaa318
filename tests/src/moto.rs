//! A moto server (DynamoDB, SQS, S3, Secrets Manager...) on a free loopback
//! port, started from the project's `.venv`.
//!
//! The server runs under `tests/moto_server.py`, which serialises requests
//! (DynamoDB's conditional writes are atomic; moto's threads are not) and
//! exits when its stdin closes, so it dies with the test process, even a
//! killed one, and never leaves a stray server behind. It records every
//! call it serves under `.local/aws-calls/` (see `call_log_path`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The launcher: moto with one request at a time (see the script's docs).
fn launcher() -> PathBuf {
    crate::workspace_root().join("tests/moto_server.py")
}

#[derive(Debug)]
pub struct MotoServer {
    pub endpoint: String,
    _child: Child,
    _stdin: ChildStdin,
}

/// Python of the project's venv (`MOTO_PYTHON` overrides).
pub fn venv_python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".venv/bin/python"))
}

impl MotoServer {
    /// Starts a server of its own on a free port.
    pub fn start() -> Result<Self, String> {
        let python = venv_python();
        if !python.exists() {
            return Err(format!(
                "{} not found: run `make venv` (or `make test`) to create the venv with moto",
                python.display()
            ));
        }
        let port = free_port()?;
        // Werkzeug logs every request: to a file, never to an unread pipe
        // (a full pipe blocks the server).
        let log_path = std::env::temp_dir().join(format!("moto-{port}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new(&python);
        command
            .arg(launcher())
            .args([&port.to_string(), "--exit-with-stdin"]);
        if let Some(path) = call_log_path(port)? {
            command.env("MOTO_CALL_LOG", path);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start moto with {}: {e}", python.display()))?;
        let stdin = child.stdin.take().ok_or("moto stdin missing")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("moto exited with {status}: {err}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("moto did not listen within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
            _stdin: stdin,
        })
    }

    /// One server shared by every test of the process; tests keep apart by
    /// giving their resources a unique prefix.
    pub fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(|| match MotoServer::start() {
            Ok(s) => s,
            Err(e) => panic!("local AWS for tests: {e}"),
        })
    }

    /// SDK config for this server: dummy credentials, fixed region, no
    /// environment lookups (tests must never reach real AWS).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self._child.kill();
        let _ = self._child.wait();
    }
}

pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        // A stuck call fails the test instead of hanging it.
        .timeout_config(hubwarp::aws::timeouts(std::time::Duration::from_secs(30)))
        .load()
        .await
}

/// Where this server records the AWS calls it serves, for `make iam-check`
/// to judge against the roles in infra/template.yaml (moto enforces no IAM);
/// one file per server, as several test processes run at once.
/// HUBWARP_NO_CALL_LOG set: none.
fn call_log_path(port: u16) -> Result<Option<PathBuf>, String> {
    if std::env::var_os("HUBWARP_NO_CALL_LOG").is_some() {
        return Ok(None);
    }
    let dir = crate::workspace_root().join(".local/aws-calls");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(Some(
        dir.join(format!("moto-{}-{port}.jsonl", std::process::id())),
    ))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// One message SES took (moto keeps them; tests/moto_server.py serves them).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SentMail {
    pub source: String,
    pub destinations: Vec<String>,
    /// The whole MIME message as sent.
    pub raw: String,
}

/// Every message the moto server at `endpoint` has taken through SES.
pub async fn ses_sent(endpoint: &str) -> Result<Vec<SentMail>, String> {
    let url = format!("{endpoint}/_hubwarp/ses/sent");
    reqwest::get(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))
}
