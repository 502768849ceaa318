//! sync-consumer: reads the sync queue and applies HubSpot changes to WARP.

pub mod config;

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::store::{DynamoEventLog, DynamoSyncStore};
use hubwarp::sync::{Consumer, QueuedMessage};
use hubwarp::warp::WarpClient;
use lambda_runtime::LambdaEvent;
use tracing::info;

pub use config::Config;
pub use hubwarp::startup::StartupError;

/// The consumer as deployed.
pub type AwsConsumer = Consumer<DynamoEventLog, DynamoSyncStore, WarpClient, HubspotClient>;

/// Builds the consumer: tokens read once, clients created once.
pub async fn build(
    config: &Config,
    aws: &aws_config::SdkConfig,
) -> Result<AwsConsumer, StartupError> {
    let warp_token = config.warp_token.resolve(aws).await?;
    let hubspot_token = config.hubspot_token.resolve(aws).await?;
    let ddb = hubwarp::aws::dynamodb(aws);
    Ok(Consumer {
        events: DynamoEventLog::new(ddb.clone(), &config.events_table),
        store: DynamoSyncStore::new(
            ddb,
            config.tables.clone(),
            Duration::from_secs(config.sync_log_retention_days * 24 * 3600),
        ),
        warp: WarpClient::new(
            &config.warp_api_url,
            Token::new(warp_token),
            config.http_timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| StartupError::Http(e.to_string()))?,
        hubspot: HubspotClient::new(
            &config.hubspot_api_url,
            Token::new(hubspot_token),
            config.http_timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| StartupError::Http(e.to_string()))?,
        mappings: config.mappings.clone(),
    })
}

/// One SQS batch: partial batch response, so only the messages that failed
/// transiently come back (the event source mapping must report
/// `ReportBatchItemFailures`).
pub async fn handle<E, S, W, H>(
    consumer: &Consumer<E, S, W, H>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    E: hubwarp::store::EventLog,
    S: hubwarp::store::sync::LinkStore
        + hubwarp::store::sync::FieldStateStore
        + hubwarp::store::sync::SyncLog
        + hubwarp::store::sync::ConflictQueue,
    W: hubwarp::sync::ports::WarpApi,
    H: hubwarp::sync::ports::CompanyDirectory,
{
    let started = std::time::Instant::now();
    let messages: Vec<QueuedMessage> = event
        .payload
        .records
        .into_iter()
        .map(|r| QueuedMessage {
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let report = consumer.handle_batch(&messages).await;
    info!(
        request_id = %event.context.request_id,
        messages = report.messages,
        applied_fields = report.applied_fields,
        warp_writes = report.warp_writes,
        skipped = report.skipped,
        conflicts = report.conflicts,
        unmatched = report.unmatched,
        failed = report.failed,
        duplicates = report.duplicates,
        retried = report.retry.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "sync batch"
    );
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .retry
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    Ok(response)
}
