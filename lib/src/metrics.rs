//! CloudWatch metrics as embedded-metric-format (EMF) log lines.
//!
//! The code counts with the `metrics` facade wherever a decision is taken;
//! each function installs the EMF recorder at cold start and flushes it to
//! stdout after every invocation. CloudWatch Logs turns the `_aws` lines
//! into metrics, so the alarms in the SAM template cost no PutMetricData
//! call and no extra latency. With no recorder installed (unit and
//! integration tests in one process), every count is a no-op.
//!
//! Every line carries the dimension `Function`; counts with a reason add a
//! `Reason` dimension. The names below are the ones the template's alarms
//! use: a test holds the two together.
//!
//! The functions here take plain numbers: each flow maps its own report to
//! names (`IntakeReport::count`, the run's `finished`), so this module, which
//! every layer counts through, imports none of them.

use std::io::Write;

use crate::settings::{Env, SettingError};

/// The CloudWatch namespace (`METRICS_NAMESPACE`); the template sets
/// `HubSpotWarp/<ResourcePrefix>` so two stacks in one account never mix.
pub const NAMESPACE_SETTING: &str = "METRICS_NAMESPACE";
pub const DEFAULT_NAMESPACE: &str = "HubSpotWarp/hubspot-warp";

/// Metric names, shared with the alarms of `infra/template.yaml`.
pub mod name {
    // webhook-receiver
    pub const EVENTS_RECEIVED: &str = "EventsReceived";
    pub const EVENTS_NEW: &str = "EventsNew";
    pub const EVENTS_DUPLICATE: &str = "EventsDuplicate";
    pub const EVENTS_REQUEUED: &str = "EventsRequeued";
    pub const EVENTS_IGNORED: &str = "EventsIgnored";
    pub const EVENTS_UNREADABLE: &str = "EventsUnreadable";
    /// Requests not answered 200, by `Reason` (method, too_large, signature,
    /// payload, incomplete).
    pub const REQUESTS_REJECTED: &str = "RequestsRejected";
    // sync-consumer
    pub const MESSAGES: &str = "MessagesReceived";
    pub const MESSAGES_DUPLICATE: &str = "MessagesDuplicate";
    pub const MESSAGES_UNREADABLE: &str = "MessagesUnreadable";
    pub const MESSAGES_RETRIED: &str = "MessagesRetried";
    pub const CHANGES_APPLIED: &str = "ChangesApplied";
    pub const CHANGES_IN_SYNC: &str = "ChangesInSync";
    /// By `Reason`: stale, direction, unmapped, inactive-link, unmatched, ...
    pub const CHANGES_SKIPPED: &str = "ChangesSkipped";
    pub const CONFLICTS: &str = "Conflicts";
    pub const CHANGES_FAILED: &str = "ChangesFailed";
    /// A circuit changed state, by `Dependency` (warp, hubspot) and
    /// `State` (open, half-open, closed).
    pub const BREAKER_TRANSITIONS: &str = "BreakerTransitions";
    /// Calls not made because their dependency's circuit was open, by
    /// `Dependency`.
    pub const CALLS_REFUSED: &str = "CallsRefusedByBreaker";
    /// How long the dependency has been down when a call is refused, a
    /// circuit opens or closes, by `Dependency` (seconds): the "WARP
    /// unreachable" alarm watches its maximum.
    pub const DEPENDENCY_DOWN: &str = "DependencyDownSeconds";
    // nightly-reconciler
    /// A run reached its end (completed or stopped): its absence for a day
    /// is the "night with no run" alarm.
    pub const RUNS_FINISHED: &str = "RunsFinished";
    pub const RUNS_STOPPED: &str = "RunsStopped";
    /// An invocation failed; the platform retries it from the checkpoint.
    pub const RUNS_FAILED: &str = "RunsFailed";
    pub const RUN_DURATION: &str = "RunDuration";
    pub const PAIRS_COMPARED: &str = "PairsCompared";
    pub const FIXED_IN_WARP: &str = "FieldsFixedInWarp";
    pub const FIXED_IN_HUBSPOT: &str = "FieldsFixedInHubSpot";
    pub const CONFLICTS_FOR_REVIEW: &str = "ConflictsForReview";
    pub const UNMATCHED: &str = "RecordsUnmatched";
    pub const RUN_ERRORS: &str = "RunErrors";
    /// The night's report e-mails SES took, and those it refused.
    pub const REPORT_EMAILS_SENT: &str = "ReportEmailsSent";
    pub const REPORT_EMAILS_FAILED: &str = "ReportEmailsFailed";
    // review-page
    /// A review link's answer, by `Outcome` (shown, resolved, expired,
    /// tampered, malformed, unknown, already-resolved, superseded, error).
    pub const REVIEW_LINKS: &str = "ReviewLinks";
    // both API clients, in whichever function calls them
    pub const HUBSPOT_CALLS: &str = "HubSpotCalls";
    pub const HUBSPOT_429S: &str = "HubSpotRateLimited";
    pub const RATE_LIMIT_WAITS: &str = "RateLimitWaits";
    pub const RATE_LIMIT_WAITED: &str = "RateLimitWaited";
    pub const WARP_CALLS: &str = "WarpCalls";

    /// Every name above.
    pub const ALL: &[&str] = &[
        EVENTS_RECEIVED,
        EVENTS_NEW,
        EVENTS_DUPLICATE,
        EVENTS_REQUEUED,
        EVENTS_IGNORED,
        EVENTS_UNREADABLE,
        REQUESTS_REJECTED,
        MESSAGES,
        MESSAGES_DUPLICATE,
        MESSAGES_UNREADABLE,
        MESSAGES_RETRIED,
        CHANGES_APPLIED,
        CHANGES_IN_SYNC,
        CHANGES_SKIPPED,
        CONFLICTS,
        CHANGES_FAILED,
        BREAKER_TRANSITIONS,
        CALLS_REFUSED,
        DEPENDENCY_DOWN,
        RUNS_FINISHED,
        RUNS_STOPPED,
        RUNS_FAILED,
        RUN_DURATION,
        PAIRS_COMPARED,
        FIXED_IN_WARP,
        FIXED_IN_HUBSPOT,
        CONFLICTS_FOR_REVIEW,
        UNMATCHED,
        RUN_ERRORS,
        REPORT_EMAILS_SENT,
        REPORT_EMAILS_FAILED,
        REVIEW_LINKS,
        HUBSPOT_CALLS,
        HUBSPOT_429S,
        RATE_LIMIT_WAITS,
        RATE_LIMIT_WAITED,
        WARP_CALLS,
    ];
}

/// The installed recorder of one function.
pub struct Metrics {
    collector: &'static metrics_cloudwatch_embedded::Collector,
}

/// The namespace setting, checked against CloudWatch's rule (1-255 of
/// A-Z a-z 0-9 . - _ / # :) so a typo stops the cold start, not the metrics.
pub fn namespace(env: &Env) -> Result<String, SettingError> {
    let namespace = env.optional(NAMESPACE_SETTING).unwrap_or(DEFAULT_NAMESPACE);
    if namespace.len() > 255
        || namespace.starts_with(':')
        || !namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#:".contains(c))
    {
        return Err(SettingError::malformed(
            NAMESPACE_SETTING,
            "a CloudWatch namespace is 1-255 of A-Z a-z 0-9 . - _ / # :",
        ));
    }
    Ok(namespace.to_string())
}

impl Metrics {
    /// Installs the process-wide EMF recorder for `function`, once per
    /// cold start. A second recorder in one process is refused.
    pub fn install(namespace: &str, function: &'static str) -> Result<Self, String> {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(namespace.to_string())
            .with_dimension("Function", function)
            .init()
            .map_err(|e| format!("installing the metrics recorder: {e}"))?;
        describe();
        Ok(Self { collector })
    }

    /// Writes the counts of this invocation as EMF lines and starts again
    /// from zero. Failing to write a metric never fails the invocation.
    pub fn flush(&self) {
        let mut out = Vec::with_capacity(1024);
        if let Err(e) = self.collector.flush(&mut out) {
            tracing::warn!(error = %e, "metrics not written");
            return;
        }
        // One write: the lines reach the log whole, not interleaved.
        let _ = std::io::stdout().lock().write_all(&out);
    }

    /// As [`Metrics::flush`], into `out` (tests).
    pub fn flush_to(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.collector.flush(out)
    }
}

fn count(name: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(name).increment(n as u64);
    }
}

/// Adds each count to its metric (a zero is not written).
pub fn counts(counts: &[(&'static str, u64)]) {
    for &(name, n) in counts {
        if n > 0 {
            metrics::counter!(name).increment(n);
        }
    }
}

/// A webhook request refused, by `reason` (method, too_large, signature,
/// payload, incomplete).
pub fn request_rejected(reason: &'static str) {
    metrics::counter!(name::REQUESTS_REJECTED, "Reason" => reason).increment(1);
}

/// One SQS batch of the consumer (the per-change outcomes are counted as
/// they are decided, by [`change`]).
pub fn sync_batch(messages: usize, duplicates: usize, unreadable: usize, retried: usize) {
    count(name::MESSAGES, messages);
    count(name::MESSAGES_DUPLICATE, duplicates);
    count(name::MESSAGES_UNREADABLE, unreadable);
    count(name::MESSAGES_RETRIED, retried);
}

/// A change the consumer did not apply, by `reason` (stale, direction,
/// unmapped, inactive-link, unmatched, ...).
pub fn skipped(reason: &'static str) {
    metrics::counter!(name::CHANGES_SKIPPED, "Reason" => reason).increment(1);
}

/// A circuit went `state` (open, half-open, closed).
pub fn breaker_transition(dependency: &'static str, state: &'static str) {
    metrics::counter!(name::BREAKER_TRANSITIONS, "Dependency" => dependency, "State" => state)
        .increment(1);
}

/// A call refused by an open circuit, `down_ms` into the outage.
pub fn breaker_refused(dependency: &'static str, down_ms: i64) {
    metrics::counter!(name::CALLS_REFUSED, "Dependency" => dependency).increment(1);
    dependency_down(dependency, down_ms);
}

/// How long `dependency` has been down (or was, when its circuit closes).
pub fn dependency_down(dependency: &'static str, down_ms: i64) {
    metrics::gauge!(name::DEPENDENCY_DOWN, "Dependency" => dependency)
        .set(down_ms.max(0) as f64 / 1000.0);
}

/// A reconcile run reached its end, after `duration_ms`; its own figures go
/// through [`counts`].
pub fn run_finished(stopped: bool, duration_ms: i64) {
    count(name::RUNS_FINISHED, 1);
    if stopped {
        count(name::RUNS_STOPPED, 1);
    }
    metrics::histogram!(name::RUN_DURATION).record(duration_ms.max(0) as f64);
}

/// A reconcile invocation failed (the run resumes from its checkpoint).
pub fn run_failed() {
    count(name::RUNS_FAILED, 1);
}

/// A night's report e-mails: taken by SES, and refused.
pub fn report_emails(sent: u32, failed: u32) {
    count(name::REPORT_EMAILS_SENT, sent as usize);
    count(name::REPORT_EMAILS_FAILED, failed as usize);
}

/// A review link answered, `outcome` being what the page decided.
pub fn review_link(outcome: &'static str) {
    metrics::counter!(name::REVIEW_LINKS, "Outcome" => outcome).increment(1);
}

/// A request sent to HubSpot (retries included).
pub fn hubspot_call() {
    count(name::HUBSPOT_CALLS, 1);
}

/// HubSpot answered 429.
pub fn hubspot_rate_limited() {
    count(name::HUBSPOT_429S, 1);
}

/// A HubSpot request waited for the rate limit before it was sent.
pub fn rate_limit_wait(waited_ms: u64) {
    count(name::RATE_LIMIT_WAITS, 1);
    metrics::counter!(name::RATE_LIMIT_WAITED).increment(waited_ms);
}

/// A request sent to WARP.
pub fn warp_call() {
    count(name::WARP_CALLS, 1);
}

/// Registers the units CloudWatch shows (milliseconds for the durations).
fn describe() {
    metrics::describe_histogram!(
        name::RUN_DURATION,
        metrics::Unit::Milliseconds,
        "run length"
    );
    metrics::describe_gauge!(
        name::DEPENDENCY_DOWN,
        metrics::Unit::Seconds,
        "how long the dependency has been down"
    );
    metrics::describe_counter!(
        name::RATE_LIMIT_WAITED,
        metrics::Unit::Milliseconds,
        "time spent waiting for HubSpot's rate limit"
    );
}
