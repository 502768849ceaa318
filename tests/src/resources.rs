//! The AWS resources the functions use, created idempotently.
//!
//! Names and keys match `infra/template.yaml` (a test checks it), so local
//! runs, tests and the deployed stack agree.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use hubwarp::store::dynamo_events;

pub const DEFAULT_PREFIX: &str = "hubspot-warp";
pub const EVENTS_TABLE_SUFFIX: &str = "webhook-events";
pub const SYNC_QUEUE_SUFFIX: &str = "sync";
pub const SYNC_DLQ_SUFFIX: &str = "sync-dlq";
/// Receives before a message goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Six times the consumer's timeout, as AWS advises for SQS triggers.
pub const SYNC_VISIBILITY_TIMEOUT_S: u32 = 180;

#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// A prefix no other test uses.
    pub fn unique(test: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self::new(format!("{}-{}", test.replace('_', "-"), &id[..8]))
    }

    pub fn events_table(&self) -> String {
        format!("{}-{EVENTS_TABLE_SUFFIX}", self.prefix)
    }

    pub fn sync_queue(&self) -> String {
        format!("{}-{SYNC_QUEUE_SUFFIX}", self.prefix)
    }

    pub fn sync_dlq(&self) -> String {
        format!("{}-{SYNC_DLQ_SUFFIX}", self.prefix)
    }
}

/// What was created, with the values the functions' settings need.
#[derive(Debug, Clone)]
pub struct Resources {
    pub names: Names,
    pub sync_queue_url: String,
    pub sync_dlq_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("creating {what} failed: {message}")]
pub struct SetupError {
    what: String,
    message: String,
}

fn fail(what: impl Into<String>, e: impl std::error::Error) -> SetupError {
    SetupError {
        what: what.into(),
        message: DisplayErrorContext(e).to_string(),
    }
}

/// Creates every table and queue if missing; safe to run again.
pub async fn ensure(aws: &SdkConfig, names: &Names) -> Result<Resources, SetupError> {
    ensure_events_table(aws, names).await?;
    let (sync_queue_url, sync_dlq_url) = ensure_sync_queues(aws, names).await?;
    Ok(Resources {
        names: names.clone(),
        sync_queue_url,
        sync_dlq_url,
    })
}

async fn ensure_events_table(aws: &SdkConfig, names: &Names) -> Result<(), SetupError> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let table = names.events_table();
    let exists = ddb.describe_table().table_name(&table).send().await.is_ok();
    if !exists {
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(dynamo_events::KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| fail(&table, e))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(dynamo_events::KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| fail(&table, e))?,
            )
            .send()
            .await
            .map_err(|e| fail(&table, e))?;
    }
    ddb.update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(dynamo_events::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| fail(&table, e))?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            // Enabling TTL twice is refused; that is the state we want.
            let text = DisplayErrorContext(&e).to_string();
            if text.contains("already enabled") {
                Ok(())
            } else {
                Err(fail(format!("TTL on {table}"), e))
            }
        })
}

async fn ensure_sync_queues(
    aws: &SdkConfig,
    names: &Names,
) -> Result<(String, String), SetupError> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let dlq_url = sqs
        .create_queue()
        .queue_name(names.sync_dlq())
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| fail(names.sync_dlq(), e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(names.sync_dlq(), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    })
    .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(names.sync_queue())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            SYNC_VISIBILITY_TIMEOUT_S.to_string(),
        )
        .attributes(QueueAttributeName::MessageRetentionPeriod, "345600")
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| fail(names.sync_queue(), e))?
        .queue_url
        .unwrap_or_default();
    Ok((queue_url, dlq_url))
}
