//! The sandbox's portal: companies ordered by id, the properties the portal
//! defines (properties.rs), each property's history, how a write is checked
//! against the definitions, and how HubSpot renders an object.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::properties::{Refused, Schema};
use crate::warp_sandbox::{now_ms, rfc3339};

/// Always returned, asked for or not, as HubSpot does; never writable.
pub(super) const SYSTEM_PROPERTIES: [&str; 3] =
    ["hs_object_id", "createdate", "hs_lastmodifieddate"];

/// What HubSpot returns when no `properties` are asked for.
pub(super) const DEFAULT_PROPERTIES: [&str; 2] = ["name", "domain"];

/// Why HubSpot refuses a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MergeRefused {
    Itself,
    Missing(String),
}

/// Companies in id order: numerically for numeric ids (as HubSpot's list
/// and its `hs_object_id` sort go), others after them by text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct IdKey {
    non_numeric: bool,
    number: u128,
    text: String,
}

impl IdKey {
    pub(super) fn new(id: &str) -> Self {
        let number = id.parse::<u128>().ok();
        Self {
            non_numeric: number.is_none(),
            number: number.unwrap_or(0),
            text: id.to_string(),
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.text
    }

    pub(super) fn is_numeric(&self) -> bool {
        !self.non_numeric
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Stored {
    /// Values are strings, or null for a property without a value.
    pub properties: Map<String, Value>,
    /// Per property, newest first, as `ValueWithTimestamp`.
    history: BTreeMap<String, Vec<Value>>,
}

impl Stored {
    pub(super) fn value(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }
}

/// A fresh portal: no company, HubSpot's standard properties and groups,
/// no custom property.
#[derive(Default)]
pub(super) struct Portal {
    pub companies: BTreeMap<IdKey, Stored>,
    pub schema: Schema,
    last_ms: i64,
}

/// How asked-for properties are shown.
pub(super) struct Asked<'a> {
    pub properties: &'a [String],
    pub with_history: &'a [String],
}

impl Portal {
    /// Write times that strictly increase, so `hs_lastmodifieddate` orders
    /// every write even within one millisecond.
    fn stamp(&mut self) -> String {
        self.last_ms = now_ms().max(self.last_ms + 1);
        rfc3339(self.last_ms, true)
    }

    /// A test's convenience (see `Schema::define_text`).
    pub(super) fn define(&mut self, name: &str) {
        let now = rfc3339(now_ms(), true);
        self.schema.define_text(name, &now);
    }

    pub(super) fn is_defined(&self, name: &str) -> bool {
        self.schema.is_defined(name)
    }

    /// A `PropertyCreate` checked and defined (`POST
    /// /crm/v3/properties/companies` and its in-process door).
    pub(super) fn create_property(&mut self, input: &Value) -> Result<Value, Refused> {
        let now = rfc3339(now_ms(), true);
        self.schema.create(input, &now)
    }

    /// The values `properties` sets, with a detail in `details` for each one
    /// HubSpot refuses: a read-only or undefined property, a value that is
    /// not a scalar, or one its definition does not take (a number property
    /// given text, an option the enumeration does not offer). `""` clears;
    /// null changes nothing (HubSpot ignores it). Every write goes through
    /// here, over HTTP and through the in-process doors alike.
    pub(super) fn settable(
        &self,
        properties: &Map<String, Value>,
        details: &mut Vec<Value>,
    ) -> Vec<(String, Value)> {
        let mut set = Vec::new();
        for (name, value) in properties {
            let problem =
                if SYSTEM_PROPERTIES.contains(&name.as_str()) || self.schema.read_only(name) {
                    Some((
                        "READ_ONLY_VALUE",
                        format!("\"{name}\" is a read only property; its value cannot be set."),
                    ))
                } else if !self.is_defined(name) {
                    Some((
                        "PROPERTY_DOESNT_EXIST",
                        format!("Property \"{name}\" does not exist"),
                    ))
                } else if value.is_object() || value.is_array() {
                    Some((
                        "INVALID_PROPERTY_VALUE",
                        format!("Property \"{name}\" takes a string value"),
                    ))
                } else {
                    match as_property_value(value.clone()) {
                        Value::String(text) => self.schema.check(name, &text),
                        _ => None,
                    }
                };
            if let Some((code, message)) = problem {
                details.push(
                    json!({"message": message, "code": code, "context": {"propertyName": [name]}}),
                );
                continue;
            }
            match as_property_value(value.clone()) {
                Value::Null => {}
                Value::String(s) if s.is_empty() => set.push((name.clone(), Value::Null)),
                v => set.push((name.clone(), v)),
            }
        }
        set
    }

    pub(super) fn get(&self, id: &str) -> Option<&Stored> {
        self.companies.get(&IdKey::new(id))
    }

    /// The company whose unique property `name` is `value` (`idProperty`).
    pub(super) fn find_by(&self, name: &str, value: &str) -> Option<(&IdKey, &Stored)> {
        self.companies
            .iter()
            .find(|(_, c)| c.value(name) == Some(value))
    }

    /// Seeds or merges, as `HubspotSandbox::upsert_company` documents:
    /// a test's convenience that writes past the definitions (no value is
    /// checked) and defines an unknown property as text.
    pub(super) fn upsert(&mut self, id: &str, properties: Map<String, Value>) {
        let now = self.stamp();
        for name in properties.keys() {
            self.schema.define_text(name, &now);
        }
        let company = self.companies.entry(IdKey::new(id)).or_default();
        company
            .properties
            .entry("createdate")
            .or_insert_with(|| now.clone().into());
        company
            .properties
            .insert("hs_lastmodifieddate".into(), now.clone().into());
        for (name, value) in properties {
            let value = as_property_value(value);
            record(&mut company.history, &name, &value, &now, "IMPORT");
            company.properties.insert(name, value);
        }
        company.properties.insert("hs_object_id".into(), id.into());
    }

    /// An API write: each value set (null clears), then a new
    /// `hs_lastmodifieddate`. The caller has checked the company exists.
    /// A new company with the next id after the highest numeric one.
    pub(super) fn create(&mut self, set: Vec<(String, Value)>) -> String {
        let next = self
            .companies
            .keys()
            .filter(|k| !k.non_numeric)
            .map(|k| k.number)
            .max()
            .unwrap_or(0)
            + 1;
        let id = next.to_string();
        let now = self.stamp();
        let company = self.companies.entry(IdKey::new(&id)).or_default();
        company.properties.insert("createdate".into(), now.into());
        company
            .properties
            .insert("hs_object_id".into(), id.clone().into());
        self.update(&IdKey::new(&id), set);
        id
    }

    /// Moves `other` into `primary`: values `primary` lacks are taken from
    /// `other`, which is removed. Returns the names of `primary`'s values.
    pub(super) fn merge(
        &mut self,
        primary: &str,
        other: &str,
    ) -> Result<Vec<String>, MergeRefused> {
        if primary == other {
            return Err(MergeRefused::Itself);
        }
        for id in [primary, other] {
            if self.get(id).is_none() {
                return Err(MergeRefused::Missing(id.to_string()));
            }
        }
        let taken: Vec<(String, Value)> = match (self.get(primary), self.get(other)) {
            (Some(p), Some(o)) => o
                .properties
                .iter()
                .filter(|(name, v)| {
                    !SYSTEM_PROPERTIES.contains(&name.as_str())
                        && !v.is_null()
                        && p.properties.get(*name).is_none_or(Value::is_null)
                })
                .map(|(name, v)| (name.clone(), v.clone()))
                .collect(),
            _ => Vec::new(),
        };
        self.companies.remove(&IdKey::new(other));
        self.update(&IdKey::new(primary), taken);
        Ok(self
            .get(primary)
            .map(|c| c.properties.keys().cloned().collect())
            .unwrap_or_default())
    }

    pub(super) fn update(&mut self, key: &IdKey, changes: Vec<(String, Value)>) {
        let now = self.stamp();
        if let Some(company) = self.companies.get_mut(key) {
            for (name, value) in changes {
                record(&mut company.history, &name, &value, &now, "INTEGRATION");
                company.properties.insert(name, value);
            }
            company
                .properties
                .insert("hs_lastmodifieddate".into(), now.into());
        }
    }

    /// A `SimplePublicObject`: system properties always; asked ones that
    /// the portal defines, `null` when the company has no value; unknown
    /// ones left out.
    pub(super) fn render(&self, id: &str, company: &Stored, asked: &Asked<'_>) -> Value {
        let mut properties = Map::new();
        for name in SYSTEM_PROPERTIES {
            if let Some(v) = company.properties.get(name) {
                properties.insert(name.into(), v.clone());
            }
        }
        for name in asked.properties {
            if properties.contains_key(name) {
                continue;
            }
            match company.properties.get(name) {
                Some(v) => {
                    properties.insert(name.clone(), v.clone());
                }
                None if self.is_defined(name) => {
                    properties.insert(name.clone(), Value::Null);
                }
                None => {}
            }
        }
        let mut object = json!({
            "id": id,
            "properties": properties,
            "createdAt": company.properties.get("createdate").cloned().unwrap_or(Value::Null),
            "updatedAt": company.properties.get("hs_lastmodifieddate").cloned().unwrap_or(Value::Null),
            "archived": false,
        });
        if !asked.with_history.is_empty() {
            let history: Map<String, Value> = asked
                .with_history
                .iter()
                .filter(|name| self.is_defined(name) || company.history.contains_key(*name))
                .map(|name| {
                    let entries = company.history.get(name).cloned().unwrap_or_default();
                    (name.clone(), Value::Array(entries))
                })
                .collect();
            object["propertiesWithHistory"] = Value::Object(history);
        }
        object
    }
}

fn record(
    history: &mut BTreeMap<String, Vec<Value>>,
    name: &str,
    value: &Value,
    timestamp: &str,
    source: &str,
) {
    if SYSTEM_PROPERTIES.contains(&name) {
        return;
    }
    history.entry(name.to_string()).or_default().insert(
        0,
        json!({
            "value": value.as_str().unwrap_or(""),
            "timestamp": timestamp,
            "sourceType": source,
        }),
    );
}

/// HubSpot's wire type is text: numbers and booleans become their text,
/// null stays a property without a value.
pub(super) fn as_property_value(value: Value) -> Value {
    match value {
        Value::String(_) | Value::Null => value,
        other => Value::String(other.to_string()),
    }
}
