//! Envelopes onto the export queue, packed: each SQS message a JSON array of envelopes as
//! large as the queue takes, sent ten messages (and at most 256 KiB) per SendMessageBatch.

use aws_sdk_sqs::error::DisplayErrorContext;
use std::future::Future;

/// Largest message body: SQS's 256 KiB, with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 250_000;

/// Envelopes written straight into message bodies, each body a JSON array of as many as
/// [`MAX_MESSAGE_BYTES`] allows, in order.
pub struct Packer {
    messages: Vec<String>,
    body: String,
}

impl Default for Packer {
    fn default() -> Self {
        Self::new()
    }
}

impl Packer {
    pub fn new() -> Self {
        Self {
            messages: Vec::new(),
            body: new_body(),
        }
    }

    /// Appends the envelope `write` writes to the open body; one that takes the body over
    /// the limit moves to a new one (an envelope over the limit alone goes alone, and SQS
    /// refuses it, as it would anyway).
    pub fn push(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.body.len();
        if start > 1 {
            self.body.push(',');
        }
        write(&mut self.body);
        // `+ 1`: the closing `]`.
        if start > 1 && self.body.len() + 1 > MAX_MESSAGE_BYTES {
            let mut next = new_body();
            next.push_str(&self.body[start + 1..]);
            self.body.truncate(start);
            self.close(next);
        }
    }

    /// The message bodies.
    pub fn finish(mut self) -> Vec<String> {
        if self.body.len() > 1 {
            self.close(String::new());
        }
        self.messages
    }

    fn close(&mut self, next: String) {
        let mut body = std::mem::replace(&mut self.body, next);
        body.push(']');
        self.messages.push(body);
    }
}

/// An empty body, sized for a full one and the envelope that overflows it: filling it
/// reallocates only for an envelope over 64 KiB. (Pages never written are never resident.)
fn new_body() -> String {
    let mut body = String::with_capacity(MAX_MESSAGE_BYTES + 64 * 1024);
    body.push('[');
    body
}

/// Envelopes already written packed into message bodies, in order.
pub fn pack(envelopes: &[String]) -> Vec<String> {
    let mut packer = Packer::new();
    for envelope in envelopes {
        packer.push(|body| body.push_str(envelope));
    }
    packer.finish()
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
        let sizes: Vec<usize> = messages.iter().map(String::len).collect();
        // The bodies move into the requests: no copy of them.
        let mut messages = messages.into_iter();
        for batch in crate::sqs_batches::batches(&sizes) {
            let entries = messages
                .by_ref()
                .take(batch.len())
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
