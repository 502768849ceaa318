//! The webhook deliveries the demo sends as HubSpot would: batches of
//! property changes, and single events of any kind.

use serde_json::{Value, json};

/// `n` company property changes with ids from `base` (the clock).
pub(super) fn deliveries(base: u64, n: usize, offset: usize, attempt: u32) -> String {
    let props = [
        "warp_credit_limit",
        "name",
        "warp_tier",
        "city",
        "warp_contact_email",
    ];
    let events: Vec<String> = (offset..offset + n)
        .map(|i| {
            format!(
                r#"{{"eventId":{},"subscriptionId":2951763,"portalId":62515,"appId":1160452,"occurredAt":{},"subscriptionType":"company.propertyChange","attemptNumber":{attempt},"objectId":{},"changeSource":"CRM_UI","propertyName":"{}","propertyValue":"{}"}}"#,
                base + i as u64,
                base + i as u64,
                // The sandbox's companies 1..=50, each linked by warp_ban.
                18_476_215_991u64 + (i % 50) as u64,
                props[i % props.len()],
                value(props[i % props.len()], i)
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// A value HubSpot could send for the property.
fn value(property: &str, i: usize) -> String {
    match property {
        "warp_credit_limit" => format!("{}.00", 1000 + i),
        "warp_tier" => ["BRONZE", "SILVER", "GOLD", "PLATINUM"][i % 4].to_string(),
        "warp_contact_email" => format!("billing{i}@example.com"),
        "city" => ["Denver", "Boulder", "Austin", "Tulsa"][i % 4].to_string(),
        _ => format!("Company {i}"),
    }
}

/// One HubSpot event, as its webhook carries it.
pub(super) fn hubspot_event(event_id: i64, occurred_at: i64, company: &str, rest: Value) -> Value {
    let mut e = json!({
        "eventId": event_id, "subscriptionId": 2951763, "portalId": 62515,
        "appId": 1160452, "occurredAt": occurred_at, "attemptNumber": 0,
        "objectId": company.parse::<u64>().unwrap_or(0), "changeSource": "CRM_UI",
    });
    if let (Some(e), Some(rest)) = (e.as_object_mut(), rest.as_object()) {
        e.extend(rest.clone());
    }
    e
}

pub(super) fn property_change(
    event_id: i64,
    at: i64,
    company: &str,
    property: &str,
    value: &str,
) -> String {
    json!([hubspot_event(
        event_id,
        at,
        company,
        json!({"subscriptionType": "company.propertyChange",
               "propertyName": property, "propertyValue": value}),
    )])
    .to_string()
}
