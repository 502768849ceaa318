//! Search's filters and sorts over the portal, as HubSpot evaluates them:
//! numbers as numbers, datetimes as instants (ISO 8601 or epoch ms on
//! either side), other text case-insensitively.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

use super::store::{IdKey, Stored};

pub(super) const MAX_GROUPS: usize = 5;
pub(super) const MAX_FILTERS_PER_GROUP: usize = 6;
pub(super) const MAX_FILTERS: usize = 18;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FilterIn {
    pub property_name: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub high_value: Option<Value>,
    #[serde(default)]
    pub values: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct GroupIn {
    #[serde(default)]
    pub filters: Vec<FilterIn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

/// A filter checked once, ready to run over every company.
#[derive(Debug)]
pub(super) struct Filter {
    property: String,
    op: Op,
    value: String,
    high: String,
    values: Vec<String>,
}

/// A JSON scalar as HubSpot reads it: text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Filter {
    pub(super) fn parse(f: &FilterIn) -> Result<Self, String> {
        let op = match f.operator.as_str() {
            "EQ" => Op::Eq,
            "NEQ" => Op::Neq,
            "LT" => Op::Lt,
            "LTE" => Op::Lte,
            "GT" => Op::Gt,
            "GTE" => Op::Gte,
            "BETWEEN" => Op::Between,
            "IN" => Op::In,
            "NOT_IN" => Op::NotIn,
            "HAS_PROPERTY" => Op::HasProperty,
            "NOT_HAS_PROPERTY" => Op::NotHasProperty,
            "CONTAINS_TOKEN" => Op::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Op::NotContainsToken,
            other => return Err(format!("Unknown filter operator '{other}'")),
        };
        let value = f.value.as_ref().and_then(text);
        let needs_value = !matches!(
            op,
            Op::HasProperty | Op::NotHasProperty | Op::In | Op::NotIn
        );
        if needs_value && value.is_none() {
            return Err(format!(
                "filter {} on {} needs a value",
                f.operator, f.property_name
            ));
        }
        let high = f.high_value.as_ref().and_then(text);
        if op == Op::Between && high.is_none() {
            return Err(format!("BETWEEN on {} needs a highValue", f.property_name));
        }
        let values: Vec<String> = f.values.iter().flatten().filter_map(text).collect();
        if matches!(op, Op::In | Op::NotIn) && values.is_empty() {
            return Err(format!(
                "{} on {} needs values",
                f.operator, f.property_name
            ));
        }
        Ok(Self {
            property: f.property_name.clone(),
            op,
            value: value.unwrap_or_default(),
            high: high.unwrap_or_default(),
            values,
        })
    }

    pub(super) fn matches(&self, company: &Stored) -> bool {
        let stored = company.value(&self.property).filter(|v| !v.is_empty());
        let Some(v) = stored else {
            return matches!(
                self.op,
                Op::NotHasProperty | Op::Neq | Op::NotIn | Op::NotContainsToken
            );
        };
        match self.op {
            Op::HasProperty => true,
            Op::NotHasProperty => false,
            Op::Eq => compare(v, &self.value) == Ordering::Equal,
            Op::Neq => compare(v, &self.value) != Ordering::Equal,
            Op::Lt => compare(v, &self.value) == Ordering::Less,
            Op::Lte => compare(v, &self.value) != Ordering::Greater,
            Op::Gt => compare(v, &self.value) == Ordering::Greater,
            Op::Gte => compare(v, &self.value) != Ordering::Less,
            Op::Between => {
                compare(v, &self.value) != Ordering::Less
                    && compare(v, &self.high) != Ordering::Greater
            }
            Op::In => self.values.iter().any(|x| compare(v, x) == Ordering::Equal),
            Op::NotIn => !self.values.iter().any(|x| compare(v, x) == Ordering::Equal),
            Op::ContainsToken => contains_token(v, &self.value),
            Op::NotContainsToken => !contains_token(v, &self.value),
        }
    }
}

/// Where in id order a query's matches can begin: when every group asks
/// for `hs_object_id` GT or GTE a whole number, no company with a smaller
/// numeric id can match (numbers compare as numbers), so a walk in id
/// order may start there instead of testing the whole portal. What the
/// bridge's paging by id asks on every page, over hundreds of thousands of
/// companies; the filters still decide every company from there on.
pub(super) fn id_floor(groups: &[Vec<Filter>]) -> Option<IdKey> {
    let floor = |group: &Vec<Filter>| {
        group
            .iter()
            .filter(|f| f.property == "hs_object_id" && matches!(f.op, Op::Gt | Op::Gte))
            .filter_map(|f| f.value.parse::<u128>().ok())
            .max()
    };
    let lowest = groups.iter().map(floor).collect::<Option<Vec<u128>>>()?;
    lowest.into_iter().min().map(|n| IdKey::new(&n.to_string()))
}

/// A token with `*` wildcards, matched case-insensitively.
fn contains_token(value: &str, token: &str) -> bool {
    let needle = token.trim_matches('*').to_lowercase();
    value.to_lowercase().contains(&needle)
}

/// Epoch ms of an ISO 8601 datetime, a date, or epoch ms itself.
fn instant_ms(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn compare(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let (Some(x), Some(y)) = (instant_ms(a), instant_ms(b)) {
        return x.cmp(&y);
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// A sort of the request; string items are ignored, as HubSpot ignores them.
#[derive(Debug)]
pub(super) struct Sort {
    property: String,
    descending: bool,
}

impl Sort {
    pub(super) fn parse(item: &Value) -> Result<Option<Self>, String> {
        let Some(object) = item.as_object() else {
            return Ok(None);
        };
        let property = object
            .get("propertyName")
            .and_then(Value::as_str)
            .ok_or("a sort needs a propertyName")?;
        let descending = match object.get("direction").and_then(Value::as_str) {
            None | Some("ASCENDING") => false,
            Some("DESCENDING") => true,
            Some(other) => return Err(format!("Unknown sort direction '{other}'")),
        };
        Ok(Some(Self {
            property: property.to_string(),
            descending,
        }))
    }
}

/// Whether companies walked in id order are already in the order `sorts`
/// asks: a sort by `hs_object_id` alone, ascending, over numeric ids (a
/// company's `hs_object_id` is its id). Spares a search over a large portal
/// a sort that would look every company's id up again to find it in order.
pub(super) fn in_id_order<'a>(sorts: &[Sort], mut ids: impl Iterator<Item = &'a IdKey>) -> bool {
    matches!(sorts, [s] if s.property == "hs_object_id" && !s.descending)
        && ids.all(IdKey::is_numeric)
}

/// Orders by the sorts, companies without a value last, then by id.
pub(super) fn order(sorts: &[Sort], a: (&IdKey, &Stored), b: (&IdKey, &Stored)) -> Ordering {
    for sort in sorts {
        let ordering = match (a.1.value(&sort.property), b.1.value(&sort.property)) {
            (Some(x), Some(y)) => {
                let o = compare(x, y);
                if sort.descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.0.cmp(b.0)
}

/// `query`: a case-insensitive match in the default searchable properties.
pub(super) fn matches_query(company: &Stored, query: &str) -> bool {
    let query = query.to_lowercase();
    ["name", "domain", "website", "phone"]
        .iter()
        .filter_map(|p| company.value(p))
        .any(|v| v.to_lowercase().contains(&query))
}
