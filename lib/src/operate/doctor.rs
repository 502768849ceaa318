//! `hubwarp doctor`: a checklist of what the bridge needs, one line each,
//! ✓ or ✗ with the fix. The first thing an alarm's runbook says to run:
//! every check runs even when an earlier one failed, so one run names every
//! problem. The binary gathers the settings and clients; each check here
//! asks one system one question.

use std::collections::BTreeSet;

use serde::Serialize;

use super::properties::{self, Finding};
use crate::error::error_chain;
use crate::hubspot::crm::{HubspotClient, HubspotError};
use crate::mapping::MappingSet;
use crate::reconcile::checkpoint::{RunRecord, RunStatus};
use crate::warp::{WarpClient, WarpError};

/// The scopes the bridge's HubSpot token needs: the functions read and
/// write companies; `setup` and `doctor` read and create property
/// definitions.
pub const SCOPES: [(&str, &str); 4] = [
    ("crm.objects.companies.read", "the functions read companies"),
    (
        "crm.objects.companies.write",
        "the nightly run and conflict resolutions write companies",
    ),
    (
        "crm.schemas.companies.read",
        "setup and doctor read the property definitions",
    ),
    (
        "crm.schemas.companies.write",
        "setup creates the mapped properties",
    ),
];

/// A night's run older than this means the schedule did not fire (or
/// failed before recording anything).
pub const LAST_RUN_MAX_AGE_MS: i64 = 26 * 3_600_000;
/// An open conflict waiting longer than this is a ✗: nobody is looking.
pub const CONFLICT_MAX_AGE_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `✓ check: detail` or `✗ check: detail (fix: ...)`.
    pub fn line(&self) -> String {
        match &self.fix {
            None => format!("✓ {}: {}", self.check, self.detail),
            Some(fix) => format!("✗ {}: {} (fix: {fix})", self.check, self.detail),
        }
    }
}

/// WARP reachable and its token accepted: the smallest list call.
pub async fn warp(warp: &WarpClient) -> Check {
    const NAME: &str = "WARP API";
    match warp.list_page(1, 1).await {
        Ok(page) => Check::pass(
            NAME,
            format!("reachable, token accepted ({} customers)", page.total),
        ),
        Err(WarpError::Rejected {
            status: 401 | 403, ..
        }) => Check::fail(
            NAME,
            "WARP refused the token",
            "put WARP's API token in the secret WARP_API_TOKEN_SECRET_ARN names (or WARP_API_TOKEN)",
        ),
        Err(e) if e.is_transient() => Check::fail(
            NAME,
            format!("unreachable: {e}"),
            "check WARP_API_URL and WARP's status; the consumer holds its messages meanwhile",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("answered unexpectedly: {e}"),
            "check WARP_API_URL points at WARP's API (…/v1 is added by the client)",
        ),
    }
}

/// HubSpot's token accepted, and holding every scope in [`SCOPES`].
pub async fn hubspot_scopes(hubspot: &HubspotClient) -> Check {
    const NAME: &str = "HubSpot token";
    match hubspot.token_info().await {
        Ok(info) => {
            let held: BTreeSet<&str> = info.scopes.iter().map(String::as_str).collect();
            let missing: Vec<String> = SCOPES
                .iter()
                .filter(|(s, _)| !held.contains(s))
                .map(|(s, why)| format!("{s} ({why})"))
                .collect();
            let portal = info
                .hub_id
                .map_or_else(String::new, |h| format!(" for portal {h}"));
            if missing.is_empty() {
                Check::pass(
                    NAME,
                    format!("accepted{portal}, with the 4 scopes the bridge needs"),
                )
            } else {
                Check::fail(
                    NAME,
                    format!("accepted{portal}, but lacks {}", missing.join(", ")),
                    "add the scopes to the app (docs/operating.md, \"Day one in HubSpot\") and \
                     put its new token in the secret",
                )
            }
        }
        Err(HubspotError::Unauthorized(_)) => Check::fail(
            NAME,
            "HubSpot refused the token (401)",
            "put the app's access token in the secret HUBSPOT_ACCESS_TOKEN_SECRET_ARN names",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("could not ask HubSpot: {e}"),
            "check HUBSPOT_API_URL and HubSpot's status",
        ),
    }
}

/// Every mapped property exists with a compatible type and the options
/// WARP holds; `held` as [`super::setup::held_values`] reads it.
pub async fn hubspot_properties(
    hubspot: &HubspotClient,
    mapping: &MappingSet,
    held: &std::collections::BTreeMap<String, BTreeSet<String>>,
) -> Vec<Check> {
    const NAME: &str = "HubSpot properties";
    let existing = match hubspot.company_properties().await {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                format!("could not read them: {e}"),
                "the token needs crm.schemas.companies.read",
            )];
        }
    };
    let findings = properties::survey(mapping, &existing, held);
    let total = findings.len();
    let mut checks: Vec<Check> = findings
        .iter()
        .filter(|f| !f.is_ready())
        .map(|f| {
            let fix = match f {
                Finding::Missing { .. } => "run `hubwarp setup`",
                Finding::NoKnownOptions { .. } => {
                    "create it in HubSpot with the values WARP accepts, or run `hubwarp setup` once WARP holds one"
                }
                _ => "a person changes it in HubSpot (setup never changes a property that exists)",
            };
            Check::fail(format!("{NAME}: {}", f.property()), f.describe(), fix)
        })
        .collect();
    if checks.is_empty() {
        checks.push(Check::pass(
            NAME,
            format!("all {total} mapped properties present with compatible types and options"),
        ));
    }
    checks
}

/// The newest full run (not a dry run, not a chosen few): finished, and
/// started within [`LAST_RUN_MAX_AGE_MS`].
pub fn last_night(runs: &[RunRecord], now_ms: i64) -> Check {
    const NAME: &str = "last night's run";
    let newest = runs
        .iter()
        .filter(|r| !r.dry_run && r.customers.is_none())
        .max_by_key(|r| r.started_ms);
    let Some(run) = newest else {
        return Check::fail(
            NAME,
            "no run recorded",
            "check the schedule (NightlyReconcilerSchedule) is enabled, or start one: `hubwarp reconcile`",
        );
    };
    let age_h = (now_ms - run.started_ms) as f64 / 3_600_000.0;
    let detail = format!(
        "{} {} ({:.1} h ago, {} pairs, {} errors)",
        run.run_id,
        run.status.as_str(),
        age_h,
        run.counters.pairs_compared,
        run.counters.errors
    );
    if now_ms - run.started_ms > LAST_RUN_MAX_AGE_MS {
        return Check::fail(
            NAME,
            format!("{detail}: none in 26 h"),
            "check the schedule and the reconciler's logs and on-failure queue",
        );
    }
    match run.status {
        RunStatus::Completed => Check::pass(NAME, detail),
        RunStatus::Running => Check::fail(
            NAME,
            format!("{detail}: still running"),
            "it continues itself; if it has not moved for an hour, read the reconciler's logs",
        ),
        RunStatus::Stopped => Check::fail(
            NAME,
            format!(
                "{detail}: stopped early ({})",
                run.stop_reason.as_deref().unwrap_or("no reason recorded")
            ),
            "read its report (`hubwarp runs show <id>`); tonight's run starts over",
        ),
    }
}

/// Open MANUAL conflicts: fine while a person has them in hand.
pub fn open_conflicts(raised_at_ms: &[i64], now_ms: i64) -> Check {
    const NAME: &str = "open conflicts";
    let Some(oldest) = raised_at_ms.iter().min() else {
        return Check::pass(NAME, "none");
    };
    let days = (now_ms - oldest) as f64 / 86_400_000.0;
    let detail = format!(
        "{} open, the oldest raised {:.1} days ago",
        raised_at_ms.len(),
        days
    );
    if now_ms - oldest > CONFLICT_MAX_AGE_MS {
        Check::fail(
            NAME,
            format!("{detail}: waiting over a week"),
            "`hubwarp conflicts list`, then `hubwarp conflicts resolve <id> --take warp|hubspot`",
        )
    } else {
        Check::pass(NAME, detail)
    }
}

/// The table a setting names exists and is ACTIVE.
pub async fn table(ddb: &aws_sdk_dynamodb::Client, setting: &str, name: &str) -> Check {
    let check = format!("table {setting}");
    match ddb.describe_table().table_name(name).send().await {
        Ok(out) => {
            let status = out
                .table
                .and_then(|t| t.table_status)
                .map_or_else(|| "unknown".to_string(), |s| s.as_str().to_string());
            if status == "ACTIVE" {
                Check::pass(check, format!("{name} exists (ACTIVE)"))
            } else {
                Check::fail(
                    check,
                    format!("{name} is {status}"),
                    "wait for it to become ACTIVE, or look at the stack's events",
                )
            }
        }
        Err(e) => Check::fail(
            check,
            format!(
                "{name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ),
            format!(
                "{setting} must name the stack's table (`sam deploy` creates it; the stack's outputs name it)"
            ),
        ),
    }
}

/// The reports bucket exists and this role may list it.
pub async fn bucket(s3: &aws_sdk_s3::Client, name: &str) -> Check {
    const NAME: &str = "bucket REPORTS_BUCKET";
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => Check::pass(NAME, format!("{name} exists")),
        Err(e) => Check::fail(
            NAME,
            format!("{name}: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
            "REPORTS_BUCKET must name the stack's ReportsBucket",
        ),
    }
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
        .attributes
        .unwrap_or_default();
    let n = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible))
}

/// The sync queue exists (its depth, for the record), and its dead-letter
/// queue is empty: what sits there waits for a person.
pub async fn queues(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Check> {
    let queue = match depth(sqs, url).await {
        Ok(n) => Check::pass("queue SYNC_QUEUE_URL", format!("exists, {n} messages")),
        Err(e) => {
            return vec![Check::fail(
                "queue SYNC_QUEUE_URL",
                format!("{url}: {e}"),
                "SYNC_QUEUE_URL must be the stack's SyncQueue URL",
            )];
        }
    };
    let dlq = match super::dlq::dlq_url(sqs, url).await {
        Err(e) => Check::fail(
            "dead-letter queue",
            e.to_string(),
            "the sync queue needs its redrive policy (the template sets it)",
        ),
        Ok(dlq) => match depth(sqs, &dlq).await {
            Ok(0) => Check::pass("dead-letter queue", "empty"),
            Ok(n) => Check::fail(
                "dead-letter queue",
                format!("{n} messages wait for a person"),
                "`hubwarp dlq list` says why each is there; `hubwarp dlq redrive` once fixed",
            ),
            Err(e) => Check::fail(
                "dead-letter queue",
                e,
                "the operator policy needs sqs:GetQueueAttributes on the DLQ",
            ),
        },
    };
    vec![queue, dlq]
}

/// A setting read: ✓ with what it is, or ✗ naming it.
pub fn setting<T>(
    name: &str,
    read: Result<T, crate::settings::SettingError>,
    shown: impl FnOnce(&T) -> String,
) -> (Check, Option<T>) {
    match read {
        Ok(v) => (Check::pass(format!("setting {name}"), shown(&v)), Some(v)),
        Err(e) => (
            Check::fail(
                format!("setting {name}"),
                error_chain(&e),
                "set it in the function's environment (docs/operating.md, \"Settings\")",
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::checkpoint::Cursor;
    use crate::reconcile::report::Counters;

    fn run(id: &str, started_ms: i64, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            status,
            dry_run: false,
            customers: None,
            scheduled_ms: Some(started_ms),
            started_ms,
            updated_ms: started_ms,
            finished_ms: Some(started_ms + 1000),
            invocations: 1,
            cursor: Cursor::default(),
            counters: Counters::default(),
            stop_reason: None,
            report_json_key: None,
            report_html_key: None,
            email: None,
        }
    }

    const NOW: i64 = 1_764_054_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn last_night_wants_a_finished_full_run_within_26_hours() {
        assert!(!last_night(&[], NOW).ok);
        assert!(last_night(&[run("a", NOW - 5 * HOUR, RunStatus::Completed)], NOW).ok);
        let stale = last_night(&[run("a", NOW - 27 * HOUR, RunStatus::Completed)], NOW);
        assert!(
            !stale.ok && stale.detail.contains("none in 26 h"),
            "{stale:?}"
        );
        let stopped = last_night(&[run("a", NOW - HOUR, RunStatus::Stopped)], NOW);
        assert!(!stopped.ok && stopped.line().starts_with("✗ last night's run: a STOPPED"));
        // A dry run or a run of a chosen few says nothing of the night.
        let mut dry = run("dry", NOW - HOUR, RunStatus::Completed);
        dry.dry_run = true;
        let mut few = run("few", NOW - HOUR, RunStatus::Completed);
        few.customers = Some(vec!["c1".into()]);
        let old = run("old", NOW - 30 * HOUR, RunStatus::Completed);
        assert!(!last_night(&[dry, few, old], NOW).ok);
    }

    #[test]
    fn conflicts_are_fine_until_one_waits_a_week() {
        assert_eq!(open_conflicts(&[], NOW).line(), "✓ open conflicts: none");
        assert!(open_conflicts(&[NOW - 24 * HOUR, NOW - HOUR], NOW).ok);
        let old = open_conflicts(&[NOW - 8 * 24 * HOUR, NOW - HOUR], NOW);
        assert!(!old.ok);
        assert!(
            old.line()
                .contains("2 open, the oldest raised 8.0 days ago"),
            "{}",
            old.line()
        );
    }
}
