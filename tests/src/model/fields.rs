//! The model's own catalog of the mapped fields, written from the default
//! mapping table of shared/warp-api.md (not read from the library), with
//! each field's values in the forms the two systems write them, and the
//! canonical form the model compares: decimals without trailing zeros,
//! services as a set, `""` / null / absent as one empty value.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    WarpToHubspot,
    HubspotToWarp,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    WarpWins,
    HubspotWins,
    Latest,
    Manual,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Self::WarpWins => "WARP_WINS",
            Self::HubspotWins => "HUBSPOT_WINS",
            Self::Latest => "LATEST_WINS",
            Self::Manual => "MANUAL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text(&'static [&'static str]),
    Decimal,
    Enum(&'static [&'static str]),
    Services,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub warp: &'static str,
    pub hubspot: &'static str,
    pub dir: Dir,
    pub strategy: Strategy,
    pub kind: Kind,
    /// Either system may edit it (`ban` never changes).
    pub editable: bool,
    pub type_name: &'static str,
}

const NAMES: &[&str] = &[
    "Acme",
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "",
];
const EMAILS: &[&str] = &[
    "ops@acme.example",
    "billing@acme.example",
    "ada@globex.example",
    "",
];
const CITIES: &[&str] = &["Denver", "Boulder", "Yllä", "Austin", "Zürich", ""];
const STATES: &[&str] = &["CO", "TX", "CA", "NY", ""];
const ZIPS: &[&str] = &["80202", "80301", "73301", "10001", ""];
const COUNTRIES: &[&str] = &["US", "CA", "DE", "FI", ""];
const STATUSES: &[&str] = &["ACTIVE", "SUSPENDED", "PENDING", "CLOSED"];
const TERMS: &[&str] = &["NET15", "NET30", "NET45", "NET60"];
const TIERS: &[&str] = &["BRONZE", "SILVER", "GOLD", "PLATINUM"];
const BANS: &[&str] = &[];

/// Decimals as (canonical, the forms either side may write it in).
const DECIMALS: &[(&str, &[&str])] = &[
    ("5000", &["5000", "5000.00", "5000.0"]),
    ("7500.5", &["7500.5", "7500.50"]),
    ("250", &["250", "250.000"]),
    ("0", &["0", "0.00"]),
    ("12.34", &["12.34", "12.340"]),
];

const SERVICES: [&str; 3] = ["voice", "messaging", "data"];

/// The default mapping (shared/warp-api.md).
pub const FIELDS: [Field; 13] = [
    f(
        "ban",
        "warp_ban",
        Dir::WarpToHubspot,
        Strategy::WarpWins,
        Kind::Text(BANS),
        false,
        "string",
    ),
    f(
        "company_name",
        "name",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(NAMES),
        true,
        "string",
    ),
    f(
        "status",
        "warp_status",
        Dir::WarpToHubspot,
        Strategy::WarpWins,
        Kind::Enum(STATUSES),
        true,
        "enumeration",
    ),
    f(
        "credit_limit",
        "warp_credit_limit",
        Dir::Both,
        Strategy::HubspotWins,
        Kind::Decimal,
        true,
        "decimal",
    ),
    f(
        "current_balance",
        "warp_current_balance",
        Dir::WarpToHubspot,
        Strategy::WarpWins,
        Kind::Decimal,
        true,
        "decimal",
    ),
    f(
        "services",
        "warp_services",
        Dir::WarpToHubspot,
        Strategy::WarpWins,
        Kind::Services,
        true,
        "services",
    ),
    f(
        "payment_terms",
        "warp_payment_terms",
        Dir::HubspotToWarp,
        Strategy::HubspotWins,
        Kind::Enum(TERMS),
        true,
        "enumeration",
    ),
    f(
        "tier",
        "warp_tier",
        Dir::HubspotToWarp,
        Strategy::HubspotWins,
        Kind::Enum(TIERS),
        true,
        "enumeration",
    ),
    f(
        "contact.email",
        "warp_contact_email",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(EMAILS),
        true,
        "string",
    ),
    f(
        "address.city",
        "city",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(CITIES),
        true,
        "string",
    ),
    f(
        "address.state",
        "state",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(STATES),
        true,
        "string",
    ),
    f(
        "address.postal_code",
        "zip",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(ZIPS),
        true,
        "string",
    ),
    f(
        "address.country",
        "country",
        Dir::Both,
        Strategy::Latest,
        Kind::Text(COUNTRIES),
        true,
        "string",
    ),
];

#[allow(clippy::too_many_arguments)]
const fn f(
    warp: &'static str,
    hubspot: &'static str,
    dir: Dir,
    strategy: Strategy,
    kind: Kind,
    editable: bool,
    type_name: &'static str,
) -> Field {
    Field {
        warp,
        hubspot,
        dir,
        strategy,
        kind,
        editable,
        type_name,
    }
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::WarpToHubspot => "WARP_TO_HUBSPOT",
        Dir::HubspotToWarp => "HUBSPOT_TO_WARP",
        Dir::Both => "BIDIRECTIONAL",
    }
}

/// The mapping file of a history: the default table with the strategies
/// `fields` carry (a history may make a bidirectional field MANUAL).
pub fn mapping_toml(fields: &[Field]) -> String {
    let mut out = String::new();
    for f in fields {
        out.push_str(&format!(
            "[[field]]\nwarp = \"{}\"\nhubspot = \"{}\"\ndirection = \"{}\"\nconflict = \"{}\"\ntype = \"{}\"\n\n",
            f.warp,
            f.hubspot,
            dir_name(f.dir),
            f.strategy.name(),
            f.type_name
        ));
    }
    out
}

/// One value as the model keeps it (canonical) and as each system writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub canon: String,
    pub hubspot: String,
    pub warp: Value,
}

fn decimal_canon(raw: &str) -> String {
    let raw = raw.trim();
    if raw.is_empty() {
        return String::new();
    }
    match raw.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => raw.to_string(),
    }
}

fn services_canon(set: &[&str]) -> String {
    SERVICES
        .iter()
        .filter(|s| set.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(";")
}

impl Field {
    /// A random value for this field, in a random one of its forms.
    pub fn random(&self, rng: &mut impl Rng) -> Written {
        match self.kind {
            Kind::Text(pool) | Kind::Enum(pool) => {
                let v = pool.choose(rng).copied().unwrap_or_default();
                Written {
                    canon: v.to_string(),
                    hubspot: v.to_string(),
                    warp: if v.is_empty() { Value::Null } else { json!(v) },
                }
            }
            Kind::Decimal => {
                let (canon, forms) = DECIMALS.choose(rng).copied().unwrap_or(("0", &["0"]));
                let form =
                    |rng: &mut dyn rand::RngCore| forms.choose(rng).copied().unwrap_or(canon);
                Written {
                    canon: canon.to_string(),
                    hubspot: form(rng).to_string(),
                    warp: json!(form(rng)),
                }
            }
            Kind::Services => {
                let mut set: Vec<&str> = SERVICES
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.5))
                    .collect();
                let canon = services_canon(&set);
                // HubSpot's multi-checkbox in any order: a reorder is the
                // same value.
                set.sort_by_key(|_| rng.random::<u8>());
                Written {
                    canon,
                    hubspot: set.join(";"),
                    warp: json!({
                        "voice": set.contains(&"voice"),
                        "messaging": set.contains(&"messaging"),
                        "data": set.contains(&"data"),
                    }),
                }
            }
        }
    }

    /// The same canonical value written again in another form, when the
    /// field has forms (a decimal's zeros, a services reorder).
    pub fn reform(&self, canon: &str, rng: &mut impl Rng) -> Option<Written> {
        match self.kind {
            Kind::Decimal => {
                let (_, forms) = DECIMALS.iter().find(|(c, _)| *c == canon)?;
                let form = forms.choose(rng)?;
                Some(Written {
                    canon: canon.to_string(),
                    hubspot: form.to_string(),
                    warp: json!(form),
                })
            }
            Kind::Services => {
                let mut set: Vec<&str> = canon.split(';').filter(|s| !s.is_empty()).collect();
                set.reverse();
                Some(Written {
                    canon: canon.to_string(),
                    hubspot: set.join(";"),
                    warp: json!({
                        "voice": set.contains(&"voice"),
                        "messaging": set.contains(&"messaging"),
                        "data": set.contains(&"data"),
                    }),
                })
            }
            _ => None,
        }
    }

    /// A HubSpot property value, canonical.
    pub fn canon_hubspot(&self, raw: Option<&str>) -> String {
        let raw = raw.unwrap_or_default();
        match self.kind {
            Kind::Decimal => decimal_canon(raw),
            Kind::Services => services_canon(&raw.split(';').map(str::trim).collect::<Vec<_>>()),
            _ => raw.to_string(),
        }
    }

    /// A WARP field value (its JSON), canonical.
    pub fn canon_warp(&self, value: Option<&Value>) -> String {
        match (self.kind, value) {
            (_, None | Some(Value::Null)) => String::new(),
            (Kind::Services, Some(Value::Object(m))) => {
                let set: Vec<&str> = SERVICES
                    .iter()
                    .copied()
                    .filter(|s| m.get(*s).and_then(Value::as_bool) == Some(true))
                    .collect();
                services_canon(&set)
            }
            (Kind::Decimal, Some(Value::String(s))) => decimal_canon(s),
            (_, Some(Value::String(s))) => s.clone(),
            (_, Some(other)) => other.to_string(),
        }
    }

    /// WARP's JSON of a canonical value (for the model's own writes).
    pub fn warp_json(&self, canon: &str) -> Value {
        match self.kind {
            _ if canon.is_empty() && self.kind != Kind::Services => Value::Null,
            Kind::Services => {
                let set: Vec<&str> = canon.split(';').collect();
                json!({
                    "voice": set.contains(&"voice"),
                    "messaging": set.contains(&"messaging"),
                    "data": set.contains(&"data"),
                })
            }
            _ => json!(canon),
        }
    }
}

pub fn by_hubspot(fields: &[Field], property: &str) -> Option<Field> {
    fields.iter().find(|f| f.hubspot == property).copied()
}

/// Reads a dotted WARP path from a customer's JSON.
pub fn warp_get<'a>(customer: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(customer, |v, seg| v.get(seg))
}

/// A partial update setting `path` to `value` (`{"address": {"city": v}}`).
pub fn warp_patch(path: &str, value: Value) -> Value {
    path.rsplit('.')
        .fold(value, |inner, seg| json!({ seg: inner }))
}
