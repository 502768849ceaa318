use std::sync::Arc;

use super::*;

/// One request as the limiter let it through: when it left and when its
/// answer came back (HubSpot saw it somewhere in between).
#[derive(Debug, Clone, Copy)]
struct Span {
    sent: Instant,
    answered: Instant,
}

/// `tasks` callers share one limiter; each sends `per_task` requests that
/// take `latency(i)` to answer. Returns every request's span.
async fn run(
    limiter: Arc<RateLimiter>,
    lane: Lane,
    tasks: usize,
    per_task: usize,
    latency: fn(usize) -> Duration,
) -> Vec<Span> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let limiter = limiter.clone();
        handles.push(tokio::spawn(async move {
            let mut spans = Vec::new();
            for n in 0..per_task {
                let (permit, _) = limiter.acquire(lane).await;
                let sent = Instant::now();
                tokio::time::sleep(latency(t * per_task + n)).await;
                let answered = Instant::now();
                drop(permit);
                spans.push(Span { sent, answered });
            }
            spans
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

/// The most requests HubSpot could have counted in one rolling window: for
/// each request, those that may have arrived within `window` before it
/// (answered after its send minus the window, sent no later than it).
fn worst_window(spans: &[Span], window: Duration) -> usize {
    spans
        .iter()
        .map(|i| {
            spans
                .iter()
                .filter(|j| j.sent <= i.sent && j.answered + window > i.sent)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The most requests sent within one `window`.
fn most_sent(spans: &[Span], window: Duration) -> usize {
    spans
        .iter()
        .map(|i| {
            spans
                .iter()
                .filter(|j| j.sent >= i.sent && j.sent < i.sent + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn uneven(n: usize) -> Duration {
    // 0 to 900 ms, varied so answers come back out of order.
    Duration::from_millis((n as u64 * 7919) % 10 * 100)
}

#[tokio::test(start_paused = true)]
async fn never_more_than_the_budget_in_any_rolling_ten_seconds() {
    let limiter = Arc::new(RateLimiter::new(10, 4));
    let spans = run(limiter, Lane::General, 7, 15, uneven).await;
    assert_eq!(spans.len(), 105);
    assert!(worst_window(&spans, Duration::from_secs(10)) <= 10);
    // And it does use the budget: 105 requests need at least 10 windows.
    let first = spans.iter().map(|s| s.sent).min().unwrap();
    let last = spans.iter().map(|s| s.sent).max().unwrap();
    let took = last - first;
    assert!(took >= Duration::from_secs(100), "{took:?}");
    assert!(took < Duration::from_secs(120), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_burst_after_a_steady_stream_waits_for_the_window() {
    // GCRA would allow this burst; HubSpot's rolling window would not.
    let limiter = RateLimiter::new(10, 4);
    let start = Instant::now();
    for _ in 0..5 {
        let (p, _) = limiter.acquire(Lane::General).await;
        drop(p);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // At t=5 s, five places are taken within the last 10 s: five more now,
    // the sixth only when the first ages out (t=10 s).
    for _ in 0..5 {
        let (p, waited) = limiter.acquire(Lane::General).await;
        assert_eq!(waited, Duration::ZERO);
        drop(p);
    }
    let (_p, waited) = limiter.acquire(Lane::General).await;
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    assert_eq!(waited, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn in_flight_requests_hold_their_place_until_answered() {
    let limiter = RateLimiter::new(2, 4);
    let (a, _) = limiter.acquire(Lane::General).await;
    let (b, _) = limiter.acquire(Lane::General).await;
    let start = Instant::now();
    let third = async {
        let (_p, waited) = limiter.acquire(Lane::General).await;
        waited
    };
    let answer_later = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(a);
        drop(b);
    };
    let (waited, ()) = tokio::join!(third, answer_later);
    // Answered at 3 s, so free again at 13 s.
    assert_eq!(waited, Duration::from_secs(13));
    assert_eq!(Instant::now() - start, Duration::from_secs(13));
}

#[tokio::test(start_paused = true)]
async fn search_has_its_own_secondly_budget_outside_the_ten_second_window() {
    let limiter = Arc::new(RateLimiter::new(5, 3));
    // Fill the general window: searches still go.
    for _ in 0..5 {
        let (p, _) = limiter.acquire(Lane::General).await;
        drop(p);
    }
    let spans = run(limiter.clone(), Lane::Search, 4, 6, |_| {
        Duration::from_millis(20)
    })
    .await;
    // Sent at the pace of 3 a second, never more than HubSpot's 5 in its
    // second whatever the latency.
    assert!(most_sent(&spans, Duration::from_secs(1)) <= 3);
    assert!(worst_window(&spans, Duration::from_secs(1)) <= SEARCH_PER_S_MAX as usize);
    let first = spans.iter().map(|s| s.sent).min().unwrap();
    // 24 searches at 3 per second: about 8 s, far less than the 10 s the
    // full general window would have cost.
    let last = spans.iter().map(|s| s.sent).max().unwrap();
    assert!(last - first >= Duration::from_secs(7), "{:?}", last - first);
    // The general lane is still full.
    let (_p, waited) = limiter.acquire(Lane::General).await;
    assert!(waited > Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn hubspots_headers_lower_the_budget_and_pause_on_zero_remaining() {
    let limiter = RateLimiter::new(250, 4);
    limiter.observe(
        Lane::General,
        RateHeaders {
            max: Some(100),
            remaining: Some(99),
            interval: Some(Duration::from_secs(10)),
        },
    );
    assert_eq!(limiter.budget(Lane::General), 100);
    // A larger Max never raises it above the setting.
    limiter.observe(
        Lane::General,
        RateHeaders {
            max: Some(500),
            ..RateHeaders::default()
        },
    );
    assert_eq!(limiter.budget(Lane::General), 100);

    // Someone else spends the budget: HubSpot says none left while our log
    // is empty.
    let zero_left = RateHeaders {
        max: None,
        remaining: Some(0),
        interval: Some(Duration::from_millis(2500)),
    };
    limiter.observe(Lane::General, zero_left);
    let (p, waited) = limiter.acquire(Lane::General).await;
    assert_eq!(waited, Duration::from_millis(2500));
    drop(p);
    // Search is not paused by the general lane.
    let (_s, waited) = limiter.acquire(Lane::Search).await;
    assert_eq!(waited, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn zero_remaining_with_our_own_log_full_adds_no_pause() {
    let limiter = RateLimiter::new(3, 4);
    let start = Instant::now();
    for _ in 0..3 {
        let (p, _) = limiter.acquire(Lane::General).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(p);
    }
    // The third answer says 0 remaining: our log knows, and frees a place
    // when the first answer (t=1 s) is 10 s old.
    limiter.observe(
        Lane::General,
        RateHeaders {
            max: Some(3),
            remaining: Some(0),
            interval: Some(Duration::from_secs(10)),
        },
    );
    let (_p, _) = limiter.acquire(Lane::General).await;
    assert_eq!(Instant::now() - start, Duration::from_secs(11));
}

#[tokio::test(start_paused = true)]
async fn zero_remaining_for_a_window_we_filled_ourselves_adds_no_pause() {
    let limiter = RateLimiter::new(3, 4);
    let start = Instant::now();
    // Three answers at 0, 0.1 and 0.2 s fill the window.
    for _ in 0..3 {
        let (p, _) = limiter.acquire(Lane::General).await;
        drop(p);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The fourth leaves at 10 s, when the first has aged out, and takes
    // 0.5 s: when its answer says 0 remaining (HubSpot received it while the
    // second and third were still in its window), our log has let both go.
    let (p, waited) = limiter.acquire(Lane::General).await;
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    assert!(waited > Duration::ZERO);
    let taken = p.taken();
    assert_eq!(taken, 3, "the window was full when it left");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(p);
    let zero_left = RateHeaders {
        max: Some(3),
        remaining: Some(0),
        interval: Some(Duration::from_secs(10)),
    };
    limiter.observe_answer(Lane::General, zero_left, taken);
    // HubSpot's 0 was our own doing: the next request goes at once.
    let (p, waited) = limiter.acquire(Lane::General).await;
    assert_eq!(waited, Duration::ZERO);
    assert_eq!(p.taken(), 2);
    drop(p);

    // The same 0 for a request that left with room to spare is someone
    // else's spending: the lane waits the interval out.
    limiter.observe_answer(Lane::General, zero_left, 1);
    let (_p, waited) = limiter.acquire(Lane::General).await;
    assert_eq!(waited, Duration::from_secs(10));
}

/// On the real clock: a place free at once is no wait, however many
/// nanoseconds taking it took (every request used to count as a wait).
#[tokio::test]
async fn a_free_place_is_no_wait() {
    let limiter = RateLimiter::new(100, 4);
    for lane in [Lane::General, Lane::Search] {
        let (_p, waited) = limiter.acquire(lane).await;
        assert_eq!(waited, Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_caller() {
    let limiter = Arc::new(RateLimiter::new(100, 4));
    let start = Instant::now();
    limiter.pause(Lane::General, Duration::from_secs(2));
    let spans = run(limiter, Lane::General, 3, 1, |_| Duration::ZERO).await;
    for s in spans {
        assert_eq!(s.sent - start, Duration::from_secs(2));
    }
}

#[test]
fn headers_parse_leniently() {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-hubspot-ratelimit-max", "190".parse().unwrap());
    h.insert("x-hubspot-ratelimit-remaining", " 7 ".parse().unwrap());
    h.insert(
        "x-hubspot-ratelimit-interval-milliseconds",
        "10000".parse().unwrap(),
    );
    assert_eq!(
        RateHeaders::from_headers(&h),
        RateHeaders {
            max: Some(190),
            remaining: Some(7),
            interval: Some(Duration::from_secs(10)),
        }
    );
    h.insert("x-hubspot-ratelimit-max", "lots".parse().unwrap());
    h.insert(
        "x-hubspot-ratelimit-interval-milliseconds",
        "0".parse().unwrap(),
    );
    let parsed = RateHeaders::from_headers(&h);
    assert_eq!((parsed.max, parsed.interval), (None, None));
}

#[test]
fn settings_accept_only_hubspots_plans() {
    let limiter = RateLimiter::from_env(&Env::from_pairs([])).unwrap();
    assert_eq!(limiter.budget(Lane::General), 100);
    assert_eq!(limiter.budget(Lane::Search), 4);
    for plan in ["100", "190", "250"] {
        let env = Env::from_pairs([(PER_10S_SETTING, plan)]);
        assert_eq!(
            RateLimiter::from_env(&env).unwrap().budget(Lane::General),
            plan.parse::<u32>().unwrap()
        );
    }
    for bad in ["150", "0", "1000", "ten"] {
        let env = Env::from_pairs([(PER_10S_SETTING, bad)]);
        let e = RateLimiter::from_env(&env).unwrap_err().to_string();
        assert!(e.contains(PER_10S_SETTING), "{e}");
    }
    let env = Env::from_pairs([(SEARCH_PER_S_SETTING, "5")]);
    assert_eq!(RateLimiter::from_env(&env).unwrap().budget(Lane::Search), 5);
    for bad in ["0", "6", "x"] {
        let env = Env::from_pairs([(SEARCH_PER_S_SETTING, bad)]);
        let e = RateLimiter::from_env(&env).unwrap_err().to_string();
        assert!(e.contains(SEARCH_PER_S_SETTING), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn search_keeps_its_pace_whatever_the_latency_under_hubspots_ceiling() {
    // One caller, each search answered in 200 ms (HubSpot's search takes
    // about that). Stamped at the answer alone, four places would serve
    // four searches per 1.2 s; paced at the send under a ceiling of five
    // answered, the caller gets its four a second.
    let limiter = Arc::new(RateLimiter::new(190, 4));
    let spans = run(limiter.clone(), Lane::Search, 1, 40, |_| {
        Duration::from_millis(200)
    })
    .await;
    let first = spans.iter().map(|s| s.sent).min().unwrap();
    let last = spans.iter().map(|s| s.sent).max().unwrap();
    assert!(
        last - first < Duration::from_millis(10_250),
        "{:?}",
        last - first
    );
    assert!(
        last - first >= Duration::from_millis(9_000),
        "{:?}",
        last - first
    );
    assert!(most_sent(&spans, Duration::from_secs(1)) <= 4);
    assert!(worst_window(&spans, Duration::from_secs(1)) <= SEARCH_PER_S_MAX as usize);

    // Many callers with uneven latency: still never more than five in any
    // second HubSpot could have counted.
    let spans = run(limiter, Lane::Search, 6, 8, uneven).await;
    assert!(worst_window(&spans, Duration::from_secs(1)) <= SEARCH_PER_S_MAX as usize);
    assert!(most_sent(&spans, Duration::from_secs(1)) <= 4);
}
