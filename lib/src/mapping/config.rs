//! The mapping file: global field mappings plus per-customer overrides,
//! loaded and validated once at cold start.
//!
//! TOML, because every error can then name its line:
//!
//! ```toml
//! [[field]]
//! warp = "credit_limit"          # WARP field path, dotted
//! hubspot = "warp_credit_limit"  # HubSpot company property
//! direction = "BIDIRECTIONAL"    # WARP_TO_HUBSPOT | HUBSPOT_TO_WARP | BIDIRECTIONAL | NONE
//! conflict = "HUBSPOT_WINS"      # WARP_WINS | HUBSPOT_WINS | LATEST_WINS | MANUAL
//! type = "decimal"               # string | decimal | integer | boolean | date | datetime | enumeration | services
//!
//! [[customer]]
//! match = "ZT-487392012"         # a customer id or BAN
//! [[customer.field]]             # replaces the global mapping of the same WARP field
//! warp = "credit_limit"
//! hubspot = "warp_credit_limit"
//! direction = "NONE"
//! conflict = "HUBSPOT_WINS"
//! type = "decimal"
//! ```

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::{
    ConflictStrategy, Direction, FieldMapping, FieldTable, ValueType, WarpField, field_spec,
};

/// The mapping shipped with the functions: the table in shared/warp-api.md.
pub const DEFAULT_MAPPING: &str = include_str!("../../mappings/default.toml");

/// A mapping file that cannot be used; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping file line {line}: {message}")]
pub struct MappingError {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    field: Vec<Spanned<RawField>>,
    #[serde(default)]
    customer: Vec<Spanned<RawCustomer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomer {
    #[serde(rename = "match")]
    matches: String,
    #[serde(default)]
    field: Vec<Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    warp: String,
    hubspot: String,
    direction: Direction,
    conflict: ConflictStrategy,
    #[serde(rename = "type")]
    value_type: ValueType,
}

/// Global mappings plus per-customer overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingSet {
    global: FieldTable,
    /// Keyed by customer id or BAN.
    overrides: HashMap<String, FieldTable>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

impl MappingSet {
    /// The mapping named by `MAPPING_FILE` (a TOML path), or the shipped
    /// default; a bad file fails naming the setting and the line.
    pub fn from_setting(env: &crate::settings::Env) -> Result<Self, crate::settings::SettingError> {
        use crate::settings::SettingError;
        let name = "MAPPING_FILE";
        let loaded = match env.optional(name) {
            None => Self::default_mapping(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SettingError::malformed(name, format!("cannot read {path}: {e}"))
                })?;
                Self::parse(&text)
            }
        };
        loaded.map_err(|e| SettingError::malformed(name, e))
    }

    /// The shipped default mapping.
    pub fn default_mapping() -> Result<Self, MappingError> {
        Self::parse(DEFAULT_MAPPING)
    }

    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| MappingError {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        let global = table(text, &raw.field)?;
        let mut overrides = HashMap::new();
        for customer in &raw.customer {
            let line = line_of(text, customer.span().start);
            let c = customer.get_ref();
            let key = c.matches.trim();
            if key.is_empty() {
                return Err(MappingError {
                    line,
                    message: "customer override needs `match` (a customer id or BAN)".into(),
                });
            }
            if overrides
                .insert(key.to_string(), table(text, &c.field)?)
                .is_some()
            {
                return Err(MappingError {
                    line,
                    message: "a second override for the same customer".into(),
                });
            }
        }
        Ok(Self { global, overrides })
    }

    /// The mapping of `property` for a customer: its override when it has
    /// one for that property, else the global one unless the override
    /// re-mapped that WARP field elsewhere.
    pub fn lookup(&self, property: &str, customer_id: &str, ban: &str) -> Option<&FieldMapping> {
        let own = self.override_for(customer_id, ban);
        if let Some(m) = own.and_then(|t| t.by_property(property)) {
            return Some(m);
        }
        let global = self.global.by_property(property)?;
        let shadowed = own.is_some_and(|t| t.iter().any(|m| m.warp == global.warp));
        (!shadowed).then_some(global)
    }

    /// Every mapping in force for a customer.
    pub fn fields_for(&self, customer_id: &str, ban: &str) -> Vec<&FieldMapping> {
        let own = self.override_for(customer_id, ban);
        let mut fields: Vec<&FieldMapping> = own.map(|t| t.iter().collect()).unwrap_or_default();
        fields.extend(
            self.global
                .iter()
                .filter(|g| !own.is_some_and(|t| t.iter().any(|m| m.warp == g.warp))),
        );
        fields.sort_by(|a, b| a.warp.cmp(&b.warp));
        fields
    }

    /// Every mapping, global ones first, then each customer's overrides.
    pub fn all_fields(&self) -> impl Iterator<Item = &FieldMapping> {
        self.global
            .iter()
            .chain(self.overrides.values().flat_map(FieldTable::iter))
    }

    /// The HubSpot properties any mapping reads, for API `properties=` lists.
    pub fn properties(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.all_fields().map(|m| m.hubspot.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn override_for(&self, customer_id: &str, ban: &str) -> Option<&FieldTable> {
        self.overrides
            .get(customer_id)
            .or_else(|| self.overrides.get(ban))
    }
}

fn table(text: &str, fields: &[Spanned<RawField>]) -> Result<FieldTable, MappingError> {
    let mut out = FieldTable::default();
    let mut warp_seen = HashSet::new();
    for spanned in fields {
        let line = line_of(text, spanned.span().start);
        let fail = |message: String| MappingError { line, message };
        let f = spanned.get_ref();
        let spec =
            field_spec(&f.warp).ok_or_else(|| fail(format!("unknown WARP field `{}`", f.warp)))?;
        if !spec.writable && f.direction.flows_into_warp() {
            return Err(fail(format!(
                "WARP field `{}` never changes; it cannot flow into WARP (direction {:?})",
                f.warp, f.direction
            )));
        }
        if spec.value_type != f.value_type {
            return Err(fail(format!(
                "WARP field `{}` holds {} values, not {}",
                f.warp, spec.value_type, f.value_type
            )));
        }
        let valid_property = !f.hubspot.is_empty()
            && f.hubspot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_property {
            return Err(fail(format!(
                "HubSpot property `{}` must be an internal name (lowercase letters, digits, _)",
                f.hubspot
            )));
        }
        if out.by_property(&f.hubspot).is_some() {
            return Err(fail(format!(
                "HubSpot property `{}` is mapped twice",
                f.hubspot
            )));
        }
        if !warp_seen.insert(f.warp.clone()) {
            return Err(fail(format!("WARP field `{}` is mapped twice", f.warp)));
        }
        out.insert(FieldMapping {
            warp: WarpField::new(&f.warp),
            hubspot: f.hubspot.clone(),
            direction: f.direction,
            conflict: f.conflict,
            value_type: f.value_type,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
