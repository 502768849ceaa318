//! The sync queue on SQS, sent with SendMessageBatch.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::future::join_all;
use tracing::instrument;

use super::{Outgoing, QueueError, SyncQueue};

/// SendMessageBatch takes at most 10 entries...
pub const MAX_BATCH_ENTRIES: usize = 10;
/// ...and at most 256 KiB of bodies in all (so does a single message).
pub const MAX_BATCH_BYTES: usize = super::MAX_MESSAGE_BYTES;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    #[instrument(skip_all, fields(entries = batch.len()))]
    async fn send_batch(
        &self,
        batch: &[(usize, Outgoing<'_>)],
    ) -> Vec<(usize, Result<(), QueueError>)> {
        let entries: Result<Vec<_>, _> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, m))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body)
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => return fail_all(batch, "SendMessageBatch", &e.to_string()),
        };
        let out = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return fail_all(
                    batch,
                    "SendMessageBatch",
                    &DisplayErrorContext(&e).to_string(),
                );
            }
        };
        // Anything SQS neither confirmed nor refused counts as not sent.
        let mut results: Vec<Result<(), QueueError>> = vec![
            Err(QueueError::Aws {
                operation: "SendMessageBatch",
                message: "entry missing from the response".into(),
            });
            batch.len()
        ];
        for ok in &out.successful {
            if let Some(slot) = ok.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Ok(());
            }
        }
        for failed in &out.failed {
            if let Some(slot) = failed
                .id
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Err(QueueError::Rejected {
                    code: failed.code.clone(),
                    sender_fault: failed.sender_fault,
                });
            }
        }
        batch.iter().map(|(idx, _)| *idx).zip(results).collect()
    }
}

fn fail_all(
    batch: &[(usize, Outgoing<'_>)],
    operation: &'static str,
    message: &str,
) -> Vec<(usize, Result<(), QueueError>)> {
    batch
        .iter()
        .map(|(i, _)| {
            (
                *i,
                Err(QueueError::Aws {
                    operation,
                    message: message.to_string(),
                }),
            )
        })
        .collect()
}

/// Packs messages into batches that respect both SendMessageBatch limits,
/// keeping each message's index. Messages over the size limit are returned
/// apart: no batch can carry them.
pub fn pack<'a>(messages: &[Outgoing<'a>]) -> (Vec<Vec<(usize, Outgoing<'a>)>>, Vec<usize>) {
    let mut batches = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<(usize, Outgoing<'a>)> = Vec::new();
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        let size = m.body.len();
        if size > MAX_BATCH_BYTES {
            too_large.push(i);
            continue;
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push((i, *m));
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, too_large)
}

impl SyncQueue for SqsQueue {
    async fn send_all(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), QueueError>> {
        let (batches, too_large) = pack(messages);
        let mut results: Vec<Result<(), QueueError>> = vec![Ok(()); messages.len()];
        for i in too_large {
            results[i] = Err(QueueError::TooLarge {
                size: messages[i].body.len(),
                limit: MAX_BATCH_BYTES,
            });
        }
        let sent = join_all(batches.iter().map(|b| self.send_batch(b))).await;
        for (i, r) in sent.into_iter().flatten() {
            results[i] = r;
        }
        results
    }
}

/// The URL of the queue an SQS ARN names (`arn:aws:sqs:REGION:ACCOUNT:NAME`):
/// what Lambda's event records and a redrive policy give, where the API
/// wants the URL.
pub async fn url_of_arn(sqs: &Client, arn: &str) -> Result<String, String> {
    let mut parts = arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(format!("not an SQS queue ARN: {arn}"));
    };
    sqs.get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?
        .queue_url
        .ok_or_else(|| "GetQueueUrl answered no URL".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_by_count_and_by_size() {
        let small = "x".repeat(100);
        let msgs: Vec<Outgoing<'_>> = (0..25)
            .map(|_| Outgoing {
                id: "a",
                body: &small,
            })
            .collect();
        let (b, big) = pack(&msgs);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        assert!(big.is_empty());

        let hundred_k = "y".repeat(100 * 1024);
        let huge = "z".repeat(MAX_BATCH_BYTES + 1);
        let msgs = vec![
            Outgoing {
                id: "a",
                body: &hundred_k,
            },
            Outgoing {
                id: "b",
                body: &hundred_k,
            },
            Outgoing {
                id: "c",
                body: &huge,
            },
            Outgoing {
                id: "d",
                body: &hundred_k,
            },
            Outgoing {
                id: "e",
                body: &small,
            },
        ];
        let (b, big) = pack(&msgs);
        let idx: Vec<Vec<usize>> = b
            .iter()
            .map(|b| b.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(idx, vec![vec![0, 1], vec![3, 4]]);
        assert_eq!(big, vec![2]);
    }
}
