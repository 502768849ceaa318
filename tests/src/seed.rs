//! Seeding both sandboxes with pairs that agree, for tests, the demo and
//! the bench: the HubSpot company of a WARP customer carries every mapped
//! property in HubSpot's form of the customer's value.

use hubwarp::mapping::MappingSet;
use serde_json::{Map, Value};

/// HubSpot properties equal to `customer`'s mapped fields.
pub fn company_properties(customer: &Value, mappings: &MappingSet) -> Map<String, Value> {
    let id = customer["id"].as_str().unwrap_or_default();
    let ban = customer["ban"].as_str().unwrap_or_default();
    let mut props = Map::new();
    for m in mappings.fields_for(id, ban) {
        let value = m.warp.get(customer).cloned().unwrap_or(Value::Null);
        if let Ok(text) = m.value_type.warp_to_hubspot(&value)
            && !text.is_empty()
        {
            props.insert(m.hubspot.clone(), Value::String(text));
        }
    }
    props
}

/// The company id a seeded customer names in `external_ids`.
pub fn company_id_of(customer: &Value) -> Option<String> {
    customer
        .pointer("/external_ids/hubspot_company_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}
