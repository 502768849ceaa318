//! The nightly reconciler over N pairs against the sandboxes, over real
//! HTTP with the real clients and HubSpot's rate limit enforced: the calls
//! it makes against the fewest it could, its wall time against the floor
//! the rate limit sets, and its peak memory.
//!
//! `cargo run --release -p integration-tests --bin reconcile-bench [-- --customers N --limit L]`
//! (defaults 100000 and 190; `--customers 5000` for a quick run).
//!
//! The sandboxes run in a child process (`warp-sandbox`, built first), so
//! their 100,000 customers and companies are not counted in this process's
//! peak RSS, which then is the reconciler's: its clients, the page in hand
//! and the in-memory stores (links, field states, run record, report
//! pieces) that stand in for DynamoDB and S3. Against moto every store call
//! would cost tens of milliseconds of Python and measure moto instead; so
//! the stores wait as the real ones answer in-region instead
//! (`integration_tests::slow_stores`: `--store-ms`, 5 ms a DynamoDB call,
//! `--s3-put-ms`, 20 ms an S3 put) and count their calls and write units.
//!
//! Two nights: the first (no baseline yet, so every field's is written)
//! and a steady one after `--drift` of the customers were edited in WARP,
//! each with its calls, wall time against the floor, store round trips and
//! what its writes cost on demand.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::hubspot::rate::RateLimiter;
use hubwarp::mapping::MappingSet;
use hubwarp::queue::MemoryQueue;
use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::ports::{Continuation, NoAlerts};
use hubwarp::reconcile::run::{Reconciler, RunSettings};
use hubwarp::reconcile::run_store::MemoryRunStore;
use hubwarp::store::{MemoryEventLog, MemoryReportStore, MemorySyncStore};
use hubwarp::warp::WarpClient;
use integration_tests::hubspot_sandbox::HUBSPOT_SANDBOX_TOKEN;
use integration_tests::slow_stores::{Latency, Slow, StoreCalls, StoreFigures};
use integration_tests::warp_sandbox::SANDBOX_TOKEN;

const USAGE: &str = "usage: reconcile-bench [--customers N] [--others K] [--limit L] \
     [--search-limit S] [--drift F] [--store-ms D] [--s3-put-ms P] [--concurrency C] \
     [--order shuffled|aligned]   (defaults: 100000, 2, 190, 4, 0.01, 5, 20, the reconciler's, shuffled)";
/// HubSpot's own limit on search, per second (its search guide): what the
/// sandbox enforces; the client keeps `--search-limit` (the shipped
/// default, HUBSPOT_SEARCH_RATE_LIMIT_PER_S, is 4).
const HUBSPOT_SEARCH_PER_S: u32 = 5;
/// DynamoDB on-demand, us-east-1: dollars per million write request units
/// (AWS's price list since its November 2024 reduction; an item under
/// 1 KB is one unit).
const DOLLARS_PER_MILLION_WRITES: f64 = 0.625;
/// HubSpot's batch and page size: the unit of the call goal.
const PER_CALL: u64 = 100;
/// The goal's "handful" of calls beyond reads and writes.
const HANDFUL: u64 = 5;
/// The goals: wall time within this of the rate limit's floor, and
/// peak RSS under this.
const WALL_GOAL: f64 = 1.15;
const RSS_GOAL_MIB: f64 = 128.0;
// --- the reconciler's own memory ---------------------------------------------

/// The process's heap, told apart: what the stand-in stores hold (their
/// calls run with `slow_stores::in_store`) and everything else, the
/// reconciler's own. In Lambda the stores are DynamoDB and S3, so the
/// reconciler's own peak is what the function's memory must hold; the
/// process's RSS also carries the stand-ins' millions of field states and
/// sync log entries and every report piece.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Room before each block for its owner (0: the reconciler's, 1: a
    /// store's), so a block is counted off where it was counted on.
    const HEADER: usize = 16;

    static OWN: AtomicUsize = AtomicUsize::new(0);
    static OWN_PEAK: AtomicUsize = AtomicUsize::new(0);
    static STORES: AtomicUsize = AtomicUsize::new(0);

    pub struct Counting;

    fn count_on(owner: usize, size: usize) {
        if owner == 1 {
            STORES.fetch_add(size, Ordering::Relaxed);
        } else {
            let now = OWN.fetch_add(size, Ordering::Relaxed) + size;
            OWN_PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn count_off(owner: usize, size: usize) {
        if owner == 1 {
            STORES.fetch_sub(size, Ordering::Relaxed);
        } else {
            OWN.fetch_sub(size, Ordering::Relaxed);
        }
    }

    fn padded(layout: Layout) -> Option<(Layout, usize)> {
        let front = layout.align().max(HEADER);
        Some((
            Layout::from_size_align(layout.size().checked_add(front)?, front).ok()?,
            front,
        ))
    }

    // SAFETY: every block is the system's, `front` bytes larger and aligned
    // to `front` (a multiple of the caller's alignment); the caller gets
    // the address `front` bytes in, whose preceding 8 bytes hold the owner.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let Some((full, front)) = padded(layout) else {
                return std::ptr::null_mut();
            };
            // SAFETY: `full` has a non-zero size (front >= 16).
            let base = unsafe { System.alloc(full) };
            if base.is_null() {
                return base;
            }
            let owner = usize::from(integration_tests::slow_stores::in_store());
            // SAFETY: `front` <= the block's size; the owner word lies
            // within the padding, aligned to 8.
            unsafe {
                let user = base.add(front);
                (user.sub(8) as *mut usize).write(owner);
                count_on(owner, layout.size());
                user
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let Some((full, front)) = padded(layout) else {
                return;
            };
            // SAFETY: `ptr` came from `alloc` with this layout.
            unsafe {
                count_off((ptr.sub(8) as *const usize).read(), layout.size());
                System.dealloc(ptr.sub(front), full);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let Some((full, front)) = padded(layout) else {
                return std::ptr::null_mut();
            };
            let Some(grown) = new_size.checked_add(front) else {
                return std::ptr::null_mut();
            };
            // SAFETY: `ptr` came from `alloc` with this layout; the owner
            // word moves with the block's contents.
            unsafe {
                let owner = (ptr.sub(8) as *const usize).read();
                let base = System.realloc(ptr.sub(front), full, grown);
                if base.is_null() {
                    return base;
                }
                count_off(owner, layout.size());
                count_on(owner, new_size);
                base.add(front)
            }
        }
    }

    /// The reconciler's own peak and the stores' share now, in bytes.
    pub fn figures() -> (usize, usize) {
        (
            OWN_PEAK.load(Ordering::Relaxed),
            STORES.load(Ordering::Relaxed),
        )
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// Seeding 100,000 pairs takes seconds; a sandbox silent this long is stuck.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(600);

struct Args {
    customers: usize,
    /// Companies per customer in the portal that are no customer's.
    others: usize,
    limit: u32,
    search_limit: u32,
    /// Pairs decided at once (`RunSettings::concurrency`); None: the default.
    concurrency: Option<usize>,
    drift: f64,
    latency: Latency,
    /// Company ids in an order unlike WARP's (`--order shuffled`, the
    /// default) or in WARP's (`aligned`): the join's hardest and easiest.
    shuffled: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        customers: 100_000,
        others: 2,
        limit: 190,
        search_limit: 4,
        concurrency: None,
        drift: 0.01,
        latency: Latency::default(),
        shuffled: true,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        let bad = || format!("{name}: '{value}' is not a valid number\n{USAGE}");
        match name.as_str() {
            "--customers" => parsed.customers = value.parse().map_err(|_| bad())?,
            "--limit" => parsed.limit = value.parse().map_err(|_| bad())?,
            "--others" => parsed.others = value.parse().map_err(|_| bad())?,
            "--search-limit" => parsed.search_limit = value.parse().map_err(|_| bad())?,
            "--concurrency" => parsed.concurrency = Some(value.parse().map_err(|_| bad())?),
            "--drift" => parsed.drift = value.parse().map_err(|_| bad())?,
            "--order" => {
                parsed.shuffled = match value.as_str() {
                    "shuffled" => true,
                    "aligned" => false,
                    _ => return Err(format!("--order is shuffled or aligned\n{USAGE}")),
                }
            }
            "--store-ms" => {
                parsed.latency.dynamo = Duration::from_millis(value.parse().map_err(|_| bad())?)
            }
            "--s3-put-ms" => {
                parsed.latency.s3_put = Duration::from_millis(value.parse().map_err(|_| bad())?)
            }
            _ => return Err(format!("unknown argument {name}\n{USAGE}")),
        }
    }
    if parsed.limit == 0 {
        return Err(format!("--limit must be at least 1\n{USAGE}"));
    }
    if !(1..=HUBSPOT_SEARCH_PER_S).contains(&parsed.search_limit) {
        return Err(format!(
            "--search-limit must be 1 to {HUBSPOT_SEARCH_PER_S}\n{USAGE}"
        ));
    }
    Ok(Some(parsed))
}

// --- the sandbox child -------------------------------------------------------

/// The sandbox child. In a static so the panic hook reaches it: release
/// builds abort on panic (the workspace's profile), and an abort runs no
/// `Drop`.
static CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// Kills and reaps the child, once; later calls find nothing to do.
fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Stops the child on every way out of `run`: return, `?`, and (in debug
/// builds, which unwind) panics. The panic hook covers aborting panics, and
/// `--exit-with-stdin` a bench killed outright: its end of the child's
/// stdin closes with it.
struct ChildGuard;

impl Drop for ChildGuard {
    fn drop(&mut self) {
        stop_child(&mut CHILD.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // try_lock: a panic while the lock is held must not deadlock here;
        // stdin closing still stops the child then.
        if let Ok(mut child) = CHILD.try_lock() {
            stop_child(&mut child);
        }
        default(info);
    }));
}

/// A port free on loopback right now. The sandbox binds it a moment later;
/// should another process take it in between, the sandbox says so and the
/// bench stops.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free loopback port: {e}"))
}

/// Builds `warp-sandbox` with this binary's profile, next to this binary.
fn build_sandbox() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(integration_tests::workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "integration-tests",
            "--bin",
            "warp-sandbox",
        ]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of warp-sandbox failed ({status})"));
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let path = exe
        .parent()
        .map(|dir| dir.join("warp-sandbox"))
        .ok_or("this binary has no directory")?;
    if !path.is_file() {
        return Err(format!("{} was not built", path.display()));
    }
    Ok(path)
}

/// Spawns the sandboxes, seeded with `args.customers` pairs, and waits for
/// their URLs (WARP, HubSpot).
fn start_sandboxes(args: &Args, exe: &Path) -> Result<(String, String), String> {
    let (port, hubspot_port) = (free_port()?, free_port()?);
    let mut child = Command::new(exe);
    child.args([
        "--port",
        &port.to_string(),
        "--hubspot-port",
        &hubspot_port.to_string(),
        "--customers",
        &args.customers.to_string(),
        "--drift",
        &args.drift.to_string(),
        "--hubspot-limit-per-10s",
        &args.limit.to_string(),
        "--hubspot-search-per-s",
        &HUBSPOT_SEARCH_PER_S.to_string(),
        "--other-companies",
        &args.others.to_string(),
        "--exit-with-stdin",
        // HubSpot's properties as `hubwarp setup` makes them, typed.
        "--hubspot-setup",
    ]);
    if args.shuffled {
        child.arg("--shuffled");
    }
    let mut child = child
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("the sandbox has no stdout")?;
    // The child's stdin stays in `child`, open until the child is stopped.
    *CHILD.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);

    // A thread reads the lines, so the wait can time out.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let (mut warp, mut hubspot) = (None, None);
    while hubspot.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("WARP_API_URL=") {
                    warp = Some(url.trim().to_string());
                } else if let Some(url) = line.strip_prefix("HUBSPOT_API_URL=") {
                    hubspot = Some(url.trim().to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the sandboxes did not start within {} s",
                    STARTUP_TIMEOUT.as_secs()
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = CHILD
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_mut()
                    .and_then(|c| c.wait().ok());
                return Err(format!(
                    "the sandboxes exited before they were ready ({})",
                    status.map_or("no status".into(), |s| s.to_string())
                ));
            }
        }
    }
    let warp = warp.ok_or("the sandbox printed no WARP_API_URL")?;
    Ok((warp, hubspot.unwrap_or_default()))
}

// --- the run -----------------------------------------------------------------

/// The run has no invocation budget and a deadline a day away: it never
/// hands over, and a handover would be a finding, not a step.
struct NeverContinued;

impl Continuation for NeverContinued {
    async fn continue_run(&self, run_id: &str) -> Result<(), String> {
        Err(format!(
            "run {run_id} asked for a second invocation; the bench runs in one"
        ))
    }
}

/// `VmHWM`: this process's peak resident set, in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> ExitCode {
    install_panic_hook();
    // Quiet by default: the figures are the output. RUST_LOG=debug shows
    // the run's and the limiter's logs (JSON lines) to find out why.
    if std::env::var_os("RUST_LOG").is_some() {
        hubwarp::telemetry::init();
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("reconcile-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let result = {
        let _child = ChildGuard;
        tokio::runtime::Runtime::new()
            .map_err(|e| format!("starting tokio: {e}"))
            .and_then(|rt| rt.block_on(run(&args)))
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // The figures are printed; a missed goal fails `make reconcile-bench`.
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("reconcile-bench: {message}");
            ExitCode::from(2)
        }
    }
}

/// One night's figures.
struct Night {
    name: &'static str,
    summary: hubwarp::reconcile::report::Counters,
    hubspot: hubwarp::hubspot::crm::CallCounts,
    stores: StoreFigures,
    wall: f64,
}

type Bench = Reconciler<
    WarpClient,
    HubspotClient,
    Slow<MemorySyncStore>,
    Slow<MemoryEventLog>,
    MemoryQueue,
    Slow<MemoryRunStore>,
    Slow<MemoryReportStore>,
>;

/// One run of the night at `scheduled`, start to report.
async fn night(
    reconciler: &Bench,
    stores: &StoreCalls,
    name: &'static str,
    scheduled: &str,
) -> Result<Night, String> {
    let hubspot_before = reconciler.hubspot.calls();
    let stores_before = stores.figures();
    let deadline = hubwarp::time::now_ms() + 86_400_000;
    let started = Instant::now();
    let request = ReconcileRequest {
        scheduled_time: Some(scheduled.into()),
        ..Default::default()
    };
    let outcome = reconciler
        .invoke(&request, deadline, &NeverContinued, &NoAlerts)
        .await
        .map_err(|e| format!("the {name} night failed: {e}"))?;
    let wall = started.elapsed().as_secs_f64();
    if outcome.status != "completed" {
        return Err(format!(
            "the {name} night ended {}: {}",
            outcome.status, outcome.message
        ));
    }
    let after = reconciler.hubspot.calls();
    let hubspot = hubwarp::hubspot::crm::CallCounts {
        get: after.get - hubspot_before.get,
        list: after.list - hubspot_before.list,
        batch_read: after.batch_read - hubspot_before.batch_read,
        batch_update: after.batch_update - hubspot_before.batch_update,
        search: after.search - hubspot_before.search,
        schema: after.schema - hubspot_before.schema,
        rate_limited_429s: after.rate_limited_429s - hubspot_before.rate_limited_429s,
        rate_limit_waits: after.rate_limit_waits - hubspot_before.rate_limit_waits,
        waited_ms: after.waited_ms - hubspot_before.waited_ms,
    };
    Ok(Night {
        name,
        summary: outcome.summary.unwrap_or_default(),
        hubspot,
        stores: stores.figures() - stores_before,
        wall,
    })
}

/// A WARP-side edit of `fraction` of the customers between the nights
/// (status, WARP-owned): the steady night's drift, repaired in HubSpot.
async fn drift_warp(warp: &WarpClient, customers: usize, fraction: f64) -> Result<u64, String> {
    let every = (fraction > 0.0).then(|| (1.0 / fraction).round().max(1.0) as usize);
    let Some(every) = every else { return Ok(0) };
    let mut edited = 0;
    for n in (every / 2 + 1..=customers).step_by(every) {
        let ban = integration_tests::warp_sandbox::demo_customer(n)["ban"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let c = warp.by_ban(&ban).await.map_err(|e| format!("{ban}: {e}"))?;
        let status = if c.raw["status"] == "SUSPENDED" {
            "ACTIVE"
        } else {
            "SUSPENDED"
        };
        let mut body = serde_json::Map::new();
        body.insert("status".into(), status.into());
        warp.update(&c.id, &body, Some(&c.etag))
            .await
            .map_err(|e| format!("{ban}: {e}"))?;
        edited += 1;
    }
    Ok(edited)
}

/// Prints one night; true when its goals are met.
fn report(n: u64, args: &Args, night: &Night) -> bool {
    let (limit, search_limit) = (args.limit, args.search_limit);
    let s = &night.summary;
    let calls = &night.hubspot;
    let hubspot_total = calls.requests();
    // The bound: one read per 100 customers, one write per 100
    // fixes, and a handful, whatever the portal's other companies.
    let bound = n.div_ceil(PER_CALL) + s.hubspot_updates.div_ceil(PER_CALL) + HANDFUL;
    // Search and the rest are limited apart: each sets a floor, the
    // larger binds.
    let search_floor = calls.search as f64 / f64::from(search_limit);
    let rest_floor = (hubspot_total - calls.search) as f64 * 10.0 / f64::from(limit);
    let (floor, binds) = if search_floor >= rest_floor {
        (search_floor, format!("search, {search_limit}/s"))
    } else {
        (rest_floor, format!("ten-secondly, {limit}/10 s"))
    };
    let ratio = if floor > 0.0 { night.wall / floor } else { 0.0 };
    let calls_ok = hubspot_total <= bound;
    let wall_ok = ratio <= WALL_GOAL;
    let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
    let st = &night.stores;
    println!("--- {} night", night.name);
    println!(
        "pairs                {} compared, {} in sync, {} unmatched in WARP, {} in HubSpot, {} errors",
        s.pairs_compared, s.pairs_in_sync, s.unmatched_warp, s.unmatched_hubspot, s.errors
    );
    println!(
        "fixes                {} fields in WARP ({} PUTs), {} fields in HubSpot ({} companies updated)",
        s.fixed_in_warp, s.warp_writes, s.fixed_in_hubspot, s.hubspot_updates
    );
    println!(
        "HubSpot calls        {} search, {} list, {} batch_read, {} batch_update, {} other; {} in all",
        calls.search, calls.list, calls.batch_read, calls.batch_update, calls.get, hubspot_total
    );
    println!(
        "WARP calls           {} list, {} get, {} by BAN, {} PUT; {} in all",
        s.warp_calls.list,
        s.warp_calls.get,
        s.warp_calls.by_ban,
        s.warp_calls.put,
        s.warp_calls.total()
    );
    println!(
        "phase 1              {} customers deferred until the index had read their company (counted at each deferral)",
        s.deferred
    );
    println!(
        "rate limit           {} waits ({:.1} s waited in all), {} answered 429",
        calls.rate_limit_waits,
        calls.waited_ms as f64 / 1000.0,
        calls.rate_limited_429s
    );
    println!(
        "stores               {} DynamoDB reads, {} writes ({} write units), {} S3 puts, {} S3 reads",
        st.dynamo_reads, st.dynamo_writes, st.write_units, st.s3_puts, st.s3_reads
    );
    println!(
        "write cost           ${:.4} on demand ({} units x ${DOLLARS_PER_MILLION_WRITES}/million)",
        st.write_units as f64 * DOLLARS_PER_MILLION_WRITES / 1e6,
        st.write_units
    );
    println!(
        "wall time            {:.1} s (one invocation, claim to report)",
        night.wall
    );
    println!(
        "floor                {floor:.1} s, set by {binds} ({} searches / {search_limit} per s = {search_floor:.1} s; {} other calls x 10 s / {limit} = {rest_floor:.1} s)",
        calls.search,
        hubspot_total - calls.search
    );
    println!(
        "wall / floor         {ratio:.3} (goal <= {WALL_GOAL}) {}",
        mark(wall_ok)
    );
    println!(
        "HubSpot call goal    {hubspot_total} made <= {bound} = ceil({n}/100) + ceil({}/100) + {HANDFUL} {}",
        s.hubspot_updates,
        mark(calls_ok)
    );
    println!(
        "reconcile-bench {}: N={n} others={} fixes={} | HubSpot calls {hubspot_total}/{bound} {} | wall {:.1} s / floor {floor:.1} s ({binds}) = {ratio:.2}x {} | {} write units",
        night.name,
        n * args.others as u64,
        s.hubspot_updates,
        mark(calls_ok),
        night.wall,
        mark(wall_ok),
        st.write_units
    );
    calls_ok && wall_ok
}

/// Runs the bench; `Ok(true)` when every goal is met.
async fn run(args: &Args) -> Result<bool, String> {
    let exe = build_sandbox()?;
    let seeding = Instant::now();
    let (warp_url, hubspot_url) = start_sandboxes(args, &exe)?;
    let seeded = seeding.elapsed();

    let timeout = Duration::from_secs(30);
    let warp = || {
        WarpClient::new(
            &warp_url,
            Token::new(SANDBOX_TOKEN),
            timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| e.to_string())
    };
    let stores = Arc::new(StoreCalls::default());
    let reconciler: Bench = Reconciler {
        warp: warp()?,
        hubspot: HubspotClient::new(
            &hubspot_url,
            Token::new(HUBSPOT_SANDBOX_TOKEN),
            timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| e.to_string())?
        .with_limiter(Arc::new(RateLimiter::new(args.limit, args.search_limit))),
        store: Slow::new(MemorySyncStore::new(), args.latency, stores.clone()),
        events: Slow::new(MemoryEventLog::new(), args.latency, stores.clone()),
        queue: MemoryQueue::new(),
        runs: Slow::new(MemoryRunStore::default(), args.latency, stores.clone()),
        reports: Slow::new(MemoryReportStore::default(), args.latency, stores.clone()),
        mappings: MappingSet::default_mapping().map_err(|e| e.to_string())?,
        settings: {
            let defaults = RunSettings::default();
            RunSettings {
                invocation_budget: None,
                concurrency: args.concurrency.unwrap_or(defaults.concurrency).max(1),
                ..defaults
            }
        },
    };
    let first = night(&reconciler, &stores, "first", "2026-11-24T07:00:00Z").await?;
    let edited = drift_warp(&warp()?, args.customers, args.drift).await?;
    // HubSpot's ten-secondly window starts over before the next night.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let steady = night(&reconciler, &stores, "steady", "2026-11-25T07:00:00Z").await?;
    let peak_kb = peak_rss_kb();

    let n = args.customers as u64;
    // warp-sandbox seeds one company per customer, and `others` more each.
    let m = n * (1 + args.others as u64);
    println!(
        "customers (N)        {n} in WARP, drift {} (sandboxes seeded in {:.1} s, in a child process)",
        args.drift,
        seeded.as_secs_f64()
    );
    println!(
        "companies (M)        {m} in HubSpot: one per customer, {} no customer's (prospects, partners)",
        n * args.others as u64
    );
    println!(
        "order                {}",
        if args.shuffled {
            "shuffled: WARP's pages name companies all over HubSpot's id order"
        } else {
            "aligned: WARP lists customers in their companies' id order"
        }
    );
    println!(
        "store latency        {} ms a DynamoDB call, {} ms an S3 put; {} pairs decided at once",
        args.latency.dynamo.as_millis(),
        args.latency.s3_put.as_millis(),
        reconciler.settings.concurrency
    );
    println!(
        "nights               first: every pair's baselines written; steady: {edited} WARP edits ({}) since",
        args.drift
    );
    let first_ok = report(n, args, &first);
    let steady_ok = report(n, args, &steady);
    let peak_mib = peak_kb.map(|kb| kb as f64 / 1024.0);
    let (own_peak, stores_now) = heap::figures();
    let own_mib = own_peak as f64 / 1_048_576.0;
    let rss_ok = own_mib < RSS_GOAL_MIB;
    let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "own peak heap        {own_mib:.1} MiB: the reconciler's, outside the stand-in stores (goal < {RSS_GOAL_MIB} MiB) {}",
        mark(rss_ok)
    );
    match (peak_kb, peak_mib) {
        (Some(kb), Some(mib)) => println!(
            "process peak RSS     {mib:.1} MiB over both nights (VmHWM {kb} kB), with the stand-in stores' {:.1} MiB (DynamoDB's and S3's state in AWS)",
            stores_now as f64 / 1_048_576.0
        ),
        _ => println!("process peak RSS     unknown (no VmHWM in /proc/self/status)"),
    }
    let all = first_ok && steady_ok && rss_ok;
    println!(
        "reconcile-bench: {}",
        if all { "all goals met" } else { "GOALS MISSED" }
    );
    Ok(all)
}
