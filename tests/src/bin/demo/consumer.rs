//! The consumer's stage: the queue drained into `sync-consumer` as Lambda's
//! SQS trigger would, through cargo lambda's invoke API.

use aws_config::SdkConfig;
use integration_tests::local::Result;
use integration_tests::resources::Resources;

/// Lambda's SQS event source mapping, by hand: batches of up to 10 from the
/// queue to `sync-consumer` through cargo lambda's invoke API; messages the
/// function reports as failed become visible again, the others are deleted.
pub(super) async fn run_consumer(
    aws: &SdkConfig,
    res: &Resources,
    port: u16,
) -> Result<(usize, usize)> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let invoke = format!("http://127.0.0.1:{port}/2015-03-31/functions/sync-consumer/invocations");
    let (mut batches, mut retried) = (0, 0);
    while batches < 500 {
        let msgs = sqs
            .receive_message()
            .queue_url(&res.sync_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .messages
            .unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        let records: Vec<serde_json::Value> = msgs
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                    "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hubspot-warp-sync", "awsRegion": "us-east-1"
                })
            })
            .collect();
        let answer: serde_json::Value = http
            .post(&invoke)
            .json(&serde_json::json!({ "Records": records }))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let failed: Vec<String> = answer["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        batches += 1;
        retried += failed.len();
        for m in msgs {
            let handle = m.receipt_handle.unwrap_or_default();
            if failed
                .iter()
                .any(|f| Some(f.as_str()) == m.message_id.as_deref())
            {
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&res.sync_queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(1)
                    .send()
                    .await;
            } else {
                sqs.delete_message()
                    .queue_url(&res.sync_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
    }
    Ok((batches, retried))
}
