//! Values between HubSpot (always strings) and WARP (JSON).
//!
//! HubSpot's formats (shared/hubspot-facts.md): numbers as decimal strings,
//! maybe with an exponent; booleans `true`/`false`; dates `YYYY-MM-DD` or
//! epoch ms at midnight UTC; datetimes ISO 8601 or epoch ms; multi-checkbox
//! options joined by `;`; and `""` for a cleared value. Money never passes
//! through a float. A value that does not convert is a permanent failure
//! with its reason: retrying cannot fix it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of value a mapped field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    /// Money and other exact numbers: a decimal string in WARP.
    Decimal,
    Integer,
    Boolean,
    Date,
    Datetime,
    Enumeration,
    /// WARP's `services` object (`{"voice": true, ...}`) as a HubSpot
    /// multi-checkbox (`voice;data`).
    Services,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::String => "string",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Enumeration => "enumeration",
            Self::Services => "services",
        })
    }
}

/// The services WARP knows, in the order HubSpot's multi-checkbox lists them.
pub const SERVICES: [&str; 3] = ["voice", "messaging", "data"];

/// Why a value does not convert. Never echoes the value: it may be personal
/// data, and the reason is enough to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value_type} value does not convert: {reason}")]
pub struct ConversionError {
    pub value_type: ValueType,
    pub reason: String,
}

fn err(value_type: ValueType, reason: impl Into<String>) -> ConversionError {
    ConversionError {
        value_type,
        reason: reason.into(),
    }
}

const MS_PER_DAY: i64 = 86_400_000;

impl ValueType {
    /// A HubSpot property value as WARP's JSON value. `""` is a cleared value:
    /// JSON null (no service at all, for services).
    pub fn hubspot_to_warp(self, raw: &str) -> Result<Value, ConversionError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(match self {
                Self::Services => services_object(&[]),
                _ => Value::Null,
            });
        }
        match self {
            Self::String | Self::Enumeration => Ok(Value::String(raw.to_string())),
            Self::Decimal => parse_decimal(self, raw).map(|d| Value::String(d.to_string())),
            Self::Integer => parse_integer(raw).map(Value::from),
            Self::Boolean => match raw.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(err(self, "expected true or false")),
            },
            Self::Date => parse_date(raw).map(|d| Value::String(d.format("%Y-%m-%d").to_string())),
            Self::Datetime => parse_datetime(raw).map(|t| Value::String(format_datetime(t))),
            Self::Services => {
                let mut on = Vec::new();
                for token in raw.split(';').map(str::trim).filter(|t| !t.is_empty()) {
                    let known = SERVICES
                        .iter()
                        .find(|s| s.eq_ignore_ascii_case(token))
                        .ok_or_else(|| {
                            err(
                                self,
                                format!("unknown service option (known: {})", SERVICES.join(", ")),
                            )
                        })?;
                    on.push(*known);
                }
                Ok(services_object(&on))
            }
        }
    }

    /// A WARP JSON value as the HubSpot property string; null is `""`.
    pub fn warp_to_hubspot(self, value: &Value) -> Result<String, ConversionError> {
        if value.is_null() {
            return Ok(String::new());
        }
        match self {
            Self::String | Self::Enumeration => value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| err(self, "expected a JSON string")),
            Self::Decimal => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(err(self, "expected a decimal string")),
                };
                parse_decimal(self, &text).map(|d| d.to_string())
            }
            Self::Integer => value
                .as_i64()
                .map(|i| i.to_string())
                .ok_or_else(|| err(self, "expected a JSON integer")),
            Self::Boolean => value
                .as_bool()
                .map(|b| b.to_string())
                .ok_or_else(|| err(self, "expected a JSON boolean")),
            Self::Date => {
                let s = value
                    .as_str()
                    .ok_or_else(|| err(self, "expected a date string"))?;
                parse_date(s).map(|d| d.format("%Y-%m-%d").to_string())
            }
            Self::Datetime => {
                let s = value
                    .as_str()
                    .ok_or_else(|| err(self, "expected an RFC 3339 string"))?;
                parse_datetime(s).map(format_datetime)
            }
            Self::Services => {
                let obj = value
                    .as_object()
                    .ok_or_else(|| err(self, "expected an object of service flags"))?;
                for (k, v) in obj {
                    if !SERVICES.contains(&k.as_str()) {
                        return Err(err(self, "unknown service in WARP's object"));
                    }
                    if !v.is_boolean() {
                        return Err(err(self, "service flags must be booleans"));
                    }
                }
                // Never a leading ';': HubSpot reads that as "append".
                Ok(SERVICES
                    .iter()
                    .filter(|s| obj.get(**s).and_then(Value::as_bool) == Some(true))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(";"))
            }
        }
    }

    /// Whether two WARP values mean the same (`"5000"` and `"5000.00"` do).
    pub fn same_warp_value(self, a: &Value, b: &Value) -> bool {
        match (self.warp_to_hubspot(a), self.warp_to_hubspot(b)) {
            (Ok(x), Ok(y)) => match self {
                Self::Decimal if !x.is_empty() && !y.is_empty() => {
                    Decimal::from_str(&x).ok() == Decimal::from_str(&y).ok()
                }
                _ => x == y,
            },
            _ => a == b,
        }
    }
}

fn services_object(on: &[&str]) -> Value {
    Value::Object(
        SERVICES
            .iter()
            .map(|s| (s.to_string(), Value::Bool(on.contains(s))))
            .collect(),
    )
}

fn parse_decimal(ty: ValueType, raw: &str) -> Result<Decimal, ConversionError> {
    let well_formed = raw
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !well_formed {
        return Err(err(
            ty,
            "expected digits, one decimal point, maybe an exponent",
        ));
    }
    let parsed = if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw)
    } else {
        Decimal::from_str_exact(raw)
    };
    parsed.map_err(|_| err(ty, "not an exact decimal number in range"))
}

fn parse_integer(raw: &str) -> Result<i64, ConversionError> {
    let d = parse_decimal(ValueType::Integer, raw)?;
    if !d.fract().is_zero() {
        return Err(err(ValueType::Integer, "has a fractional part"));
    }
    i64::try_from(d).map_err(|_| err(ValueType::Integer, "out of range"))
}

fn parse_date(raw: &str) -> Result<NaiveDate, ConversionError> {
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = raw
            .parse()
            .map_err(|_| err(ValueType::Date, "epoch milliseconds out of range"))?;
        if ms.rem_euclid(MS_PER_DAY) != 0 {
            return Err(err(
                ValueType::Date,
                "epoch milliseconds must fall at midnight UTC",
            ));
        }
        return DateTime::from_timestamp_millis(ms)
            .map(|t| t.date_naive())
            .ok_or_else(|| err(ValueType::Date, "epoch milliseconds out of range"));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        err(
            ValueType::Date,
            "expected YYYY-MM-DD or epoch milliseconds at midnight UTC",
        )
    })
}

fn parse_datetime(raw: &str) -> Result<DateTime<Utc>, ConversionError> {
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = raw
            .parse()
            .map_err(|_| err(ValueType::Datetime, "epoch milliseconds out of range"))?;
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| err(ValueType::Datetime, "epoch milliseconds out of range"));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            err(
                ValueType::Datetime,
                "expected ISO 8601 with a zone, or epoch milliseconds",
            )
        })
}

/// ISO 8601 in UTC with `Z`, milliseconds only when present: how HubSpot
/// reads datetimes back.
fn format_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests;
