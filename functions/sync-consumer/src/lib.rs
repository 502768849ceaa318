//! sync-consumer: reads the sync queue and applies HubSpot changes to WARP.

pub mod config;

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::store::breakers::DynamoBreakers;
use hubwarp::store::{DynamoEventLog, DynamoSyncStore};
use hubwarp::sync::backoff::{Backoff, UNREADABLE_RETRY_S};
use hubwarp::sync::breaker::{Breaker, Dependency, Guarded};
use hubwarp::sync::{Consumer, QueuedMessage};
use hubwarp::warp::WarpClient;
use lambda_runtime::LambdaEvent;
use tracing::{info, warn};

pub use config::Config;
pub use hubwarp::startup::StartupError;

/// The consumer as deployed: WARP and HubSpot each behind a breaker whose
/// open state every instance shares.
pub type AwsConsumer = Consumer<
    DynamoEventLog,
    DynamoSyncStore,
    Guarded<WarpClient, DynamoBreakers>,
    Guarded<HubspotClient, DynamoBreakers>,
>;

/// Builds the consumer: tokens read once, clients created once.
pub async fn build(
    config: &Config,
    aws: &aws_config::SdkConfig,
) -> Result<AwsConsumer, StartupError> {
    let ddb = hubwarp::aws::dynamodb(aws);
    let breaker = |dependency| {
        Arc::new(Breaker::new(
            dependency,
            config.breaker,
            DynamoBreakers::new(ddb.clone(), &config.breakers_table),
        ))
    };
    let (warp_breaker, hubspot_breaker) = (breaker(Dependency::Warp), breaker(Dependency::Hubspot));
    Ok(Consumer {
        events: DynamoEventLog::new(ddb.clone(), &config.events_table),
        store: DynamoSyncStore::new(
            ddb.clone(),
            config.tables.clone(),
            Duration::from_secs(config.sync_log_retention_days * 24 * 3600),
        ),
        warp: Guarded::new(config.api.warp_client(aws).await?, warp_breaker),
        hubspot: Guarded::new(
            config
                .api
                .hubspot_client(aws)
                .await?
                .with_limiter(config.hubspot_rate.clone()),
            hubspot_breaker,
        ),
        mappings: config.mappings.clone(),
    })
}

/// A message handed back, to be hidden this long before its next receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hide {
    pub message_id: String,
    pub seconds: i32,
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A transient failure (WARP or HubSpot down, slow or rate-limiting, an
    /// AWS error): exponential backoff with full jitter on its receives.
    Backoff,
    /// HubSpot's daily cap: until it resets (at most SQS's 12 hours).
    DailyCap,
    /// No release reads it: back at once, towards the DLQ.
    Unreadable,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Backoff => "backoff",
            Why::DailyCap => "daily-cap",
            Why::Unreadable => "unreadable",
        }
    }
}

/// What one batch came to: the partial batch response for Lambda, and how
/// long each message handed back should stay hidden.
#[derive(Debug, Default)]
pub struct Handled {
    pub response: SqsBatchResponse,
    pub hide: Vec<Hide>,
}

/// One SQS batch: partial batch response, so only the messages that failed
/// transiently come back (the event source mapping must report
/// `ReportBatchItemFailures`). They come back after the queue's own
/// visibility timeout: [`handle_batch`] also says how long to hide each.
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
    W: hubwarp::warp::WarpApi,
    H: hubwarp::sync::ports::CompanyDirectory,
{
    Ok(handle_batch(consumer, &Backoff::default(), event)
        .await
        .response)
}

/// As [`handle`], with the hiding of every message handed back: a delay
/// that grows with its receive count (so an outage thins the retries out
/// instead of burning the receives towards the DLQ), HubSpot's daily cap
/// waited out, an unreadable message sent on its way.
pub async fn handle_batch<E, S, W, H>(
    consumer: &Consumer<E, S, W, H>,
    backoff: &Backoff,
    event: LambdaEvent<SqsEvent>,
) -> Handled
where
    E: hubwarp::store::EventLog,
    S: hubwarp::store::sync::LinkStore
        + hubwarp::store::sync::FieldStateStore
        + hubwarp::store::sync::SyncLog
        + hubwarp::store::sync::ConflictQueue,
    W: hubwarp::warp::WarpApi,
    H: hubwarp::sync::ports::CompanyDirectory,
{
    let started = std::time::Instant::now();
    let records = event.payload.records;
    let messages: Vec<QueuedMessage> = records
        .iter()
        .map(|r| QueuedMessage {
            receive_count: receive_count(r),
            message_id: r.message_id.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
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
    let now = hubwarp::time::now_ms();
    let hide = report
        .retry
        .iter()
        .filter_map(|id| {
            let record = records
                .iter()
                .find(|r| r.message_id.as_deref() == Some(id.as_str()))?;
            let (seconds, why) = if report.unreadable.iter().any(|u| &u.message_id == id) {
                (UNREADABLE_RETRY_S, Why::Unreadable)
            } else if let Some(until) = report.hold_until_ms {
                // Before noon UTC the reset at midnight is further away
                // than SQS allows: the hold is what is left of the
                // message's 12 hours.
                let age_s = record
                    .attributes
                    .get("SentTimestamp")
                    .and_then(|t| t.parse::<i64>().ok())
                    .map_or(0, |sent| (now - sent).max(0) / 1000);
                (hold_seconds(until, now, age_s), Why::DailyCap)
            } else {
                let n = receive_count(record).unwrap_or(1);
                (backoff.draw_seconds(n), Why::Backoff)
            };
            Some(Hide {
                message_id: id.clone(),
                seconds,
                why,
            })
        })
        .collect();
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
    Handled { response, hide }
}

fn receive_count(r: &SqsMessage) -> Option<u32> {
    r.attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
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

/// Where a received message is, to change its visibility.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub message_id: String,
    pub queue_arn: String,
    pub handle: String,
    pub receive_count: Option<u32>,
}

impl Receipt {
    /// The receipts of a batch, kept before the event is handed over.
    pub fn of(event: &SqsEvent) -> Vec<Receipt> {
        event
            .records
            .iter()
            .filter_map(|r| {
                Some(Receipt {
                    message_id: r.message_id.clone()?,
                    queue_arn: r.event_source_arn.clone()?,
                    handle: r.receipt_handle.clone()?,
                    receive_count: receive_count(r),
                })
            })
            .collect()
    }
}

/// Hides each message of `hide` with `ChangeMessageVisibility`. A failure
/// is logged and costs only the wait: the message still comes back after
/// the queue's own visibility timeout.
pub async fn hide(sqs: &aws_sdk_sqs::Client, receipts: &[Receipt], hide: &[Hide]) {
    let mut urls: HashMap<&str, String> = HashMap::new();
    for h in hide {
        let Some(r) = receipts.iter().find(|r| r.message_id == h.message_id) else {
            continue;
        };
        let result = async {
            let url = match urls.get(r.queue_arn.as_str()) {
                Some(url) => url.clone(),
                None => {
                    let url = hubwarp::queue::sqs::url_of_arn(sqs, &r.queue_arn).await?;
                    urls.insert(&r.queue_arn, url.clone());
                    url
                }
            };
            sqs.change_message_visibility()
                .queue_url(url)
                .receipt_handle(&r.handle)
                .visibility_timeout(h.seconds)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            Ok::<_, String>(())
        }
        .await;
        match result {
            Ok(()) => info!(
                message_id = %h.message_id,
                receive_count = r.receive_count,
                hidden_s = h.seconds,
                why = h.why.as_str(),
                "message handed back, hidden until its next try"
            ),
            Err(e) => warn!(
                message_id = %h.message_id,
                error = %e,
                "could not hide the message; it comes back after the queue's visibility timeout"
            ),
        }
    }
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
