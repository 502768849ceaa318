//! After the steps: faults stop and the queue drains (through any outage
//! under way), then the nightly runs, faulted and clean, and the checks.

use hubwarp::reconcile::ReconcileRequest;
use hubwarp::reconcile::ports::{NoAlerts, RecordedHandovers};
use hubwarp::time::{now_ms, set_clock_ms};

use super::{World, advance};
use crate::model::backend::Backend;
use crate::model::faults::Observed;

impl<B: Backend> World<B> {
    /// HubSpot finishes its retries, the consumer drains the queue.
    /// Faults stop; an outage under way goes on to its end while the queue
    /// is drained (the consumer backs off through it), and the nightly run
    /// comes after it.
    pub(super) async fn recover(&mut self) {
        self.plan.set(0.0, false);
        self.drain().await;
        if let Some(end) = self.plan.outages_end_ms()
            && end > now_ms()
        {
            set_clock_ms(Some(end));
            self.drain().await;
        }
    }

    /// Messages on the queue; a failure to count is the history's failure.
    pub(super) async fn live(&mut self) -> usize {
        match self.queue.live().await {
            Ok(n) => n,
            Err(e) => {
                self.fail(e);
                0
            }
        }
    }

    /// HubSpot's retries delivered as they come due and the consumer
    /// polled until the queue is empty. (After the nightly runs HubSpot
    /// owes nothing: it only polls.)
    async fn drain(&mut self) {
        // A three-day outage is hundreds of receives of each message.
        for _ in 0..1_000_000 {
            if let Some(due) = self.pending.iter().map(|p| p.due_ms).min() {
                set_clock_ms(Some(due.max(now_ms())));
                self.deliver_due().await;
                continue;
            }
            if self.live().await == 0 {
                return;
            }
            if let Some(at) = self.queue.next_visible_ms() {
                set_clock_ms(Some(at.max(now_ms())));
            }
            self.poll().await;
        }
        self.fail("the queue did not drain".into());
    }

    /// One nightly run to its end, as the platform drives it: handovers
    /// invoked, killed invocations retried once their lease lapses.
    async fn nightly(&mut self) -> Observed {
        let handovers = RecordedHandovers::default();
        // Scheduled, so a retry of a killed invocation is the same run; one
        // night later than the last run, since a run is one night.
        self.nights += 1;
        let scheduled =
            chrono::DateTime::from_timestamp_millis(now_ms() + self.nights * 86_400_000)
                .unwrap_or_default()
                .to_rfc3339();
        let mut request = ReconcileRequest {
            scheduled_time: Some(scheduled),
            ..ReconcileRequest::default()
        };
        self.plan.take_observed();
        let mut seen = Observed::default();
        for _ in 0..500 {
            self.figures.nightly_invocations += 1;
            let deadline = now_ms() + 15 * 60_000;
            let out = self
                .plan
                .run_killable(Box::pin(
                    self.reconciler
                        .invoke(&request, deadline, &handovers, &NoAlerts),
                ))
                .await;
            match out {
                None => advance(130_000),
                Some(Err(_)) => advance(1_000),
                Some(Ok(o)) => match o.status.as_str() {
                    "continued" => {
                        request = ReconcileRequest {
                            continue_run: Some(o.run_id.clone()),
                            ..ReconcileRequest::default()
                        };
                        advance(1_000);
                    }
                    "already running" => advance(130_000),
                    "completed" | "stopped" | "already ran" => {
                        seen.absorb(self.plan.take_observed());
                        return seen;
                    }
                    other => {
                        self.fail(format!("nightly run answered {other}"));
                        break;
                    }
                },
            }
            seen.absorb(self.plan.take_observed());
        }
        self.fail("nightly run did not finish".into());
        seen
    }

    pub(super) async fn nightly_and_checks(&mut self, fault_rate: f64) {
        advance(2 * 3_600_000);
        let at = now_ms();
        self.plan.set(fault_rate * 2.0, true);
        self.plan.set_races(false);
        let faulted = self.nightly().await;
        self.apply_race_edits(&faulted, at);
        let agreed = self.model.nightly(at);
        // Whatever the faulted run could not write, a clean run does.
        self.plan.set(0.0, false);
        advance(2 * 3_600_000);
        let recovery = self.nightly().await;
        self.baselines_after_nightly(faulted, recovery, &agreed)
            .await;
        // The events the sweep queued again.
        self.drain().await;
        // What they changed is the next run's to repair: a swept merge
        // re-links a customer the runs before could not pair.
        advance(3_600_000);
        let at = now_ms();
        let after_sweep = self.nightly().await;
        let agreed = self.model.nightly(at);
        self.baselines_after_nightly(after_sweep, Observed::default(), &agreed)
            .await;
        advance(3_600_000);
        let check = self.nightly().await;
        let (puts, updates) = (check.warp_puts.len(), check.hub_updates.len());
        if puts + updates > 0 {
            self.fail(format!(
                "a second nightly run wrote {puts} WARP customer(s) and {updates} HubSpot company(ies)"
            ));
        }
        self.check().await;
    }
}
