//! Where a history's ports live, and the queue as Lambda's SQS trigger
//! sees it.
//!
//! - [`InProcess`]: the library's in-memory event log and sync store,
//!   [`SimQueue`] and the sandboxes' in-process doors. A history makes a
//!   few thousand port calls, and moto answers each in milliseconds, so
//!   the thousands of histories of `make model` run here.
//! - [`OnMoto`]: what the functions run on in AWS: the DynamoDB event log,
//!   sync store and run store, the SQS queue with its redrive policy and
//!   DLQ, the S3 report store (all through the aws-sdk clients, against
//!   moto on loopback), and the WARP and HubSpot HTTP clients against the
//!   sandboxes served on loopback. The `model` test runs a few histories
//!   here, so the adapters and clients are checked against the same model.
//!
//! The history drives both the same way; only how a message comes back
//! differs. SQS hides a received message in wall-clock time, a history
//! lives in model time: [`OnMoto`] receives with a long visibility
//! timeout and makes a message visible again (`ChangeMessageVisibility`
//! 0) once the model's visibility timeout has lapsed, so redelivery,
//! receive counts and the move to the DLQ are SQS's own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::queue::{SqsQueue, SyncMessage, SyncQueue};
use hubwarp::reconcile::ports::{HubspotCompanies, ReportStore, RunStore, WarpCustomers};
use hubwarp::reconcile::run_store::{DynamoRunStore, MemoryRunStore};
use hubwarp::store::sync::{ConflictQueue, FieldStateStore, LinkStore, SyncLog, SyncLogReader};
use hubwarp::store::{
    DynamoEventLog, DynamoSyncStore, EventLog, MemoryEventLog, MemoryReportStore, MemorySyncStore,
    S3ReportStore, StuckEvents,
};
use hubwarp::sync::ports::CompanyDirectory;
use hubwarp::time::now_ms;
use hubwarp::warp::WarpApi;
use hubwarp::warp::WarpClient;
use rand::rngs::StdRng;

use super::sqs::SimQueue;
use crate::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox};
use crate::moto::MotoServer;
use crate::resources::{self, MAX_RECEIVE_COUNT, Names};
use crate::warp_sandbox::{SANDBOX_TOKEN, WarpSandbox};
use hubwarp::aws::Caller;

/// How long a received message stays hidden, in model time (the queue's
/// 180 s would only stretch a history; what matters is that it lapses).
pub const VISIBILITY_MS: i64 = 30_000;

/// A message as an invocation received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub body: String,
    /// Receives so far, this one included.
    pub receives: u32,
    /// Receives that came to an invocation where a fault was injected.
    pub faulted_receives: u32,
}

impl From<super::sqs::Message> for Received {
    fn from(m: super::sqs::Message) -> Self {
        Received {
            id: m.id,
            body: m.body,
            receives: m.receives,
            faulted_receives: m.faulted_receives,
        }
    }
}

/// The ports of one history, and the sandboxes behind them (a person's
/// edits go straight to the sandbox, as a person's do to WARP or HubSpot).
pub struct Parts<B: Backend> {
    /// The model's own view, for its checks.
    pub log: Arc<B::Log>,
    pub store: Arc<B::Store>,
    pub warp_api: Arc<B::Warp>,
    pub hub_api: Arc<B::Hub>,
    pub queue: Arc<B::Queue>,
    /// The same state as each function reaches it: on moto each signs its
    /// calls with its own name, so the call log judges every call against
    /// that function's role (`make iam-check`); in process, the same twins.
    pub receiver: Ports<B>,
    pub consumer: Ports<B>,
    pub reconciler: Ports<B>,
    /// The reconciler's.
    pub runs: B::Runs,
    pub reports: B::Reports,
    pub warp: Arc<WarpSandbox>,
    pub hub: Arc<HubspotSandbox>,
}

pub struct Ports<B: Backend> {
    pub log: Arc<B::Log>,
    pub store: Arc<B::Store>,
    pub queue: Arc<B::Queue>,
}

impl<B: Backend> Clone for Ports<B> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            store: self.store.clone(),
            queue: self.queue.clone(),
        }
    }
}

// Only this crate drives a backend, awaited on the history's own task, so
// the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Backend: Sized {
    type Log: EventLog + StuckEvents + 'static;
    type Store: LinkStore + FieldStateStore + SyncLog + ConflictQueue + SyncLogReader + 'static;
    type Warp: WarpApi + WarpCustomers + 'static;
    type Hub: CompanyDirectory + HubspotCompanies + 'static;
    type Queue: SyncQueue + 'static;
    type Runs: RunStore;
    type Reports: ReportStore;

    /// Fresh, empty ports for one history.
    async fn build() -> Result<(Self, Parts<Self>), String>;

    /// Up to `max` visible messages, each hidden for [`VISIBILITY_MS`];
    /// a message past its receives goes to the DLQ instead.
    async fn receive(&mut self, max: usize, rng: &mut StdRng) -> Result<Vec<Received>, String>;

    /// Deletes a received message (its invocation succeeded for it).
    async fn delete(&mut self, id: &str) -> Result<(), String>;

    /// Hides a received message for `seconds` of model time, as the
    /// consumer's `ChangeMessageVisibility` does.
    async fn hide(&mut self, id: &str, seconds: i32) -> Result<(), String>;

    /// Notes that a receive of `id` met an injected fault.
    fn note_faulted(&mut self, id: &str);

    /// Messages on the queue, visible or not.
    async fn live(&mut self) -> Result<usize, String>;

    /// When the next hidden message becomes visible, if one is hidden.
    fn next_visible_ms(&self) -> Option<i64>;

    /// Every message in the dead-letter queue.
    async fn dlq(&mut self) -> Result<Vec<Received>, String>;

    /// Distinct events (dedup keys) that reached the queue.
    fn keys(&self) -> usize;
}

/// WARP customers holding every value the model's generator gives an
/// enumeration (fields.rs), for the HubSpot portal's options.
fn generated_values() -> Vec<serde_json::Value> {
    let pools: Vec<(&str, &[&str])> = super::fields::FIELDS
        .iter()
        .filter_map(|f| match f.kind {
            super::fields::Kind::Enum(pool) => Some((f.warp, pool)),
            _ => None,
        })
        .collect();
    let most = pools.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
    (0..most)
        .map(|i| {
            let customer: serde_json::Map<String, serde_json::Value> = pools
                .iter()
                .filter_map(|(warp, pool)| pool.get(i).map(|v| (warp.to_string(), (*v).into())))
                .collect();
            serde_json::Value::Object(customer)
        })
        .collect()
}

/// Everything in process; see the module's comment.
pub struct InProcess {
    queue: SimQueue,
}

impl Backend for InProcess {
    type Log = MemoryEventLog;
    type Store = MemorySyncStore;
    type Warp = WarpSandbox;
    type Hub = HubspotSandbox;
    type Queue = SimQueue;
    type Runs = MemoryRunStore;
    type Reports = MemoryReportStore;

    async fn build() -> Result<(Self, Parts<Self>), String> {
        let queue = SimQueue::new(VISIBILITY_MS, MAX_RECEIVE_COUNT);
        let warp = Arc::new(WarpSandbox::in_process());
        let hub = Arc::new(HubspotSandbox::in_process());
        crate::hubspot_setup::install_bridge_properties(&hub, &generated_values());
        let shared = Ports::<Self> {
            log: Arc::new(MemoryEventLog::new()),
            store: Arc::new(MemorySyncStore::new()),
            queue: Arc::new(queue.clone()),
        };
        let parts = Parts {
            log: shared.log.clone(),
            store: shared.store.clone(),
            warp_api: warp.clone(),
            hub_api: hub.clone(),
            queue: shared.queue.clone(),
            receiver: shared.clone(),
            consumer: shared.clone(),
            reconciler: shared,
            runs: MemoryRunStore::default(),
            reports: MemoryReportStore::default(),
            warp,
            hub,
        };
        Ok((InProcess { queue }, parts))
    }

    async fn receive(&mut self, max: usize, rng: &mut StdRng) -> Result<Vec<Received>, String> {
        Ok(self
            .queue
            .receive(max, rng)
            .into_iter()
            .map(Received::from)
            .collect())
    }

    async fn delete(&mut self, id: &str) -> Result<(), String> {
        self.queue.delete(id);
        Ok(())
    }

    async fn hide(&mut self, id: &str, seconds: i32) -> Result<(), String> {
        self.queue.hide(id, i64::from(seconds) * 1000);
        Ok(())
    }

    fn note_faulted(&mut self, id: &str) {
        self.queue.note_faulted(id);
    }

    async fn live(&mut self) -> Result<usize, String> {
        Ok(self.queue.live())
    }

    fn next_visible_ms(&self) -> Option<i64> {
        self.queue.next_visible_ms()
    }

    async fn dlq(&mut self) -> Result<Vec<Received>, String> {
        Ok(self.queue.dlq().into_iter().map(Received::from).collect())
    }

    fn keys(&self) -> usize {
        self.queue.keys()
    }
}

/// A received message SQS holds hidden until the model says otherwise.
struct Hidden {
    receipt: String,
    visible_at_ms: i64,
}

/// DynamoDB, SQS and S3 on moto, the sandboxes over HTTP; see the module's
/// comment.
pub struct OnMoto {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    dlq_url: String,
    hidden: HashMap<String, Hidden>,
    receives: HashMap<String, u32>,
    faulted: HashMap<String, u32>,
    keys: HashSet<String>,
}

fn sqs_error(what: &str, e: impl std::error::Error) -> String {
    format!("SQS {what}: {}", aws_sdk_sqs::error::DisplayErrorContext(e))
}

impl OnMoto {
    /// Makes visible again (in SQS) what the model's timeout released.
    async fn release_lapsed(&mut self) -> Result<(), String> {
        let now = now_ms();
        let lapsed: Vec<String> = self
            .hidden
            .iter()
            .filter(|(_, h)| h.visible_at_ms <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lapsed {
            let Some(h) = self.hidden.remove(&id) else {
                continue;
            };
            self.sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(h.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| sqs_error("ChangeMessageVisibility", e))?;
        }
        Ok(())
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility_s: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
        Ok(self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(visibility_s)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?
            .messages
            .unwrap_or_default())
    }

    fn note_key(&mut self, body: &str) {
        if let Ok(m) = SyncMessage::read(body) {
            self.keys.insert(m.dedup_key.to_string());
        }
    }
}

impl Backend for OnMoto {
    type Log = DynamoEventLog;
    type Store = DynamoSyncStore;
    type Warp = WarpClient;
    type Hub = HubspotClient;
    type Queue = SqsQueue;
    type Runs = DynamoRunStore;
    type Reports = S3ReportStore;

    async fn build() -> Result<(Self, Parts<Self>), String> {
        let aws = MotoServer::shared().sdk_config().await;
        let names = Names::unique("model");
        let res = resources::ensure(&aws, &names)
            .await
            .map_err(|e| e.to_string())?;
        let warp = Arc::new(WarpSandbox::start().await);
        let hub = Arc::new(HubspotSandbox::start().await);
        crate::hubspot_setup::install_bridge_properties(&hub, &generated_values());
        let timeout = Duration::from_secs(10);
        // A port fault stands for every failure a client could give up on,
        // so the clients themselves do not retry.
        let warp_api = WarpClient::new(
            &warp.base_url,
            Token::new(SANDBOX_TOKEN),
            timeout,
            RetryPolicy::none(),
        )
        .map_err(|e| e.to_string())?;
        let hub_api = HubspotClient::new(
            &hub.base_url,
            Token::new(HUBSPOT_SANDBOX_TOKEN),
            timeout,
            RetryPolicy::none(),
        )
        .map_err(|e| e.to_string())?;
        let ports = |aws: &aws_config::SdkConfig| {
            let ddb = hubwarp::aws::dynamodb(aws);
            Ports::<Self> {
                log: Arc::new(DynamoEventLog::new(ddb.clone(), names.events_table())),
                store: Arc::new(DynamoSyncStore::new(
                    ddb,
                    names.sync_tables(),
                    Duration::from_secs(90 * 86_400),
                )),
                queue: Arc::new(SqsQueue::new(hubwarp::aws::sqs(aws), &res.sync_queue_url)),
            }
        };
        let own = ports(&aws);
        let sqs = hubwarp::aws::sqs(&aws);
        let reconciler_aws = Caller::NightlyReconciler.tag(&aws);
        let parts = Parts {
            log: own.log,
            store: own.store,
            warp_api: Arc::new(warp_api),
            hub_api: Arc::new(hub_api),
            queue: own.queue,
            receiver: ports(&Caller::WebhookReceiver.tag(&aws)),
            consumer: ports(&Caller::SyncConsumer.tag(&aws)),
            reconciler: ports(&reconciler_aws),
            runs: DynamoRunStore::new(hubwarp::aws::dynamodb(&reconciler_aws), names.runs_table()),
            reports: S3ReportStore::new(
                hubwarp::store::reports::s3_client(&reconciler_aws),
                names.reports_bucket(),
            ),
            warp,
            hub,
        };
        let backend = OnMoto {
            sqs,
            queue_url: res.sync_queue_url,
            dlq_url: res.sync_dlq_url,
            hidden: HashMap::new(),
            receives: HashMap::new(),
            faulted: HashMap::new(),
            keys: HashSet::new(),
        };
        Ok((backend, parts))
    }

    async fn receive(&mut self, max: usize, _rng: &mut StdRng) -> Result<Vec<Received>, String> {
        self.release_lapsed().await?;
        // Hidden for an hour of wall-clock time: longer than any history,
        // so only `release_lapsed` brings a message back.
        let messages = self.receive_from(&self.queue_url, max, 3600).await?;
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let (Some(id), Some(body), Some(receipt)) = (m.message_id, m.body, m.receipt_handle)
            else {
                return Err("SQS ReceiveMessage: a message without id, body or handle".into());
            };
            let receives = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .ok_or("SQS ReceiveMessage: no ApproximateReceiveCount")?;
            self.receives.insert(id.clone(), receives);
            self.note_key(&body);
            self.hidden.insert(
                id.clone(),
                Hidden {
                    receipt,
                    visible_at_ms: now_ms() + VISIBILITY_MS,
                },
            );
            out.push(Received {
                faulted_receives: self.faulted.get(&id).copied().unwrap_or(0),
                id,
                body,
                receives,
            });
        }
        Ok(out)
    }

    async fn delete(&mut self, id: &str) -> Result<(), String> {
        let Some(h) = self.hidden.remove(id) else {
            return Err(format!("deleting {id}, which no invocation holds"));
        };
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(h.receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sqs_error("DeleteMessage", e))
    }

    fn note_faulted(&mut self, id: &str) {
        *self.faulted.entry(id.to_string()).or_default() += 1;
    }

    /// In model time: SQS holds the message hidden (for an hour of wall
    /// time) until `release_lapsed` finds its model time past.
    async fn hide(&mut self, id: &str, seconds: i32) -> Result<(), String> {
        let Some(h) = self.hidden.get_mut(id) else {
            return Err(format!("hiding {id}, which no invocation holds"));
        };
        h.visible_at_ms = now_ms() + i64::from(seconds) * 1000;
        Ok(())
    }

    async fn live(&mut self) -> Result<usize, String> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", e))?
            .attributes
            .unwrap_or_default();
        Ok([
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .filter_map(|a| attributes.get(a)?.parse::<usize>().ok())
        .sum())
    }

    fn next_visible_ms(&self) -> Option<i64> {
        self.hidden.values().map(|h| h.visible_at_ms).min()
    }

    async fn dlq(&mut self) -> Result<Vec<Received>, String> {
        let mut out = Vec::new();
        loop {
            let batch = self.receive_from(&self.dlq_url, 10, 3600).await?;
            if batch.is_empty() {
                return Ok(out);
            }
            for m in batch {
                let id = m.message_id.unwrap_or_default();
                let body = m.body.unwrap_or_default();
                self.note_key(&body);
                out.push(Received {
                    receives: self.receives.get(&id).copied().unwrap_or(0),
                    faulted_receives: self.faulted.get(&id).copied().unwrap_or(0),
                    id,
                    body,
                });
            }
        }
    }

    fn keys(&self) -> usize {
        self.keys.len()
    }
}
