//! Field mappings between WARP customers and HubSpot companies: which field
//! syncs which way, how a conflict is settled, and how values convert.
//!
//! Pure: no I/O. The mapping file is parsed and validated in [`config`],
//! values convert in [`value`], and [`conflict`] decides what one HubSpot
//! change does to one WARP field.

pub mod config;
pub mod conflict;
pub mod value;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::{MappingError, MappingSet};
pub use value::{ConversionError, ValueType};

/// Which way a field flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    WarpToHubspot,
    HubspotToWarp,
    Bidirectional,
    None,
}

impl Direction {
    /// HubSpot changes may be written into WARP.
    pub fn flows_into_warp(self) -> bool {
        matches!(self, Self::HubspotToWarp | Self::Bidirectional)
    }

    /// WARP changes may be written into HubSpot.
    pub fn flows_into_hubspot(self) -> bool {
        matches!(self, Self::WarpToHubspot | Self::Bidirectional)
    }
}

/// How a conflict (the field changed on both sides since its last sync) is
/// settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConflictStrategy {
    WarpWins,
    HubspotWins,
    LatestWins,
    /// Flag for human review; change neither side.
    Manual,
}

/// A dotted path into a WARP customer (`credit_limit`, `address.city`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WarpField(pub String);

impl WarpField {
    pub fn new(path: impl Into<String>) -> Self {
        Self(path.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments (`["address", "city"]`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// Reads the field from a WARP customer JSON object; `None` when absent.
    pub fn get<'a>(&self, customer: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments().try_fold(customer, |v, seg| v.get(seg))
    }

    /// Builds the partial-update body that sets this field to `value`
    /// (`{"address": {"city": value}}`), merged into `body`.
    pub fn set_in(
        &self,
        body: &mut serde_json::Map<String, serde_json::Value>,
        value: serde_json::Value,
    ) {
        let segments: Vec<&str> = self.segments().collect();
        let Some((last, parents)) = segments.split_last() else {
            return;
        };
        let mut node = body;
        for seg in parents {
            let entry = node
                .entry(seg.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(Default::default());
            }
            let serde_json::Value::Object(map) = entry else {
                return;
            };
            node = map;
        }
        node.insert(last.to_string(), value);
    }
}

impl fmt::Display for WarpField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One field's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    pub warp: WarpField,
    pub hubspot: String,
    pub direction: Direction,
    pub conflict: ConflictStrategy,
    pub value_type: ValueType,
}

/// What WARP's customer contract says of each field: its type, and whether a
/// sync may ever write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub path: &'static str,
    pub value_type: ValueType,
    /// `id`, `ban`, `created_at` never change; `updated_at` is WARP's own.
    pub writable: bool,
}

/// The WARP customer fields (shared/warp-api.md).
pub const WARP_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        path: "id",
        value_type: ValueType::String,
        writable: false,
    },
    FieldSpec {
        path: "ban",
        value_type: ValueType::String,
        writable: false,
    },
    FieldSpec {
        path: "company_name",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "status",
        value_type: ValueType::Enumeration,
        writable: true,
    },
    FieldSpec {
        path: "credit_limit",
        value_type: ValueType::Decimal,
        writable: true,
    },
    FieldSpec {
        path: "current_balance",
        value_type: ValueType::Decimal,
        writable: true,
    },
    FieldSpec {
        path: "payment_terms",
        value_type: ValueType::Enumeration,
        writable: true,
    },
    FieldSpec {
        path: "tier",
        value_type: ValueType::Enumeration,
        writable: true,
    },
    FieldSpec {
        path: "services",
        value_type: ValueType::Services,
        writable: true,
    },
    FieldSpec {
        path: "contact.name",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "contact.email",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "contact.phone",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.line1",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.line2",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.city",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.state",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.postal_code",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "address.country",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "external_ids.hubspot_company_id",
        value_type: ValueType::String,
        writable: true,
    },
    FieldSpec {
        path: "created_at",
        value_type: ValueType::Datetime,
        writable: false,
    },
    FieldSpec {
        path: "updated_at",
        value_type: ValueType::Datetime,
        writable: false,
    },
];

pub fn field_spec(path: &str) -> Option<&'static FieldSpec> {
    WARP_FIELDS.iter().find(|f| f.path == path)
}

/// Mappings indexed by HubSpot property, for one scope (global or one
/// customer's overrides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTable {
    by_property: HashMap<String, FieldMapping>,
}

impl FieldTable {
    pub fn by_property(&self, property: &str) -> Option<&FieldMapping> {
        self.by_property.get(property)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldMapping> {
        self.by_property.values()
    }

    pub fn len(&self) -> usize {
        self.by_property.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_property.is_empty()
    }

    fn insert(&mut self, m: FieldMapping) {
        self.by_property.insert(m.hubspot.clone(), m);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dotted_paths_read_and_build_partial_updates() {
        let customer =
            json!({"credit_limit": "5000.00", "address": {"city": "Denver", "line2": null}});
        assert_eq!(
            WarpField::new("address.city").get(&customer),
            Some(&json!("Denver"))
        );
        assert_eq!(
            WarpField::new("address.line2").get(&customer),
            Some(&json!(null))
        );
        assert_eq!(WarpField::new("contact.email").get(&customer), None);

        let mut body = serde_json::Map::new();
        WarpField::new("address.city").set_in(&mut body, json!("Boulder"));
        WarpField::new("address.state").set_in(&mut body, json!("CO"));
        WarpField::new("credit_limit").set_in(&mut body, json!("7500"));
        assert_eq!(
            serde_json::Value::Object(body),
            json!({"address": {"city": "Boulder", "state": "CO"}, "credit_limit": "7500"})
        );
    }

    #[test]
    fn the_catalog_marks_immutable_fields() {
        for path in ["id", "ban", "created_at", "updated_at"] {
            assert!(!field_spec(path).unwrap().writable, "{path}");
        }
        assert!(field_spec("credit_limit").unwrap().writable);
        assert!(field_spec("nonsense").is_none());
    }
}
