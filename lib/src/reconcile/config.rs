//! The reconciler's settings, read once per cold start (and by `hubwarp
//! reconcile --local`, which runs the same reconciler in-process).

use std::sync::Arc;
use std::time::Duration;

use crate::hubspot::rate::RateLimiter;

use super::run::RunSettings;
use crate::mapping::MappingSet;
use crate::settings::{Env, SettingError};
use crate::startup::ApiSettings;
use crate::store::SyncTables;

#[derive(Debug, Clone)]
pub struct Config {
    /// The receiver's event table, swept for stuck records
    /// (`WEBHOOK_EVENTS_TABLE`).
    pub events_table: String,
    /// `LINKS_TABLE`, `FIELD_STATE_TABLE`, `SYNC_LOG_TABLE`, `CONFLICTS_TABLE`.
    pub tables: SyncTables,
    /// Run records, one per run (`RUNS_TABLE`).
    pub runs_table: String,
    /// Where reports are written (`REPORTS_BUCKET`).
    pub reports_bucket: String,
    /// The sync queue stuck events go back to (`SYNC_QUEUE_URL`).
    pub sync_queue_url: String,
    /// WARP's and HubSpot's URLs and tokens, and one call's time budget
    /// (`HTTP_TIMEOUT_MS`, default 10000 here).
    pub api: ApiSettings,
    /// One limiter for every HubSpot call of a run
    /// (`HUBSPOT_RATE_LIMIT_PER_10S`: 100, 190 or 250, the plan's budget;
    /// `HUBSPOT_SEARCH_RATE_LIMIT_PER_S`).
    pub hubspot_rate: Arc<RateLimiter>,
    /// The field mappings (`MAPPING_FILE`; default: the shipped mapping).
    pub mappings: MappingSet,
    /// SNS topic told when a run needs a person (`ALERT_TOPIC_ARN`, optional).
    pub alert_topic_arn: Option<String>,
    /// The report e-mail (`REPORT_EMAIL_TO` and the rest,
    /// [`super::mail::MailSettings`]); `None`: off.
    pub mail: Option<super::mail::MailSettings>,
    /// This function's own name, to continue a long run in a fresh
    /// invocation (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda).
    pub function_name: String,
    /// Where to invoke it (`AWS_ENDPOINT_URL_LAMBDA`; locally, the invoke
    /// endpoint of `cargo lambda watch`). Unset in AWS.
    pub lambda_endpoint: Option<String>,
    /// Pages, time budget, time zone (`RECONCILE_TIMEZONE`, an IANA zone,
    /// default UTC: the schedule's zone and the report's local times),
    /// `RECONCILE_PAGE_SIZE` (1-100, default 100), `RECONCILE_CONCURRENCY`
    /// (pairs decided at once, 1-100, default 100),
    /// `RECONCILE_INVOCATION_BUDGET_MS` (optional), `RECONCILE_RESERVE_MS`
    /// (time left when an invocation hands over, default 90000),
    /// `SWEEP_AFTER_MINUTES` (default 60).
    pub run: RunSettings,
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`,
    /// default HubSpotWarp/hubspot-warp).
    pub metrics_namespace: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let timezone = match env.optional("RECONCILE_TIMEZONE") {
            None => chrono_tz::UTC,
            Some(zone) => zone.parse::<chrono_tz::Tz>().map_err(|_| {
                SettingError::malformed(
                    "RECONCILE_TIMEZONE",
                    "not an IANA time zone (for example America/New_York)",
                )
            })?,
        };
        let budget_ms: u64 =
            env.parse_in_range("RECONCILE_INVOCATION_BUDGET_MS", 0, 0..=900_000)?;
        let alert_topic_arn = env.optional("ALERT_TOPIC_ARN").map(str::to_string);
        if let Some(arn) = &alert_topic_arn
            && !arn.starts_with("arn:")
        {
            return Err(SettingError::malformed(
                "ALERT_TOPIC_ARN",
                "must be an SNS topic ARN",
            ));
        }
        Ok(Self {
            events_table: env.required("WEBHOOK_EVENTS_TABLE")?.to_string(),
            tables: SyncTables::from_env(env)?,
            runs_table: env.required("RUNS_TABLE")?.to_string(),
            reports_bucket: env.required("REPORTS_BUCKET")?.to_string(),
            sync_queue_url: env.required_url("SYNC_QUEUE_URL")?,
            api: ApiSettings::from_env(env, 10_000)?,
            hubspot_rate: Arc::new(RateLimiter::from_env(env)?),
            mappings: MappingSet::from_setting(env)?,
            alert_topic_arn,
            mail: super::mail::MailSettings::from_env(env)?,
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or("nightly-reconciler")
                .to_string(),
            lambda_endpoint: env.optional_url("AWS_ENDPOINT_URL_LAMBDA")?,
            run: RunSettings {
                page_size: env.parse_in_range("RECONCILE_PAGE_SIZE", 100, 1..=100)?,
                concurrency: env.parse_in_range(
                    "RECONCILE_CONCURRENCY",
                    RunSettings::default().concurrency,
                    1..=100,
                )?,
                invocation_budget: (budget_ms > 0).then(|| Duration::from_millis(budget_ms)),
                reserve: Duration::from_millis(env.parse_in_range(
                    "RECONCILE_RESERVE_MS",
                    90_000,
                    0..=600_000,
                )?),
                sweep_after: Duration::from_secs(
                    60 * env.parse_in_range("SWEEP_AFTER_MINUTES", 60, 1..=10_080)?,
                ),
                timezone,
                ..RunSettings::default()
            },
            metrics_namespace: crate::metrics::namespace(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 12] = [
        ("WEBHOOK_EVENTS_TABLE", "e"),
        ("LINKS_TABLE", "l"),
        ("FIELD_STATE_TABLE", "f"),
        ("SYNC_LOG_TABLE", "s"),
        ("CONFLICTS_TABLE", "c"),
        ("RUNS_TABLE", "r"),
        ("REPORTS_BUCKET", "b"),
        ("SYNC_QUEUE_URL", "http://127.0.0.1:5000/123456789012/q"),
        ("WARP_API_URL", "http://127.0.0.1:9100"),
        ("WARP_API_TOKEN", "t"),
        ("HUBSPOT_ACCESS_TOKEN", "p"),
        ("HUBSPOT_API_URL", "http://127.0.0.1:9200"),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &str) -> Result<Config, SettingError> {
        Config::from_env(&Env::varied(&BASE, extra, without))
    }

    #[test]
    fn defaults_and_every_missing_setting_named() {
        let c = with(&[], "").unwrap();
        assert_eq!(c.run.timezone, chrono_tz::UTC);
        assert_eq!(c.run.page_size, 100);
        assert!(c.run.invocation_budget.is_none());
        for (name, _) in BASE.iter().filter(|(k, _)| *k != "HUBSPOT_API_URL") {
            let e = with(&[], name).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn malformed_settings_are_named() {
        for (name, value) in [
            ("RECONCILE_TIMEZONE", "Mars/Olympus"),
            ("RECONCILE_PAGE_SIZE", "500"),
            ("RECONCILE_CONCURRENCY", "0"),
            ("ALERT_TOPIC_ARN", "alerts"),
            ("SWEEP_AFTER_MINUTES", "0"),
            ("HUBSPOT_RATE_LIMIT_PER_10S", "150"),
        ] {
            let e = with(&[(name, value)], "").unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        let c = with(&[("RECONCILE_TIMEZONE", "America/Denver")], "").unwrap();
        assert_eq!(c.run.timezone, chrono_tz::America::Denver);
    }
}
