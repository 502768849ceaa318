//! `setup`, `doctor` and `link`: a new portal made ready, the whole
//! installation checked, and the records that exist on both sides joined.
//! Each gathers its settings and clients here and asks `operate`.

use std::fmt::Write as _;

use hubwarp::operate::doctor::{self, Check};
use hubwarp::operate::link::{LinkReport, Pairing};
use hubwarp::operate::setup::{self, SetupReport};
use hubwarp::operate::{conflicts, runs};
use hubwarp::store::SyncTables;
use serde_json::json;

use crate::Failure;
use crate::context::Context;

fn as_json(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// An answer, or the same answer as a failure (exit 1) when it says
/// something is wrong.
fn verdict(text: String, ok: bool) -> Result<String, Failure> {
    if ok {
        Ok(text)
    } else {
        Err(Failure::Findings(text))
    }
}

pub async fn setup(
    ctx: &Context,
    dry_run: bool,
    mapping_file: Option<&std::path::Path>,
    json: bool,
) -> Result<String, Failure> {
    let mapping = match mapping_file {
        Some(path) => ctx.mappings_from(path)?,
        None => ctx.mappings()?,
    };
    ctx.warp_settings()?;
    ctx.hubspot_settings()?;
    let (warp, hubspot) = (ctx.warp().await?, ctx.hubspot().await?);
    let report = setup::setup(&hubspot, &warp, &mapping, dry_run).await?;
    let ok = report.ok();
    let text = if json {
        as_json(&json!(report))
    } else {
        render_setup(&report)
    };
    verdict(text, ok)
}

fn render_setup(r: &SetupReport) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would create" } else { "created" };
    if let Some(group) = &r.group_created {
        let _ = writeln!(out, "{verb} property group {group} (\"WARP\")");
    }
    for p in &r.created {
        let options: Vec<&str> = p.options.iter().map(|o| o.value.as_str()).collect();
        let _ = write!(out, "{verb} {} ({}/{})", p.name, p.value_type, p.field_type);
        if !options.is_empty() {
            let _ = write!(out, " options {}", options.join(", "));
        }
        out.push('\n');
    }
    for p in &r.present {
        let _ = writeln!(out, "present {p}");
    }
    for p in &r.problems {
        let _ = writeln!(out, "PROBLEM {p}");
    }
    let changes = r.changes();
    let _ = writeln!(
        out,
        "{} change(s){}, {} present, {} problem(s) (options from {} WARP customers)",
        changes,
        match (changes, r.dry_run) {
            (0, _) => ": nothing to do".to_string(),
            (_, true) => " (dry run: nothing written)".to_string(),
            _ => String::new(),
        },
        r.present.len(),
        r.problems.len(),
        r.warp_customers_read
    );
    out
}

pub async fn link(ctx: &Context, apply: bool, json: bool) -> Result<String, Failure> {
    ctx.warp_settings()?;
    ctx.hubspot_settings()?;
    let store = ctx.sync_store().await?;
    let (warp, hubspot) = (ctx.warp().await?, ctx.hubspot().await?);
    let report = hubwarp::operate::link::link(&warp, &hubspot, &store, apply).await?;
    let ok = report.failed.is_empty();
    let text = if json {
        as_json(&json!(report))
    } else {
        render_link(&report)
    };
    verdict(text, ok)
}

fn render_link(r: &LinkReport) -> String {
    let mut out = String::new();
    for p in &r.pairings {
        let _ = match p {
            Pairing::Link {
                customer_id,
                ban,
                company_id,
                evidence,
                set_external_id,
                set_warp_ban,
                record_link,
            } => {
                let sides: Vec<&str> = [
                    (*set_external_id, "WARP external_ids"),
                    (*set_warp_ban, "HubSpot warp_ban"),
                    (*record_link, "links table"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, s)| *s)
                .collect();
                writeln!(
                    out,
                    "{} {customer_id} ({ban}) <-> company {company_id}: {evidence}; writes {}",
                    if r.applied { "LINKED" } else { "WOULD LINK" },
                    sides.join(", ")
                )
            }
            Pairing::Linked { .. } => Ok(()),
            Pairing::Suggestion {
                customer_id,
                ban,
                company_id,
                evidence,
            } => writeln!(
                out,
                "SUGGESTION {customer_id} ({ban}) <-> company {company_id}: {evidence} (not linked: \
                 set warp_ban {ban} on the company in HubSpot if it is the one)"
            ),
            Pairing::Conflict {
                customer_id,
                ban,
                company_ids,
                reason,
            } => writeln!(
                out,
                "CONFLICT {customer_id} ({ban}) <-> companies {}: {reason} (left alone)",
                company_ids.join(", ")
            ),
        };
    }
    for f in &r.failed {
        let _ = writeln!(out, "FAILED {f}");
    }
    let _ = writeln!(
        out,
        "{} customers, {} companies: {} already linked, {} {}, {} suggestion(s), {} conflict(s){}",
        r.customers,
        r.companies,
        r.count("linked"),
        r.count("link"),
        if r.applied {
            "linked now"
        } else {
            "to link (dry run: nothing written; --apply links them)"
        },
        r.count("suggestion"),
        r.count("conflict"),
        if r.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", r.failed.len())
        }
    );
    out
}

pub async fn doctor(ctx: &Context, json: bool) -> Result<String, Failure> {
    let now = hubwarp::time::now_ms();
    let mut checks: Vec<Check> = Vec::new();
    let env = &ctx.env;

    // Settings: each read as the functions read it, every one named.
    let (c, mapping) = doctor::setting("MAPPING_FILE", ctx.mappings(), |m| {
        format!("{} mapped properties", m.properties().len())
    });
    checks.push(c);
    let (c, tables) = doctor::setting("sync tables", SyncTables::from_env(env), |t| {
        format!(
            "{}, {}, {}, {}",
            t.links, t.field_state, t.sync_log, t.conflicts
        )
    });
    checks.push(c);
    let (c, events) = doctor::setting("WEBHOOK_EVENTS_TABLE", ctx.events_table(), Clone::clone);
    checks.push(c);
    let (c, runs_table) = doctor::setting(
        "RUNS_TABLE",
        env.required("RUNS_TABLE").map(str::to_string),
        Clone::clone,
    );
    checks.push(c);
    let (c, queue) = doctor::setting("SYNC_QUEUE_URL", ctx.queue_url(), Clone::clone);
    checks.push(c);
    let (c, bucket) = doctor::setting("REPORTS_BUCKET", ctx.reports_bucket(), Clone::clone);
    checks.push(c);
    checks.push(doctor::setting("RECONCILE_TIMEZONE", ctx.timezone(), |z| z.to_string()).0);
    let (c, warp_settings) =
        doctor::setting("WARP_API_URL", ctx.warp_settings(), |(url, _)| url.clone());
    checks.push(c);
    let (c, hubspot_settings) =
        doctor::setting("HUBSPOT_API_URL", ctx.hubspot_settings(), |(url, _)| {
            url.clone()
        });
    checks.push(c);

    // The AWS resources the settings name.
    let ddb = hubwarp::aws::dynamodb(ctx.aws().await);
    let mut named: Vec<(&str, String)> = Vec::new();
    if let Some(t) = &events {
        named.push(("WEBHOOK_EVENTS_TABLE", t.clone()));
    }
    if let Some(t) = &tables {
        named.extend([
            ("LINKS_TABLE", t.links.clone()),
            ("FIELD_STATE_TABLE", t.field_state.clone()),
            ("SYNC_LOG_TABLE", t.sync_log.clone()),
            ("CONFLICTS_TABLE", t.conflicts.clone()),
        ]);
    }
    if let Some(t) = &runs_table {
        named.push(("RUNS_TABLE", t.clone()));
    }
    let mut tables_ok = true;
    for (setting, table) in &named {
        let c = doctor::table(&ddb, setting, table).await;
        tables_ok &= c.ok;
        checks.push(c);
    }
    if let Some(bucket) = &bucket {
        let s3 = hubwarp::store::reports::s3_client(ctx.aws().await);
        checks.push(doctor::bucket(&s3, bucket).await);
    }
    if let Some(url) = &queue {
        checks.extend(doctor::queues(&ctx.sqs().await, url).await);
    }

    // The two APIs, through the secrets the functions resolve.
    let warp = client(
        &mut checks,
        warp_settings.map(|(_, secret)| secret),
        ctx.warp(),
        "the secret must exist and hold WARP's token; the role needs secretsmanager:GetSecretValue on it",
    )
    .await;
    let hubspot = client(
        &mut checks,
        hubspot_settings.map(|(_, secret)| secret),
        ctx.hubspot(),
        "the secret must exist and hold the HubSpot app's access token",
    )
    .await;
    let mut warp_ok = false;
    if let Some(w) = &warp {
        let c = doctor::warp(w).await;
        warp_ok = c.ok;
        checks.push(c);
    }
    if let Some(h) = &hubspot {
        checks.push(doctor::hubspot_scopes(h).await);
        if let (Some(w), Some(m), true) = (&warp, &mapping, warp_ok) {
            match setup::held_values(w, m).await {
                Ok((held, _)) => checks.extend(doctor::hubspot_properties(h, m, &held).await),
                Err(e) => checks.push(Check::fail(
                    "HubSpot properties",
                    format!("could not read WARP's values for the options: {e}"),
                    "see the WARP API line",
                )),
            }
        }
    }

    // What the functions have done: last night, and what waits for people.
    if tables_ok && let (Some(_), Some(_)) = (&runs_table, &tables) {
        // Both settings were read above, so the stores build.
        if let Ok(store) = ctx.runs().await {
            match runs::list(&store, 100).await {
                Ok(list) => checks.push(doctor::last_night(&list, now)),
                Err(e) => checks.push(Check::fail(
                    "last night's run",
                    e.to_string(),
                    "see the RUNS_TABLE line",
                )),
            }
        }
        if let Ok(store) = ctx.sync_store().await {
            match conflicts::list(&store).await {
                Ok(open) => {
                    let raised: Vec<i64> = open
                        .iter()
                        .map(|c| {
                            chrono::DateTime::parse_from_rfc3339(&c.raised_at)
                                .map_or(now, |t| t.timestamp_millis())
                        })
                        .collect();
                    checks.push(doctor::open_conflicts(&raised, now));
                }
                Err(e) => checks.push(Check::fail(
                    "open conflicts",
                    e.to_string(),
                    "see the CONFLICTS_TABLE line",
                )),
            }
        }
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    let text = if json {
        as_json(&json!({ "ok": failed == 0, "checks": checks }))
    } else {
        let mut out: String = checks.iter().map(|c| c.line() + "\n").collect();
        let _ = writeln!(out, "{} checks, {} failed", checks.len(), failed);
        out
    };
    verdict(text, failed == 0)
}

/// An API client built through its secret: a ✓ or ✗ line for the secret,
/// and the client when it built. Nothing when the settings were missing
/// (their own line says so).
async fn client<C>(
    checks: &mut Vec<Check>,
    secret: Option<hubwarp::secrets::SecretSource>,
    build: impl std::future::Future<Output = Result<C, hubwarp::startup::StartupError>>,
    fix: &str,
) -> Option<C> {
    let name = format!("secret {}", secret?.setting());
    match build.await {
        Ok(c) => {
            checks.push(Check::pass(name, "resolved"));
            Some(c)
        }
        Err(e) => {
            checks.push(Check::fail(name, e.to_string(), fix));
            None
        }
    }
}
