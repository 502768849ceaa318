//! The portal's company property definitions and groups, as CRM properties
//! v3 (tests/contracts/hubspot/properties.v3.json) shows them: a fresh
//! portal holds HubSpot's standard company properties and groups and no
//! custom property; a custom property exists once someone creates it.
//! Values written to a company are checked against its property's
//! definition as HubSpot checks them.
//!
//! What the document leaves unsaid, and where the sandbox has it from:
//! - Which `fieldType` each `type` takes, that an enumeration is "a set of
//!   options, with options separated by a semicolon", and that dates are
//!   ISO 8601 or epoch milliseconds: HubSpot's properties guide
//!   (https://developers.hubspot.com/docs/api/crm/properties, "Property
//!   type and fieldType values").
//! - A name already taken answers 409 Conflict: HubSpot's property docs
//!   ("Returns a 409 Conflict error if there is already a property with the
//!   'name' you used. Property names must be unique.", legacydocs
//!   create_contacts_property); clients of the v3 API key on the category
//!   `OBJECT_ALREADY_EXISTS` of that 409. The message is the sandbox's own.
//! - A refused value answers 400 `VALIDATION_ERROR` whose `message` is
//!   "Property values were not valid: " and the JSON list of per-property
//!   results (`isValid`, `message`, `error`, `name`), with one `errors[]`
//!   entry per value (`message`, `code`, `context.propertyName`): a number
//!   property given "1.4210854715202004e-14" answered "… was not a valid
//!   number." with code `INVALID_INTEGER` (Atlas-Authority/
//!   marketing-automation issue #206, a real HubSpot answer to a v3 batch
//!   update); an enumeration given a value it does not offer answers "X was
//!   not one of the allowed options: [...]" with `INVALID_OPTION` (answers
//!   quoted by HubSpot clients, e.g. hull-connectors' fixtures and the
//!   "NAM Only" case a CRM tool rebuilt from a real body).
//! - A `bool` property holds `true` or `false`: HubSpot shows it with the
//!   two options `true`/`false` (labels Yes/No) and checks it as an
//!   enumeration, so a wrong value is `INVALID_OPTION` too.
//! - `hubspot_owner_id` takes owner ids (`externalOptions`, options kept
//!   elsewhere): its values are not checked against options.
//!
//! Date and datetime values are not checked (the bridge's default mapping
//! has none, and HubSpot's error code for them could not be confirmed).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::errors;

/// Property types and the field types each takes (HubSpot's properties
/// guide; `phone_number` from the document's `PropertyCreate.type`).
const FIELD_TYPES: [(&str, &[&str]); 7] = [
    ("bool", &["booleancheckbox", "calculation_equation"]),
    (
        "enumeration",
        &[
            "booleancheckbox",
            "checkbox",
            "radio",
            "select",
            "calculation_equation",
        ],
    ),
    ("date", &["date"]),
    ("datetime", &["date"]),
    ("number", &["number", "calculation_equation"]),
    (
        "string",
        &[
            "text",
            "textarea",
            "html",
            "phonenumber",
            "file",
            "calculation_equation",
        ],
    ),
    ("phone_number", &["phonenumber"]),
];

/// Who the sandbox says created HubSpot's own properties, and when.
const HUBSPOT_CREATED_AT: &str = "2019-08-06T02:41:52.000Z";
/// The user every custom definition is credited to (token info's `userId`).
const USER_ID: &str = "5150001";

/// Where `upsert_company` files a property it defines on the fly.
pub(super) const DEFAULT_GROUP: &str = "companyinformation";

/// HubSpot's standard company property groups (name, label).
const STANDARD_GROUPS: [(&str, &str); 5] = [
    ("companyinformation", "Company information"),
    ("company_activity", "Company activity"),
    ("conversioninformation", "Conversion information"),
    ("socialmediainformation", "Social media information"),
    ("analyticsinformation", "Web analytics history"),
];

/// How HubSpot's standard company properties are defined: a subset of a
/// real portal's, with their real names, types and field types. Options
/// of `industry` are a subset of HubSpot's list.
struct Standard {
    name: &'static str,
    label: &'static str,
    value_type: &'static str,
    field_type: &'static str,
    description: &'static str,
    options: &'static [(&'static str, &'static str)],
    /// System properties: set by HubSpot, never by a write.
    read_only: bool,
}

const fn text(name: &'static str, label: &'static str, description: &'static str) -> Standard {
    Standard {
        name,
        label,
        value_type: "string",
        field_type: "text",
        description,
        options: &[],
        read_only: false,
    }
}

const LIFECYCLE: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

const COMPANY_TYPES: &[(&str, &str)] = &[
    ("PROSPECT", "Prospect"),
    ("PARTNER", "Partner"),
    ("RESELLER", "Reseller"),
    ("VENDOR", "Vendor"),
    ("OTHER", "Other"),
];

const INDUSTRIES: &[(&str, &str)] = &[
    ("ACCOUNTING", "Accounting"),
    ("AIRLINES_AVIATION", "Airlines/Aviation"),
    ("BANKING", "Banking"),
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("CONSTRUCTION", "Construction"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    (
        "INFORMATION_TECHNOLOGY_AND_SERVICES",
        "Information Technology and Services",
    ),
    ("INTERNET", "Internet"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"),
    ("RETAIL", "Retail"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
    ("WIRELESS", "Wireless"),
];

const STANDARD: [Standard; 21] = [
    text(
        "name",
        "Company name",
        "The name of the company or organization.",
    ),
    text(
        "domain",
        "Company Domain Name",
        "The domain name of the company or organization",
    ),
    text(
        "website",
        "Website URL",
        "The main website of the company or organization.",
    ),
    Standard {
        field_type: "phonenumber",
        ..text("phone", "Phone Number", "A company's primary phone number.")
    },
    text(
        "address",
        "Street Address",
        "The street address of the company or organization, including unit number.",
    ),
    text(
        "address2",
        "Street Address 2",
        "The additional address of the company or organization.",
    ),
    text("city", "City", "The city where the company is located."),
    text(
        "state",
        "State/Region",
        "The state or region where the company is located.",
    ),
    text(
        "zip",
        "Postal Code",
        "The postal or zip code of the company or organization.",
    ),
    text(
        "country",
        "Country/Region",
        "The country or region in which the company is located.",
    ),
    Standard {
        value_type: "enumeration",
        field_type: "select",
        options: INDUSTRIES,
        ..text(
            "industry",
            "Industry",
            "The type of business the company performs.",
        )
    },
    Standard {
        field_type: "textarea",
        ..text(
            "description",
            "Description",
            "A short statement about the company's mission and goals.",
        )
    },
    Standard {
        value_type: "number",
        field_type: "number",
        ..text(
            "numberofemployees",
            "Number of Employees",
            "The total number of employees who work for the company or organization.",
        )
    },
    Standard {
        value_type: "number",
        field_type: "number",
        ..text(
            "annualrevenue",
            "Annual Revenue",
            "The actual or estimated annual revenue of the company.",
        )
    },
    Standard {
        value_type: "enumeration",
        field_type: "radio",
        options: LIFECYCLE,
        ..text(
            "lifecyclestage",
            "Lifecycle Stage",
            "The qualification of companies to sales readiness.",
        )
    },
    Standard {
        value_type: "enumeration",
        field_type: "select",
        ..text(
            "hubspot_owner_id",
            "Company owner",
            "The owner of the company",
        )
    },
    Standard {
        value_type: "enumeration",
        field_type: "select",
        options: COMPANY_TYPES,
        ..text(
            "type",
            "Type",
            "The optional classification of this company record - prospect, partner, etc.",
        )
    },
    text(
        "timezone",
        "Time Zone",
        "The time zone where the company is located.",
    ),
    Standard {
        value_type: "number",
        field_type: "number",
        read_only: true,
        ..text(
            "hs_object_id",
            "Record ID",
            "The unique ID for this record. This value is set automatically by HubSpot.",
        )
    },
    Standard {
        value_type: "datetime",
        field_type: "date",
        read_only: true,
        ..text(
            "createdate",
            "Create Date",
            "The date the company was added to your account",
        )
    },
    Standard {
        value_type: "datetime",
        field_type: "date",
        read_only: true,
        ..text(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "Most recent timestamp of any property update for this company.",
        )
    },
];

/// Why a definition or group was refused, as HubSpot answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused {
    pub status: StatusCode,
    pub category: &'static str,
    pub message: String,
}

impl Refused {
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            category: "VALIDATION_ERROR",
            message: message.into(),
        }
    }

    fn taken(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            category: "OBJECT_ALREADY_EXISTS",
            message: message.into(),
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            category: "OBJECT_NOT_FOUND",
            message: message.into(),
        }
    }

    pub(super) fn response(&self) -> Response {
        errors::error(
            self.status,
            json!({"message": self.message, "category": self.category}),
        )
    }
}

/// A refused value: HubSpot's error code and message.
pub(super) type Problem = (&'static str, String);

/// The portal's property definitions (HubSpot's `Property`) and groups
/// (`PropertyGroup`), by name.
pub(super) struct Schema {
    properties: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
}

impl Default for Schema {
    fn default() -> Self {
        let groups = STANDARD_GROUPS
            .iter()
            .zip(0..)
            .map(|((name, label), order)| {
                (
                    name.to_string(),
                    json!({"name": name, "label": label, "displayOrder": order, "archived": false}),
                )
            })
            .collect();
        let properties = STANDARD
            .iter()
            .zip(0..)
            .map(|(p, order)| (p.name.to_string(), standard(p, order)))
            .collect();
        Self { properties, groups }
    }
}

fn standard(p: &Standard, order: i32) -> Value {
    let mut options: Vec<Value> = p
        .options
        .iter()
        .zip(0..)
        .map(|((value, label), i)| option(label, value, i))
        .collect();
    if p.value_type == "bool" && options.is_empty() {
        options = bool_options();
    }
    let mut property = json!({
        "name": p.name,
        "label": p.label,
        "type": p.value_type,
        "fieldType": p.field_type,
        "description": p.description,
        "groupName": DEFAULT_GROUP,
        "options": options,
        "displayOrder": order,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": false,
        "hidden": false,
        "hubspotDefined": true,
        "formField": !p.read_only,
        "dataSensitivity": "non_sensitive",
        "archived": false,
        "createdAt": HUBSPOT_CREATED_AT,
        "updatedAt": HUBSPOT_CREATED_AT,
        "modificationMetadata": {
            "archivable": false,
            "readOnlyDefinition": true,
            "readOnlyValue": p.read_only,
        },
    });
    if p.name == "hubspot_owner_id" {
        property["externalOptions"] = json!(true);
        property["referencedObjectType"] = json!("OWNER");
    }
    if p.name == "hs_object_id" {
        property["hasUniqueValue"] = json!(true);
    }
    property
}

fn option(label: &str, value: &str, display_order: i32) -> Value {
    json!({"label": label, "value": value, "displayOrder": display_order, "hidden": false})
}

fn bool_options() -> Vec<Value> {
    vec![option("Yes", "true", 0), option("No", "false", 1)]
}

/// HubSpot's internal names: lowercase letters, digits and underscores,
/// starting with a letter.
fn snake(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A number as HubSpot takes one: digits, an optional sign and decimal
/// point; no exponent (HubSpot refused "1.4210854715202004e-14").
fn number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

impl Schema {
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    pub(super) fn is_defined(&self, name: &str) -> bool {
        self.properties.contains_key(name)
    }

    /// Every definition, by name.
    pub(super) fn all(&self) -> impl Iterator<Item = &Value> {
        self.properties.values()
    }

    pub(super) fn groups(&self) -> impl Iterator<Item = &Value> {
        self.groups.values()
    }

    pub(super) fn group(&self, name: &str) -> Option<&Value> {
        self.groups.get(name)
    }

    /// A test's convenience, not HubSpot's behaviour: `name` defined as a
    /// plain text property (`string`/`text`) in `companyinformation`, as
    /// if someone had created it so. No-op when it exists.
    pub(super) fn define_text(&mut self, name: &str, now: &str) {
        if self.is_defined(name) {
            return;
        }
        let input = json!({
            "name": name, "label": name, "type": "string", "fieldType": "text",
            "groupName": DEFAULT_GROUP,
        });
        let property = custom(&input, Vec::new(), now);
        self.properties.insert(name.to_string(), property);
    }

    /// `POST /crm/v3/properties/companies`: a `PropertyCreate` checked as
    /// HubSpot checks it, then defined; the new `Property`.
    pub(super) fn create(&mut self, input: &Value, now: &str) -> Result<Value, Refused> {
        let (name, options) = self.check_create(input)?;
        let property = custom(input, options, now);
        self.properties.insert(name, property.clone());
        Ok(property)
    }

    fn check_create(&self, input: &Value) -> Result<(String, Vec<Value>), Refused> {
        let Some(fields) = input.as_object() else {
            return Err(Refused::invalid(
                "Invalid input JSON: a property definition is an object",
            ));
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::trim);
        let missing: Vec<&str> = ["name", "label", "type", "fieldType", "groupName"]
            .into_iter()
            .filter(|k| text(k).is_none_or(str::is_empty))
            .collect();
        if !missing.is_empty() {
            return Err(Refused::invalid(format!(
                "Invalid input JSON: some of required attributes are not set {missing:?}"
            )));
        }
        let (name, value_type, field_type, group) = (
            text("name").unwrap_or_default(),
            text("type").unwrap_or_default(),
            text("fieldType").unwrap_or_default(),
            text("groupName").unwrap_or_default(),
        );
        if !snake(name) {
            return Err(Refused::invalid(format!(
                "Property name '{name}' is not valid: use lowercase letters, digits and \
                 underscores, starting with a letter"
            )));
        }
        let Some((_, valid)) = FIELD_TYPES.iter().find(|(t, _)| *t == value_type) else {
            let types: Vec<&str> = FIELD_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(Refused::invalid(format!(
                "'{value_type}' is not a valid property type; valid types are {}",
                types.join(", ")
            )));
        };
        if !valid.contains(&field_type) {
            return Err(Refused::invalid(format!(
                "fieldType '{field_type}' is not valid for a property of type \
                 '{value_type}'; valid field types are {}",
                valid.join(", ")
            )));
        }
        if field_type == "calculation_equation" && text("calculationFormula").is_none() {
            return Err(Refused::invalid(
                "A calculation_equation property needs a calculationFormula",
            ));
        }
        let options = options(fields.get("options"))?;
        let external = fields.get("externalOptions") == Some(&Value::Bool(true));
        let options = match value_type {
            "bool" if options.is_empty() => bool_options(),
            "enumeration" if options.is_empty() && !external => {
                return Err(Refused::invalid(format!(
                    "Property '{name}' of type enumeration needs at least one option"
                )));
            }
            "bool" | "enumeration" => options,
            _ if !options.is_empty() => {
                return Err(Refused::invalid(format!(
                    "Property '{name}' of type {value_type} cannot have options"
                )));
            }
            _ => options,
        };
        if self.is_defined(name) {
            return Err(Refused::taken(format!(
                "A property named '{name}' already exists."
            )));
        }
        if !self.groups.contains_key(group) {
            return Err(Refused::invalid(format!(
                "Property group '{group}' does not exist."
            )));
        }
        Ok((name.to_string(), options))
    }

    /// `POST /crm/v3/properties/companies/groups`: a `PropertyGroupCreate`.
    pub(super) fn create_group(&mut self, input: &Value) -> Result<Value, Refused> {
        let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::trim);
        let missing: Vec<&str> = ["name", "label"]
            .into_iter()
            .filter(|k| text(k).is_none_or(str::is_empty))
            .collect();
        if !input.is_object() || !missing.is_empty() {
            return Err(Refused::invalid(format!(
                "Invalid input JSON: some of required attributes are not set {missing:?}"
            )));
        }
        let name = text("name").unwrap_or_default();
        if !snake(name) {
            return Err(Refused::invalid(format!(
                "Property group name '{name}' is not valid: use lowercase letters, digits \
                 and underscores, starting with a letter"
            )));
        }
        if self.groups.contains_key(name) {
            return Err(Refused::taken(format!(
                "A property group named '{name}' already exists."
            )));
        }
        let display_order = match input.get("displayOrder") {
            None | Some(Value::Null) => -1,
            Some(v) => v.as_i64().ok_or_else(|| {
                Refused::invalid("Invalid input JSON: displayOrder must be an integer")
            })?,
        };
        let group = json!({
            "name": name,
            "label": text("label").unwrap_or_default(),
            "displayOrder": display_order,
            "archived": false,
        });
        self.groups.insert(name.to_string(), group.clone());
        Ok(group)
    }

    /// What HubSpot refuses of `value` (a string; `""` clears and is
    /// always taken) for property `name`, if anything.
    pub(super) fn check(&self, name: &str, value: &str) -> Option<Problem> {
        let def = self.get(name)?;
        if value.is_empty() {
            return None;
        }
        match def["type"].as_str().unwrap_or_default() {
            "number" if !number(value) => Some((
                "INVALID_INTEGER",
                format!("{value} was not a valid number."),
            )),
            "bool" | "enumeration" if def["externalOptions"] != Value::Bool(true) => {
                let allowed: Vec<&str> = def["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["value"].as_str())
                    .collect();
                let chosen: Vec<&str> = if def["fieldType"] == "checkbox" {
                    value.split(';').filter(|v| !v.is_empty()).collect()
                } else {
                    vec![value]
                };
                chosen.into_iter().find(|v| !allowed.contains(v)).map(|v| {
                    (
                        "INVALID_OPTION",
                        format!(
                            "{v} was not one of the allowed options: [{}]",
                            allowed.join(", ")
                        ),
                    )
                })
            }
            _ => None,
        }
    }

    /// Whether values of `name` are HubSpot's to set (system properties).
    pub(super) fn read_only(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|d| d["modificationMetadata"]["readOnlyValue"] == Value::Bool(true))
    }
}

/// The options of a `PropertyCreate` (`OptionInput`: `label`, `value`,
/// `hidden`, `displayOrder`), each value once.
fn options(input: Option<&Value>) -> Result<Vec<Value>, Refused> {
    let items = match input {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Refused::invalid("Invalid input JSON: options is a list")),
    };
    let mut seen = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (item, i) in items.iter().zip(0..) {
        let (Some(label), Some(value)) = (
            item.get("label").and_then(Value::as_str),
            item.get("value").and_then(Value::as_str),
        ) else {
            return Err(Refused::invalid(
                "Invalid input JSON: each option needs a label and a value",
            ));
        };
        if seen.contains(&value) {
            return Err(Refused::invalid(format!(
                "Option values must be unique; '{value}' is given twice"
            )));
        }
        seen.push(value);
        let mut option = option(label, value, i);
        if let Some(order) = item.get("displayOrder").and_then(Value::as_i64) {
            option["displayOrder"] = json!(order);
        }
        if let Some(hidden) = item.get("hidden").and_then(Value::as_bool) {
            option["hidden"] = json!(hidden);
        }
        if let Some(description) = item.get("description").and_then(Value::as_str) {
            option["description"] = json!(description);
        }
        out.push(option);
    }
    Ok(out)
}

/// A custom `Property` from a checked `PropertyCreate`.
fn custom(input: &Value, options: Vec<Value>, now: &str) -> Value {
    let field = |key: &str| input.get(key).cloned();
    let calculated = input["fieldType"] == "calculation_equation";
    let mut property = Map::new();
    for key in ["name", "label", "type", "fieldType", "groupName"] {
        property.insert(key.into(), field(key).unwrap_or(Value::Null));
    }
    property.insert(
        "description".into(),
        field("description").unwrap_or_else(|| json!("")),
    );
    property.insert("options".into(), Value::Array(options));
    property.insert(
        "displayOrder".into(),
        field("displayOrder").unwrap_or_else(|| json!(-1)),
    );
    for key in ["hasUniqueValue", "hidden", "formField", "externalOptions"] {
        property.insert(key.into(), field(key).unwrap_or(Value::Bool(false)));
    }
    for key in [
        "calculationFormula",
        "referencedObjectType",
        "numberDisplayHint",
        "textDisplayHint",
        "showCurrencySymbol",
        "currencyPropertyName",
    ] {
        if let Some(v) = field(key) {
            property.insert(key.into(), v);
        }
    }
    property.insert("calculated".into(), json!(calculated));
    property.insert(
        "dataSensitivity".into(),
        field("dataSensitivity").unwrap_or_else(|| json!("non_sensitive")),
    );
    property.insert("hubspotDefined".into(), json!(false));
    property.insert("archived".into(), json!(false));
    property.insert("createdAt".into(), json!(now));
    property.insert("updatedAt".into(), json!(now));
    property.insert("createdUserId".into(), json!(USER_ID));
    property.insert("updatedUserId".into(), json!(USER_ID));
    property.insert(
        "modificationMetadata".into(),
        json!({
            "archivable": true,
            "readOnlyDefinition": false,
            "readOnlyOptions": false,
            "readOnlyValue": calculated,
        }),
    );
    Value::Object(property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_hubspot_takes_them() {
        for ok in ["0", "12", "-3.5", "5000.00", ".5", "7."] {
            assert!(number(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            ".",
            "abc",
            "1e3",
            "1.4210854715202004e-14",
            "1,5",
            "+1",
        ] {
            assert!(!number(bad), "{bad}");
        }
    }

    #[test]
    fn a_fresh_portal_has_the_standard_properties_and_no_custom_one() {
        let schema = Schema::default();
        assert_eq!(schema.get("numberofemployees").unwrap()["type"], "number");
        assert_eq!(schema.get("lifecyclestage").unwrap()["fieldType"], "radio");
        assert!(schema.read_only("hs_object_id") && !schema.read_only("name"));
        assert!(schema.all().all(|p| p["hubspotDefined"] == true));
        assert!(
            !schema
                .all()
                .any(|p| p["name"].as_str().unwrap().starts_with("warp_"))
        );
    }

    #[test]
    fn checkbox_enumerations_hold_several_options() {
        let mut schema = Schema::default();
        let services = json!({
            "name": "svc", "label": "Svc", "type": "enumeration", "fieldType": "checkbox",
            "groupName": "companyinformation",
            "options": [{"label": "voice", "value": "voice", "hidden": false},
                        {"label": "data", "value": "data", "hidden": false}],
        });
        schema
            .create(&services, "2025-01-01T00:00:00.000Z")
            .unwrap();
        assert_eq!(schema.check("svc", "voice;data"), None);
        let (code, message) = schema.check("svc", "voice;fax").unwrap();
        assert_eq!(code, "INVALID_OPTION");
        assert!(message.starts_with("fax was not one of the allowed options"));
        assert_eq!(schema.check("svc", ""), None, "\"\" clears");
    }
}
