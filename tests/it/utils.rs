//! A receiver wired to fresh tables and queues on the shared moto server.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use hubwarp::aws::Caller;
use hubwarp::hubspot::signature::{ClientSecret, SignatureVersion, Verifier};
use hubwarp::intake::{Intake, IntakeSettings};
use hubwarp::queue::SqsQueue;
use hubwarp::store::DynamoEventLog;
use integration_tests::fixtures::{self, LOCAL_SECRET, Signing};
use integration_tests::moto::MotoServer;
use integration_tests::resources::{self, Names, Resources};
use lambda_http::http::StatusCode;
use serde_json::Value;
use webhook_receiver::{AwsReceiver, Receiver};

pub const HOST: &str = "abc123xyz.lambda-url.us-east-1.on.aws";

pub struct Harness {
    pub aws: SdkConfig,
    pub res: Resources,
    pub receiver: AwsReceiver,
}

pub struct Options {
    pub min_version: SignatureVersion,
    pub max_body_bytes: usize,
    pub intake: IntakeSettings,
    pub queue_url: Option<String>,
    /// The sync queue's redrive policy (the template's unless a test of the
    /// DLQ's mechanics needs fewer receives).
    pub max_receives: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_version: SignatureVersion::V1,
            max_body_bytes: 1024 * 1024,
            intake: IntakeSettings::default(),
            queue_url: None,
            max_receives: resources::MAX_RECEIVE_COUNT,
        }
    }
}

impl Harness {
    pub async fn new(test: &str) -> Self {
        Self::with(test, Options::default()).await
    }

    pub async fn with(test: &str, options: Options) -> Self {
        Self::on(MotoServer::shared(), test, options).await
    }

    /// As [`Harness::with`], on a moto server of the test's own (for state
    /// the shared one must keep, such as SES's verified senders).
    pub async fn on(server: &MotoServer, test: &str, options: Options) -> Self {
        let aws = server.sdk_config().await;
        let names = Names::unique(test);
        let res = match resources::ensure_with_receives(&aws, &names, options.max_receives).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let receiver = receiver(&aws, &res, options);
        Self { aws, res, receiver }
    }

    /// Another receiver on the same resources (a second Lambda instance, or
    /// the same one after a fix).
    pub fn receiver(&self, options: Options) -> AwsReceiver {
        receiver(&self.aws, &self.res, options)
    }

    pub fn event(&self, body: &str, signing: Signing) -> Value {
        let mut event = fixtures::function_url_event(HOST, "/", "", body);
        fixtures::sign_event(&mut event, LOCAL_SECRET, signing, None);
        event
    }

    pub async fn deliver_with(receiver: &AwsReceiver, event: &Value) -> (StatusCode, Value) {
        let resp = match receiver.handle(fixtures::request(event)).await {
            Ok(r) => r,
            Err(e) => panic!("handler failed: {e}"),
        };
        let status = resp.status();
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn deliver(&self, body: &str, signing: Signing) -> (StatusCode, Value) {
        Self::deliver_with(&self.receiver, &self.event(body, signing)).await
    }

    /// Every message on the sync queue, removed from it.
    pub async fn drain_queue(&self) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let mut out = Vec::new();
        loop {
            let resp = sqs
                .receive_message()
                .queue_url(&self.res.sync_queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive: {e:?}"));
            let msgs = resp.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                let body = m.body.unwrap_or_default();
                out.push(
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("message {body}: {e}")),
                );
                sqs.delete_message()
                    .queue_url(&self.res.sync_queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("delete: {e:?}"));
            }
        }
    }

    pub async fn records(&self) -> Vec<HashMap<String, AttributeValue>> {
        let ddb = aws_sdk_dynamodb::Client::new(&self.aws);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let resp = ddb
                .scan()
                .table_name(self.res.names.events_table())
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scan: {e:?}"));
            items.extend(resp.items.unwrap_or_default());
            start = resp.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    pub fn log(&self) -> DynamoEventLog {
        DynamoEventLog::new(
            aws_sdk_dynamodb::Client::new(&self.aws),
            self.res.names.events_table(),
        )
    }

    /// The event log as `caller` reaches it.
    pub fn log_as(&self, caller: Caller) -> DynamoEventLog {
        DynamoEventLog::new(
            aws_sdk_dynamodb::Client::new(&self.aws_as(caller)),
            self.res.names.events_table(),
        )
    }

    /// The shared config as `caller` signs its calls (judged against its
    /// role by `make iam-check`).
    pub fn aws_as(&self, caller: Caller) -> SdkConfig {
        caller.tag(&self.aws)
    }
}

fn receiver(aws: &SdkConfig, res: &Resources, o: Options) -> AwsReceiver {
    let aws = &Caller::WebhookReceiver.tag(aws);
    Receiver {
        verifier: Verifier::new(vec![ClientSecret::new(LOCAL_SECRET)], o.min_version),
        public_url: None,
        max_body_bytes: o.max_body_bytes,
        intake: Intake::new(
            DynamoEventLog::new(aws_sdk_dynamodb::Client::new(aws), res.names.events_table()),
            SqsQueue::new(
                aws_sdk_sqs::Client::new(aws),
                o.queue_url.unwrap_or_else(|| res.sync_queue_url.clone()),
            ),
            o.intake,
        ),
    }
}

pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> &'a str {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

pub fn dedup_keys(messages: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = messages
        .iter()
        .map(|m| m["dedupKey"].as_str().unwrap_or_default().to_string())
        .collect();
    keys.sort();
    keys
}

/// A queue URL beside `sync_queue_url` (`<prefix>-sync`) with no queue
/// behind it, named `<prefix>-missing-sync`: within the roles' grant on
/// `${ResourcePrefix}-sync`, so the send fails on the queue, as intended,
/// and not on IAM.
pub fn missing_queue(sync_queue_url: &str) -> String {
    match sync_queue_url.strip_suffix("-sync") {
        Some(base) => format!("{base}-missing-sync"),
        None => panic!("not a sync queue URL: {sync_queue_url}"),
    }
}

/// The consumer's breaker in tests that pump the queue: it opens as
/// deployed (5 failed calls in a row) but for a second, doubling to two, so
/// a pump that meets an open circuit spins a second, not thirty.
pub fn quick_breaker() -> hubwarp::sync::breaker::BreakerSettings {
    use std::time::Duration;
    hubwarp::sync::breaker::BreakerSettings {
        failures: 5,
        open: Duration::from_secs(1),
        max_open: Duration::from_secs(2),
        refresh: Duration::from_millis(200),
        probe_lease: Duration::from_secs(5),
    }
}

/// The two sandboxes as the functions' settings name them: inline tokens,
/// five seconds a call.
pub fn sandbox_api(warp_url: &str, hubspot_url: &str) -> hubwarp::startup::ApiSettings {
    use hubwarp::secrets::SecretSource;
    hubwarp::startup::ApiSettings {
        warp_url: warp_url.to_string(),
        warp_token: SecretSource::Inline {
            setting: "WARP_API_TOKEN".into(),
            value: integration_tests::warp_sandbox::SANDBOX_TOKEN.into(),
        },
        hubspot_url: hubspot_url.to_string(),
        hubspot_token: SecretSource::Inline {
            setting: "HUBSPOT_ACCESS_TOKEN".into(),
            value: integration_tests::hubspot_sandbox::HUBSPOT_SANDBOX_TOKEN.into(),
        },
        timeout: std::time::Duration::from_secs(5),
    }
}

/// The reconciler's settings over a harness's tables, queue and bucket and
/// the two sandboxes, as its Lambda's environment would give them.
/// Pairs a run decides at once against moto: moto answers one request at
/// a time under a lock (tests/moto_server.py), and 32 at once starve its
/// accept loop past the SDK's 1 s connect timeout (DynamoDB takes them).
pub const MOTO_CONCURRENCY: usize = 8;

pub fn reconciler_config(
    h: &Harness,
    warp_url: &str,
    hubspot_url: &str,
    mappings: hubwarp::mapping::MappingSet,
    mut run: hubwarp::reconcile::run::RunSettings,
) -> nightly_reconciler::Config {
    run.concurrency = run.concurrency.min(MOTO_CONCURRENCY);
    nightly_reconciler::Config {
        metrics_namespace: hubwarp::metrics::DEFAULT_NAMESPACE.into(),
        events_table: h.res.names.events_table(),
        tables: h.res.names.sync_tables(),
        runs_table: h.res.names.runs_table(),
        reports_bucket: h.res.names.reports_bucket(),
        sync_queue_url: h.res.sync_queue_url.clone(),
        api: sandbox_api(warp_url, hubspot_url),
        hubspot_rate: std::sync::Arc::new(hubwarp::hubspot::rate::RateLimiter::new(100, 4)),
        mappings,
        alert_topic_arn: None,
        mail: None,
        function_name: "nightly-reconciler".into(),
        lambda_endpoint: None,
        run,
    }
}
