//! `make model CASES=N [SEED=S]` and `make soak EVENTS=N [SEED=S]`: the
//! model test's histories and the soak, at any size (tests/src/model).
//!
//! Without a seed the first history's seed is drawn from the time, and
//! printed; history i runs seed S+i, so any failure replays alone with
//! `make model CASES=1 SEED=<its seed>`. `--moto` (`make model MOTO=1`)
//! runs them on moto and the sandboxes over HTTP.

use integration_tests::model;

fn arg(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) => Some(n),
        _ => {
            eprintln!("{name} takes a number");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed = arg(&args, "--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000_000)
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let started = std::time::Instant::now();
    if let Some(events) = arg(&args, "--soak") {
        println!("soak: at least {events} events, first seed {seed}");
        let (figures, failed) = runtime.block_on(model::soak(events, seed));
        println!("{:.1} s", started.elapsed().as_secs_f64());
        println!("{}", model::soak_report(&figures));
        let bad = figures.lost + figures.doubled + figures.stale;
        std::process::exit(if failed.is_empty() && bad == 0 { 0 } else { 1 });
    }
    let cases = arg(&args, "--cases").unwrap_or(1000);
    let on_moto = args.iter().any(|a| a == "--moto");
    let replay = if on_moto {
        model::replay_on_moto_command
    } else {
        model::replay_command
    };
    println!(
        "model: {cases} histories from seed {seed}{}",
        if on_moto {
            ", on moto and the sandboxes over HTTP"
        } else {
            ""
        }
    );
    let (figures, failed) = if on_moto {
        runtime.block_on(model::run_many_on::<model::backend::OnMoto>(
            cases,
            seed,
            model::ON_MOTO,
            replay,
        ))
    } else {
        runtime.block_on(model::run_many(cases, seed, model::history::Shape::MODEL))
    };
    println!(
        "{:.1} s; {} events sent, {} deliveries, {} faults injected, {} WARP edits, {} merges ({} customers re-linked), {} HubSpot 429 storms, {} nightly invocations",
        started.elapsed().as_secs_f64(),
        figures.events_sent,
        figures.deliveries,
        figures.faults,
        figures.warp_edits,
        figures.merges,
        figures.relinked,
        figures.storms,
        figures.nightly_invocations
    );
    println!(
        "timed outages: {}; {} in the DLQ",
        figures.outages_line(),
        figures.dlq
    );
    for (seed, _) in &failed {
        println!("failed seed {seed}: {}", replay(*seed));
    }
    println!("model: {cases} histories, {} failed", failed.len());
    std::process::exit(if failed.is_empty() { 0 } else { 1 });
}
