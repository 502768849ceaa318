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

const DIRECTIONS: [Direction; 4] = [
    Direction::None,
    Direction::WarpToHubspot,
    Direction::HubspotToWarp,
    Direction::Bidirectional,
];

const STRATEGIES: [ConflictStrategy; 4] = [
    ConflictStrategy::WarpWins,
    ConflictStrategy::HubspotWins,
    ConflictStrategy::LatestWins,
    ConflictStrategy::Manual,
];

fn synced(value: &str) -> FieldState {
    FieldState {
        synced_value: Some(json!(value)),
        hubspot_occurred_at: Some(T0),
        warp_updated_at: Some(T0),
    }
}

/// The reconciler's question: both sides as they are now.
fn current(
    m: &FieldMapping,
    state: Option<&FieldState>,
    warp: &str,
    warp_at: i64,
    hubspot: &str,
    hubspot_at: i64,
) -> Decision {
    let w = json!(warp);
    decide(
        m,
        state,
        WarpNow {
            value: Some(&w),
            updated_at: Some(warp_at),
        },
        HubspotNow::Current {
            value: Some(hubspot),
            modified_at: Some(hubspot_at),
        },
    )
}

/// The consumer's question: a HubSpot change arrives.
fn event(
    m: &FieldMapping,
    state: Option<&FieldState>,
    warp: &str,
    warp_at: i64,
    incoming: &str,
    at: i64,
) -> Decision {
    let w = json!(warp);
    decide(
        m,
        state,
        WarpNow {
            value: Some(&w),
            updated_at: Some(warp_at),
        },
        HubspotNow::Event {
            value: incoming,
            occurred_at: at,
        },
    )
}

fn to_warp(value: &str, reason: Reason) -> Decision {
    Decision::WriteWarp {
        value: json!(value),
        reason,
    }
}

fn to_hubspot(value: &str, reason: Reason) -> Decision {
    Decision::WriteHubspot {
        property_value: value.into(),
        value: json!(value),
        reason,
    }
}

/// What the rules say for one case of the table, written out by hand.
fn expected(
    d: Direction,
    s: ConflictStrategy,
    warp_changed: bool,
    hubspot_changed: bool,
    baseline: bool,
    hubspot_newer: bool,
) -> Decision {
    // WARP holds "6000" when it changed, HubSpot "7000" when it changed;
    // the baseline is "5000".
    let warp = if warp_changed { "6000" } else { "5000" };
    let hubspot = if hubspot_changed { "7000" } else { "5000" };
    if d == Direction::None {
        return Decision::Keep {
            reason: Reason::Direction(d),
        };
    }
    if warp == hubspot {
        return Decision::InSync { value: json!(warp) };
    }
    let only_hubspot = baseline && hubspot_changed && !warp_changed;
    let only_warp = baseline && warp_changed && !hubspot_changed;
    if only_hubspot {
        return match d {
            Direction::WarpToHubspot => to_hubspot(warp, Reason::Owner(d)),
            _ => to_warp(hubspot, Reason::Changed),
        };
    }
    if only_warp {
        return match d {
            Direction::HubspotToWarp => to_warp(hubspot, Reason::Owner(d)),
            _ => to_hubspot(warp, Reason::Changed),
        };
    }
    if !baseline {
        match d {
            Direction::HubspotToWarp => return to_warp(hubspot, Reason::Owner(d)),
            Direction::WarpToHubspot => return to_hubspot(warp, Reason::Owner(d)),
            _ => {}
        }
    }
    let hubspot_wins = match s {
        ConflictStrategy::HubspotWins => true,
        ConflictStrategy::WarpWins => false,
        ConflictStrategy::LatestWins => hubspot_newer,
        ConflictStrategy::Manual => {
            return Decision::Manual {
                warp_value: json!(warp),
                hubspot_value: json!(hubspot),
            };
        }
    };
    match (hubspot_wins, d) {
        (true, Direction::WarpToHubspot) | (false, Direction::HubspotToWarp) => Decision::Keep {
            reason: Reason::Strategy(s),
        },
        (true, _) => to_warp(hubspot, Reason::Strategy(s)),
        (false, _) => to_hubspot(warp, Reason::Strategy(s)),
    }
}

#[test]
fn every_direction_strategy_change_and_baseline() {
    let mut cases = 0;
    for d in DIRECTIONS {
        for s in STRATEGIES {
            for (warp_changed, hubspot_changed) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                for baseline in [true, false] {
                    for hubspot_newer in [true, false] {
                        let m = mapping(d, s);
                        let state = synced("5000");
                        let warp = if warp_changed { "6000" } else { "5000" };
                        let hubspot = if hubspot_changed { "7000" } else { "5000" };
                        let (warp_at, hubspot_at) = if hubspot_newer {
                            (T0 + 10, T0 + 20)
                        } else {
                            (T0 + 20, T0 + 10)
                        };
                        let got = current(
                            &m,
                            baseline.then_some(&state),
                            warp,
                            warp_at,
                            hubspot,
                            hubspot_at,
                        );
                        let want =
                            expected(d, s, warp_changed, hubspot_changed, baseline, hubspot_newer);
                        assert_eq!(
                            got, want,
                            "{d:?} {s:?} warp_changed={warp_changed} hubspot_changed={hubspot_changed} baseline={baseline} hubspot_newer={hubspot_newer}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 4 * 4 * 2 * 2);
}

#[test]
fn a_property_hubspot_never_held_a_value_in_takes_warps_and_never_clears_it() {
    for d in DIRECTIONS {
        for s in STRATEGIES {
            let m = mapping(d, s);
            let decision = current(&m, None, "5000", T0, "", T0 + 1);
            let want = match d {
                Direction::None => Decision::Keep {
                    reason: Reason::Direction(d),
                },
                Direction::HubspotToWarp => Decision::Keep {
                    reason: Reason::NeverSet,
                },
                _ => to_hubspot("5000", Reason::NeverSet),
            };
            assert_eq!(decision, want, "{d:?} {s:?}");
        }
    }
    // A person clearing it, with a baseline or by a webhook, still flows.
    let tier = mapping(Direction::HubspotToWarp, ConflictStrategy::HubspotWins);
    assert_eq!(
        current(&tier, Some(&synced("5000")), "5000", T0, "", T0 + 1),
        Decision::WriteWarp {
            value: Value::Null,
            reason: Reason::Changed
        }
    );
    assert!(matches!(
        event(&tier, None, "5000", T0, "", T0 + 1),
        Decision::WriteWarp { .. }
    ));
}

#[test]
fn values_are_compared_after_conversion() {
    let m = mapping(Direction::Bidirectional, ConflictStrategy::Manual);
    let d = current(&m, None, "5000.00", T0, "5000", T0);
    assert_eq!(
        d,
        Decision::InSync {
            value: json!("5000")
        }
    );

    let services = FieldMapping {
        warp: WarpField::new("services"),
        hubspot: "warp_services".into(),
        direction: Direction::Bidirectional,
        conflict: ConflictStrategy::Manual,
        value_type: ValueType::Services,
    };
    let w = json!({"voice": true, "messaging": false, "data": true});
    let d = decide(
        &services,
        None,
        WarpNow {
            value: Some(&w),
            updated_at: None,
        },
        HubspotNow::Current {
            value: Some("data;voice"),
            modified_at: None,
        },
    );
    assert!(matches!(d, Decision::InSync { .. }), "{d:?}");

    let text = FieldMapping {
        warp: WarpField::new("address.city"),
        hubspot: "city".into(),
        direction: Direction::Bidirectional,
        conflict: ConflictStrategy::Manual,
        value_type: ValueType::String,
    };
    // "" on HubSpot, absent or null in WARP: the same cleared value.
    for hubspot in [None, Some("")] {
        for warp in [None, Some(&Value::Null)] {
            let d = decide(
                &text,
                None,
                WarpNow {
                    value: warp,
                    updated_at: None,
                },
                HubspotNow::Current {
                    value: hubspot,
                    modified_at: None,
                },
            );
            assert!(matches!(d, Decision::InSync { .. }), "{d:?}");
        }
    }
}

#[test]
fn an_older_change_never_overwrites_a_newer_one() {
    let state = synced("5000");
    let m = mapping(Direction::Bidirectional, ConflictStrategy::HubspotWins);
    let d = event(&m, Some(&state), "5000", T0, "1", T0 - 1);
    assert_eq!(
        d,
        Decision::Keep {
            reason: Reason::Stale { last_applied: T0 }
        }
    );
    assert_eq!(
        event(&m, Some(&state), "5000", T0, "1", T0).outcome(),
        "skipped-stale"
    );
    // A read of HubSpot's current value is never stale: it is what HubSpot
    // holds now, whatever its time.
    assert_eq!(
        current(&m, Some(&state), "5000", T0, "1", T0 - 1),
        to_warp("1", Reason::Changed)
    );
}

#[test]
fn the_consumer_keeps_its_behaviour() {
    // A webhook with no baseline flows into WARP whatever the strategy: the
    // event proves HubSpot changed, nothing says WARP did.
    for s in STRATEGIES {
        let m = mapping(Direction::Bidirectional, s);
        assert_eq!(
            event(&m, None, "5000", T0, "7000", T0 + 1),
            to_warp("7000", Reason::Changed),
            "{s:?}"
        );
    }
    // WARP still holds the synced value ("5000" = "5000.00"): no conflict.
    for s in STRATEGIES {
        let m = mapping(Direction::Bidirectional, s);
        let state = synced("5000.00");
        assert_eq!(
            event(&m, Some(&state), "5000", T0 + 50, "7000", T0 + 10),
            to_warp("7000", Reason::Changed),
            "{s:?}"
        );
    }
    // Synced at 5000; WARP moved to 6000 at T0+20; HubSpot says 7000.
    let state = synced("5000");
    let go = |s, at| {
        event(
            &mapping(Direction::Bidirectional, s),
            Some(&state),
            "6000",
            T0 + 20,
            "7000",
            at,
        )
    };
    let hubspot_wins = ConflictStrategy::HubspotWins;
    assert_eq!(
        go(hubspot_wins, T0 + 10),
        to_warp("7000", Reason::Strategy(hubspot_wins))
    );
    let warp_wins = ConflictStrategy::WarpWins;
    assert_eq!(
        go(warp_wins, T0 + 30),
        to_hubspot("6000", Reason::Strategy(warp_wins))
    );
    let latest = ConflictStrategy::LatestWins;
    assert_eq!(
        go(latest, T0 + 30),
        to_warp("7000", Reason::Strategy(latest))
    );
    assert_eq!(
        go(latest, T0 + 10),
        to_hubspot("6000", Reason::Strategy(latest))
    );
    assert_eq!(
        go(ConflictStrategy::Manual, T0 + 30),
        Decision::Manual {
            warp_value: json!("6000"),
            hubspot_value: json!("7000")
        }
    );
    // HubSpot's edit of a WARP-owned field: WARP's value stands.
    assert_eq!(
        event(
            &mapping(Direction::WarpToHubspot, hubspot_wins),
            None,
            "5000",
            T0,
            "7000",
            T0 + 1
        ),
        to_hubspot("5000", Reason::Owner(Direction::WarpToHubspot))
    );
}

#[test]
fn unreadable_values() {
    let m = mapping(Direction::Bidirectional, ConflictStrategy::HubspotWins);
    let bad = event(&m, None, "1", T0, "seven", T0 + 1);
    assert!(matches!(bad, Decision::Invalid(_)));
    assert_eq!(bad.outcome(), "failed");
    // A WARP-owned field that HubSpot holds as garbage is repaired.
    let owned = mapping(Direction::WarpToHubspot, ConflictStrategy::WarpWins);
    assert_eq!(
        current(&owned, None, "1", T0, "seven", T0),
        to_hubspot("1", Reason::Owner(Direction::WarpToHubspot))
    );
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

/// Values that are equal in some other form: "1" and "1.00" and "1e0".
fn amount() -> impl Strategy<Value = String> {
    (0u32..4, 0usize..3).prop_map(|(v, form)| match form {
        0 => v.to_string(),
        1 => format!("{v}.00"),
        _ => format!("{v}e0"),
    })
}

proptest! {
    #[test]
    fn invariants_hold(
        d in direction(), s in strategy(),
        synced_v in proptest::option::of(amount()), warp_v in amount(), hubspot_v in amount(),
        last in 0i64..100, at in 0i64..100, warp_at in 0i64..100, is_event: bool,
    ) {
        let m = mapping(d, s);
        let state = synced_v.map(|v| FieldState {
            synced_value: Some(json!(v)),
            hubspot_occurred_at: Some(last),
            warp_updated_at: None,
        });
        let decision = if is_event {
            event(&m, state.as_ref(), &warp_v, warp_at, &hubspot_v, at)
        } else {
            current(&m, state.as_ref(), &warp_v, warp_at, &hubspot_v, at)
        };
        match &decision {
            Decision::WriteWarp { .. } => prop_assert!(d.flows_into_warp(), "{d:?} wrote WARP"),
            Decision::WriteHubspot { .. } => prop_assert!(d.flows_into_hubspot(), "{d:?} wrote HubSpot"),
            _ => {}
        }
        if matches!(decision, Decision::Manual { .. }) {
            prop_assert_eq!(s, ConflictStrategy::Manual, "only MANUAL asks a person");
        }
        let same = ValueType::Decimal.same_warp_value(&json!(warp_v), &json!(hubspot_v));
        if same {
            prop_assert!(!decision.writes(), "equal values wrote: {decision:?}");
        }
        if is_event && state.is_some() && at <= last {
            prop_assert!(!decision.writes(), "stale change wrote");
        }
        if let Decision::WriteWarp { reason: Reason::Strategy(won), .. } = decision {
            prop_assert!(
                !matches!(won, ConflictStrategy::Manual | ConflictStrategy::WarpWins),
                "{won:?} let HubSpot win a conflict"
            );
        }
        if let Decision::WriteHubspot { reason: Reason::Strategy(won), .. } = decision {
            prop_assert!(
                !matches!(won, ConflictStrategy::Manual | ConflictStrategy::HubspotWins),
                "{won:?} let WARP win a conflict"
            );
        }
    }
}
