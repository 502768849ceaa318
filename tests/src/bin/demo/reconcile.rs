//! The reconciliation: HubSpot brought to what its webhooks said, an edit
//! on each side that no webhook announces, then the nightly reconciler's
//! run, its record, its report and the checks that each edit crossed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use hubwarp::mapping::ValueType;
use hubwarp::reconcile::checkpoint::{RunRecord, RunStatus};
use hubwarp::reconcile::ports::RunStore;
use hubwarp::reconcile::run::Outcome;
use hubwarp::reconcile::run_store::DynamoRunStore;
use integration_tests::local::Result;
use integration_tests::resources::Resources;
use serde_json::{Map, Value, json};

use crate::sandboxes::{Sandboxes, company_id, text};

/// The newest value per company and property among `deliveries` (by
/// `occurredAt`, then event id): what HubSpot itself holds after the edits
/// its webhooks announced.
fn newest_values(deliveries: &[&str]) -> Result<BTreeMap<String, Map<String, Value>>> {
    let mut newest: BTreeMap<(String, String), ((i64, i64), String)> = BTreeMap::new();
    for body in deliveries {
        let events: Vec<Value> = serde_json::from_str(body).map_err(|e| e.to_string())?;
        for e in events {
            let (Some(company), Some(property), Some(value)) = (
                e["objectId"].as_u64(),
                e["propertyName"].as_str(),
                e["propertyValue"].as_str(),
            ) else {
                continue;
            };
            let at = (
                e["occurredAt"].as_i64().unwrap_or(0),
                e["eventId"].as_i64().unwrap_or(0),
            );
            let slot = newest
                .entry((company.to_string(), property.to_string()))
                .or_insert((at, value.to_string()));
            if at > slot.0 {
                *slot = (at, value.to_string());
            }
        }
    }
    let mut companies: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for ((company, property), (_, value)) in newest {
        companies
            .entry(company)
            .or_default()
            .insert(property, Value::String(value));
    }
    Ok(companies)
}

/// The WARP customer edited in WARP, and the one whose company is edited in
/// HubSpot; neither edit sends a webhook.
const WARP_EDITED: &str = "ZT-487390004";
const HUBSPOT_EDITED: &str = "ZT-487390005";
const TIERS: [&str; 4] = ["BRONZE", "SILVER", "GOLD", "PLATINUM"];

async fn invoke_reconciler(http: &reqwest::Client, url: &str, payload: &Value) -> Result<Outcome> {
    let resp = http
        .post(url)
        .json(payload)
        .send()
        .await
        .map_err(|e| format!("invoking nightly-reconciler: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("nightly-reconciler answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("nightly-reconciler answered {body}: {e}"))
}

/// Reads the run record until the run is COMPLETED or STOPPED.
async fn wait_for_run(runs: &DynamoRunStore, run_id: &str) -> Result<RunRecord> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let record = runs
            .get(run_id)
            .await
            .map_err(|e| format!("reading run {run_id}: {e}"))?;
        match record {
            Some(r) if r.status != RunStatus::Running => return Ok(r),
            _ if Instant::now() > deadline => {
                return Err(format!(
                    "run {run_id} did not end within 300 s; see .local/watch.log"
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// HubSpot made to hold what its webhooks said, one edit on each side that
/// no webhook announces, then the nightly reconciler through cargo lambda
/// watch's invoke API, its run record, its checks and its report.
pub(super) async fn reconcile(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sandboxes: &Sandboxes,
    accepted: &[&str],
) -> Result<String> {
    println!("\nHubSpot sandbox <- the newest value of each property the webhooks announced");
    // A real HubSpot holds the values its webhooks announced; without them
    // the nightly run would rightly take HubSpot's older values for newer
    // edits there and put them back into WARP.
    let values = newest_values(accepted)?;
    sandboxes.update_companies(&values).await?;
    println!(
        "  batch update          {} companies, {} properties",
        values.len(),
        values.values().map(Map::len).sum::<usize>()
    );

    println!("\nedits no webhook announces");
    let warp_customer = sandboxes.customer(WARP_EDITED).await?;
    let warp_company = company_id(&warp_customer)?;
    let status = if warp_customer["status"] == "SUSPENDED" {
        "ACTIVE"
    } else {
        "SUSPENDED"
    };
    // From the clock, so a second demo on the same sandboxes edits again.
    let secs = hubwarp::time::now_ms() / 1000;
    let mut balance = format!("{}.{:02}", 100 + secs % 9_000, secs % 100);
    if warp_customer["current_balance"] == balance.as_str() {
        balance = format!("{}.{:02}", 9_200 + secs % 100, secs % 100);
    }
    let id = warp_customer["id"].as_str().unwrap_or_default();
    sandboxes
        .edit_customer(id, json!({ "status": status, "current_balance": balance }))
        .await?;
    println!(
        "  WARP    {WARP_EDITED} status {} -> \"{status}\", current_balance {} -> \"{balance}\" (WARP-owned)",
        text(warp_customer.get("status")),
        text(warp_customer.get("current_balance")),
    );
    let hubspot_customer = sandboxes.customer(HUBSPOT_EDITED).await?;
    let hubspot_company = company_id(&hubspot_customer)?;
    let tier_before = sandboxes.company(&hubspot_company, &["warp_tier"]).await?;
    let current = tier_before.get("warp_tier").and_then(Value::as_str);
    let at = TIERS.iter().position(|t| Some(*t) == current).unwrap_or(0);
    let tier = TIERS[(at + 1) % TIERS.len()];
    let mut edit = Map::new();
    edit.insert("warp_tier".into(), json!(tier));
    sandboxes
        .update_companies(&BTreeMap::from([(hubspot_company.clone(), edit)]))
        .await?;
    println!(
        "  HubSpot company {hubspot_company} ({HUBSPOT_EDITED}) warp_tier {} -> \"{tier}\" (HubSpot-owned)",
        text(tier_before.get("warp_tier")),
    );

    let invoke =
        format!("http://127.0.0.1:{port}/2015-03-31/functions/nightly-reconciler/invocations");
    // A run is one local night, and a second delivery of the same night is
    // the same run. Tonight, or on a local AWS that already ran tonight
    // (reused by a second demo), the latest night without a run.
    let runs = DynamoRunStore::new(aws_sdk_dynamodb::Client::new(aws), res.names.runs_table());
    let zone: chrono_tz::Tz = std::env::var("RECONCILE_TIMEZONE")
        .ok()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::America::New_York);
    let mut at = chrono::Utc::now();
    for _ in 0..366 {
        let request = hubwarp::reconcile::ReconcileRequest {
            scheduled_time: Some(at.to_rfc3339()),
            ..Default::default()
        };
        let id = request
            .run_id(hubwarp::time::now_ms(), zone)
            .map_err(|e| e.to_string())?;
        if runs.get(&id).await.map_err(|e| e.to_string())?.is_none() {
            break;
        }
        at -= chrono::Duration::days(1);
    }
    let scheduled = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let payload = json!({ "scheduled_time": scheduled });
    println!("\nnightly-reconciler <- {payload} (cargo lambda watch's invoke API)");
    // cargo lambda watch answers an invoke only when the function has, even
    // an asynchronous (Event) one, and runs one instance per function: a run
    // handing over to a fresh invocation of itself would wait on itself. So
    // the demo's run takes one invocation; tests/it/reconciler.rs carries a
    // run over several through Event invokes.
    println!(
        "  one invocation: cargo lambda watch cannot serve a self-invoke (see tests/it/reconciler.rs for handovers)"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let first = invoke_reconciler(&http, &invoke, &payload).await?;
    let answer_ms = t.elapsed().as_millis();
    println!(
        "  answer                {} in {answer_ms} ms: {}",
        first.status, first.message
    );
    let run = wait_for_run(&runs, &first.run_id).await?;
    let c = run.counters;
    println!(
        "  run record            {} {} after {} invocation(s), {} ms",
        run.run_id,
        run.status.as_str(),
        run.invocations,
        run.finished_ms.unwrap_or(run.updated_ms) - run.started_ms
    );
    if let Some(reason) = &run.stop_reason {
        println!("  stopped because       {reason}");
    }
    println!("  pairs compared        {}", c.pairs_compared);
    println!("  in sync               {}", c.pairs_in_sync);
    println!(
        "  fixed in WARP         {} field(s) in {} PUT(s)",
        c.fixed_in_warp, c.warp_writes
    );
    println!(
        "  fixed in HubSpot      {} field(s) on {} compan{}",
        c.fixed_in_hubspot,
        c.hubspot_updates,
        if c.hubspot_updates == 1 { "y" } else { "ies" }
    );
    println!("  conflicts for review  {}", c.conflicts_for_review);
    println!(
        "  unmatched             {} WARP, {} HubSpot",
        c.unmatched_warp, c.unmatched_hubspot
    );
    println!("  swept                 {}", c.swept);
    println!("  errors                {}", c.errors);
    println!(
        "  HubSpot calls         {} (search {}, list {}, batch read {}, batch update {})",
        c.hubspot_calls.total(),
        c.hubspot_calls.search,
        c.hubspot_calls.list,
        c.hubspot_calls.batch_read,
        c.hubspot_calls.batch_update
    );
    println!(
        "  WARP calls            {} (list {}, get {}, by BAN {}, PUT {})",
        c.warp_calls.total(),
        c.warp_calls.list,
        c.warp_calls.get,
        c.warp_calls.by_ban,
        c.warp_calls.put
    );
    println!("  invocations           {}", run.invocations);

    let again = invoke_reconciler(&http, &invoke, &payload).await?;
    println!(
        "  same payload again    {}: {}",
        again.status, again.message
    );

    // Each side's edit reached the other.
    let company = sandboxes
        .company(&warp_company, &["warp_status", "warp_current_balance"])
        .await?;
    let balance_in_hubspot = ValueType::Decimal
        .warp_to_hubspot(&json!(balance))
        .map_err(|e| e.to_string())?;
    println!(
        "  HubSpot {warp_company} warp_status {}, warp_current_balance {}",
        text(company.get("warp_status")),
        text(company.get("warp_current_balance"))
    );
    let customer = sandboxes.customer(HUBSPOT_EDITED).await?;
    println!(
        "  WARP    {HUBSPOT_EDITED} tier {}",
        text(customer.get("tier"))
    );

    let report_key = run
        .report_html_key
        .clone()
        .ok_or_else(|| format!("run {} names no HTML report", run.run_id))?;
    let html = hubwarp::store::reports::s3_client(aws)
        .get_object()
        .bucket(res.names.reports_bucket())
        .key(&report_key)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let dir = integration_tests::workspace_root().join(".local/reports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.html", run.run_id));
    std::fs::write(&path, &html).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "  report                s3://{}/{report_key} -> .local/reports/{}.html ({} bytes)",
        res.names.reports_bucket(),
        run.run_id,
        html.len()
    );

    let mut failures = Vec::new();
    if run.status != RunStatus::Completed {
        failures.push(format!("the run ended {}", run.status.as_str()));
    }
    if again.status != "already ran" || again.run_id != run.run_id {
        failures.push(format!(
            "a second delivery answered {} for {}",
            again.status, again.run_id
        ));
    }
    if company.get("warp_status").and_then(Value::as_str) != Some(status)
        || company.get("warp_current_balance").and_then(Value::as_str)
            != Some(balance_in_hubspot.as_str())
    {
        failures.push(format!(
            "the WARP edit of {WARP_EDITED} did not reach HubSpot"
        ));
    }
    if customer.get("tier").and_then(Value::as_str) != Some(tier) {
        failures.push(format!(
            "the HubSpot edit of {HUBSPOT_EDITED} did not reach WARP"
        ));
    }
    if !failures.is_empty() {
        return Err(format!("reconciliation: {}", failures.join("; ")));
    }
    println!(
        "\nthe WARP edit reached HubSpot and the HubSpot edit reached WARP; report: {}",
        path.display()
    );
    Ok(run.run_id)
}
