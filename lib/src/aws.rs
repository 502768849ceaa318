//! AWS SDK configuration, loaded once per cold start.
//!
//! The SDK's default chain already honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`, which is how local runs and
//! tests point the real clients at a moto server on loopback.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK config with a time budget per call. The SDK sets no
/// operation timeout by default, so one stuck connection would otherwise
/// hold a request until the Lambda timeout: with a budget, the call fails,
/// is retried within it, and the caller answers in time.
pub async fn load(call_budget: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(call_budget))
        .load()
        .await
}

pub fn timeouts(call_budget: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1).min(call_budget))
        .operation_attempt_timeout(call_budget / 2)
        .operation_timeout(call_budget)
        .build()
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}
