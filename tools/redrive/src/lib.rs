//! Moving messages from the dead-letter queue back to the export queue. A message is
//! deleted from the DLQ only after SQS has accepted its copy, so a failure midway never
//! loses one (at worst it is sent twice, which `messageId`s make harmless in Segment).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    pub moved: u64,
    /// Messages SQS refused to take back; they stay in the DLQ.
    pub refused: u64,
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Moves every message visible in `from` to `to`, ten at a time; stops at the first
/// empty receive, or after `limit` messages.
pub async fn redrive(sqs: &Client, from: &str, to: &str, limit: Option<u64>) -> Result<Redriven, Error> {
    let mut done = Redriven::default();
    while limit.is_none_or(|l| done.moved + done.refused < l) {
        let received = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(120)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = sqs
            .send_message_batch()
            .queue_url(to)
            .set_entries(Some(entries))
            .send()
            .await?;
        let deletes = sent
            .successful
            .iter()
            .map(|s| {
                let i: usize = s.id.parse().expect("ids are the indices sent");
                DeleteMessageBatchRequestEntry::builder()
                    .id(s.id.clone())
                    .receipt_handle(messages[i].receipt_handle.clone().unwrap_or_default())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        done.moved += deletes.len() as u64;
        done.refused += sent.failed.len() as u64;
        if !deletes.is_empty() {
            sqs.delete_message_batch()
                .queue_url(from)
                .set_entries(Some(deletes))
                .send()
                .await?;
        }
    }
    Ok(done)
}
