//! What the mapping needs of HubSpot's company properties, and how a
//! portal's definitions measure up: the plan `hubwarp setup` carries out
//! and the lines `hubwarp doctor` prints. Pure: the caller reads HubSpot
//! and WARP.
//!
//! A property that exists is never changed: turning a text property into a
//! number, or dropping an option, loses what HubSpot holds in it. Such a
//! property is reported with the fix a person makes in HubSpot.

use std::collections::{BTreeMap, BTreeSet};

use crate::hubspot::crm::{PropertyDef, PropertyGroup, PropertyOption};
use crate::mapping::value::SERVICES;
use crate::mapping::{Direction, FieldMapping, MappingSet, ValueType};

/// The group setup files the bridge's properties under.
pub const GROUP: &str = "warp";
pub const GROUP_LABEL: &str = "WARP";

/// `status` is the only enumeration whose values WARP's contract fixes
/// (shared/warp-api.md); others (`tier`, `payment_terms`) take whatever
/// WARP's customers hold.
pub fn contract_values(warp_field: &str) -> Option<&'static [&'static str]> {
    match warp_field {
        "status" => Some(&["ACTIVE", "SUSPENDED", "PENDING", "CLOSED"]),
        "services" => Some(&SERVICES),
        _ => None,
    }
}

/// HubSpot's `type` and `fieldType` for a mapping's value type.
pub fn hubspot_type(value_type: ValueType) -> (&'static str, &'static str) {
    match value_type {
        ValueType::Decimal | ValueType::Integer => ("number", "number"),
        ValueType::String => ("string", "text"),
        ValueType::Boolean => ("bool", "booleancheckbox"),
        ValueType::Date => ("date", "date"),
        ValueType::Datetime => ("datetime", "date"),
        ValueType::Enumeration => ("enumeration", "select"),
        ValueType::Services => ("enumeration", "checkbox"),
    }
}

/// Whether HubSpot's `type`/`fieldType` can hold the mapping's values both
/// ways. Any string field type holds a string (text, textarea, phone
/// number); a multi-checkbox cannot stand for a single value, nor a
/// single select for several.
fn compatible(value_type: ValueType, have: &PropertyDef) -> bool {
    let (want_type, want_field) = hubspot_type(value_type);
    match value_type {
        ValueType::String => matches!(have.value_type.as_str(), "string" | "phone_number"),
        ValueType::Enumeration => have.value_type == "enumeration" && have.field_type != "checkbox",
        ValueType::Services => have.value_type == want_type && have.field_type == want_field,
        _ => have.value_type == want_type,
    }
}

/// Every field mapping, global and per customer, one per HubSpot property
/// (the first seen wins when two map the same property).
fn mapped(mapping: &MappingSet) -> BTreeMap<&str, &FieldMapping> {
    let mut out = BTreeMap::new();
    for field in mapping.all_fields() {
        out.entry(field.hubspot.as_str()).or_insert(field);
    }
    out
}

/// The values an enumeration property must offer: the contract's, or those
/// `held` says WARP's customers hold (by WARP field), sorted.
fn needed_options(field: &FieldMapping, held: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    match contract_values(field.warp.as_str()) {
        Some(values) => values.iter().map(|v| v.to_string()).collect(),
        None => held
            .get(field.warp.as_str())
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn label(field: &FieldMapping) -> String {
    let words: Vec<String> = field
        .warp
        .segments()
        .flat_map(|s| s.split('_'))
        .map(|w| match w {
            "ban" => "BAN".to_string(),
            w => w.to_string(),
        })
        .collect();
    format!("WARP {}", words.join(" "))
}

fn description(field: &FieldMapping) -> String {
    let warp = field.warp.as_str();
    match field.direction {
        Direction::WarpToHubspot => format!(
            "WARP's customer field `{warp}`. Set by WARP: WARP overwrites any change made here."
        ),
        Direction::HubspotToWarp => {
            format!("Sent to WARP's customer field `{warp}` when it changes here.")
        }
        Direction::Bidirectional => format!(
            "Kept in step with WARP's customer field `{warp}` both ways; a conflict is settled by {:?}.",
            field.conflict
        ),
        Direction::None => format!("Mapped to WARP's customer field `{warp}`, not synced."),
    }
}

/// The definition setup creates for a mapped property HubSpot lacks.
pub fn definition(field: &FieldMapping, options: &[String]) -> PropertyDef {
    let (value_type, field_type) = hubspot_type(field.value_type);
    PropertyDef {
        name: field.hubspot.clone(),
        label: label(field),
        value_type: value_type.into(),
        field_type: field_type.into(),
        group_name: GROUP.into(),
        description: description(field),
        options: options
            .iter()
            .zip(0..)
            .map(|(v, i)| PropertyOption::plain(v, i))
            .collect(),
        hubspot_defined: false,
    }
}

/// What one mapped property needs, as found in the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Exists with a compatible type and every option WARP can send.
    Ready { property: String },
    /// Absent: setup creates it.
    Missing { create: PropertyDef },
    /// Exists with a type the mapping's values do not fit; never changed.
    WrongType {
        property: String,
        have: (String, String),
        want: (&'static str, &'static str),
    },
    /// An enumeration without some value WARP holds or can send; never
    /// changed (options are a person's call: labels, order, hidden ones).
    MissingOptions {
        property: String,
        options: Vec<String>,
    },
    /// Absent, an enumeration whose values WARP's contract leaves open, and
    /// no WARP customer holds one yet: HubSpot takes no enumeration without
    /// options, and made-up ones would be worse than none.
    NoKnownOptions { property: String, warp: String },
}

impl Finding {
    pub fn property(&self) -> &str {
        match self {
            Self::Missing { create } => &create.name,
            Self::Ready { property }
            | Self::WrongType { property, .. }
            | Self::MissingOptions { property, .. }
            | Self::NoKnownOptions { property, .. } => property,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    /// One line a person acts on.
    pub fn describe(&self) -> String {
        match self {
            Self::Ready { property } => format!("{property}: present, compatible"),
            Self::Missing { create } => format!(
                "{}: missing; `hubwarp setup` creates it ({}/{}{})",
                create.name,
                create.value_type,
                create.field_type,
                options_note(&create.options)
            ),
            Self::WrongType {
                property,
                have,
                want,
            } => format!(
                "{property}: is {}/{} where the mapping needs {}/{}; left as it is (its values \
                 would be lost). Fix: in HubSpot, change its field type to {}/{}, or map the \
                 WARP field to another property (MAPPING_FILE)",
                have.0, have.1, want.0, want.1, want.0, want.1
            ),
            Self::NoKnownOptions { property, warp } => format!(
                "{property}: missing, and no WARP customer holds a `{warp}` yet to take its \
                 options from. Fix: run setup again once one does, or create it in HubSpot \
                 as a dropdown select with the values WARP accepts"
            ),
            Self::MissingOptions { property, options } => format!(
                "{property}: lacks the option(s) {} that WARP holds or sends; left as it is. \
                 Fix: in HubSpot, add them to the property's options",
                options.join(", ")
            ),
        }
    }
}

fn options_note(options: &[PropertyOption]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let values: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
    format!(", options {}", values.join(", "))
}

/// The mapped properties against the portal's, one finding per property,
/// in name order. `held`: per WARP enumeration field, the values WARP's
/// customers hold now.
pub fn survey(
    mapping: &MappingSet,
    existing: &[PropertyDef],
    held: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Finding> {
    let by_name: BTreeMap<&str, &PropertyDef> =
        existing.iter().map(|p| (p.name.as_str(), p)).collect();
    mapped(mapping)
        .into_iter()
        .map(|(name, field)| {
            let options = if matches!(
                field.value_type,
                ValueType::Enumeration | ValueType::Services
            ) {
                needed_options(field, held)
            } else {
                Vec::new()
            };
            let Some(have) = by_name.get(name) else {
                if field.value_type == ValueType::Enumeration && options.is_empty() {
                    return Finding::NoKnownOptions {
                        property: name.to_string(),
                        warp: field.warp.as_str().to_string(),
                    };
                }
                return Finding::Missing {
                    create: definition(field, &options),
                };
            };
            if !compatible(field.value_type, have) {
                return Finding::WrongType {
                    property: name.to_string(),
                    have: (have.value_type.clone(), have.field_type.clone()),
                    want: hubspot_type(field.value_type),
                };
            }
            let offered: BTreeSet<&str> = have.options.iter().map(|o| o.value.as_str()).collect();
            let lacking: Vec<String> = options
                .into_iter()
                .filter(|o| !offered.contains(o.as_str()))
                .collect();
            if lacking.is_empty() {
                Finding::Ready {
                    property: name.to_string(),
                }
            } else {
                Finding::MissingOptions {
                    property: name.to_string(),
                    options: lacking,
                }
            }
        })
        .collect()
}

/// The group setup creates when a property is to be created and the portal
/// has no `warp` group yet.
pub fn group_needed(findings: &[Finding], groups: &[PropertyGroup]) -> Option<PropertyGroup> {
    let creates = findings
        .iter()
        .any(|f| matches!(f, Finding::Missing { .. }));
    (creates && !groups.iter().any(|g| g.name == GROUP)).then(|| PropertyGroup {
        name: GROUP.into(),
        label: GROUP_LABEL.into(),
        display_order: -1,
    })
}

/// The values WARP's customers hold for each enumeration field the
/// mapping has and WARP's contract leaves open, gathered a customer at a
/// time (setup and doctor read WARP a page at a time).
pub struct HeldValues<'m> {
    fields: Vec<&'m FieldMapping>,
    held: BTreeMap<String, BTreeSet<String>>,
}

impl<'m> HeldValues<'m> {
    pub fn new(mapping: &'m MappingSet) -> Self {
        let fields: Vec<&FieldMapping> = mapping
            .all_fields()
            .filter(|f| f.value_type == ValueType::Enumeration)
            .filter(|f| contract_values(f.warp.as_str()).is_none())
            .collect();
        let held = fields
            .iter()
            .map(|f| (f.warp.as_str().to_string(), BTreeSet::new()))
            .collect();
        Self { fields, held }
    }

    /// No such field: WARP need not be read at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn note(&mut self, customer: &serde_json::Value) {
        for field in &self.fields {
            if let Some(value) = field
                .warp
                .get(customer)
                .and_then(serde_json::Value::as_str)
                .filter(|v| !v.is_empty())
                && let Some(values) = self.held.get_mut(field.warp.as_str())
            {
                values.insert(value.to_string());
            }
        }
    }

    /// Per WARP field, the values seen.
    pub fn into_map(self) -> BTreeMap<String, BTreeSet<String>> {
        self.held
    }
}

/// Per WARP enumeration field the mapping has (other than those the
/// contract fixes), the values `customers` hold.
pub fn held_values<'a>(
    mapping: &MappingSet,
    customers: impl IntoIterator<Item = &'a serde_json::Value>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut held = HeldValues::new(mapping);
    for customer in customers {
        held.note(customer);
    }
    held.into_map()
}

#[cfg(test)]
mod tests;
