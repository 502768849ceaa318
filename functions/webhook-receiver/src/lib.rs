//! webhook-receiver: HubSpot's webhook subscription URL.
//!
//! Verifies the signature, records every event idempotently in DynamoDB,
//! queues it on SQS, and answers within HubSpot's 5-second budget.

pub mod config;
pub mod handler;
pub mod signed_uri;

use hubwarp::hubspot::signature::{ClientSecret, Verifier};
use hubwarp::intake::{Intake, IntakeSettings};
use hubwarp::queue::SqsQueue;
use hubwarp::settings::SettingError;
use hubwarp::store::DynamoEventLog;

pub use config::Config;
pub use handler::Receiver;
pub use hubwarp::startup::StartupError;

/// The receiver as deployed: DynamoDB event log, SQS sync queue.
pub type AwsReceiver = Receiver<DynamoEventLog, SqsQueue>;

impl AwsReceiver {
    /// Builds the receiver from its config: reads the client secret (from
    /// Secrets Manager when so configured) and creates the clients once.
    pub async fn from_config(
        config: &Config,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, StartupError> {
        let raw = config.client_secret.resolve(aws).await?;
        let secrets = ClientSecret::parse_list(&raw)
            .map_err(|reason| SettingError::malformed(config.client_secret.setting(), reason))?;
        let settings = IntakeSettings {
            retention: std::time::Duration::from_secs(config.event_retention_days * 24 * 3600),
            ..IntakeSettings::default()
        };
        Ok(Receiver {
            verifier: Verifier::new(secrets, config.min_signature_version),
            public_url: config.public_url.clone(),
            max_body_bytes: config.max_body_bytes,
            intake: Intake::new(
                DynamoEventLog::new(hubwarp::aws::dynamodb(aws), &config.events_table),
                SqsQueue::new(hubwarp::aws::sqs(aws), &config.sync_queue_url),
                settings,
            ),
        })
    }
}
