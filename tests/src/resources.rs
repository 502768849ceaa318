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
pub const LINKS_SUFFIX: &str = "links";
pub const FIELD_STATE_SUFFIX: &str = "field-state";
pub const SYNC_LOG_SUFFIX: &str = "sync-log";
pub const CONFLICTS_SUFFIX: &str = "conflicts";
pub const RUNS_SUFFIX: &str = "runs";
pub const BREAKERS_SUFFIX: &str = "breakers";
/// The reports bucket; in AWS the account and region follow it, as bucket
/// names are global.
pub const REPORTS_SUFFIX: &str = "reports";

/// A table's name suffix, hash key, range key and TTL attribute.
pub struct TableSpec {
    pub suffix: &'static str,
    pub hash: &'static str,
    pub range: Option<&'static str>,
    pub ttl: Option<&'static str>,
}

/// Every table the functions use.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        suffix: EVENTS_TABLE_SUFFIX,
        hash: dynamo_events::KEY,
        range: None,
        ttl: Some(dynamo_events::TTL_ATTRIBUTE),
    },
    TableSpec {
        suffix: LINKS_SUFFIX,
        hash: "company_id",
        range: None,
        ttl: None,
    },
    TableSpec {
        suffix: FIELD_STATE_SUFFIX,
        hash: "customer_id",
        range: Some("field"),
        ttl: None,
    },
    TableSpec {
        suffix: SYNC_LOG_SUFFIX,
        hash: "customer_id",
        range: Some("entry"),
        ttl: Some("expires_at"),
    },
    TableSpec {
        suffix: CONFLICTS_SUFFIX,
        hash: "customer_id",
        range: Some("conflict"),
        ttl: None,
    },
    TableSpec {
        suffix: BREAKERS_SUFFIX,
        hash: hubwarp::store::breakers::KEY,
        range: None,
        ttl: Some(hubwarp::store::breakers::TTL_ATTRIBUTE),
    },
    TableSpec {
        suffix: RUNS_SUFFIX,
        hash: hubwarp::reconcile::run_store::KEY,
        range: None,
        ttl: None,
    },
];
/// Receives before a message goes to the dead-letter queue: with the
/// consumer's backoff, days of retries (`hubwarp::sync::backoff`).
pub const MAX_RECEIVE_COUNT: u32 = 1000;
/// The sync queue keeps a message 14 days (SQS's most), so one whose
/// receives run out reaches the DLQ before it could expire.
pub const SYNC_RETENTION_S: u32 = 1_209_600;
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

    pub fn table(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    pub fn events_table(&self) -> String {
        self.table(EVENTS_TABLE_SUFFIX)
    }

    /// The consumer's tables.
    pub fn sync_tables(&self) -> hubwarp::store::SyncTables {
        hubwarp::store::SyncTables {
            links: self.table(LINKS_SUFFIX),
            field_state: self.table(FIELD_STATE_SUFFIX),
            sync_log: self.table(SYNC_LOG_SUFFIX),
            conflicts: self.table(CONFLICTS_SUFFIX),
        }
    }

    pub fn breakers_table(&self) -> String {
        self.table(BREAKERS_SUFFIX)
    }

    pub fn runs_table(&self) -> String {
        self.table(RUNS_SUFFIX)
    }

    pub fn reports_bucket(&self) -> String {
        format!("{}-{REPORTS_SUFFIX}", self.prefix)
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
    /// The review links' key in Secrets Manager.
    pub review_key_arn: String,
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
    ensure_with_receives(aws, names, MAX_RECEIVE_COUNT).await
}

/// As [`ensure`], the sync queue's redrive policy moving a message to the
/// DLQ after `max_receives` (a test of the DLQ's mechanics needs few).
pub async fn ensure_with_receives(
    aws: &SdkConfig,
    names: &Names,
    max_receives: u32,
) -> Result<Resources, SetupError> {
    for spec in TABLES {
        ensure_table(aws, &names.table(spec.suffix), spec).await?;
    }
    let (sync_queue_url, sync_dlq_url) = ensure_sync_queues(aws, names, max_receives).await?;
    ensure_bucket(aws, &names.reports_bucket()).await?;
    ensure_sender(aws, REPORT_SENDER).await?;
    let review_key_arn = ensure_review_key(aws, names).await?;
    Ok(Resources {
        names: names.clone(),
        sync_queue_url,
        sync_dlq_url,
        review_key_arn,
    })
}

/// The report e-mail's sender on the local stack: an identity SES has
/// verified (moto's SES refuses any other sender, as SES does).
pub const REPORT_SENDER: &str = "reports@hubwarp.example";

async fn ensure_sender(aws: &SdkConfig, sender: &str) -> Result<(), SetupError> {
    let ses = aws_sdk_sesv2::Client::new(aws);
    if ses
        .get_email_identity()
        .email_identity(sender)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    ses.create_email_identity()
        .email_identity(sender)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail(sender, e))
}

/// The review links' key, as the stack generates it (`<prefix>/review-link-key`,
/// 64 random letters and digits); its ARN.
async fn ensure_review_key(aws: &SdkConfig, names: &Names) -> Result<String, SetupError> {
    let sm = aws_sdk_secretsmanager::Client::new(aws);
    let name = format!("{}/review-link-key", names.prefix);
    if let Ok(found) = sm.describe_secret().secret_id(&name).send().await {
        return Ok(found.arn.unwrap_or(name));
    }
    let value: String = (0..2)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let made = sm
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| fail(&name, e))?;
    Ok(made.arn.unwrap_or(name))
}

async fn ensure_bucket(aws: &SdkConfig, bucket: &str) -> Result<(), SetupError> {
    let s3 = hubwarp::store::reports::s3_client(aws);
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail(bucket, e))
}

async fn ensure_table(aws: &SdkConfig, table: &str, spec: &TableSpec) -> Result<(), SetupError> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let exists = ddb.describe_table().table_name(table).send().await.is_ok();
    if !exists {
        let mut req = ddb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in std::iter::once((spec.hash, KeyType::Hash))
            .chain(spec.range.map(|r| (r, KeyType::Range)))
        {
            req = req
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(|e| fail(table, e))?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(kind)
                        .build()
                        .map_err(|e| fail(table, e))?,
                );
        }
        req.send().await.map_err(|e| fail(table, e))?;
    }
    let Some(ttl) = spec.ttl else { return Ok(()) };
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .map_err(|e| fail(table, e))?,
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
    max_receives: u32,
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
        "maxReceiveCount": max_receives.to_string(),
    })
    .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(names.sync_queue())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            SYNC_VISIBILITY_TIMEOUT_S.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            SYNC_RETENTION_S.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| fail(names.sync_queue(), e))?
        .queue_url
        .unwrap_or_default();
    Ok((queue_url, dlq_url))
}
