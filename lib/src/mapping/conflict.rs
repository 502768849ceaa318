//! What one HubSpot change does to one WARP field: the sync direction,
//! invariant 4 (an older change never overwrites a newer one), conflict
//! detection against the value last synced, and the field's strategy.

use serde_json::Value;

use super::{ConflictStrategy, ConversionError, Direction, FieldMapping};

/// What the consumer remembers of one customer field between changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldState {
    /// WARP's value right after the last sync of this field.
    pub synced_value: Option<Value>,
    /// `occurredAt` (epoch ms) of the last HubSpot change applied.
    pub hubspot_occurred_at: Option<i64>,
    /// WARP's `updated_at` (epoch ms) right after that sync.
    pub warp_updated_at: Option<i64>,
}

/// The change from HubSpot.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub value: &'a str,
    pub occurred_at: i64,
}

/// WARP's side now.
#[derive(Debug, Clone, Copy)]
pub struct WarpNow<'a> {
    /// The field's current value (`None`: absent from the customer).
    pub value: Option<&'a Value>,
    /// The customer's `updated_at` (epoch ms); WARP keeps no per-field times.
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write `value` into WARP. `conflict` when WARP had changed too and the
    /// strategy chose HubSpot.
    Apply { value: Value, conflict: bool },
    /// WARP already holds this value: record the sync, write nothing.
    InSync { value: Value },
    /// Older than (or the same as) the change last applied to this field.
    SkipStale { last_applied: i64 },
    /// The mapping does not let HubSpot write this field.
    SkipDirection { direction: Direction },
    /// A conflict the strategy settles for WARP: WARP keeps its value.
    KeepWarp { strategy: ConflictStrategy },
    /// A conflict left for a person: change neither side, record both.
    Manual { hubspot_value: Value },
    /// The value does not convert: a permanent failure.
    Invalid(ConversionError),
}

impl Decision {
    /// A short stable name for logs and the sync log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "applied",
            Self::InSync { .. } => "in-sync",
            Self::SkipStale { .. } => "skipped-stale",
            Self::SkipDirection { .. } => "skipped-direction",
            Self::KeepWarp { .. } => "conflict-warp-kept",
            Self::Manual { .. } => "conflict-manual",
            Self::Invalid(_) => "failed",
        }
    }
}

/// Decides what `incoming` does to the field `mapping` names.
pub fn decide(
    mapping: &FieldMapping,
    incoming: Incoming<'_>,
    state: Option<&FieldState>,
    warp: WarpNow<'_>,
) -> Decision {
    if !mapping.direction.flows_into_warp() {
        return Decision::SkipDirection {
            direction: mapping.direction,
        };
    }
    if let Some(last) = state.and_then(|s| s.hubspot_occurred_at)
        && incoming.occurred_at <= last
    {
        return Decision::SkipStale { last_applied: last };
    }
    let ty = mapping.value_type;
    let value = match ty.hubspot_to_warp(incoming.value) {
        Ok(v) => v,
        Err(e) => return Decision::Invalid(e),
    };
    let current = warp.value.unwrap_or(&Value::Null);
    if ty.same_warp_value(current, &value) {
        return Decision::InSync { value };
    }
    // A conflict: WARP moved away from what was last synced, so both sides
    // changed since. With no sync yet there is no baseline to differ from.
    let conflict = state
        .and_then(|s| s.synced_value.as_ref())
        .is_some_and(|synced| !ty.same_warp_value(current, synced));
    if !conflict {
        return Decision::Apply {
            value,
            conflict: false,
        };
    }
    match mapping.conflict {
        ConflictStrategy::HubspotWins => Decision::Apply {
            value,
            conflict: true,
        },
        ConflictStrategy::WarpWins => Decision::KeepWarp {
            strategy: ConflictStrategy::WarpWins,
        },
        ConflictStrategy::LatestWins => match warp.updated_at {
            Some(warp_at) if warp_at >= incoming.occurred_at => Decision::KeepWarp {
                strategy: ConflictStrategy::LatestWins,
            },
            _ => Decision::Apply {
                value,
                conflict: true,
            },
        },
        ConflictStrategy::Manual => Decision::Manual {
            hubspot_value: value,
        },
    }
}

#[cfg(test)]
mod tests;
