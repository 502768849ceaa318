//! AWS SDK configuration, loaded once per cold start.
//!
//! The SDK's default chain already honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`, which is how local runs and
//! tests point the real clients at a moto server on loopback.
//!
//! TLS trust: AWS endpoints present certificates of Amazon Trust Services,
//! which chain to Amazon Root CA 1-4 or the Starfield Services G2 root. The
//! SDK's default client instead parses the platform's whole store (about 140
//! roots, 2.3 ms of a 4 ms cold start on the receiver, measured with
//! `make coldstart`) before the first request. So the SDK trusts those five
//! roots, vendored in `aws/amazon-trust-services.pem`; a custom https
//! endpoint (`AWS_ENDPOINT_URL`), which may sit behind another CA, keeps
//! the platform's store.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::settings::Env;

/// Who calls AWS. Each function, and the operator's command, sends its
/// name as the SDK's app name (the `app/<name>` token of the user agent):
/// CloudTrail shows it as the call's user agent, and the local stack's call
/// log (`tests/moto_server.py`) uses it to judge every call the tests make
/// against that caller's role in the template (`make iam-check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    WebhookReceiver,
    SyncConsumer,
    NightlyReconciler,
    /// The page behind the report e-mail's review links.
    ReviewPage,
    /// `hubwarp`, under the operator policy the template outputs.
    Operator,
}

impl Caller {
    pub const ALL: [Caller; 5] = [
        Caller::WebhookReceiver,
        Caller::SyncConsumer,
        Caller::NightlyReconciler,
        Caller::ReviewPage,
        Caller::Operator,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Caller::WebhookReceiver => "webhook-receiver",
            Caller::SyncConsumer => "sync-consumer",
            Caller::NightlyReconciler => "nightly-reconciler",
            Caller::ReviewPage => "review-page",
            Caller::Operator => "hubwarp",
        }
    }

    fn app_name(self) -> Option<AppName> {
        // The names above are constants the SDK accepts (a unit test says so).
        AppName::new(self.name()).ok()
    }

    /// `config` with this caller's name on every call.
    pub fn tag(self, config: &SdkConfig) -> SdkConfig {
        let mut builder = config.to_builder();
        builder.set_app_name(self.app_name());
        builder.build()
    }
}

/// Loads the SDK config with a time budget per call. The SDK sets no
/// operation timeout by default, so one stuck connection would otherwise
/// hold a request until the Lambda timeout: with a budget, the call fails,
/// is retried within it, and the caller answers in time.
///
/// Endpoint, region and keys are taken from `env` when it has them, so that
/// local defaults (see [`crate::settings::LOCAL_DEFAULTS`]) reach the SDK
/// too; in AWS these are Lambda's own variables, read the same way.
pub async fn load(env: &Env, call_budget: Duration, caller: Caller) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(call_budget));
    if let Some(app) = caller.app_name() {
        loader = loader.app_name(app);
    }
    let endpoint = env.optional("AWS_ENDPOINT_URL");
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    // A plain-http endpoint (moto on loopback) needs no roots, so local runs
    // start as a function does in AWS; only an https endpoint of someone
    // else's (a proxy, an emulator with TLS) gets the system's store.
    if !endpoint.is_some_and(|url| url.starts_with("https://"))
        && let Some(http) = amazon_trust_services_client()
    {
        loader = loader.http_client(http);
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

/// Amazon Trust Services' roots, for every AWS endpoint.
const AMAZON_ROOTS: &[u8] = include_bytes!("aws/amazon-trust-services.pem");

/// The SDK's own rustls (aws-lc) client, trusting only [`AMAZON_ROOTS`].
/// `None` would leave the SDK's default (the platform's store); it cannot
/// happen with the vendored file, which a test parses.
fn amazon_trust_services_client() -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .ok()?;
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_is_a_valid_app_name() {
        for caller in Caller::ALL {
            assert!(caller.app_name().is_some(), "{caller:?}");
            let tagged = caller.tag(&SdkConfig::builder().build());
            assert_eq!(
                tagged.app_name().map(|a| a.to_string()).as_deref(),
                Some(caller.name())
            );
        }
    }

    #[test]
    fn the_vendored_roots_are_amazon_trust_services() {
        use rustls_pki_types::pem::PemObject;
        let pems: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(AMAZON_ROOTS)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(pems.len(), 5);
        let mut store = rustls::RootCertStore::empty();
        let (added, refused) = store.add_parsable_certificates(pems);
        assert_eq!((added, refused), (5, 0));
        assert!(amazon_trust_services_client().is_some());
    }
}
