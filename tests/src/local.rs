//! Running the functions locally under `cargo lambda watch` and sending
//! them signed webhooks over HTTP, for `make demo` and the memory probe.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubwarp::hubspot::signature::{self, ClientSecret};

use crate::workspace_root;

pub type Result<T> = std::result::Result<T, String>;

/// `cargo lambda watch`, stopped with its whole process group on drop.
///
/// It runs in a process group of its own, so a Ctrl-C on the terminal does
/// not reach it; its pid is kept in `.local/watch.pid` while it runs, for
/// `make demo` to stop it when this process dies without dropping it.
pub struct Watch(Child);

fn watch_pid_file() -> std::path::PathBuf {
    workspace_root().join(".local/watch.pid")
}

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda watch runs each function in a process group of its
        // own (watchexec's grouped commands), out of reach of the signal to
        // watch's group; it stops them itself on the way out, and these are
        // stopped here should one outlive it.
        let functions = children_of(self.0.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        for pid in functions {
            if alive(pid) {
                let _ = Command::new("kill")
                    .args(["-s", "TERM", "--", &format!("-{pid}")])
                    .status();
            }
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_file(watch_pid_file());
    }
}

/// The ppid and state fields of `/proc/PID/stat` (after the command name,
/// which may hold spaces and parentheses).
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((fields.next()?.parse().ok()?, state))
}

/// Running (a zombie has ended; its parent just has not reaped it yet).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z')
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(ppid, _)| ppid == parent))
        .collect()
}

pub fn start_watch(port: u16, public_url: &str, release: bool) -> Result<Watch> {
    let root = workspace_root();
    let log_path = root.join(".local/watch.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("cargo");
    cmd.args([
        "lambda",
        "watch",
        "--invoke-address",
        "127.0.0.1",
        "--invoke-port",
    ])
    .arg(port.to_string());
    if release {
        cmd.arg("--release");
    }
    let child = cmd
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
    // Held from here on, so every way out below stops the process group.
    let watch = Watch(child);
    let _ = std::fs::write(watch_pid_file(), watch.0.id().to_string());
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
    Ok(watch)
}

pub struct Sender {
    pub http: reqwest::Client,
    pub url: String,
    pub secret: ClientSecret,
}

#[derive(Clone, Copy)]
pub enum Sig {
    V1,
    V3,
    StaleV3,
    WrongSecret,
}

impl Sender {
    pub fn new(url: &str, secret: &str) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .map_err(|e| e.to_string())?,
            url: url.to_string(),
            secret: ClientSecret::new(secret),
        })
    }

    pub async fn post(&self, body: &str, sig: Sig) -> Result<(u16, String)> {
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

    pub async fn get(&self) -> Result<u16> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }
}
