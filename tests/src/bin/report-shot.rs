//! `make report-shot`: a reconciliation report in a real browser. Opens the
//! HTML report in headless Chromium (Debian's package) at 1280x800, saves a
//! screenshot beside it, and checks from the rendered page that every
//! summary card lies inside that first screen in legible type. Fails when
//! it does not.
//!
//! The report is the one given (`report-shot PATH`), else the newest under
//! `.local/reports/` (`make demo` writes one), else a sample assembled with
//! the reconciler's own report code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

type Result<T> = std::result::Result<T, String>;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// Smallest type the summary may use, in CSS pixels.
const MIN_FONT_PX: f64 = 12.0;

/// Measures the summary once the page has laid out, into a `<pre>` that
/// `--dump-dom` prints. Added to a copy only: the report itself has no script.
const MEASURE: &str = r#"<script>
addEventListener('load', () => {
  const s = document.querySelector('section.summary');
  const cards = s ? [...s.querySelectorAll('.card')] : [];
  const inside = (e) => { const b = e.getBoundingClientRect();
    return b.top >= 0 && b.left >= 0 && b.bottom <= innerHeight && b.right <= innerWidth; };
  const sizes = cards.flatMap(c => [...c.children]).map(e => parseFloat(getComputedStyle(e).fontSize));
  const out = document.createElement('pre');
  out.id = 'report-shot';
  out.textContent = JSON.stringify({
    width: innerWidth, height: innerHeight, cards: cards.length,
    outside: cards.filter(c => !inside(c)).map(c => c.innerText.replace(/\s+/g, ' ')),
    bottom: s ? s.getBoundingClientRect().bottom : null,
    min_font: sizes.length ? Math.min(...sizes) : null,
  });
  document.body.appendChild(out);
});
</script>"#;

fn chromium() -> Result<PathBuf> {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return Ok(PathBuf::from(candidate));
        }
    }
    Err("chromium not found: `make report-shot` installs Debian's package".into())
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout.
fn run_chromium(browser: &Path, profile: &Path, extra: &[String], url: &str) -> Result<String> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            &format!("--window-size={WIDTH},{HEIGHT}"),
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", browser.display()))?;
    // Read while it runs: a DOM larger than the pipe's buffer (a first
    // night's report lists every write) would otherwise block Chromium on
    // its own output until the timeout.
    let reader = child.stdout.take().map(|mut stdout| {
        std::thread::spawn(move || {
            let mut out = String::new();
            use std::io::Read;
            stdout.read_to_string(&mut out).map(|_| out)
        })
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("chromium did not finish within 60 s".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
    match reader {
        Some(reader) => reader
            .join()
            .map_err(|_| "reading chromium's output panicked".to_string())?
            .map_err(|e| e.to_string()),
        None => Ok(String::new()),
    }
}

/// A report a real run produced: the reconciler's own run, in process,
/// over the two sandboxes and the in-memory stores, on 40 demo customers
/// with an edit of each kind no webhook announced (WARP-owned status and
/// balance edited in WARP, HubSpot-owned tier and the HUBSPOT_WINS credit
/// limit edited in HubSpot, the billing e-mail edited on both sides under
/// the demo's MANUAL rule), so every part of the report has something and
/// every figure in it is one the run counted.
fn sample(dir: &Path) -> Result<PathBuf> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let html = runtime.block_on(a_real_night())?;
    let path = dir.join("sample-report.html");
    std::fs::write(&path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

async fn a_real_night() -> Result<Vec<u8>> {
    use hubwarp::mapping::MappingSet;
    use hubwarp::reconcile::ReconcileRequest;
    use hubwarp::reconcile::ports::ReportStore;
    use hubwarp::reconcile::run::{Reconciler, RunSettings};
    use integration_tests::hubspot_sandbox::HubspotSandbox;
    use integration_tests::warp_sandbox::{WarpSandbox, demo_customer};
    use serde_json::json;

    let demo = integration_tests::workspace_root().join("lib/mappings/demo.toml");
    let text = std::fs::read_to_string(&demo).map_err(|e| format!("{}: {e}", demo.display()))?;
    let mappings = MappingSet::parse(&text).map_err(|e| format!("{}: {e}", demo.display()))?;
    let warp = WarpSandbox::in_process();
    let hubspot = HubspotSandbox::in_process();
    let book: Vec<Value> = (1..=40).map(demo_customer).collect();
    integration_tests::hubspot_setup::install_bridge_properties(&hubspot, &book);
    let mut companies = Vec::new();
    for customer in &book {
        let customer = warp.insert(customer.clone());
        let id = integration_tests::seed::company_id_of(&customer)
            .ok_or("a demo customer names its company")?;
        hubspot.upsert_company(
            &id,
            integration_tests::seed::company_properties(&customer, &mappings),
        );
        companies.push((customer, id));
    }
    let hub = |n: usize, property: &str, value: &str| {
        let mut p = serde_json::Map::new();
        p.insert(property.into(), json!(value));
        hubspot.upsert_company(&companies[n].1, p);
    };
    let edit = |n: usize, patch: Value| {
        let id = companies[n].0["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        warp.edit(&id, patch);
    };
    edit(
        3,
        json!({"status": "SUSPENDED", "current_balance": "1885.85"}),
    );
    hub(4, "warp_tier", "PLATINUM");
    hub(5, "warp_credit_limit", "7500.00");
    edit(6, json!({"contact": {"email": "finance@disputed.example"}}));
    hub(6, "warp_contact_email", "sales@disputed.example");
    let reconciler = Reconciler {
        warp,
        hubspot,
        store: hubwarp::store::MemorySyncStore::new(),
        events: hubwarp::store::MemoryEventLog::new(),
        queue: hubwarp::queue::memory::MemoryQueue::new(),
        runs: hubwarp::reconcile::run_store::MemoryRunStore::default(),
        reports: hubwarp::store::MemoryReportStore::default(),
        mappings,
        settings: RunSettings::default(),
    };
    let outcome = hubwarp::operate::reconcile::run_here(&reconciler, &ReconcileRequest::default())
        .await
        .map_err(|e| format!("the sample run: {e}"))?;
    let key = outcome
        .report_html_key
        .ok_or("the sample run wrote no HTML report")?;
    reconciler
        .reports
        .get(&key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{key} missing from the sample run's reports"))
}

fn newest_report(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        // Not this tool's measuring copies, nor the demo's e-mails
        // (`<run>.email.html`, looked at by tests/tools/review_walk.py).
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with(".measure.html") && !name.ends_with(".email.html")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

fn main() -> Result<()> {
    let dir = integration_tests::workspace_root().join(".local/reports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let report = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => match newest_report(&dir) {
            Some(p) => p,
            None => sample(&dir)?,
        },
    };
    let report = report
        .canonicalize()
        .map_err(|e| format!("{}: {e}", report.display()))?;
    let html =
        std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let browser = chromium()?;
    let profile = std::env::temp_dir().join(format!("report-shot-{}", std::process::id()));

    let measured = report.with_extension("measure.html");
    let with_script = match html.rfind("</body>") {
        Some(at) => format!("{}{MEASURE}{}", &html[..at], &html[at..]),
        None => format!("{html}{MEASURE}"),
    };
    std::fs::write(&measured, with_script).map_err(|e| e.to_string())?;
    let dom = run_chromium(
        &browser,
        &profile,
        &["--virtual-time-budget=3000".into(), "--dump-dom".into()],
        &format!("file://{}", measured.display()),
    );
    let _ = std::fs::remove_file(&measured);
    let dom = dom?;
    let shot = report.with_extension("png");
    let screenshot = run_chromium(
        &browser,
        &profile,
        &[format!("--screenshot={}", shot.display())],
        &format!("file://{}", report.display()),
    );
    let _ = std::fs::remove_dir_all(&profile);
    screenshot?;

    let start = dom
        .find("<pre id=\"report-shot\">")
        .ok_or("the page did not report its layout (script did not run)")?;
    let json = &dom[start + "<pre id=\"report-shot\">".len()..];
    let json = &json[..json.find("</pre>").ok_or("unterminated measurement")?];
    let json = json.replace("&quot;", "\"").replace("&amp;", "&");
    let m: Value = serde_json::from_str(&json).map_err(|e| format!("{e}: {json}"))?;
    let cards = m["cards"].as_u64().unwrap_or(0);
    let outside = m["outside"].as_array().cloned().unwrap_or_default();
    let min_font = m["min_font"].as_f64().unwrap_or(0.0);
    println!("report      {}", report.display());
    println!(
        "viewport    {}x{} CSS px (headless Chromium, {})",
        m["width"],
        m["height"],
        browser.display()
    );
    println!(
        "summary     {cards} cards, bottom at {} px, smallest text {min_font} px",
        m["bottom"]
    );
    println!(
        "screenshot  {} ({} bytes)",
        shot.display(),
        std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0)
    );
    if cards < 12 || !outside.is_empty() || min_font < MIN_FONT_PX {
        return Err(format!(
            "the summary does not fit the first screen in legible type: {} card(s) outside, smallest text {min_font} px",
            outside.len()
        ));
    }
    println!("report-shot: the summary is readable without scrolling");
    Ok(())
}
