//! In-memory stores that answer as slowly as DynamoDB and S3 do from a
//! Lambda in the same region, for the benches: each DynamoDB-like call
//! waits `dynamo` (AWS's published single-digit-millisecond typical, 5 ms
//! by default) and each S3 put `s3_put` (20 ms), so a run's store round
//! trips show in its wall time, and every call and write unit is counted
//! for what a night costs. The state itself is the in-memory store's.
//!
//! The stores' state lives in the bench's process, where DynamoDB's and
//! S3's would not: every store call runs with [`in_store`] true on its
//! thread, so the bench's allocator can tell the stand-ins' memory from
//! the reconciler's (`reconcile-bench`, "own peak heap").

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hubwarp::mapping::conflict::FieldState;
use hubwarp::reconcile::checkpoint::{Claim, RunRecord};
use hubwarp::reconcile::ports::{ReportStore, RunStore};
use hubwarp::store::sync::{
    ConflictQueue, ConflictRecord, FieldStateStore, Link, LinkStore, SyncLog, SyncLogEntry,
};
use hubwarp::store::{
    ClaimOutcome, EventLog, EventStatus, Lease, NewEvent, StoreError, StuckEvent, StuckEvents,
};

thread_local! {
    static IN_STORE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a stand-in store's call: what it
/// allocates now is the store's (the state a real store keeps elsewhere).
pub fn in_store() -> bool {
    IN_STORE.with(Cell::get)
}

/// Polls `F` with [`in_store`] true.
struct InStore<F>(Pin<Box<F>>);

impl<F: Future> Future for InStore<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = IN_STORE.with(|f| f.replace(true));
        let answer = self.0.as_mut().poll(cx);
        IN_STORE.with(|f| f.set(outer));
        answer
    }
}

fn in_store_scope<F: Future>(f: F) -> InStore<F> {
    InStore(Box::pin(f))
}

/// DynamoDB's largest `BatchWriteItem`.
const BATCH_WRITE_ITEMS: u64 = 25;

/// How slow the stores are.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub dynamo: Duration,
    pub s3_put: Duration,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            dynamo: Duration::from_millis(5),
            s3_put: Duration::from_millis(20),
        }
    }
}

/// What the stores were asked, shared by every wrapper of one bench.
#[derive(Debug, Default)]
pub struct StoreCalls {
    pub dynamo_reads: AtomicU64,
    pub dynamo_writes: AtomicU64,
    /// Items written (each under 1 KB: one write request unit on demand).
    pub write_units: AtomicU64,
    pub s3_puts: AtomicU64,
    pub s3_reads: AtomicU64,
}

/// A snapshot of [`StoreCalls`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreFigures {
    pub dynamo_reads: u64,
    pub dynamo_writes: u64,
    pub write_units: u64,
    pub s3_puts: u64,
    pub s3_reads: u64,
}

impl StoreCalls {
    pub fn figures(&self) -> StoreFigures {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StoreFigures {
            dynamo_reads: n(&self.dynamo_reads),
            dynamo_writes: n(&self.dynamo_writes),
            write_units: n(&self.write_units),
            s3_puts: n(&self.s3_puts),
            s3_reads: n(&self.s3_reads),
        }
    }
}

impl std::ops::Sub for StoreFigures {
    type Output = StoreFigures;

    fn sub(self, before: StoreFigures) -> StoreFigures {
        StoreFigures {
            dynamo_reads: self.dynamo_reads - before.dynamo_reads,
            dynamo_writes: self.dynamo_writes - before.dynamo_writes,
            write_units: self.write_units - before.write_units,
            s3_puts: self.s3_puts - before.s3_puts,
            s3_reads: self.s3_reads - before.s3_reads,
        }
    }
}

/// `inner`, as slow as the store it stands for.
pub struct Slow<T> {
    inner: T,
    latency: Latency,
    calls: Arc<StoreCalls>,
}

impl<T> Slow<T> {
    pub fn new(inner: T, latency: Latency, calls: Arc<StoreCalls>) -> Self {
        Self {
            inner,
            latency,
            calls,
        }
    }

    async fn read<R>(&self, answer: impl Future<Output = R>) -> R {
        self.calls.dynamo_reads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency.dynamo).await;
        in_store_scope(answer).await
    }

    /// `calls` round trips writing `units` items.
    async fn write<R>(&self, calls: u64, units: u64, answer: impl Future<Output = R>) -> R {
        self.calls.dynamo_writes.fetch_add(calls, Ordering::Relaxed);
        self.calls.write_units.fetch_add(units, Ordering::Relaxed);
        for _ in 0..calls {
            tokio::time::sleep(self.latency.dynamo).await;
        }
        in_store_scope(answer).await
    }
}

impl<T: LinkStore> LinkStore for Slow<T> {
    async fn link(&self, company_id: &str) -> Result<Option<Link>, StoreError> {
        self.read(self.inner.link(company_id)).await
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.put_link(link)).await
    }
}

impl<T: FieldStateStore> FieldStateStore for Slow<T> {
    async fn field_states(
        &self,
        customer_id: &str,
    ) -> Result<HashMap<String, FieldState>, StoreError> {
        self.read(self.inner.field_states(customer_id)).await
    }

    async fn put_field_state(
        &self,
        customer_id: &str,
        field: &str,
        state: &FieldState,
    ) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.put_field_state(customer_id, field, state))
            .await
    }
}

impl<T: SyncLog> SyncLog for Slow<T> {
    async fn append(&self, entries: &[SyncLogEntry]) -> Result<(), StoreError> {
        let n = entries.len() as u64;
        self.write(n.div_ceil(BATCH_WRITE_ITEMS), n, self.inner.append(entries))
            .await
    }
}

impl<T: ConflictQueue> ConflictQueue for Slow<T> {
    /// A query for the open one, the new record, and the old one marked
    /// superseded when there was one: two writes at most.
    async fn put_conflict(&self, conflict: &ConflictRecord) -> Result<(), StoreError> {
        self.calls.dynamo_reads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency.dynamo).await;
        self.write(2, 2, self.inner.put_conflict(conflict)).await
    }

    async fn open_conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        self.read(self.inner.open_conflicts()).await
    }
}

impl<T: EventLog> EventLog for Slow<T> {
    async fn claim(
        &self,
        event: &NewEvent<'_>,
        lease: &Lease,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.write(1, 1, self.inner.claim(event, lease, now_ms, expires_at_s))
            .await
    }

    async fn mark_queued(
        &self,
        dedup_key: &str,
        lease_owner: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(1, 1, self.inner.mark_queued(dedup_key, lease_owner, now_ms))
            .await
    }

    async fn status(&self, dedup_key: &str) -> Result<Option<EventStatus>, StoreError> {
        self.read(self.inner.status(dedup_key)).await
    }

    async fn settle(
        &self,
        dedup_key: &str,
        status: &EventStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.settle(dedup_key, status, reason))
            .await
    }

    async fn record_unhandled(
        &self,
        event: &hubwarp::hubspot::webhook::Unhandled,
        now_ms: i64,
        expires_at_s: i64,
    ) -> Result<bool, StoreError> {
        self.write(
            1,
            1,
            self.inner.record_unhandled(event, now_ms, expires_at_s),
        )
        .await
    }

    async fn note_failure(
        &self,
        dedup_key: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.note_failure(dedup_key, error, now_ms))
            .await
    }

    async fn release(&self, dedup_key: &str, lease_owner: &str) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.release(dedup_key, lease_owner))
            .await
    }
}

impl<T: StuckEvents> StuckEvents for Slow<T> {
    async fn stuck_page(
        &self,
        lapsed_before_ms: i64,
        start: Option<String>,
    ) -> Result<(Vec<StuckEvent>, Option<String>), StoreError> {
        self.read(self.inner.stuck_page(lapsed_before_ms, start))
            .await
    }

    async fn take_stuck(
        &self,
        dedup_key: &str,
        owner: &str,
        lapsed_before_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(
            1,
            1,
            self.inner
                .take_stuck(dedup_key, owner, lapsed_before_ms, lease_until_ms),
        )
        .await
    }
}

impl<T: RunStore> RunStore for Slow<T> {
    async fn claim(
        &self,
        run_id: &str,
        fresh: Option<&RunRecord>,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        self.write(
            1,
            1,
            self.inner
                .claim(run_id, fresh, owner, lease_until_ms, now_ms),
        )
        .await
    }

    async fn checkpoint(
        &self,
        record: &RunRecord,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(1, 1, self.inner.checkpoint(record, owner, lease_until_ms))
            .await
    }

    async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read(self.inner.get(run_id)).await
    }
}

impl<T: ReportStore> ReportStore for Slow<T> {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.calls.s3_puts.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency.s3_put).await;
        // The object is the store's from here: a copy made in its scope
        // (the caller's bytes are freed as the caller's).
        in_store_scope(async move {
            let kept = body.to_vec();
            drop(body);
            self.inner.put(key, kept, content_type).await
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.calls.s3_reads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency.dynamo).await;
        in_store_scope(self.inner.get(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.calls.s3_reads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency.dynamo).await;
        in_store_scope(self.inner.list(prefix)).await
    }
}
