//! The night's e-mail as SES took it, and a person resolving the MANUAL
//! conflict from it: the e-mail saved as `.local/reports/<run>.eml` and its
//! HTML part as `<run>.email.html`; a plain GET of the link (a mail
//! scanner) that changes nothing; then, in headless Chromium
//! (tests/tools/review_walk.py), "take HubSpot's value", the page, the
//! button, the link again, a tampered and an expired link. Each step is
//! checked against WARP and the conflicts table.

use aws_config::SdkConfig;
use hubwarp::review::{Claims, ReviewKey, Take, sign, verify};
use hubwarp::store::DynamoSyncStore;
use hubwarp::store::sync::{Closed, ClosedConflicts, ConflictQueue};
use integration_tests::local::Result;
use integration_tests::moto::ses_sent;
use integration_tests::resources::Resources;
use mail_parser::MessageParser;
use serde_json::Value;

use crate::sandboxes::Sandboxes;

/// Who gets the demo's e-mail (`make demo` sets REPORT_EMAIL_TO to it).
const RECIPIENT: &str = "finance@hubwarp.example";

/// A JSON string's text, without quotes.
fn plain(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} unset: run through `make demo`"))
}

pub(super) async fn review(
    aws: &SdkConfig,
    res: &Resources,
    sandboxes: &Sandboxes,
    run_id: &str,
    disputed: &str,
) -> Result<()> {
    let endpoint = env("AWS_ENDPOINT_URL")?;
    let key = ReviewKey::new(env("REVIEW_LINK_KEY")?.into_bytes()).map_err(|e| e.to_string())?;
    let sent = ses_sent(&endpoint).await?;
    let mail = sent
        .iter()
        .rev()
        .filter(|m| m.destinations.iter().any(|d| d == RECIPIENT))
        .find_map(|m| {
            let parsed = MessageParser::default().parse(m.raw.as_bytes())?;
            parsed
                .subject()
                .is_some_and(|s| s.contains(run_id))
                .then(|| (m.raw.clone(), parsed.body_html(0).map(|h| h.to_string())))
        })
        .ok_or_else(|| format!("SES took no e-mail of run {run_id} for {RECIPIENT}"))?;
    let (raw, html) = (mail.0, mail.1.ok_or("the e-mail has no HTML part")?);
    let dir = integration_tests::workspace_root().join(".local/reports");
    let eml = dir.join(format!("{run_id}.eml"));
    let page = dir.join(format!("{run_id}.email.html"));
    std::fs::write(&eml, &raw).map_err(|e| format!("{}: {e}", eml.display()))?;
    std::fs::write(&page, &html).map_err(|e| format!("{}: {e}", page.display()))?;
    println!("\nthe night's e-mail to {RECIPIENT}, as SES took it");
    println!(
        "  saved                 .local/reports/{run_id}.eml ({} bytes)",
        raw.len()
    );
    println!("  its HTML part         .local/reports/{run_id}.email.html");

    // The link to "take HubSpot's value" of the disputed customer's conflict.
    let store = DynamoSyncStore::new(
        hubwarp::aws::dynamodb(aws),
        res.names.sync_tables(),
        std::time::Duration::from_secs(3600),
    );
    let disputed_id = plain(sandboxes.customer(disputed).await?.get("id"));
    let conflict = store
        .open_conflicts()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|c| c.customer_id == disputed_id)
        .ok_or("the disputed customer has no open conflict")?;
    let now = chrono::Utc::now().timestamp();
    let link = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| {
            href.rsplit('/').next().is_some_and(|t| {
                verify(&key, t, now)
                    .is_ok_and(|c| c.conflict_id() == conflict.id() && c.take() == Take::Hubspot)
            })
        })
        .ok_or("the e-mail has no \"take HubSpot's value\" link for the conflict")?
        .replace("&amp;", "&");
    let warp_email = || async {
        Ok::<_, String>(plain(
            sandboxes
                .customer(disputed)
                .await?
                .pointer("/contact/email"),
        ))
    };
    let before = warp_email().await?;

    // A mail scanner follows the link: the page, nothing written.
    let scanned = reqwest::get(&link).await.map_err(|e| e.to_string())?;
    let scanned_status = scanned.status().as_u16();
    let still_open = store
        .open_conflicts()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .any(|c| c.id() == conflict.id());
    println!(
        "  a GET of the link     {scanned_status}; conflict {} still open: {still_open}; WARP e-mail {before}",
        conflict.id()
    );
    if scanned_status != 200 || !still_open || warp_email().await? != before {
        return Err("a GET of the review link changed something".into());
    }

    let base = &link[..link.len() - link.rsplit('/').next().map_or(0, str::len)];
    let token = &link[base.len()..];
    let mut tampered = token.as_bytes().to_vec();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{base}{}", String::from_utf8_lossy(&tampered));
    let expired = Claims::new(conflict.id(), Take::Hubspot, RECIPIENT, now - 60)
        .map(|c| format!("{base}{}", sign(&key, &c)))
        .map_err(|e| e.to_string())?;

    println!(
        "\na person follows \"take HubSpot's value\" in headless Chromium (tests/tools/review_walk.py)"
    );
    let walk = std::process::Command::new("python3")
        .arg(integration_tests::workspace_root().join("tests/tools/review_walk.py"))
        .args(["--email", &page.to_string_lossy()])
        .args(["--shots", &dir.to_string_lossy()])
        .args(["--name", run_id])
        .args(["--visit", &format!("tampered={tampered}")])
        .args(["--visit", &format!("expired={expired}")])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("python3 tests/tools/review_walk.py: {e}"))?;
    if !walk.status.success() {
        return Err(format!("the browser walk failed ({})", walk.status));
    }
    let walked: Value = serde_json::from_slice(&walk.stdout).map_err(|e| e.to_string())?;
    let pages = walked["pages"].as_array().cloned().unwrap_or_default();
    let step = |name: &str| {
        pages
            .iter()
            .find(|p| p["step"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut failures = Vec::new();
    let mut expect = |name: &str, status: u64, says: &str| {
        let p = step(name);
        let got = p["status"].as_u64().unwrap_or(0);
        let body = p["text"].as_str().unwrap_or_default();
        println!(
            "  {name:<9} {got}  {:<52} {}",
            p["title"].as_str().unwrap_or_default(),
            p["shot"].as_str().unwrap_or_default()
        );
        if got != status || !body.contains(says) {
            failures.push(format!("{name}: {got}, expected {status} saying {says:?}"));
        }
    };
    expect("review", 200, RECIPIENT);
    expect("resolved", 200, "Resolved");
    expect("again", 409, &format!("Resolved by {RECIPIENT}"));
    expect("tampered", 400, "Nothing was changed");
    expect("expired", 410, "Nothing was changed");

    let after = warp_email().await?;
    let closed = store
        .closed_conflict(&conflict.id())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "  WARP e-mail           {before} -> {after} (HubSpot's: {})",
        conflict.hubspot_value
    );
    match &closed {
        Some(Closed::Resolved(r)) => println!(
            "  conflict {}       resolved by {} at {} ({})",
            conflict.id(),
            r.by,
            hubwarp::time::iso(r.at_ms),
            r.note.as_deref().unwrap_or_default()
        ),
        other => failures.push(format!("conflict {} is {other:?}", conflict.id())),
    }
    if after != conflict.hubspot_value {
        failures.push(format!(
            "WARP holds {after}, not HubSpot's {}",
            conflict.hubspot_value
        ));
    }
    if !matches!(&closed, Some(Closed::Resolved(r)) if r.by == RECIPIENT) {
        failures.push("the conflict is not closed in the recipient's name".into());
    }
    if !failures.is_empty() {
        return Err(format!("review link: {}", failures.join("; ")));
    }
    println!("  `hubwarp explain {disputed} --field contact.email` shows the decision (below)");
    Ok(())
}
