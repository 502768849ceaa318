//! The one three-way decision both paths use: given a field's mapping, its
//! baseline (the value both sides last agreed on), WARP's value and
//! HubSpot's value, what must happen to that field.
//!
//! The consumer asks it with a HubSpot *event* (a property changed at
//! `occurredAt`); the nightly reconciler asks it with HubSpot's *current*
//! value read from the API. The rules are the same:
//!
//! - Values are compared after conversion (`"5000"` = `"5000.00"`,
//!   `voice;data` = `data;voice`, `""` = absent). Equal values never write.
//! - A side changed when it moved away from the baseline. A webhook is
//!   itself proof that HubSpot changed (unless it is older than the change
//!   last applied: stale). Without a baseline, whether WARP changed is
//!   unknown.
//! - Only one side changed: its change flows, if the direction lets it.
//! - A one-way field otherwise takes its owner's value (the other side's
//!   edit is drift to repair); `NONE` is never written.
//! - Both changed, or neither side is known to have changed (no baseline
//!   yet): a conflict, settled by the field's strategy. LATEST_WINS compares
//!   HubSpot's change time with WARP's `updated_at`; WARP keeps a tie.
//! - Except that a property HubSpot has never held a value in (no baseline,
//!   nothing read) decided nothing: WARP's value stands, and is written
//!   into HubSpot where the direction lets it. Without this, the first
//!   night after `hubwarp setup` creates the properties (all empty) would
//!   clear every HubSpot-owned and HUBSPOT_WINS field in WARP.

use serde_json::Value;

use super::{ConflictStrategy, ConversionError, Direction, FieldMapping};

/// What is remembered of one customer field between syncs: the baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldState {
    /// The value (WARP's JSON form) both sides held after the last sync.
    pub synced_value: Option<Value>,
    /// When HubSpot's side of that value changed (epoch ms): the
    /// `occurredAt` of the last change applied, or the company's
    /// modification time the reconciler read.
    pub hubspot_occurred_at: Option<i64>,
    /// WARP's `updated_at` (epoch ms) right after that sync.
    pub warp_updated_at: Option<i64>,
}

/// WARP's side now.
#[derive(Debug, Clone, Copy)]
pub struct WarpNow<'a> {
    /// The field's current value (`None`: absent from the customer).
    pub value: Option<&'a Value>,
    /// The customer's `updated_at` (epoch ms); WARP keeps no per-field times.
    pub updated_at: Option<i64>,
}

/// HubSpot's side, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub enum HubspotNow<'a> {
    /// A webhook: the property changed to `value` at `occurred_at`.
    Event { value: &'a str, occurred_at: i64 },
    /// What a read returned (`None`: no value) and when the company last
    /// changed (`hs_lastmodifieddate`, epoch ms).
    Current {
        value: Option<&'a str>,
        modified_at: Option<i64>,
    },
}

impl HubspotNow<'_> {
    fn raw(&self) -> &str {
        match self {
            Self::Event { value, .. } => value,
            Self::Current { value, .. } => value.unwrap_or_default(),
        }
    }

    fn changed_at(&self) -> Option<i64> {
        match self {
            Self::Event { occurred_at, .. } => Some(*occurred_at),
            Self::Current { modified_at, .. } => *modified_at,
        }
    }
}

/// Why a value flows, or why nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Only this side changed since the baseline.
    Changed,
    /// A one-way field: the owner's value stands (the other side's edit, or
    /// a field with no baseline yet).
    Owner(Direction),
    /// Both sides changed (or no baseline tells which): the field's strategy
    /// chose.
    Strategy(ConflictStrategy),
    /// The direction forbids the write (`NONE`).
    Direction(Direction),
    /// A HubSpot event older than (or as old as) the change last applied.
    Stale { last_applied: i64 },
    /// HubSpot has never held a value for the property (no baseline, an
    /// empty read): WARP's value stands.
    NeverSet,
}

impl Reason {
    /// Whether a conflict (both sides changed) was settled.
    pub fn is_conflict(self) -> bool {
        matches!(self, Self::Strategy(_))
    }

    /// A short stable name of the rule, for the sync log and `hubwarp
    /// explain`: `changed`, `owner:<direction>`, `strategy:<strategy>`,
    /// `direction:<direction>`, `stale`.
    pub fn code(self) -> String {
        match self {
            Self::Changed => "changed".into(),
            Self::Owner(d) => format!("owner:{}", direction_name(d)),
            Self::Strategy(s) => format!("strategy:{}", strategy_name(s)),
            Self::Direction(d) => format!("direction:{}", direction_name(d)),
            Self::Stale { .. } => "stale".into(),
            Self::NeverSet => "never-set-in-hubspot".into(),
        }
    }

    /// A sentence for logs and reports.
    pub fn describe(self) -> String {
        match self {
            Self::Changed => "only one side changed since the last sync".into(),
            Self::Owner(d) => format!("{} field: the owner's value stands", direction_name(d)),
            Self::Strategy(s) => format!("both sides changed; {} decides", strategy_name(s)),
            Self::Direction(d) => format!("direction {} is never synced", direction_name(d)),
            Self::Stale { last_applied } => {
                format!("older than the change applied at {last_applied}")
            }
            Self::NeverSet => "HubSpot has never held a value: WARP's stands".into(),
        }
    }
}

pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::WarpToHubspot => "WARP_TO_HUBSPOT",
        Direction::HubspotToWarp => "HUBSPOT_TO_WARP",
        Direction::Bidirectional => "BIDIRECTIONAL",
        Direction::None => "NONE",
    }
}

pub fn strategy_name(s: ConflictStrategy) -> &'static str {
    match s {
        ConflictStrategy::WarpWins => "WARP_WINS",
        ConflictStrategy::HubspotWins => "HUBSPOT_WINS",
        ConflictStrategy::LatestWins => "LATEST_WINS",
        ConflictStrategy::Manual => "MANUAL",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Both sides hold the same value (after conversion): write nothing.
    InSync { value: Value },
    /// Write `value` (WARP's form) into WARP.
    WriteWarp { value: Value, reason: Reason },
    /// Write `property_value` (HubSpot's form of WARP's `value`) into HubSpot.
    WriteHubspot {
        property_value: String,
        value: Value,
        reason: Reason,
    },
    /// Write nothing, for `reason`.
    Keep { reason: Reason },
    /// A conflict left for a person: change neither side, record both.
    Manual {
        warp_value: Value,
        hubspot_value: Value,
    },
    /// A value does not convert: a permanent failure.
    Invalid(ConversionError),
}

impl Decision {
    /// A short stable name for logs, the sync log and reports.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InSync { .. } => "in-sync",
            Self::WriteWarp { .. } => "write-warp",
            Self::WriteHubspot { .. } => "write-hubspot",
            Self::Keep {
                reason: Reason::Stale { .. },
            } => "skipped-stale",
            Self::Keep { .. } => "skipped-direction",
            Self::Manual { .. } => "conflict-manual",
            Self::Invalid(_) => "failed",
        }
    }

    /// The rule that decided, as [`Reason::code`] names it (`in-sync`,
    /// `strategy:MANUAL`, `conversion` for the decisions without a reason).
    pub fn rule(&self) -> String {
        match self {
            Self::WriteWarp { reason, .. }
            | Self::WriteHubspot { reason, .. }
            | Self::Keep { reason } => reason.code(),
            Self::InSync { .. } => "in-sync".into(),
            Self::Manual { .. } => format!("strategy:{}", strategy_name(ConflictStrategy::Manual)),
            Self::Invalid(_) => "conversion".into(),
        }
    }

    /// Whether the decision writes either side.
    pub fn writes(&self) -> bool {
        matches!(self, Self::WriteWarp { .. } | Self::WriteHubspot { .. })
    }
}

/// Whether one side moved away from the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moved {
    Yes,
    No,
    Unknown,
}

/// Decides what must happen to the field `mapping` names.
pub fn decide(
    mapping: &FieldMapping,
    baseline: Option<&FieldState>,
    warp: WarpNow<'_>,
    hubspot: HubspotNow<'_>,
) -> Decision {
    let direction = mapping.direction;
    if direction == Direction::None {
        return Decision::Keep {
            reason: Reason::Direction(direction),
        };
    }
    if let HubspotNow::Event { occurred_at, .. } = hubspot
        && let Some(last) = baseline.and_then(|s| s.hubspot_occurred_at)
        && occurred_at <= last
    {
        return Decision::Keep {
            reason: Reason::Stale { last_applied: last },
        };
    }
    let ty = mapping.value_type;
    let warp_value = warp.value.cloned().unwrap_or(Value::Null);
    let to_hubspot = |reason: Reason| match ty.warp_to_hubspot(&warp_value) {
        Ok(property_value) => Decision::WriteHubspot {
            property_value,
            value: warp_value.clone(),
            reason,
        },
        Err(e) => Decision::Invalid(e),
    };
    let hubspot_value = match ty.hubspot_to_warp(hubspot.raw()) {
        Ok(v) => v,
        // An unreadable HubSpot value of a WARP-owned field is drift like
        // any other: WARP's value repairs it.
        Err(_) if direction == Direction::WarpToHubspot => {
            return to_hubspot(Reason::Owner(direction));
        }
        Err(e) => return Decision::Invalid(e),
    };
    if ty.same_warp_value(&warp_value, &hubspot_value) {
        return Decision::InSync {
            value: hubspot_value,
        };
    }
    let synced = baseline.and_then(|s| s.synced_value.as_ref());
    if synced.is_none() && matches!(hubspot, HubspotNow::Current { .. }) && hubspot.raw().is_empty()
    {
        return if direction.flows_into_hubspot() {
            to_hubspot(Reason::NeverSet)
        } else {
            Decision::Keep {
                reason: Reason::NeverSet,
            }
        };
    }
    let warp_moved = match synced {
        Some(b) if ty.same_warp_value(&warp_value, b) => Moved::No,
        Some(_) => Moved::Yes,
        None => Moved::Unknown,
    };
    let hubspot_moved = match (hubspot, synced) {
        (HubspotNow::Event { .. }, _) => Moved::Yes,
        (HubspotNow::Current { .. }, Some(b)) if ty.same_warp_value(&hubspot_value, b) => Moved::No,
        (HubspotNow::Current { .. }, Some(_)) => Moved::Yes,
        (HubspotNow::Current { .. }, None) => Moved::Unknown,
    };
    let to_warp = |reason: Reason| Decision::WriteWarp {
        value: hubspot_value.clone(),
        reason,
    };
    let only_hubspot = hubspot_moved == Moved::Yes && warp_moved != Moved::Yes;
    let only_warp = warp_moved == Moved::Yes && hubspot_moved != Moved::Yes;
    if only_hubspot {
        return if direction.flows_into_warp() {
            to_warp(Reason::Changed)
        } else {
            to_hubspot(Reason::Owner(direction))
        };
    }
    if only_warp {
        return if direction.flows_into_hubspot() {
            to_hubspot(Reason::Changed)
        } else {
            to_warp(Reason::Owner(direction))
        };
    }
    // No baseline says who moved: a one-way field has an owner to ask.
    if warp_moved == Moved::Unknown {
        match direction {
            Direction::HubspotToWarp => return to_warp(Reason::Owner(direction)),
            Direction::WarpToHubspot => return to_hubspot(Reason::Owner(direction)),
            _ => {}
        }
    }
    let strategy = mapping.conflict;
    let reason = Reason::Strategy(strategy);
    let hubspot_wins = match strategy {
        ConflictStrategy::HubspotWins => true,
        ConflictStrategy::WarpWins => false,
        // WARP keeps a tie, and wins when only its time is known.
        ConflictStrategy::LatestWins => match (warp.updated_at, hubspot.changed_at()) {
            (Some(w), Some(h)) => h > w,
            (Some(_), None) => false,
            (None, _) => true,
        },
        ConflictStrategy::Manual => {
            return Decision::Manual {
                warp_value,
                hubspot_value,
            };
        }
    };
    // A strategy never writes a one-way field against its direction: the
    // winner already holds its value, the loser keeps its own.
    match (hubspot_wins, direction) {
        (true, d) if d.flows_into_warp() => to_warp(reason),
        (false, d) if d.flows_into_hubspot() => to_hubspot(reason),
        _ => Decision::Keep { reason },
    }
}

#[cfg(test)]
mod tests;
