//! In-memory twin of the sync queue, with injectable failures.

use std::collections::HashSet;
use std::sync::Mutex;

use super::{Outgoing, QueueError, SyncQueue};

#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<String>>,
    /// Ids (dedup keys) whose next send fails.
    fail_ids: Mutex<HashSet<String>>,
    fail_all: Mutex<bool>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bodies(&self) -> Vec<String> {
        lock(&self.sent).clone()
    }

    pub fn fail_once(&self, id: &str) {
        lock(&self.fail_ids).insert(id.to_string());
    }

    pub fn fail_all(&self, fail: bool) {
        *lock(&self.fail_all) = fail;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SyncQueue for MemoryQueue {
    async fn send_all(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), QueueError>> {
        let fail_all = *lock(&self.fail_all);
        messages
            .iter()
            .map(|m| {
                if fail_all || lock(&self.fail_ids).remove(m.id) {
                    return Err(QueueError::Aws {
                        operation: "SendMessageBatch",
                        message: "injected failure".into(),
                    });
                }
                lock(&self.sent).push(m.body.to_string());
                Ok(())
            })
            .collect()
    }
}
