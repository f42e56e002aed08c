//! Lambda's SQS event source, played against moto's queue: receive a batch, invoke the
//! function with it, delete the records it did not report failed. Failed records stay on
//! the queue with whatever visibility the function set, and moto's redrive policy moves
//! them to the dead-letter queue after `maxReceiveCount` receipts, as SQS does.

use crate::lambda::LambdaWatch;
use crate::sqs::failed_ids;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::json;
use std::collections::HashSet;

pub struct EventSource {
    pub sqs: Client,
    pub queue_url: String,
    pub batch_size: usize,
}

/// What one poll did.
#[derive(Debug, Default, Clone)]
pub struct Poll {
    /// The records handed to the function.
    pub received: Vec<Received>,
    /// SQS message ids of the records it reported failed.
    pub failed: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub body: String,
    /// 1 on the first receipt.
    pub receive_count: u32,
}

impl EventSource {
    /// Receives up to `batch_size` visible records and hands them to `function`.
    pub async fn poll(&self, lambda: &LambdaWatch, function: &str) -> Result<Poll, String> {
        let messages = self.receive_messages().await?;
        if messages.is_empty() {
            return Ok(Poll::default());
        }
        let event = json!({"Records": messages.iter().map(crate::sqs::lambda_record).collect::<Vec<_>>()});
        let response = lambda.invoke(function, &event).await?;
        let failed: HashSet<String> = failed_ids(&response).into_iter().collect();
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        self.delete_messages(&done).await?;
        let received = messages
            .iter()
            .map(|m| Received {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            })
            .collect();
        Ok(Poll {
            received,
            failed: failed.into_iter().collect(),
        })
    }

    /// Up to `batch_size` visible records, with every attribute Lambda hands over.
    pub async fn receive_messages(&self) -> Result<Vec<Message>, String> {
        let mut messages = Vec::new();
        while messages.len() < self.batch_size {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10.min((self.batch_size - messages.len()) as i32))
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| format!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            let got = out.messages.unwrap_or_default();
            if got.is_empty() {
                break;
            }
            messages.extend(got);
        }
        Ok(messages)
    }

    pub async fn delete_messages(&self, messages: &[&Message]) -> Result<(), String> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .expect("id and handle")
                })
                .collect();
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DeleteMessageBatch: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
        }
        Ok(())
    }

    /// Messages on the queue, visible, in flight or delayed.
    pub async fn depth(&self) -> Result<u64, String> {
        queue_depth(&self.sqs, &self.queue_url).await
    }
}

/// Visible, in-flight and delayed messages of a queue (the remainder of a partly
/// delivered record waits delayed: a queue holding one is not drained).
pub async fn queue_depth(sqs: &Client, queue_url: &str) -> Result<u64, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetQueueAttributes: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: A| attrs.get(&a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(n(A::ApproximateNumberOfMessages)
        + n(A::ApproximateNumberOfMessagesNotVisible)
        + n(A::ApproximateNumberOfMessagesDelayed))
}
