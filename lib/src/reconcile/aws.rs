//! The reconciler as deployed: the real clients and AWS adapters, built
//! once from [`Config`]. The function and `hubwarp reconcile --local` build
//! it with this same code.

use super::config::Config;
use super::run::Reconciler;
use super::run_store::DynamoRunStore;
use crate::hubspot::crm::HubspotClient;
use crate::queue::SqsQueue;
use crate::startup::StartupError;
use crate::store::{DynamoEventLog, DynamoSyncStore, S3ReportStore};
use crate::warp::WarpClient;

/// The reconciler over the real clients and AWS adapters.
pub type AwsReconciler = Reconciler<
    WarpClient,
    HubspotClient,
    DynamoSyncStore,
    DynamoEventLog,
    SqsQueue,
    DynamoRunStore,
    S3ReportStore,
>;

/// How long the reconciler's sync-log entries are kept.
pub const SYNC_LOG_RETENTION: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// Builds the reconciler: tokens read once, clients created once.
pub async fn build(
    config: &Config,
    aws: &aws_config::SdkConfig,
) -> Result<AwsReconciler, StartupError> {
    let ddb = crate::aws::dynamodb(aws);
    Ok(Reconciler {
        warp: config.api.warp_client(aws).await?,
        hubspot: config
            .api
            .hubspot_client(aws)
            .await?
            .with_limiter(config.hubspot_rate.clone()),
        store: DynamoSyncStore::new(ddb.clone(), config.tables.clone(), SYNC_LOG_RETENTION),
        events: DynamoEventLog::new(ddb.clone(), &config.events_table),
        queue: SqsQueue::new(crate::aws::sqs(aws), &config.sync_queue_url),
        runs: DynamoRunStore::new(ddb, &config.runs_table),
        reports: S3ReportStore::new(
            crate::store::reports::s3_client(aws),
            &config.reports_bucket,
        ),
        mappings: config.mappings.clone(),
        settings: config.run.clone(),
    })
}
