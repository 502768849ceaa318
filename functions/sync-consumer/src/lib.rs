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

/// SQS's longest visibility timeout, counted from the message's first
/// receive: a longer `ChangeMessageVisibility` is refused.
const MAX_HOLD_S: i64 = 12 * 3600;

/// How long to hide a message until `until_ms`: at most what is left of
/// SQS's 12 hours since its first receive (a minute spare for clock skew),
/// at least a second. Asked for 12 hours whenever the reset was further
/// away (before noon UTC), SQS refused every hold.
fn hold_seconds(until_ms: i64, now_ms: i64, first_receive_ms: Option<i64>) -> i32 {
    let held_s = (now_ms - first_receive_ms.unwrap_or(now_ms)).max(0) / 1000;
    let left_s = (MAX_HOLD_S - held_s - 60).max(1);
    ((until_ms - now_ms) / 1000).clamp(1, left_s) as i32
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
        let first_receive = r
            .attributes
            .get("ApproximateFirstReceiveTimestamp")
            .and_then(|t| t.parse().ok());
        let seconds = hold_seconds(until_ms, now, first_receive);
        let (Some(arn), Some(handle)) = (&r.event_source_arn, &r.receipt_handle) else {
            continue;
        };
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
    use super::hold_seconds;

    const HOUR_MS: i64 = 3_600_000;

    #[test]
    fn regression_hold_beyond_twelve_hours_is_refused_by_sqs() {
        let now = 1_795_000_000_000;
        // Midnight 23 hours away: never more than SQS's 12 hours, less the
        // time since the first receive and a minute spare.
        assert_eq!(hold_seconds(now + 23 * HOUR_MS, now, None), 12 * 3600 - 60);
        assert_eq!(
            hold_seconds(now + 23 * HOUR_MS, now, Some(now - 2 * HOUR_MS)),
            10 * 3600 - 60
        );
        // A reset within the limit is waited for exactly; a past one, 1 s.
        assert_eq!(hold_seconds(now + HOUR_MS, now, Some(now)), 3600);
        assert_eq!(hold_seconds(now - 5, now, None), 1);
        assert_eq!(
            hold_seconds(now + 23 * HOUR_MS, now, Some(now - 13 * HOUR_MS)),
            1
        );
    }
}
