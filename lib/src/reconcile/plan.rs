//! The diff engine: one WARP customer and its HubSpot company in, every
//! mapped field decided by the shared three-way decision, and the writes
//! that follow out. Pure: no I/O, so every rule is tested without a server.
//!
//! HubSpot's change time for LATEST_WINS without a baseline is the
//! company's `hs_lastmodifieddate`, not `propertiesWithHistory`: history
//! halves a batch read (50 inputs instead of 100) and multiplies its size,
//! while a baseline decides every field after its first sync. The price is
//! that a company changed in *any* property after WARP's `updated_at` looks
//! newer for all its fields on that first comparison.

use std::collections::{BTreeMap, HashMap};

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::hubspot::crm::Company;
use crate::mapping::MappingSet;
use crate::mapping::conflict::{self, Decision, FieldState, HubspotNow, Reason, WarpNow};
use crate::warp::Customer;

/// HubSpot's modification time of a company, always returned by reads.
pub const MODIFIED_PROPERTY: &str = "hs_lastmodifieddate";

/// What became of one differing field, as reports, pieces and the sync log
/// spell it (the JSON strings are the report's format: kept as they were).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffOutcome {
    /// WARP takes HubSpot's value.
    WriteWarp,
    /// HubSpot takes WARP's value.
    WriteHubspot,
    /// Both sides changed and the field is MANUAL: left for review.
    ConflictManual,
    /// The field's direction does not run this way.
    SkippedDirection,
    /// The field's strategy keeps the side that has it.
    KeptStrategy,
    /// A value does not convert.
    Failed,
    /// An undo left WARP's (HubSpot's) value alone, and why.
    LeftAloneWarp,
    LeftAloneHubspot,
}

impl DiffOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WriteWarp => "write-warp",
            Self::WriteHubspot => "write-hubspot",
            Self::ConflictManual => "conflict-manual",
            Self::SkippedDirection => "skipped-direction",
            Self::KeptStrategy => "kept-strategy",
            Self::Failed => "failed",
            Self::LeftAloneWarp => "left-alone-warp",
            Self::LeftAloneHubspot => "left-alone-hubspot",
        }
    }

    /// Left as it is by the rules (not a conflict, not a failure).
    pub fn is_kept(self) -> bool {
        matches!(self, Self::KeptStrategy | Self::SkippedDirection)
    }
}

impl std::fmt::Display for DiffOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DiffOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One field that differs (or could not be compared), for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: String,
    pub property: String,
    /// WARP's value (JSON), HubSpot's (its string; `None`: no value).
    pub warp_value: Value,
    pub hubspot_value: Option<String>,
    pub baseline: Option<Value>,
    pub decision: DiffOutcome,
    pub reason: String,
    /// The rule that decided ([`Decision::rule`]); reports written before
    /// it existed read as empty.
    #[serde(default)]
    pub rule: String,
}

/// A field whose baseline is written once its write succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewBaseline {
    pub field: String,
    pub value: Value,
}

/// What one pair needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairPlan {
    pub fields_in_sync: usize,
    pub diffs: Vec<FieldDiff>,
    /// Partial update for WARP (empty: no `PUT`).
    pub warp_body: Map<String, Value>,
    /// Properties to set on the HubSpot company (empty: nothing).
    pub hubspot_properties: BTreeMap<String, String>,
    /// Baselines for fields written to WARP, to HubSpot, and for fields
    /// found equal on both sides but away from their stored baseline.
    pub warp_baselines: Vec<NewBaseline>,
    pub hubspot_baselines: Vec<NewBaseline>,
    pub agreed_baselines: Vec<NewBaseline>,
    /// MANUAL conflicts: (field, property, WARP's value, HubSpot's value).
    pub manual: Vec<FieldDiff>,
}

impl PairPlan {
    pub fn in_sync(&self) -> bool {
        self.diffs.is_empty()
    }
}

/// A HubSpot datetime (ISO 8601, or epoch ms) as epoch ms.
pub fn hubspot_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok();
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Decides every field mapped for `customer` against `company`.
pub fn plan_pair(
    mappings: &MappingSet,
    customer: &Customer,
    company: &Company,
    states: &HashMap<String, FieldState>,
) -> PairPlan {
    let mut plan = PairPlan::default();
    let modified_at = company
        .properties
        .get(MODIFIED_PROPERTY)
        .and_then(Option::as_deref)
        .and_then(hubspot_time);
    for mapping in mappings.fields_for(&customer.id, &customer.ban) {
        let field = mapping.warp.as_str();
        let baseline = states.get(field);
        let warp_value = mapping.warp.get(&customer.raw);
        let hubspot_raw = company
            .properties
            .get(&mapping.hubspot)
            .and_then(Option::as_deref);
        let decision = conflict::decide(
            mapping,
            baseline,
            WarpNow {
                value: warp_value,
                updated_at: customer.updated_at_ms,
            },
            HubspotNow::Current {
                value: hubspot_raw,
                modified_at,
            },
        );
        let rule = decision.rule();
        let diff = |decision: DiffOutcome, reason: String| FieldDiff {
            field: field.to_string(),
            property: mapping.hubspot.clone(),
            warp_value: warp_value.cloned().unwrap_or(Value::Null),
            hubspot_value: hubspot_raw.map(str::to_string),
            baseline: baseline.and_then(|b| b.synced_value.clone()),
            decision,
            reason,
            rule: rule.clone(),
        };
        let baseline_of = |value: &Value| NewBaseline {
            field: field.to_string(),
            value: value.clone(),
        };
        match &decision {
            Decision::InSync { value } => {
                plan.fields_in_sync += 1;
                // Both sides agree on a value other than the remembered one
                // (both made the same edit), on a value never remembered,
                // or on the remembered one dated before the company's last
                // change (the field may have moved and come back, with its
                // webhooks lost): remember the agreement, as of that
                // change. Without it, an older webhook of the field (swept
                // after HubSpot stopped retrying, or a late retry) counted
                // as "only HubSpot moved" and took back the newer value
                // both sides held (model test: seed 5476 with no baseline,
                // seed 2031051 with an older one). The price: a first run
                // writes one baseline per field, and a run one per field of
                // each company changed since.
                let remembered = baseline
                    .and_then(|b| b.synced_value.as_ref())
                    .is_some_and(|b| mapping.value_type.same_warp_value(b, value));
                let dated = match (baseline.and_then(|b| b.hubspot_occurred_at), modified_at) {
                    (Some(last), Some(modified)) => last >= modified,
                    (None, Some(_)) => false,
                    (_, None) => true,
                };
                if !remembered || !dated {
                    plan.agreed_baselines.push(baseline_of(value));
                }
            }
            Decision::WriteWarp { value, reason } => {
                mapping.warp.set_in(&mut plan.warp_body, value.clone());
                plan.warp_baselines.push(baseline_of(value));
                plan.diffs
                    .push(diff(DiffOutcome::WriteWarp, reason.describe()));
            }
            Decision::WriteHubspot {
                property_value,
                value,
                reason,
            } => {
                plan.hubspot_properties
                    .insert(mapping.hubspot.clone(), property_value.clone());
                plan.hubspot_baselines.push(baseline_of(value));
                plan.diffs
                    .push(diff(DiffOutcome::WriteHubspot, reason.describe()));
            }
            Decision::Keep { reason } => {
                let name = match reason {
                    Reason::Strategy(_) => DiffOutcome::KeptStrategy,
                    _ => DiffOutcome::SkippedDirection,
                };
                plan.diffs.push(diff(name, reason.describe()));
            }
            Decision::Manual { .. } => {
                let d = diff(
                    DiffOutcome::ConflictManual,
                    "both sides changed; MANUAL: left for review".into(),
                );
                plan.manual.push(d.clone());
                plan.diffs.push(d);
            }
            Decision::Invalid(e) => plan.diffs.push(diff(DiffOutcome::Failed, e.to_string())),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn customer(raw: Value) -> Customer {
        Customer {
            id: raw["id"].as_str().unwrap_or_default().to_string(),
            ban: raw["ban"].as_str().unwrap_or_default().to_string(),
            updated_at_ms: raw["updated_at"].as_str().and_then(hubspot_time),
            etag: "\"1\"".into(),
            hubspot_company_id: Some("1".into()),
            raw,
        }
    }

    fn company(props: &[(&str, Option<&str>)]) -> Company {
        Company {
            id: "1".into(),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
            archived: false,
            updated_at: None,
        }
    }

    fn in_sync_pair() -> (Customer, Vec<(&'static str, Option<&'static str>)>) {
        let c = customer(json!({
            "id": "c1", "ban": "ZT-1", "company_name": "Acme", "status": "ACTIVE",
            "credit_limit": "5000.00", "current_balance": "12.50", "payment_terms": "NET30",
            "tier": "GOLD", "services": {"voice": true, "messaging": false, "data": true},
            "contact": {"email": "ada@acme.example"},
            "address": {"city": "Denver", "state": "CO", "postal_code": "80202", "country": null},
            "updated_at": "2026-11-20T10:00:00Z",
        }));
        let props = vec![
            ("warp_ban", Some("ZT-1")),
            ("name", Some("Acme")),
            ("warp_status", Some("ACTIVE")),
            ("warp_credit_limit", Some("5000")),
            ("warp_current_balance", Some("12.5")),
            ("warp_payment_terms", Some("NET30")),
            ("warp_tier", Some("GOLD")),
            ("warp_services", Some("data;voice")),
            ("warp_contact_email", Some("ada@acme.example")),
            ("city", Some("Denver")),
            ("state", Some("CO")),
            ("zip", Some("80202")),
            ("country", None),
            (MODIFIED_PROPERTY, Some("2026-11-19T10:00:00.000Z")),
        ];
        (c, props)
    }

    #[test]
    fn equal_values_in_other_forms_write_nothing() {
        let mappings = MappingSet::default_mapping().unwrap();
        let (c, props) = in_sync_pair();
        let plan = plan_pair(&mappings, &c, &company(&props), &HashMap::new());
        assert!(plan.in_sync(), "{:?}", plan.diffs);
        assert_eq!(plan.fields_in_sync, 13);
        assert!(plan.warp_body.is_empty() && plan.hubspot_properties.is_empty());
    }

    /// History 2031051 of the model test: HubSpot's city went from
    /// "Zürich" to "Boulder" and back, the webhooks of both lost or stuck.
    /// The nightly run found both sides at "Zürich", the baseline's value,
    /// and wrote nothing, so the baseline kept its old date; the sweep then
    /// queued the "Boulder" change, newer than that date, and the consumer
    /// applied it over the value both sides held. An agreement on the
    /// remembered value is now dated again when the company changed since.
    #[test]
    fn regression_agreement_dated_before_the_company_change_lets_an_older_webhook_win() {
        let mappings = MappingSet::default_mapping().unwrap();
        let (c, props) = in_sync_pair();
        let modified = hubspot_time("2026-11-19T10:00:00.000Z").unwrap();
        let baselines = |at: i64| -> HashMap<String, FieldState> {
            mappings
                .fields_for(&c.id, &c.ban)
                .into_iter()
                .map(|m| {
                    let state = FieldState {
                        synced_value: m.warp.get(&c.raw).cloned().or(Some(Value::Null)),
                        hubspot_occurred_at: Some(at),
                        warp_updated_at: c.updated_at_ms,
                    };
                    (m.warp.as_str().to_string(), state)
                })
                .collect()
        };
        // Dated before the company's last change: every field again.
        let plan = plan_pair(&mappings, &c, &company(&props), &baselines(modified - 1));
        assert!(plan.in_sync());
        assert_eq!(plan.agreed_baselines.len(), 13);
        // Dated at or after it: nothing to write.
        let plan = plan_pair(&mappings, &c, &company(&props), &baselines(modified));
        assert!(plan.in_sync() && plan.agreed_baselines.is_empty());
    }

    #[test]
    fn drift_flows_where_the_mapping_says() {
        let mappings = MappingSet::default_mapping().unwrap();
        let (c, mut props) = in_sync_pair();
        for (k, v) in props.iter_mut() {
            match *k {
                // HubSpot-owned, edited in HubSpot: flows into WARP.
                "warp_tier" => *v = Some("PLATINUM"),
                // WARP-owned, edited in HubSpot: WARP's value repairs it.
                "warp_status" => *v = Some("CLOSED"),
                // Bidirectional, no baseline, HubSpot older: WARP's wins.
                "name" => *v = Some("Acme Inc"),
                _ => {}
            }
        }
        let plan = plan_pair(&mappings, &c, &company(&props), &HashMap::new());
        assert_eq!(
            plan.warp_body,
            json!({"tier": "PLATINUM"}).as_object().unwrap().clone()
        );
        assert_eq!(
            plan.hubspot_properties,
            BTreeMap::from([
                ("name".to_string(), "Acme".to_string()),
                ("warp_status".to_string(), "ACTIVE".to_string()),
            ])
        );
        assert_eq!(plan.diffs.len(), 3);
        assert_eq!(plan.warp_baselines.len(), 1);
        assert_eq!(plan.hubspot_baselines.len(), 2);

        // With a baseline that says only HubSpot moved, its name flows.
        let states = HashMap::from([(
            "company_name".to_string(),
            FieldState {
                synced_value: Some(json!("Acme")),
                ..Default::default()
            },
        )]);
        let plan = plan_pair(&mappings, &c, &company(&props), &states);
        assert_eq!(plan.warp_body["company_name"], "Acme Inc");
    }

    #[test]
    fn a_manual_conflict_writes_nothing() {
        let mut text = crate::mapping::config::DEFAULT_MAPPING.to_string();
        text = text.replace(
            "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"HUBSPOT_WINS\"",
            "hubspot = \"warp_credit_limit\"\ndirection = \"BIDIRECTIONAL\"\nconflict = \"MANUAL\"",
        );
        let mappings = MappingSet::parse(&text).unwrap();
        let (c, mut props) = in_sync_pair();
        for (k, v) in props.iter_mut() {
            if *k == "warp_credit_limit" {
                *v = Some("9000");
            }
        }
        let plan = plan_pair(&mappings, &c, &company(&props), &HashMap::new());
        assert!(plan.warp_body.is_empty() && plan.hubspot_properties.is_empty());
        assert_eq!(plan.manual.len(), 1);
        assert_eq!(plan.manual[0].hubspot_value.as_deref(), Some("9000"));
    }

    #[test]
    fn hubspot_times_in_both_forms() {
        assert_eq!(hubspot_time("1764000000000"), Some(1_764_000_000_000));
        assert_eq!(
            hubspot_time("2025-11-24T16:00:00.000Z"),
            Some(1_764_000_000_000)
        );
        assert_eq!(hubspot_time("yesterday"), None);
    }
}
