use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::mapping::{ValueType, WarpField};

fn mapping(direction: Direction, conflict: ConflictStrategy) -> FieldMapping {
    FieldMapping {
        warp: WarpField::new("credit_limit"),
        hubspot: "warp_credit_limit".into(),
        direction,
        conflict,
        value_type: ValueType::Decimal,
    }
}

const T0: i64 = 1_763_700_000_000;

fn synced(value: &str) -> FieldState {
    FieldState {
        synced_value: Some(json!(value)),
        hubspot_occurred_at: Some(T0),
        warp_updated_at: Some(T0),
    }
}

fn run(
    direction: Direction,
    strategy: ConflictStrategy,
    state: Option<&FieldState>,
    warp_value: &str,
    warp_at: i64,
    incoming: &str,
    at: i64,
) -> Decision {
    let warp = json!(warp_value);
    decide(
        &mapping(direction, strategy),
        Incoming {
            value: incoming,
            occurred_at: at,
        },
        state,
        WarpNow {
            value: Some(&warp),
            updated_at: Some(warp_at),
        },
    )
}

#[test]
fn directions() {
    use ConflictStrategy::HubspotWins as S;
    for d in [Direction::None, Direction::WarpToHubspot] {
        assert_eq!(
            run(d, S, None, "5000", T0, "7000", T0 + 1),
            Decision::SkipDirection { direction: d }
        );
    }
    for d in [Direction::HubspotToWarp, Direction::Bidirectional] {
        assert_eq!(
            run(d, S, None, "5000", T0, "7000", T0 + 1),
            Decision::Apply {
                value: json!("7000"),
                conflict: false
            }
        );
    }
}

#[test]
fn an_older_change_never_overwrites_a_newer_one() {
    let state = synced("5000");
    let d = run(
        Direction::Bidirectional,
        ConflictStrategy::HubspotWins,
        Some(&state),
        "5000",
        T0,
        "1",
        T0 - 1,
    );
    assert_eq!(d, Decision::SkipStale { last_applied: T0 });
    let same = run(
        Direction::Bidirectional,
        ConflictStrategy::HubspotWins,
        Some(&state),
        "5000",
        T0,
        "1",
        T0,
    );
    assert_eq!(same.outcome(), "skipped-stale");
}

#[test]
fn no_conflict_when_warp_still_holds_the_synced_value() {
    for s in [
        ConflictStrategy::WarpWins,
        ConflictStrategy::LatestWins,
        ConflictStrategy::Manual,
        ConflictStrategy::HubspotWins,
    ] {
        let state = synced("5000.00");
        // "5000" and "5000.00" are the same amount: WARP has not moved.
        let d = run(
            Direction::Bidirectional,
            s,
            Some(&state),
            "5000",
            T0 + 50,
            "7000",
            T0 + 10,
        );
        assert_eq!(
            d,
            Decision::Apply {
                value: json!("7000"),
                conflict: false
            },
            "{s:?}"
        );
    }
}

#[test]
fn each_strategy_settles_a_real_conflict() {
    // Synced at 5000; WARP then moved to 6000 at T0+20; HubSpot says 7000.
    let state = synced("5000");
    let go = |s, hubspot_at| {
        run(
            Direction::Bidirectional,
            s,
            Some(&state),
            "6000",
            T0 + 20,
            "7000",
            hubspot_at,
        )
    };
    assert_eq!(
        go(ConflictStrategy::HubspotWins, T0 + 10),
        Decision::Apply {
            value: json!("7000"),
            conflict: true
        }
    );
    assert_eq!(
        go(ConflictStrategy::WarpWins, T0 + 30),
        Decision::KeepWarp {
            strategy: ConflictStrategy::WarpWins
        }
    );
    assert_eq!(
        go(ConflictStrategy::LatestWins, T0 + 30),
        Decision::Apply {
            value: json!("7000"),
            conflict: true
        }
    );
    assert_eq!(
        go(ConflictStrategy::LatestWins, T0 + 10),
        Decision::KeepWarp {
            strategy: ConflictStrategy::LatestWins
        }
    );
    assert_eq!(
        go(ConflictStrategy::Manual, T0 + 30),
        Decision::Manual {
            hubspot_value: json!("7000")
        }
    );
}

#[test]
fn in_sync_and_invalid() {
    let d = run(
        Direction::Bidirectional,
        ConflictStrategy::Manual,
        None,
        "7000.00",
        T0,
        "7000",
        T0 + 1,
    );
    assert_eq!(
        d,
        Decision::InSync {
            value: json!("7000")
        }
    );
    let bad = run(
        Direction::Bidirectional,
        ConflictStrategy::HubspotWins,
        None,
        "1",
        T0,
        "seven",
        T0 + 1,
    );
    assert!(matches!(bad, Decision::Invalid(_)));
    assert_eq!(bad.outcome(), "failed");
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::None),
        Just(Direction::WarpToHubspot),
        Just(Direction::HubspotToWarp),
        Just(Direction::Bidirectional)
    ]
}

fn strategy() -> impl Strategy<Value = ConflictStrategy> {
    prop_oneof![
        Just(ConflictStrategy::WarpWins),
        Just(ConflictStrategy::HubspotWins),
        Just(ConflictStrategy::LatestWins),
        Just(ConflictStrategy::Manual)
    ]
}

proptest! {
    #[test]
    fn invariants_hold(
        d in direction(), s in strategy(),
        synced_v in 0u32..4, warp_v in 0u32..4, incoming_v in 0u32..4,
        last in proptest::option::of(0i64..100), at in 0i64..100, warp_at in 0i64..100,
    ) {
        let state = last.map(|l| FieldState {
            synced_value: Some(json!(synced_v.to_string())),
            hubspot_occurred_at: Some(l),
            warp_updated_at: None,
        });
        let incoming = incoming_v.to_string();
        let decision = run(d, s, state.as_ref(), &warp_v.to_string(), warp_at, &incoming, at);
        let writes = matches!(decision, Decision::Apply { .. });
        if !d.flows_into_warp() {
            prop_assert!(!writes, "direction {d:?} wrote");
        }
        if last.is_some_and(|l| at <= l) {
            prop_assert!(!writes, "stale change wrote");
        }
        if let Decision::Apply { conflict: true, .. } = decision {
            prop_assert!(
                !matches!(s, ConflictStrategy::Manual | ConflictStrategy::WarpWins),
                "{s:?} let HubSpot win a conflict"
            );
        }
    }
}
