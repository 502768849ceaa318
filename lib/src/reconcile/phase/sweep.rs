//! Phase 3: event records left RECEIVED long after their lease lapsed are
//! queued again from the message kept on the record.

use tracing::info;

use crate::queue::{Outgoing, SyncQueue};
use crate::reconcile::checkpoint::{Phase, RunRecord};
use crate::reconcile::report::Piece;
use crate::reconcile::step::{Ctx, Interrupt, store};
use crate::store::{EventLog, StuckEvents};
use crate::time::now_ms;

/// One page of the sweep: it needs only the event log and the queue.
pub(in crate::reconcile) async fn sweep_step<E, Q>(
    events: &E,
    queue: &Q,
    sweep_after: std::time::Duration,
    ctx: &Ctx<'_>,
    run: &mut RunRecord,
) -> Result<(String, Piece), Interrupt>
where
    E: EventLog + StuckEvents,
    Q: SyncQueue,
{
    let page_no = run.cursor.sweep_pages + 1;
    let mut piece = Piece::default();
    let cutoff = now_ms() - sweep_after.as_millis() as i64;
    let (stuck, next) = events
        .stuck_page(cutoff, run.cursor.sweep_start.take())
        .await
        .map_err(store("scanning for stuck events"))?;
    for event in stuck {
        if ctx.dry_run {
            piece.counters.swept += 1;
            piece.swept.push(event.dedup_key);
            continue;
        }
        let owner = format!("sweep:{}", ctx.run_id);
        let lease_until = now_ms() + 60_000;
        let taken = events
            .take_stuck(&event.dedup_key, &owner, cutoff, lease_until)
            .await
            .map_err(store("taking a stuck event"))?;
        if !taken {
            continue;
        }
        let sent = queue
            .send_all(&[Outgoing {
                id: "0",
                body: &event.message,
            }])
            .await;
        match sent.into_iter().next() {
            Some(Ok(())) => {
                events
                    .mark_queued(&event.dedup_key, &owner, now_ms())
                    .await
                    .map_err(store("marking a swept event queued"))?;
                info!(run_id = ctx.run_id, dedup_key = %event.dedup_key, "stuck event queued again");
                piece.counters.swept += 1;
                piece.swept.push(event.dedup_key);
            }
            Some(Err(e)) => {
                let _ = events.release(&event.dedup_key, &owner).await;
                piece.error(None, None, "queueing a stuck event", e.to_string());
            }
            None => {}
        }
    }
    run.cursor.sweep_pages = page_no;
    run.cursor.sweep_start = next;
    if run.cursor.sweep_start.is_none() {
        run.cursor.phase = Phase::Finish;
    }
    Ok((format!("3-{page_no:06}"), piece))
}
