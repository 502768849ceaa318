//! Three stories after the bulk webhooks: a change out of order, a conflict
//! left to a person, a merge that re-links; each sent, applied and checked.

use std::time::Duration;

use aws_config::SdkConfig;
use integration_tests::local::{Result, Sender, Sig};
use integration_tests::resources::Resources;
use serde_json::{Value, json};

use crate::consumer::run_consumer;
use crate::counts::count_since;
use crate::sandboxes::{Sandboxes, company_id, text};
use crate::webhooks::{hubspot_event, property_change};

const OUT_OF_ORDER: &str = "ZT-487390106";
pub(super) const DISPUTED: &str = "ZT-487390107";
const MERGED: &str = "ZT-487390108";

/// Sends a delivery that must be accepted, then lets the consumer apply it.
async fn deliver(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sender: &Sender,
    label: &str,
    body: &str,
) -> Result<()> {
    let (status, answer) = sender.post(body, Sig::V3).await?;
    println!("  {status}  {label}");
    if status != 200 {
        return Err(format!("{label}: {status} {answer}"));
    }
    run_consumer(aws, res, port).await?;
    Ok(())
}

/// Out of order, a conflict left to a person, a merge that re-links: each
/// sent as HubSpot would, applied by the consumer, and checked. Returns the
/// deliveries, whose values HubSpot holds from then on.
pub(super) async fn stories(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
    sender: &Sender,
    sandboxes: &Sandboxes,
) -> Result<Vec<String>> {
    let store = hubwarp::store::DynamoSyncStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        res.names.sync_tables(),
        Duration::from_secs(86_400),
    );
    let mut told = Vec::new();
    let now = hubwarp::time::now_ms();

    println!("\nout of order: an older change of a city arrives after a newer one");
    let customer = sandboxes.customer(OUT_OF_ORDER).await?;
    let company = company_id(&customer)?;
    let newer = property_change(now, now, &company, "city", "Boulder");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{OUT_OF_ORDER} city \"Boulder\" at t"),
        &newer,
    )
    .await?;
    let since = hubwarp::time::now_ms();
    let older = property_change(now + 1, now - 60_000, &company, "city", "Tulsa");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{OUT_OF_ORDER} city \"Tulsa\" at t - 60 s, delivered later"),
        &older,
    )
    .await?;
    let city = sandboxes.customer(OUT_OF_ORDER).await?;
    let outcomes = count_since(
        aws,
        &res.names.sync_tables().sync_log,
        "at",
        "outcome",
        since,
    )
    .await?;
    println!(
        "  WARP city             {} (decisions since: {outcomes:?})",
        text(city.pointer("/address/city"))
    );
    if city.pointer("/address/city").and_then(Value::as_str) != Some("Boulder")
        || !outcomes.contains_key("skipped-stale")
    {
        return Err("the older change was not skipped as stale".into());
    }
    told.push(newer);

    println!(
        "\na conflict for a person: billing e-mail changed on both sides (MANUAL in this demo's mapping)"
    );
    let customer = sandboxes.customer(DISPUTED).await?;
    let company = company_id(&customer)?;
    let id = customer["id"].as_str().unwrap_or_default().to_string();
    let first = property_change(
        now + 2,
        now + 2,
        &company,
        "warp_contact_email",
        "ap@disputed.example",
    );
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{DISPUTED} e-mail \"ap@disputed.example\" (both sides agree after it)"),
        &first,
    )
    .await?;
    sandboxes
        .edit_customer(
            &id,
            json!({"contact": {"email": "finance@disputed.example"}}),
        )
        .await?;
    println!("  WARP    {DISPUTED} e-mail -> \"finance@disputed.example\" (no webhook)");
    let second = property_change(
        now + 3,
        hubwarp::time::now_ms(),
        &company,
        "warp_contact_email",
        "sales@disputed.example",
    );
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{DISPUTED} e-mail \"sales@disputed.example\" from HubSpot"),
        &second,
    )
    .await?;
    let after = sandboxes.customer(DISPUTED).await?;
    use hubwarp::store::sync::{ConflictQueue, LinkStore};
    let open = store.open_conflicts().await.map_err(|e| e.to_string())?;
    let mine: Vec<_> = open.iter().filter(|c| c.customer_id == id).collect();
    for c in &mine {
        println!(
            "  review queue          {} {}: WARP {} / HubSpot \"{}\"",
            c.customer_id, c.field, c.warp_value, c.hubspot_value
        );
    }
    println!(
        "  WARP e-mail           {} (untouched)",
        text(after.pointer("/contact/email"))
    );
    if mine.is_empty()
        || after.pointer("/contact/email").and_then(Value::as_str)
            != Some("finance@disputed.example")
    {
        return Err("the MANUAL conflict did not land in review with WARP untouched".into());
    }
    told.push(first);
    told.push(second);

    println!("\na merge re-links: a duplicate company absorbs the linked one");
    let customer = sandboxes.customer(MERGED).await?;
    let old = company_id(&customer)?;
    let name = customer["company_name"].as_str().unwrap_or("Customer");
    // A first change links the company to its customer (by warp_ban).
    let linking = property_change(now + 4, now + 4, &old, "city", "Denver");
    deliver(
        aws,
        res,
        port,
        sender,
        &format!("{MERGED} city \"Denver\" (links company {old} to its customer)"),
        &linking,
    )
    .await?;
    let before = store.link(&old).await.map_err(|e| e.to_string())?;
    let duplicate = sandboxes
        .create_company(&format!("{name} (duplicate)"))
        .await?;
    sandboxes.merge_companies(&duplicate, &old).await?;
    println!("  HubSpot company {old} merged into {duplicate} (the duplicate kept as primary)");
    let merge = json!([hubspot_event(
        now + 5,
        hubwarp::time::now_ms(),
        &duplicate,
        json!({"subscriptionType": "company.merge",
               "primaryObjectId": duplicate.parse::<u64>().unwrap_or(0),
               "mergedObjectIds": [old.parse::<u64>().unwrap_or(0)],
               "newObjectId": duplicate.parse::<u64>().unwrap_or(0),
               "numberOfPropertiesMoved": 12}),
    )])
    .to_string();
    deliver(aws, res, port, sender, "company.merge webhook", &merge).await?;
    let (was, now_link) = (
        store.link(&old).await.map_err(|e| e.to_string())?,
        store.link(&duplicate).await.map_err(|e| e.to_string())?,
    );
    let show = |l: &Option<hubwarp::store::sync::Link>| {
        l.as_ref().map_or("none".to_string(), |l| {
            format!(
                "{} {}{}",
                l.customer_id,
                l.state.as_str(),
                l.merged_into
                    .as_ref()
                    .map(|m| format!(" into {m}"))
                    .unwrap_or_default()
            )
        })
    };
    println!("  link {old:<16} {} (before the merge)", show(&before));
    println!("  link {old:<16} {}", show(&was));
    println!("  link {duplicate:<16} {}", show(&now_link));
    if now_link.as_ref().map(|l| l.customer_id.as_str()) != customer["id"].as_str() {
        return Err("the merge did not re-link the customer to the surviving company".into());
    }
    // The linking change is not among them: its company is merged away.
    Ok(told)
}
