//! The consumer's settings, read once per cold start.

use std::sync::Arc;

use hubwarp::hubspot::rate::RateLimiter;
use hubwarp::mapping::MappingSet;
use hubwarp::settings::{Env, SettingError};
use hubwarp::startup::ApiSettings;
use hubwarp::store::SyncTables;
use hubwarp::sync::backoff::Backoff;
use hubwarp::sync::breaker::BreakerSettings;

#[derive(Debug, Clone)]
pub struct Config {
    /// The receiver's event table, whose records the consumer settles
    /// (`WEBHOOK_EVENTS_TABLE`).
    pub events_table: String,
    /// `LINKS_TABLE`, `FIELD_STATE_TABLE`, `SYNC_LOG_TABLE`, `CONFLICTS_TABLE`.
    pub tables: SyncTables,
    /// The circuit breakers' shared state (`BREAKERS_TABLE`).
    pub breakers_table: String,
    /// When a dependency's circuit opens and for how long
    /// (`BREAKER_FAILURES`, `BREAKER_OPEN_S`, `BREAKER_MAX_OPEN_S`).
    pub breaker: BreakerSettings,
    /// WARP's and HubSpot's URLs and tokens, and one call's time budget
    /// (`HTTP_TIMEOUT_MS`, default 5000 here).
    pub api: ApiSettings,
    /// The field mappings (`MAPPING_FILE`, a TOML path; default: the shipped
    /// mapping), validated here so a bad file stops the cold start.
    pub mappings: MappingSet,
    /// Days sync log entries are kept (`SYNC_LOG_RETENTION_DAYS`, default 90).
    pub sync_log_retention_days: u64,
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`,
    /// default HubSpotWarp/hubspot-warp).
    pub metrics_namespace: String,
    /// How long a message handed back stays hidden (`SYNC_RETRY_BASE_S`,
    /// default 20; `SYNC_RETRY_CAP_S`, default 900).
    pub retry: Backoff,
    /// HubSpot's 10-second budget (`HUBSPOT_RATE_LIMIT_PER_10S`), kept by
    /// each instance as the reconciler keeps it; a 429 is waited out a few
    /// times within the invocation, then the message backs off.
    pub hubspot_rate: Arc<RateLimiter>,
}

/// 429s one HubSpot call waits out inside a consumer invocation (30 s):
/// past them the message is handed back with its backoff instead.
pub const THROTTLED_RETRIES: u32 = 3;

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            events_table: env.required("WEBHOOK_EVENTS_TABLE")?.to_string(),
            tables: SyncTables::from_env(env)?,
            breakers_table: env.required("BREAKERS_TABLE")?.to_string(),
            breaker: BreakerSettings::from_env(env)?,
            api: ApiSettings::from_env(env, 5_000)?,
            mappings: MappingSet::from_setting(env)?,
            sync_log_retention_days: env.parse_in_range("SYNC_LOG_RETENTION_DAYS", 90, 1..=3650)?,
            metrics_namespace: hubwarp::metrics::namespace(env)?,
            retry: Backoff::from_env(env)?,
            hubspot_rate: Arc::new(
                RateLimiter::from_env(env)?.with_max_throttled_retries(THROTTLED_RETRIES),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 10] = [
        ("WEBHOOK_EVENTS_TABLE", "e"),
        ("LINKS_TABLE", "l"),
        ("FIELD_STATE_TABLE", "f"),
        ("SYNC_LOG_TABLE", "s"),
        ("CONFLICTS_TABLE", "c"),
        ("BREAKERS_TABLE", "b"),
        ("WARP_API_URL", "http://127.0.0.1:9100"),
        ("WARP_API_TOKEN", "t"),
        ("HUBSPOT_ACCESS_TOKEN", "p"),
        ("HUBSPOT_API_URL", "http://127.0.0.1:9200"),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &str) -> Result<Config, SettingError> {
        Config::from_env(&Env::varied(&BASE, extra, without))
    }

    #[test]
    fn defaults_and_missing_settings() {
        let c = with(&[], "").unwrap();
        assert_eq!(c.sync_log_retention_days, 90);
        assert!(c.mappings.lookup("warp_credit_limit", "x", "y").is_some());
        for (name, _) in BASE.iter().filter(|(k, _)| *k != "HUBSPOT_API_URL") {
            let e = with(&[], name).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn api_urls_carrying_a_token_must_be_https_off_loopback() {
        for name in ["WARP_API_URL", "HUBSPOT_API_URL"] {
            let e = with(&[(name, "http://api.example.com")], name)
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains("https"), "{e}");
        }
        assert!(
            with(
                &[("WARP_API_URL", "https://api.example.com")],
                "WARP_API_URL"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_bad_mapping_file_stops_the_start_naming_its_line() {
        let dir = std::env::temp_dir().join(format!("mapping-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[[field]]\nwarp = \"id\"\nhubspot = \"x\"\ndirection = \"HUBSPOT_TO_WARP\"\nconflict = \"HUBSPOT_WINS\"\ntype = \"string\"\n").unwrap();
        let path_text: &'static str =
            Box::leak(path.to_string_lossy().into_owned().into_boxed_str());
        let e = with(&[("MAPPING_FILE", path_text)], "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MAPPING_FILE") && e.contains("line 1") && e.contains("never changes"),
            "{e}"
        );
        let e = with(&[("MAPPING_FILE", "/nonexistent/mapping.toml")], "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAPPING_FILE"), "{e}");
    }
}
