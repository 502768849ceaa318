//! The review page's settings, read once per cold start.

use hubwarp::mapping::MappingSet;
use hubwarp::secrets::SecretSource;
use hubwarp::settings::{Env, SettingError};
use hubwarp::startup::ApiSettings;
use hubwarp::store::SyncTables;

#[derive(Debug, Clone)]
pub struct Config {
    /// `LINKS_TABLE`, `FIELD_STATE_TABLE`, `SYNC_LOG_TABLE`, `CONFLICTS_TABLE`:
    /// what `hubwarp conflicts resolve` reads and writes.
    pub tables: SyncTables,
    /// WARP's and HubSpot's URLs and tokens (`HTTP_TIMEOUT_MS`, default
    /// 5000 here: a person is waiting for the page).
    pub api: ApiSettings,
    /// The field mappings (`MAPPING_FILE`; default: the shipped mapping),
    /// the same as the consumer's and the reconciler's.
    pub mappings: MappingSet,
    /// `REVIEW_LINK_KEY` or `REVIEW_LINK_KEY_ARN`: the key the reconciler
    /// signs the links with.
    pub key: SecretSource,
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            tables: SyncTables::from_env(env)?,
            api: ApiSettings::from_env(env, 5_000)?,
            mappings: MappingSet::from_setting(env)?,
            key: SecretSource::from_env(env, "REVIEW_LINK_KEY")?,
            metrics_namespace: hubwarp::metrics::namespace(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 9] = [
        ("LINKS_TABLE", "l"),
        ("FIELD_STATE_TABLE", "f"),
        ("SYNC_LOG_TABLE", "s"),
        ("CONFLICTS_TABLE", "c"),
        ("WARP_API_URL", "http://127.0.0.1:9100"),
        ("WARP_API_TOKEN", "t"),
        ("HUBSPOT_ACCESS_TOKEN", "p"),
        ("HUBSPOT_API_URL", "http://127.0.0.1:9200"),
        ("REVIEW_LINK_KEY", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn every_missing_setting_is_named() {
        assert!(Config::from_env(&Env::varied(&BASE, &[], "")).is_ok());
        for (name, _) in BASE.iter().filter(|(k, _)| *k != "HUBSPOT_API_URL") {
            let e = Config::from_env(&Env::varied(&BASE, &[], name))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
