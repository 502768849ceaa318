//! Creates, idempotently, every table, queue and bucket the functions use on the
//! local AWS endpoint (AWS_ENDPOINT_URL), and prints the settings that
//! point the functions at them.
//!
//! Usage: local-aws [prefix]   (default prefix: hubspot-warp)

use integration_tests::moto::sdk_config_for;
use integration_tests::resources::{DEFAULT_PREFIX, Names, ensure};

#[tokio::main]
async fn main() -> Result<(), String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL must point at the local AWS (moto) endpoint".to_string())?;
    if !(endpoint.contains("127.0.0.1")
        || endpoint.contains("localhost")
        || endpoint.contains("[::1]"))
    {
        return Err(format!(
            "refusing to create resources on non-loopback endpoint {endpoint}"
        ));
    }
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    let aws = sdk_config_for(&endpoint).await;
    let r = ensure(&aws, &Names::new(prefix))
        .await
        .map_err(|e| e.to_string())?;
    println!("WEBHOOK_EVENTS_TABLE={}", r.names.events_table());
    println!("SYNC_QUEUE_URL={}", r.sync_queue_url);
    println!("SYNC_DLQ_URL={}", r.sync_dlq_url);
    let t = r.names.sync_tables();
    println!("LINKS_TABLE={}", t.links);
    println!("FIELD_STATE_TABLE={}", t.field_state);
    println!("SYNC_LOG_TABLE={}", t.sync_log);
    println!("CONFLICTS_TABLE={}", t.conflicts);
    println!("BREAKERS_TABLE={}", r.names.breakers_table());
    println!("RUNS_TABLE={}", r.names.runs_table());
    println!("REPORTS_BUCKET={}", r.names.reports_bucket());
    Ok(())
}
