//! Replacing a partly delivered record by its remainder (`export::remainder`, CONTRACT
//! §3.4): the remainder goes on the queue, due when the record's own next receipt would
//! have been, and the record is deleted. The count of failed receipts travels with it in
//! a message attribute, so the bound before the dead-letter queue stays that of the
//! record, and a remainder that reaches the bound, or that no retry can help, goes to the
//! dead-letter queue itself. New records are sent before the old one is deleted: a failure
//! midway can repeat a delivery (the record comes back whole), never lose one.

use super::SqsRequeue;
use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use futures::stream::{self, StreamExt};
use std::time::Duration;

/// Failed receipts so far of the events a remainder carries.
pub const RECEIVES_ATTRIBUTE: &str = "exportReceives";
/// When a remainder is due (epoch ms): SQS delays a new message by 15 minutes at most, so
/// a longer wait ends with one receipt that only sets the visibility for the rest.
pub const DUE_ATTRIBUTE: &str = "exportDueAt";
/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// The queue's `maxReceiveCount` when the stack does not say (the template's default).
pub const DEFAULT_MAX_RECEIVES: u32 = 12;
/// A receipt this close to its due time counts as due: SQS is not exact to the second.
const DUE_SLACK_MS: u64 = 1_000;

/// A record to replace by what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub receipt_handle: String,
    /// Record bodies for the queue, due after `delay`.
    pub retry: Vec<String>,
    /// Record bodies for the dead-letter queue.
    pub dead: Vec<String>,
    /// Failed receipts so far, the one being replaced included.
    pub receives: u32,
    pub delay: Duration,
}

fn attribute(message: &SqsMessage, name: &str) -> Option<u64> {
    message
        .message_attributes
        .get(name)?
        .string_value
        .as_deref()?
        .parse()
        .ok()
}

fn system_attribute(message: &SqsMessage, name: &str) -> Option<u64> {
    message.attributes.get(name)?.parse().ok()
}

/// SQS's own count of the record's receipts: it moves the record to the dead-letter queue
/// when this reaches `maxReceiveCount`.
pub fn sqs_receive_count(message: &SqsMessage) -> u32 {
    system_attribute(message, "ApproximateReceiveCount").map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Failed receipts of the record's events so far, this one included: SQS's count, plus
/// those of the records it replaced, less the receipt that only waited for its due time.
pub fn receives(message: &SqsMessage) -> u32 {
    let count = u64::from(sqs_receive_count(message));
    let before = attribute(message, RECEIVES_ATTRIBUTE).unwrap_or(0);
    let waited = match (
        attribute(message, DUE_ATTRIBUTE),
        system_attribute(message, "SentTimestamp"),
    ) {
        (Some(due), Some(sent)) => {
            u64::from(due.saturating_sub(sent) > MAX_DELAY.as_millis() as u64 + DUE_SLACK_MS)
        }
        _ => 0,
    };
    u32::try_from((before + count).saturating_sub(waited).max(1)).unwrap_or(u32::MAX)
}

/// How long the record still waits before it is due, when it is not due yet.
pub fn not_due_for(message: &SqsMessage, now_ms: u64) -> Option<Duration> {
    let due = attribute(message, DUE_ATTRIBUTE)?;
    (due > now_ms + DUE_SLACK_MS).then(|| Duration::from_millis(due - now_ms))
}

impl SqsRequeue {
    /// Replaces each record; answers, per replacement, whether it was replaced.
    pub(super) async fn replace_all(&self, replacements: Vec<Replacement>) -> Vec<bool> {
        let (Some(queue), Some(dead_letter)) = (self.queue_url.as_deref(), self.dead_letter_url.as_deref())
        else {
            return vec![false; replacements.len()];
        };
        stream::iter(replacements)
            .map(|r| async move { self.replace(queue, dead_letter, &r).await })
            .buffered(4)
            .collect()
            .await
    }

    async fn replace(&self, queue: &str, dead_letter: &str, r: &Replacement) -> bool {
        let due_at = crate::timestamp::now_millis() + r.delay.as_millis() as u64;
        let number = |n: u64| {
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(n.to_string())
                .build()
                .expect("data type is set")
        };
        for body in &r.retry {
            let sent = self
                .client
                .send_message()
                .queue_url(queue)
                .message_body(body)
                .delay_seconds(r.delay.min(MAX_DELAY).as_secs() as i32)
                .message_attributes(RECEIVES_ATTRIBUTE, number(u64::from(r.receives)))
                .message_attributes(DUE_ATTRIBUTE, number(due_at))
                .send()
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "the remainder of a record could not be queued: the record comes back whole");
                return false;
            }
        }
        // No attributes: a redrive starts the count afresh, as SQS's own does.
        for body in &r.dead {
            if let Err(e) = self
                .client
                .send_message()
                .queue_url(dead_letter)
                .message_body(body)
                .send()
                .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "the remainder of a record could not reach the dead-letter queue: the record comes back whole");
                return false;
            }
        }
        match self
            .client
            .delete_message()
            .queue_url(queue)
            .receipt_handle(&r.receipt_handle)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "a replaced record could not be deleted: it comes back whole");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessageAttribute;

    fn message(count: u64, before: Option<u64>, sent: u64, due: Option<u64>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.attributes
            .insert("ApproximateReceiveCount".into(), count.to_string());
        m.attributes.insert("SentTimestamp".into(), sent.to_string());
        let mut number = |name: &str, n: u64| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(n.to_string());
            a.data_type = Some("Number".into());
            m.message_attributes.insert(name.into(), a);
        };
        if let Some(b) = before {
            number(RECEIVES_ATTRIBUTE, b);
        }
        if let Some(d) = due {
            number(DUE_ATTRIBUTE, d);
        }
        m
    }

    #[test]
    fn a_remainder_counts_the_receipts_of_the_records_it_replaced() {
        assert_eq!(receives(&message(3, None, 0, None)), 3, "a record of its own");
        // Due within SQS's delay: its first receipt is a real one.
        assert_eq!(receives(&message(1, Some(4), 0, Some(600_000))), 5);
        // Due after the longest delay: its first receipt only waited.
        assert_eq!(receives(&message(2, Some(4), 0, Some(3_600_000))), 5);
        assert_eq!(receives(&message(3, Some(4), 0, Some(3_600_000))), 6);
    }

    #[test]
    fn a_remainder_is_due_at_its_time_give_or_take_a_second() {
        let m = message(1, Some(4), 0, Some(3_600_000));
        assert_eq!(not_due_for(&m, 900_000), Some(Duration::from_secs(2700)));
        assert_eq!(not_due_for(&m, 3_599_500), None);
        assert_eq!(not_due_for(&message(1, None, 0, None), 0), None);
    }
}
