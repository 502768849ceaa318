//! AWS SDK configuration, loaded once per cold start.
//!
//! The SDK's default chain already honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`, which is how local runs and
//! tests point the real clients at a moto server on loopback.

use aws_config::{BehaviorVersion, SdkConfig};

pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}
