//! The webhook deliveries the demo sends as HubSpot would: batches of
//! property changes, and single events of any kind.
//!
//! The bulk deliveries come from an app subscribed in both of HubSpot's
//! formats: every other event of a delivery is the generic one
//! (`object.propertyChange` with `objectTypeId` `0-2`, under its own
//! subscription and event id), the rest legacy `company.propertyChange`.
//! Deliveries that overlap carry a change at positions five apart, so the
//! same change comes once in each format: the receiver queues it once. The
//! stories' single changes come in the generic format.

use serde_json::{Value, json};

/// The legacy subscription's id, and the generic one's.
const LEGACY_SUBSCRIPTION: u64 = 2951763;
const GENERIC_SUBSCRIPTION: u64 = 4417890;

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
            let (subscription, event_id, format) = if (i - offset) % 2 == 1 {
                (
                    GENERIC_SUBSCRIPTION,
                    // Another event id than the legacy copy's, as HubSpot
                    // gives each subscription's notification its own.
                    base + 1_000_000 + i as u64,
                    r#""subscriptionType":"object.propertyChange","objectTypeId":"0-2""#,
                )
            } else {
                (
                    LEGACY_SUBSCRIPTION,
                    base + i as u64,
                    r#""subscriptionType":"company.propertyChange""#,
                )
            };
            format!(
                r#"{{"eventId":{event_id},"subscriptionId":{subscription},"portalId":62515,"appId":1160452,"occurredAt":{},{format},"attemptNumber":{attempt},"objectId":{},"changeSource":"CRM_UI","propertyName":"{}","propertyValue":"{}"}}"#,
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
        "eventId": event_id, "subscriptionId": LEGACY_SUBSCRIPTION, "portalId": 62515,
        "appId": 1160452, "occurredAt": occurred_at, "attemptNumber": 0,
        "objectId": company.parse::<u64>().unwrap_or(0), "changeSource": "CRM_UI",
    });
    if let (Some(e), Some(rest)) = (e.as_object_mut(), rest.as_object()) {
        e.extend(rest.clone());
    }
    e
}

/// One property change as a developer-platform app's generic subscription
/// sends it: the stories' changes all come this way, and each story checks
/// WARP afterwards.
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
        json!({"subscriptionType": "object.propertyChange", "objectTypeId": "0-2",
               "subscriptionId": GENERIC_SUBSCRIPTION,
               "propertyName": property, "propertyValue": value}),
    )])
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use hubwarp::hubspot::webhook::read_delivery;

    use super::*;

    /// The keys of a delivery's changes, and how many came generic.
    fn keys(body: &str) -> (Vec<String>, usize) {
        let d = read_delivery(body.as_bytes()).expect("a delivery");
        assert!(d.unhandled.is_empty(), "{:?}", d.unhandled);
        let generic = d.events.iter().filter(|e| e.is_generic()).count();
        (d.events.iter().map(|e| e.dedup_key()).collect(), generic)
    }

    #[test]
    fn the_bulk_deliveries_mix_the_formats_and_overlap_across_them() {
        let base = 1_795_000_000_000;
        let (three, generic) = keys(&deliveries(base, 3, 0, 0));
        assert_eq!((three.len(), generic), (3, 1));
        let (hundred, generic) = keys(&deliveries(base, 100, 1_000, 0));
        assert_eq!((hundred.len(), generic), (100, 50));
        // The ten overlapping deliveries: 65 changes, and each that two
        // deliveries carry comes in both formats.
        let mut all = HashSet::new();
        let mut seen_as: std::collections::HashMap<String, HashSet<bool>> = Default::default();
        for k in 0..10 {
            let body = deliveries(base, 20, 2_000 + k * 5, 0);
            let d = read_delivery(body.as_bytes()).expect("a delivery");
            for e in &d.events {
                all.insert(e.dedup_key());
                seen_as
                    .entry(e.dedup_key())
                    .or_default()
                    .insert(e.is_generic());
            }
        }
        assert_eq!(all.len(), 65);
        let both = seen_as.values().filter(|f| f.len() == 2).count();
        // All but the five at each end, which only one delivery carries.
        assert_eq!(both, 55, "changes that came in both formats");
        assert!(three.iter().chain(&hundred).all(|k| !all.contains(k)));
    }

    #[test]
    fn the_stories_changes_come_generic() {
        let body = property_change(1, 1_795_000_000_000, "18476215991", "city", "Boulder");
        let d = read_delivery(body.as_bytes()).expect("a delivery");
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].is_generic());
        assert_eq!(d.events[0].subscription_type, "company.propertyChange");
        assert_eq!(d.events[0].subscription_id, GENERIC_SUBSCRIPTION);
    }
}
