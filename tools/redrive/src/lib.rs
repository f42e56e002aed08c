//! Moving messages from the dead-letter queue back to the export queue. A message is
//! deleted from the DLQ only after SQS has accepted its copy, so a failure midway never
//! loses one (at worst it is sent twice, which `messageId`s make harmless in Segment).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    /// Copied to the queue and deleted from the DLQ.
    pub moved: u64,
    /// Messages SQS refused to take back; they stay in the DLQ.
    pub refused: u64,
    /// Copied, but their deletion from the DLQ failed: they are in both queues (a second
    /// delivery is harmless: same `messageId`s in Segment).
    pub copied_not_deleted: u64,
}

pub use shared::sqs_batches::{MAX_BATCH_BYTES, batches};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Moves every message visible in `from` to `to`, in batches of at most ten messages and
/// `MAX_BATCH_BYTES`; stops at the first empty receive, or after `limit` messages.
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
        let sizes: Vec<usize> = messages.iter().map(size_of_message).collect();
        for batch in batches(&sizes) {
            move_batch(sqs, from, to, &messages[batch], &mut done).await?;
        }
    }
    Ok(done)
}

/// A message's body and attributes, as SQS counts them against a batch's size.
fn size_of_message(m: &aws_sdk_sqs::types::Message) -> usize {
    let attributes: usize = m
        .message_attributes
        .iter()
        .flatten()
        .map(|(name, value)| {
            name.len()
                + value.data_type.len()
                + value.string_value.as_deref().map_or(0, str::len)
                + value.binary_value.as_ref().map_or(0, |b| b.as_ref().len())
        })
        .sum();
    m.body.as_deref().map_or(0, str::len) + attributes
}

/// Copies one batch to `to`, then deletes from `from` what SQS took, counting only what
/// was deleted as moved.
async fn move_batch(
    sqs: &Client,
    from: &str,
    to: &str,
    messages: &[aws_sdk_sqs::types::Message],
    done: &mut Redriven,
) -> Result<(), Error> {
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
    done.refused += sent.failed.len() as u64;
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
    if deletes.is_empty() {
        return Ok(());
    }
    let copied = deletes.len() as u64;
    let deleted = match sqs
        .delete_message_batch()
        .queue_url(from)
        .set_entries(Some(deletes))
        .send()
        .await
    {
        Ok(out) => out.successful.len() as u64,
        Err(e) => {
            eprintln!(
                "deleting redriven messages from the DLQ failed: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            );
            0
        }
    };
    done.moved += deleted;
    done.copied_not_deleted += copied - deleted;
    Ok(())
}
