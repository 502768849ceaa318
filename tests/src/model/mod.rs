//! Proof of convergence: random histories against a reference model, with
//! faults at every step (issue 9). [`history::run`] plays one seeded
//! history through the real receiver, queue protocol, consumer and
//! reconciler and checks the outcome against [`reference::Model`];
//! `make model` and `make soak` run many (src/bin/model.rs), and the
//! `model` test target runs them at CI size.

pub mod backend;
pub mod faults;
pub mod fields;
pub mod history;
pub mod reference;
pub mod sqs;

use history::{Figures, Shape};

/// The soak's histories: more customers, longer, faults as often.
pub const SOAK: Shape = Shape {
    customers: (40, 80),
    steps: (800, 1_200),
    fault_rate: 0.02,
    outage_rate: 0.3,
};

/// The command that replays one history.
pub fn replay_command(seed: u64) -> String {
    format!("make model CASES=1 SEED={seed}")
}

/// Histories on moto and the sandboxes over HTTP ([`backend::OnMoto`]):
/// fewer customers and steps, as every port call is a loopback request.
pub const ON_MOTO: Shape = Shape {
    customers: (3, 8),
    steps: (20, 60),
    fault_rate: 0.04,
    outage_rate: 0.2,
};

/// The command that replays one history on moto.
pub fn replay_on_moto_command(seed: u64) -> String {
    format!("make model MOTO=1 CASES=1 SEED={seed}")
}

/// Runs `cases` histories in process, seeds `base_seed..`; the failures
/// with their seeds (each printed with its replay command as it happens).
pub async fn run_many(cases: u64, base_seed: u64, shape: Shape) -> (Figures, Vec<(u64, String)>) {
    run_many_on::<backend::InProcess>(cases, base_seed, shape, replay_command).await
}

/// Runs `cases` histories on backend `B`.
pub async fn run_many_on<B: backend::Backend>(
    cases: u64,
    base_seed: u64,
    shape: Shape,
    replay: fn(u64) -> String,
) -> (Figures, Vec<(u64, String)>) {
    let mut figures = Figures::default();
    let mut failed = Vec::new();
    for seed in base_seed..base_seed.saturating_add(cases) {
        match history::run_on::<B>(seed, shape).await {
            Ok(f) => figures.add(&f),
            Err(why) => {
                eprintln!("history {seed} failed (replay: {}):\n{why}", replay(seed));
                failed.push((seed, why));
            }
        }
    }
    hubwarp::time::set_clock_ms(None);
    (figures, failed)
}

/// Runs soak histories until `events` webhook events went through.
pub async fn soak(events: u64, base_seed: u64) -> (Figures, Vec<(u64, String)>) {
    let mut figures = Figures::default();
    let mut failed = Vec::new();
    let mut seed = base_seed;
    while figures.events_sent < events {
        match history::run(seed, SOAK).await {
            Ok(f) => figures.add(&f),
            Err(why) => {
                eprintln!("soak history {seed} failed:\n{why}");
                failed.push((seed, why));
                figures.histories += 1;
            }
        }
        seed += 1;
    }
    hubwarp::time::set_clock_ms(None);
    (figures, failed)
}

/// The soak's figures, the last line as the issue asks.
pub fn soak_report(f: &Figures) -> String {
    let reasons: Vec<String> = f
        .dlq_reasons
        .iter()
        .map(|(r, n)| format!("    {n} with {r}"))
        .collect();
    format!(
        "histories {}, faults injected {} ({} HubSpot 429 storms), WARP edits {}, merges {}, nightly invocations {}\n\
         timed outages: {}\n\
         events sent {}, deliveries {}, recorded {}, queued {}, applied {}\n\
         left in the DLQ: {}{}{}\n\
         soak: {} events, lost {}, doubled {}, stale {}, dlq {}",
        f.histories,
        f.faults,
        f.storms,
        f.warp_edits,
        f.merges,
        f.nightly_invocations,
        f.outages_line(),
        f.events_sent,
        f.deliveries,
        f.recorded,
        f.queued,
        f.applied,
        f.dlq,
        if reasons.is_empty() { "" } else { "\n" },
        reasons.join("\n"),
        f.events_sent,
        f.lost,
        f.doubled,
        f.stale,
        f.dlq
    )
}
