//! Events applied per second by one consumer against the WARP and HubSpot
//! sandboxes on loopback, over real HTTP with the real clients. The stores
//! are the in-memory twins: against moto every DynamoDB call costs tens of
//! milliseconds of Python, which would measure moto, not the consumer.
//!
//! `cargo run --release -p integration-tests --bin consumer-bench [changes] [customers]`
//! (defaults 5000 and 100), batches of 10 as Lambda's SQS trigger delivers.

use std::time::{Duration, Instant};

use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::mapping::MappingSet;
use hubwarp::store::{MemoryEventLog, MemorySyncStore};
use hubwarp::sync::{Consumer, QueuedMessage};
use hubwarp::warp::WarpClient;
use integration_tests::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox};
use integration_tests::warp_sandbox::{SANDBOX_TOKEN, WarpSandbox, demo_company_id, demo_customer};
use serde_json::{Map, json};

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let customers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let warp = WarpSandbox::start().await;
    let hubspot = HubspotSandbox::start().await;
    // The bridge's properties, as `hubwarp setup` creates them, before the
    // companies are seeded (the first eight demo customers hold every tier
    // and payment term).
    let book: Vec<serde_json::Value> = (0..customers.max(8)).map(demo_customer).collect();
    integration_tests::hubspot_setup::install_bridge_properties(&hubspot, &book);
    for n in 0..customers {
        let c = warp.insert(demo_customer(n));
        let mut props = Map::new();
        props.insert("warp_ban".into(), c["ban"].clone());
        hubspot.upsert_company(&demo_company_id(n), props);
    }
    let timeout = Duration::from_secs(5);
    let consumer = Consumer {
        events: MemoryEventLog::new(),
        store: MemorySyncStore::new(),
        warp: WarpClient::new(
            &warp.base_url,
            Token::new(SANDBOX_TOKEN),
            timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| e.to_string())?,
        hubspot: HubspotClient::new(
            &hubspot.base_url,
            Token::new(HUBSPOT_SANDBOX_TOKEN),
            timeout,
            RetryPolicy::default(),
        )
        .map_err(|e| e.to_string())?,
        mappings: MappingSet::default_mapping().map_err(|e| e.to_string())?,
    };
    let props = ["name", "city", "warp_tier", "zip", "warp_contact_email"];
    let messages: Vec<QueuedMessage> = (0..changes)
        .map(|i| {
            let company = 18_476_215_990u64 + (i * 7 % customers) as u64;
            let p = props[i % props.len()];
            let at = 1_763_700_000_000i64 + i as i64;
            let value = if p == "warp_tier" {
                ["GOLD", "SILVER"][i % 2].to_string()
            } else {
                format!("{p} {i}")
            };
            let key = format!("62515:1:{i}:{company}:{at}:company.propertyChange:{p}");
            QueuedMessage {
                message_id: format!("m{i}"),
                body: json!({"dedupKey": key, "receivedAt": at, "event": {
                    "eventId": i, "subscriptionId": 1, "portalId": 62515, "occurredAt": at,
                    "subscriptionType": "company.propertyChange", "objectId": company,
                    "propertyName": p, "propertyValue": value}})
                .to_string(),
                receive_count: None,
            }
        })
        .collect();

    // Link every company first (one HubSpot read each), so the figure is the
    // steady state; the linking pass is reported apart.
    let warmup: Vec<QueuedMessage> = messages
        .iter()
        .take(customers.min(changes))
        .cloned()
        .collect();
    let t = Instant::now();
    for batch in warmup.chunks(10) {
        consumer.handle_batch(batch).await;
    }
    let warm = t.elapsed();

    warp.reset_calls();
    let started = Instant::now();
    let mut applied = 0;
    let mut retried = 0;
    for batch in messages[warmup.len()..].chunks(10) {
        let r = consumer.handle_batch(batch).await;
        applied += r.applied_fields;
        retried += r.retry.len();
    }
    let elapsed = started.elapsed();
    let n = messages.len() - warmup.len();
    let calls = warp.calls();
    println!("changes           {n} over {customers} customers, batches of 10, one consumer");
    println!("applied fields    {applied} ({retried} retried)");
    println!("elapsed           {:.2} s", elapsed.as_secs_f64());
    println!("events per second {:.0}", n as f64 / elapsed.as_secs_f64());
    println!(
        "WARP calls        {} GET, {} PUT ({:.2} PUT per event)",
        calls.get,
        calls.put,
        calls.put as f64 / n as f64
    );
    println!(
        "linking pass      {} companies in {:.2} s",
        warmup.len(),
        warm.as_secs_f64()
    );
    Ok(())
}
