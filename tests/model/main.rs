//! The model test and the soak at CI size (tests/src/model). Alone in this
//! binary because a history sets the library's clock to model time; the
//! tests here take turns for the same reason.
//!
//! `MODEL_CASES`, `MODEL_SEED` and `SOAK_EVENTS` resize them; `make model`
//! and `make soak` run the long versions in release.

use integration_tests::model;

static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn a_thousand_histories_converge_to_the_model() {
    let _turn = CLOCK.lock().await;
    let cases = env("MODEL_CASES", 1000);
    let seed = env("MODEL_SEED", 90_000);
    let (figures, failed) = model::run_many(cases, seed, model::history::Shape::MODEL).await;
    converged("model", &figures, &failed, model::replay_command);
}

/// The figures printed; no history failed (each failure named by the
/// command that replays it), and faults and events there were.
fn converged(
    what: &str,
    figures: &model::history::Figures,
    failed: &[(u64, String)],
    replay: fn(u64) -> String,
) {
    println!(
        "{what}: {} histories, {} failed ({} events, {} faults injected, {} in the DLQ)",
        figures.histories + failed.len() as u64,
        failed.len(),
        figures.events_sent,
        figures.faults,
        figures.dlq
    );
    let seeds: Vec<String> = failed.iter().map(|(s, _)| replay(*s)).collect();
    assert!(failed.is_empty(), "failed histories: {seeds:?}");
    assert_eq!(
        figures.dlq, 0,
        "weather reached the DLQ: {:?}",
        figures.dlq_reasons
    );
    assert!(figures.faults > 0 && figures.events_sent > 0, "{figures:?}");
}

/// The same histories on what the functions run on in AWS: the DynamoDB
/// event log, sync store and run store, SQS with its redrive policy and
/// DLQ, S3 for the reports (aws-sdk clients against moto), and the WARP
/// and HubSpot HTTP clients against the sandboxes on loopback. Smaller, as
/// each port call is a request. `MODEL_MOTO_CASES` and `MODEL_MOTO_SEED`
/// resize them; `make model MOTO=1 CASES=N` runs more.
#[tokio::test]
async fn histories_on_moto_and_over_http_converge_to_the_model() {
    let _turn = CLOCK.lock().await;
    let cases = env("MODEL_MOTO_CASES", 12);
    let seed = env("MODEL_MOTO_SEED", 70_000);
    let (figures, failed) = model::run_many_on::<model::backend::OnMoto>(
        cases,
        seed,
        model::ON_MOTO,
        model::replay_on_moto_command,
    )
    .await;
    converged(
        "model on moto",
        &figures,
        &failed,
        model::replay_on_moto_command,
    );
}

#[tokio::test]
async fn a_soak_loses_nothing_and_applies_nothing_twice() {
    let _turn = CLOCK.lock().await;
    let events = env("SOAK_EVENTS", 1500);
    let (figures, failed) = model::soak(events, env("SOAK_SEED", 7)).await;
    println!("{}", model::soak_report(&figures));
    assert!(failed.is_empty(), "soak histories failed: {failed:?}");
    assert!(figures.events_sent >= events);
    assert_eq!(
        (figures.lost, figures.doubled, figures.stale, figures.dlq),
        (0, 0, 0, 0)
    );
}

/// Each timed outage, in model time, met by histories with faults at every
/// step: WARP down 10 minutes, 6 hours and 3 days, HubSpot refusing every
/// call (429) for 30 minutes. The consumer backs every change off through
/// it; nothing is lost, applied twice or stale, and nothing reaches the DLQ.
#[tokio::test]
async fn each_timed_outage_is_ridden_out_without_the_dlq() {
    let _turn = CLOCK.lock().await;
    let mut figures = model::history::Figures::default();
    let mut failed = Vec::new();
    for kind in 0..model::history::OUTAGES.len() {
        for seed in [11_000 + kind as u64, 12_000 + kind as u64] {
            match model::history::run_with_outage(seed, model::history::Shape::MODEL, kind).await {
                Ok(f) => figures.add(&f),
                Err(why) => failed.push((seed, kind, why)),
            }
        }
    }
    hubwarp::time::set_clock_ms(None);
    println!("{}", model::soak_report(&figures));
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        figures.outages.len(),
        model::history::OUTAGES.len(),
        "{:?}",
        figures.outages
    );
    assert_eq!(
        (figures.lost, figures.doubled, figures.stale, figures.dlq),
        (0, 0, 0, 0)
    );
}

/// History 5476: HubSpot changed a field and its webhook stuck unqueued;
/// the field then came to hold a newer value on both sides, and the
/// nightly run, finding them equal without a baseline, wrote none. The
/// sweep queued the old event again, the consumer applied it over the
/// newer WARP value (a webhook without a baseline counts as "only HubSpot
/// moved"), and the next nightly run wrote WARP back. Fixed in the
/// reconciler: a field found equal on both sides without a baseline gets
/// one, as of the company's last change, so the old event is stale.
#[tokio::test]
async fn regression_swept_event_without_baseline_overwrites_newer_warp_value() {
    let _turn = CLOCK.lock().await;
    let (_, failed) = model::run_many(1, 5476, model::history::Shape::MODEL).await;
    assert!(failed.is_empty(), "{failed:?}");
}

/// History 90000: a customer's company, never linked yet, was merged into
/// a duplicate; the consumer found no link for it and settled the merge
/// UNMATCHED, so WARP kept naming the merged-away company and no nightly
/// run paired them again. Fixed in the consumer: the survivor's warp_ban
/// (kept from the merged company) finds the customer.
#[tokio::test]
async fn regression_merge_of_a_company_never_linked_is_followed() {
    let _turn = CLOCK.lock().await;
    let (figures, failed) = model::run_many(1, 90_000, model::history::Shape::MODEL).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(figures.relinked > 0, "{figures:?}");
}
