//! What landed in the local AWS: the sync queue's depth, and table items
//! written since the demo began, counted by an attribute.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::local::Result;
use integration_tests::resources::Resources;

pub(super) async fn queue_depth(aws: &SdkConfig, res: &Resources) -> Result<u64> {
    let attrs = aws_sdk_sqs::Client::new(aws)
        .get_queue_attributes()
        .queue_url(&res.sync_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(attrs
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Items of `table` whose numeric `time_attr` is at least `since_ms`,
/// counted by their `group_attr`.
pub(super) async fn count_since(
    aws: &SdkConfig,
    table: &str,
    time_attr: &str,
    group_attr: &str,
    since_ms: i64,
) -> Result<BTreeMap<String, u64>> {
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let mut counts = BTreeMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        for item in page.items.unwrap_or_default() {
            let at: i64 = item
                .get(time_attr)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if at >= since_ms {
                let group = item
                    .get(group_attr)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                *counts.entry(group).or_insert(0) += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(counts);
        }
    }
}
