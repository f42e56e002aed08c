//! Envelopes onto the export queue, packed: each SQS message a JSON array of envelopes as
//! large as the queue takes, sent ten messages (and at most 256 KiB) per SendMessageBatch.

use aws_sdk_sqs::error::DisplayErrorContext;
use std::future::Future;

/// Largest message body: SQS's 256 KiB, with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 250_000;

/// Envelopes packed into as few message bodies as [`MAX_MESSAGE_BYTES`] allows, in order.
pub fn pack(envelopes: &[String]) -> Vec<String> {
    let mut messages = Vec::new();
    let mut body = String::from("[");
    for envelope in envelopes {
        if body.len() > 1 && body.len() + envelope.len() + 2 > MAX_MESSAGE_BYTES {
            body.push(']');
            messages.push(std::mem::replace(&mut body, String::from("[")));
        }
        if body.len() > 1 {
            body.push(',');
        }
        body.push_str(envelope);
    }
    if body.len() > 1 {
        body.push(']');
        messages.push(body);
    }
    messages
}

/// Message bodies grouped into SendMessageBatch calls (the one helper, [`crate::sqs_batches`]).
pub fn batches(messages: &[String]) -> Vec<&[String]> {
    let sizes: Vec<usize> = messages.iter().map(String::len).collect();
    crate::sqs_batches::batches(&sizes)
        .into_iter()
        .map(|range| &messages[range])
        .collect()
}

/// Why message bodies are not all on the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SendMessageBatch failed: {}", DisplayErrorContext(.0.as_ref()))]
    Sqs(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("SendMessageBatch refused {count} message(s): {code}")]
    Refused { count: usize, code: String },
}

/// Puts message bodies on the export queue; `Err` unless every one is on it.
pub trait EventQueue: Sync {
    fn send(&self, messages: Vec<String>) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The export queue through the AWS SDK.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl EventQueue for SqsQueue {
    async fn send(&self, messages: Vec<String>) -> Result<(), QueueError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for batch in batches(&messages) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Sqs(Box::new(e)))?;
            if let Some(failed) = out.failed.first() {
                return Err(QueueError::Refused {
                    count: out.failed.len(),
                    code: failed.code.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_fill_messages_up_to_the_limit() {
        let envelope = "x".repeat(500);
        let envelopes = vec![envelope; 1000];
        let messages = pack(&envelopes);
        assert_eq!(
            messages.len(),
            3,
            "500 KB of envelopes in messages of at most 250 KB"
        );
        assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        let packed: usize = messages.iter().map(|m| m.matches(',').count() + 1).sum();
        assert_eq!(packed, 1000, "every envelope in exactly one message");
        assert!(pack(&[]).is_empty());
    }
}
