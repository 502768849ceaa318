//! AWS SDK configuration, loaded once per cold start.
//!
//! The SDK's default chain already honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`, which is how local runs and
//! tests point the real clients at a moto server on loopback.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::settings::Env;

/// Loads the SDK config with a time budget per call. The SDK sets no
/// operation timeout by default, so one stuck connection would otherwise
/// hold a request until the Lambda timeout: with a budget, the call fails,
/// is retried within it, and the caller answers in time.
///
/// Endpoint, region and keys are taken from `env` when it has them, so that
/// local defaults (see [`crate::settings::LOCAL_DEFAULTS`]) reach the SDK
/// too; in AWS these are Lambda's own variables, read the same way.
pub async fn load(env: &Env, call_budget: Duration) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(call_budget));
    if let Some(url) = env.optional("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = env.optional("AWS_REGION") {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let (Some(key), Some(secret)) = (
        env.optional("AWS_ACCESS_KEY_ID"),
        env.optional("AWS_SECRET_ACCESS_KEY"),
    ) {
        let token = env.optional("AWS_SESSION_TOKEN").map(str::to_string);
        loader =
            loader.credentials_provider(Credentials::new(key, secret, token, None, "environment"));
    }
    loader.load().await
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

/// A Lambda client. The shared config points every client at the local AWS
/// (moto); Lambda alone may be served elsewhere (`AWS_ENDPOINT_URL_LAMBDA`:
/// locally, `cargo lambda watch`'s invoke endpoint).
pub fn lambda(config: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_lambda::Client {
    match endpoint {
        Some(url) => aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(config)
                .endpoint_url(url)
                .build(),
        ),
        None => aws_sdk_lambda::Client::new(config),
    }
}
