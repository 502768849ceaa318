//! sync-consumer: reads the sync queue and applies HubSpot changes to WARP.

pub mod config;

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
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
    let ddb = hubwarp::aws::dynamodb(aws);
    Ok(Consumer {
        events: DynamoEventLog::new(ddb.clone(), &config.events_table),
        store: DynamoSyncStore::new(
            ddb,
            config.tables.clone(),
            Duration::from_secs(config.sync_log_retention_days * 24 * 3600),
        ),
        warp: hubwarp::startup::warp_client(
            aws,
            &config.warp_api_url,
            &config.warp_token,
            config.http_timeout,
        )
        .await?,
        hubspot: hubwarp::startup::hubspot_client(
            aws,
            &config.hubspot_api_url,
            &config.hubspot_token,
            config.http_timeout,
        )
        .await?,
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
    handle_holding(consumer, None, event).await
}

/// As [`handle`]; when HubSpot's daily cap is why messages go back, they
/// are also made invisible until it resets (at most SQS's 12 hours), so
/// they neither burn their receives towards the DLQ nor HubSpot's calls.
pub async fn handle_holding<E, S, W, H>(
    consumer: &Consumer<E, S, W, H>,
    sqs: Option<&aws_sdk_sqs::Client>,
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
    let records = event.payload.records;
    let messages: Vec<QueuedMessage> = records
        .iter()
        .cloned()
        .map(|r| QueuedMessage {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok()),
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let report = consumer.handle_batch(&messages).await;
    hubwarp::metrics::sync_batch(
        report.messages,
        report.duplicates,
        report.unreadable.len(),
        report.retry.len(),
    );
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
        unreadable = report.unreadable.len(),
        retried = report.retry.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "sync batch"
    );
    if let (Some(sqs), Some(until)) = (sqs, report.hold_until_ms) {
        // An unreadable message is not waiting for HubSpot: holding it
        // would only delay its way to the DLQ.
        let held: Vec<String> = report
            .retry
            .iter()
            .filter(|id| !report.unreadable.iter().any(|u| &u.message_id == *id))
            .cloned()
            .collect();
        hold(sqs, &records, &held, until).await;
    }
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

/// SQS refuses a visibility that ends more than 12 hours after the message
/// was sent (or received); five minutes under that leaves room for the
/// calls in between (the function's timeout is 30 s).
const MAX_HOLD_S: i64 = 12 * 3600 - 300;

/// How long to hide a message `age_s` old until HubSpot's daily cap resets
/// at `until_ms`: at least a second, at most what SQS accepts.
fn hold_seconds(until_ms: i64, now_ms: i64, age_s: i64) -> i32 {
    ((until_ms - now_ms) / 1000).clamp(1, (MAX_HOLD_S - age_s).max(1)) as i32
}

async fn hold(
    sqs: &aws_sdk_sqs::Client,
    records: &[aws_lambda_events::event::sqs::SqsMessage],
    retry: &[String],
    until_ms: i64,
) {
    let now = hubwarp::time::now_ms();
    for r in records
        .iter()
        .filter(|r| r.message_id.as_ref().is_some_and(|id| retry.contains(id)))
    {
        let (Some(arn), Some(handle)) = (&r.event_source_arn, &r.receipt_handle) else {
            continue;
        };
        // Before noon UTC the reset at midnight is further away than SQS
        // allows: the hold is what is left of the message's 12 hours.
        let age_s = r
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse::<i64>().ok())
            .map_or(0, |sent| (now - sent).max(0) / 1000);
        let seconds = hold_seconds(until_ms, now, age_s);
        let result = async {
            let url = queue_url(sqs, arn).await?;
            sqs.change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(seconds)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            Ok::<_, String>(())
        }
        .await;
        match result {
            Ok(()) => {
                info!(message_id = ?r.message_id, hold_s = seconds, "held until HubSpot's daily cap resets")
            }
            // The message still comes back after the queue's own
            // visibility timeout: only the wait is lost, never the event.
            Err(e) => {
                tracing::warn!(message_id = ?r.message_id, error = %e, "could not hold the message back")
            }
        }
    }
}

/// The queue URL of an SQS ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
async fn queue_url(sqs: &aws_sdk_sqs::Client, arn: &str) -> Result<String, String> {
    let mut parts = arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(format!("not an SQS queue ARN: {arn}"));
    };
    sqs.get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
        .queue_url
        .ok_or_else(|| "GetQueueUrl answered no URL".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found when the suite ran before noon UTC: the cap resets at midnight
    /// UTC, over 12 hours away, and SQS refused 43,200 s because the
    /// message had already used part of its 12 hours.
    #[test]
    fn regression_hold_past_twelve_hours_is_refused_by_sqs() {
        let now = 1_795_600_000_000;
        let far = now + 20 * 3_600_000;
        assert_eq!(hold_seconds(far, now, 0), 43_200 - 300);
        // A message sent two hours ago has ten hours left.
        assert_eq!(hold_seconds(far, now, 7_200), 36_000 - 300);
        assert_eq!(hold_seconds(far, now, 50_000), 1, "older than 12 hours");
        assert_eq!(hold_seconds(now + 90_000, now, 0), 90);
        assert_eq!(hold_seconds(now - 5_000, now, 0), 1, "a reset already past");
    }
}
