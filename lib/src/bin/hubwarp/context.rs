//! The settings and clients a subcommand needs, read when first asked for:
//! each subcommand needs only the settings it uses, and a missing one fails
//! naming it before anything is called. Same names as the functions, and
//! the same `HUBWARP_LOCAL_DEFAULTS` locally.

use std::time::Duration;

use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::mapping::MappingSet;
use hubwarp::reconcile::run_store::DynamoRunStore;
use hubwarp::secrets::SecretSource;
use hubwarp::settings::{Env, SettingError};
use hubwarp::startup::{ApiSettings, StartupError};
use hubwarp::store::{DynamoEventLog, DynamoSyncStore, S3ReportStore, SyncTables};
use hubwarp::warp::WarpClient;
use tokio::sync::OnceCell;

pub struct Context {
    pub env: Env,
    aws: OnceCell<aws_config::SdkConfig>,
}

impl Context {
    pub fn from_process() -> Result<Self, SettingError> {
        Ok(Self {
            env: Env::from_process()?,
            aws: OnceCell::new(),
        })
    }

    pub async fn aws(&self) -> &aws_config::SdkConfig {
        self.aws
            .get_or_init(|| {
                hubwarp::aws::load(
                    &self.env,
                    Duration::from_secs(30),
                    hubwarp::aws::Caller::Operator,
                )
            })
            .await
    }

    fn http_timeout(&self) -> Result<Duration, SettingError> {
        ApiSettings::timeout_from_env(&self.env, 10_000)
    }

    pub fn events_table(&self) -> Result<String, SettingError> {
        Ok(self.env.required("WEBHOOK_EVENTS_TABLE")?.to_string())
    }

    pub async fn events(&self) -> Result<DynamoEventLog, SettingError> {
        let table = self.events_table()?;
        Ok(DynamoEventLog::new(
            hubwarp::aws::dynamodb(self.aws().await),
            table,
        ))
    }

    pub async fn sync_store(&self) -> Result<DynamoSyncStore, SettingError> {
        let tables = SyncTables::from_env(&self.env)?;
        let days: u64 = self
            .env
            .parse_in_range("SYNC_LOG_RETENTION_DAYS", 90, 1..=3650)?;
        Ok(DynamoSyncStore::new(
            hubwarp::aws::dynamodb(self.aws().await),
            tables,
            Duration::from_secs(days * 24 * 3600),
        ))
    }

    pub fn queue_url(&self) -> Result<String, SettingError> {
        self.env.required_url("SYNC_QUEUE_URL")
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        hubwarp::aws::sqs(self.aws().await)
    }

    pub async fn runs(&self) -> Result<DynamoRunStore, SettingError> {
        let table = self.env.required("RUNS_TABLE")?.to_string();
        Ok(DynamoRunStore::new(
            hubwarp::aws::dynamodb(self.aws().await),
            table,
        ))
    }

    pub fn reports_bucket(&self) -> Result<String, SettingError> {
        Ok(self.env.required("REPORTS_BUCKET")?.to_string())
    }

    pub async fn reports(&self) -> Result<S3ReportStore, SettingError> {
        let bucket = self.reports_bucket()?;
        Ok(S3ReportStore::new(
            hubwarp::store::reports::s3_client(self.aws().await),
            bucket,
        ))
    }

    pub fn mappings(&self) -> Result<MappingSet, SettingError> {
        MappingSet::from_setting(&self.env)
    }

    /// A mapping file named on the command line, validated as the
    /// functions validate `MAPPING_FILE`.
    pub fn mappings_from(&self, path: &std::path::Path) -> Result<MappingSet, SettingError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SettingError::malformed("--mapping", format!("cannot read {}: {e}", path.display()))
        })?;
        MappingSet::parse(&text).map_err(|e| SettingError::malformed("--mapping", e))
    }

    /// `RECONCILE_TIMEZONE`, for the local times of an undo's report.
    pub fn timezone(&self) -> Result<chrono_tz::Tz, SettingError> {
        match self.env.optional("RECONCILE_TIMEZONE") {
            None => Ok(chrono_tz::UTC),
            Some(zone) => zone.parse().map_err(|_| {
                SettingError::malformed("RECONCILE_TIMEZONE", "not an IANA time zone")
            }),
        }
    }

    /// Checks the WARP settings without building the client (no secret is
    /// read yet), so every missing setting is named before any call.
    pub fn warp_settings(&self) -> Result<(String, SecretSource), SettingError> {
        ApiSettings::warp_from_env(&self.env)
    }

    pub fn hubspot_settings(&self) -> Result<(String, SecretSource), SettingError> {
        ApiSettings::hubspot_from_env(&self.env)
    }

    pub async fn warp(&self) -> Result<WarpClient, StartupError> {
        let (url, token) = self.warp_settings()?;
        let timeout = self.http_timeout()?;
        hubwarp::startup::warp_client(self.aws().await, &url, &token, timeout).await
    }

    pub async fn hubspot(&self) -> Result<HubspotClient, StartupError> {
        let (url, token) = self.hubspot_settings()?;
        let timeout = self.http_timeout()?;
        hubwarp::startup::hubspot_client(self.aws().await, &url, &token, timeout).await
    }
}
