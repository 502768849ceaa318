//! The customer's shape and the PUT rules: the contract's fields and their
//! types, a seeded customer completed, a patch checked and merged.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::errors::{ApiError, invalid_value, unknown_field};

/// How a field's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Money,
    Status,
    Flag,
}

pub(super) const READ_ONLY: [&str; 5] = ["id", "ban", "created_at", "updated_at", "etag"];

const SCALARS: [(&str, Kind); 6] = [
    ("company_name", Kind::Text),
    ("status", Kind::Status),
    ("credit_limit", Kind::Money),
    ("current_balance", Kind::Money),
    ("payment_terms", Kind::Text),
    ("tier", Kind::Text),
];

const NESTED: [(&str, &[&str], Kind); 4] = [
    ("services", &["voice", "messaging", "data"], Kind::Flag),
    ("contact", &["name", "email", "phone"], Kind::Text),
    (
        "address",
        &["line1", "line2", "city", "state", "postal_code", "country"],
        Kind::Text,
    ),
    ("external_ids", &["hubspot_company_id"], Kind::Text),
];

const STATUSES: [&str; 4] = ["ACTIVE", "SUSPENDED", "PENDING", "CLOSED"];

fn nested_keys(field: &str) -> Option<(&'static [&'static str], Kind)> {
    NESTED
        .iter()
        .find(|(name, _, _)| *name == field)
        .map(|&(_, keys, kind)| (keys, kind))
}

fn scalar_kind(field: &str) -> Option<Kind> {
    SCALARS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|&(_, kind)| kind)
}

fn nulls(keys: &[&str]) -> Map<String, Value> {
    keys.iter().map(|k| (k.to_string(), Value::Null)).collect()
}

/// A seeded customer with every contract field present, so that clients see
/// the full shape whatever a test chose to seed.
pub(super) fn complete(mut customer: Map<String, Value>, stamp: &str) -> Map<String, Value> {
    if !customer.contains_key("id") {
        customer.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    }
    customer.entry("ban").or_insert(Value::Null);
    for (field, _) in SCALARS {
        customer.entry(field).or_insert(Value::Null);
    }
    for (field, keys, _) in NESTED {
        let slot = customer
            .entry(field)
            .or_insert_with(|| Value::Object(nulls(keys)));
        if let Value::Object(fields) = slot {
            for key in keys {
                fields.entry(*key).or_insert(Value::Null);
            }
        }
    }
    customer.entry("created_at").or_insert(stamp.into());
    customer.entry("updated_at").or_insert(stamp.into());
    let etag_ok = customer
        .get("etag")
        .and_then(Value::as_str)
        .and_then(etag_number)
        .is_some();
    if !etag_ok {
        customer.insert("etag".into(), "\"1\"".into());
    }
    customer
}

/// The N of an etag `"N"`.
pub(super) fn etag_number(etag: &str) -> Option<u64> {
    etag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

pub(super) fn parse_patch(body: &Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(patch) => Ok(patch.clone()),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            "the body must be a JSON object",
        )),
    }
}

/// The PUT body rules: read-only fields first (so the answer does not depend
/// on key order), then unknown fields and value types.
pub(super) fn check_patch(patch: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(field) = patch.keys().find(|k| READ_ONLY.contains(&k.as_str())) {
        return Err(ApiError::unprocessable(
            "IMMUTABLE_FIELD",
            format!("field '{field}' cannot be changed"),
        ));
    }
    for (field, value) in patch {
        if let Some(kind) = scalar_kind(field) {
            check_value(field, kind, value)?;
        } else if let Some((keys, kind)) = nested_keys(field) {
            check_nested(field, keys, kind, value)?;
        } else {
            return Err(unknown_field(field));
        }
    }
    Ok(())
}

fn check_nested(field: &str, keys: &[&str], kind: Kind, value: &Value) -> Result<(), ApiError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(fields) => fields.iter().try_for_each(|(key, value)| {
            let path = format!("{field}.{key}");
            if keys.contains(&key.as_str()) {
                check_value(&path, kind, value)
            } else {
                Err(unknown_field(&path))
            }
        }),
        _ => Err(invalid_value(field, "an object or null")),
    }
}

fn check_value(field: &str, kind: Kind, value: &Value) -> Result<(), ApiError> {
    let ok = match (kind, value) {
        (_, Value::Null) => true,
        (Kind::Text, Value::String(_)) => true,
        (Kind::Money, Value::String(s)) => is_decimal(s),
        (Kind::Status, Value::String(s)) => STATUSES.contains(&s.as_str()),
        (Kind::Flag, Value::Bool(_)) => true,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::Text => "a string",
        Kind::Money => "a decimal string such as \"1234.56\"",
        Kind::Status => "one of ACTIVE, SUSPENDED, PENDING, CLOSED",
        Kind::Flag => "a boolean",
    };
    Err(invalid_value(field, expected))
}

/// `-?digits(.digits)?`: money is never a float nor an exponent.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

/// Merges a checked patch: top-level fields replace, nested objects merge
/// key by key, null sets a field (or a whole nested object) to null.
pub(super) fn apply_patch(customer: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (field, value) in patch {
        match (nested_keys(&field), value) {
            (Some((keys, _)), Value::Object(fields)) => {
                let slot = customer.entry(field).or_insert(Value::Null);
                if !slot.is_object() {
                    *slot = Value::Object(nulls(keys));
                }
                if let Value::Object(target) = slot {
                    target.extend(fields);
                }
            }
            (_, value) => {
                customer.insert(field, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_must_be_a_plain_decimal() {
        for ok in ["0", "5000.00", "-12.5", "1234.56"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", "1e3", "1.", ".5", "12,00", "NaN", "--1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
