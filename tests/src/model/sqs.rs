//! The sync queue and its dead-letter queue as SQS behaves for one Lambda
//! event source mapping, in process: a receive hides a message for the
//! visibility timeout and counts the receive; a message not deleted comes
//! back when the timeout lapses, in no particular order; one received more
//! than `max_receives` times moves to the DLQ instead of being handed out.
//! Time is the model's clock (`hubwarp::time::now_ms`).

use std::sync::{Arc, Mutex, MutexGuard};

use hubwarp::queue::{Outgoing, QueueError, SyncQueue};
use hubwarp::time::now_ms;
use rand::Rng;
use rand::seq::SliceRandom;

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub receives: u32,
    /// Receives that came to an invocation where a fault was injected.
    pub faulted_receives: u32,
    pub visible_at_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    live: Vec<Message>,
    dlq: Vec<Message>,
    next_id: u64,
    sent: u64,
    /// Dedup keys of every message ever sent.
    keys: std::collections::HashSet<String>,
}

#[derive(Debug, Clone)]
pub struct SimQueue {
    inner: Arc<Mutex<Inner>>,
    pub visibility_ms: i64,
    pub max_receives: u32,
}

impl SimQueue {
    pub fn new(visibility_ms: i64, max_receives: u32) -> Self {
        Self {
            inner: Arc::default(),
            visibility_ms,
            max_receives,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `max` visible messages, shuffled (standard queues keep no
    /// order); each hidden for the visibility timeout. Messages past their
    /// receives go to the DLQ here, as SQS moves them on a receive.
    pub fn receive(&self, max: usize, rng: &mut impl Rng) -> Vec<Message> {
        let now = now_ms();
        let (visibility, max_receives) = (self.visibility_ms, self.max_receives);
        let mut inner = self.lock();
        let (dead, live): (Vec<Message>, Vec<Message>) = std::mem::take(&mut inner.live)
            .into_iter()
            .partition(|m| m.visible_at_ms <= now && m.receives >= max_receives);
        inner.live = live;
        inner.dlq.extend(dead);
        let mut visible: Vec<usize> = (0..inner.live.len())
            .filter(|&i| inner.live[i].visible_at_ms <= now)
            .collect();
        visible.shuffle(rng);
        visible.truncate(max);
        visible
            .into_iter()
            .map(|i| {
                let m = &mut inner.live[i];
                m.receives += 1;
                m.visible_at_ms = now + visibility;
                m.clone()
            })
            .collect()
    }

    /// Hides a received message for `ms` from now (ChangeMessageVisibility).
    pub fn hide(&self, id: &str, ms: i64) {
        let now = now_ms();
        if let Some(m) = self.lock().live.iter_mut().find(|m| m.id == id) {
            m.visible_at_ms = now + ms;
        }
    }

    /// Deletes a received message (the invocation succeeded for it).
    pub fn delete(&self, id: &str) {
        self.lock().live.retain(|m| m.id != id);
    }

    /// Notes that a receive of `id` met an injected fault.
    pub fn note_faulted(&self, id: &str) {
        if let Some(m) = self.lock().live.iter_mut().find(|m| m.id == id) {
            m.faulted_receives += 1;
        }
    }

    pub fn live(&self) -> usize {
        self.lock().live.len()
    }

    /// When the next hidden message becomes visible, if any is hidden.
    pub fn next_visible_ms(&self) -> Option<i64> {
        self.lock().live.iter().map(|m| m.visible_at_ms).min()
    }

    pub fn dlq(&self) -> Vec<Message> {
        self.lock().dlq.clone()
    }

    /// Distinct events that reached the queue.
    pub fn keys(&self) -> usize {
        self.lock().keys.len()
    }

    pub fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// Appends messages as a successful `SendMessageBatch` does.
    pub fn push(&self, bodies: &[&str]) {
        let now = now_ms();
        let mut inner = self.lock();
        for body in bodies {
            if let Ok(m) = hubwarp::queue::SyncMessage::read(body) {
                inner.keys.insert(m.dedup_key.to_string());
            }
            inner.next_id += 1;
            inner.sent += 1;
            let id = format!("msg-{}", inner.next_id);
            inner.live.push(Message {
                id,
                body: body.to_string(),
                receives: 0,
                faulted_receives: 0,
                visible_at_ms: now,
            });
        }
    }
}

impl SyncQueue for SimQueue {
    async fn send_all(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), QueueError>> {
        let bodies: Vec<&str> = messages.iter().map(|m| m.body).collect();
        self.push(&bodies);
        messages.iter().map(|_| Ok(())).collect()
    }
}
