//! When failed records come back (README, "Retries, backoff and the dead-letter queue").
//! Lambda leaves a failed record on the queue; its visibility decides when it is received
//! again. Setting it per receipt on an exponential schedule lets an outage of hours heal
//! by itself before `maxReceiveCount` receipts send the record to the dead-letter queue,
//! while a record that is bad in itself comes back at once, to reach that queue fast.

mod replace;

pub use replace::{DEFAULT_MAX_RECEIVES, MAX_DELAY, Replacement, not_due_for, receives, sqs_receive_count};

use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use futures::stream::{self, StreamExt};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The visibility of a record after its n-th failed receipt: `base` doubling up to `cap`,
/// plus up to a quarter more at random so that records that failed together spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(60 * 60),
        }
    }
}

impl RetrySchedule {
    /// The wait before the deterministic part's jitter, after failed receipt `n` (from 1).
    pub fn floor(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1 << doublings)
            .min(self.cap)
            .min(MAX_VISIBILITY)
    }

    /// The visibility timeout to set after failed receipt `n`.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let floor = self.floor(receive_count);
        (floor + floor.mul_f64(fastrand::f64() / 4.0)).min(MAX_VISIBILITY)
    }

    /// The least time a record keeps coming back over `max_receive_count` failed receipts.
    pub fn covers(&self, max_receive_count: u32) -> Duration {
        (1..=max_receive_count).map(|n| self.floor(n)).sum()
    }
}

/// One record's new visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    pub receipt_handle: String,
    pub timeout: Duration,
}

/// Sets when failed records come back. Never fails the invocation: a handle that expired
/// or a throttled call leaves the record to the queue's own visibility timeout.
pub trait Requeue: Sync {
    /// Sets the visibilities; answers how many records' could not be set (the
    /// `VisibilityChangeFailures` metric).
    fn set_visibility(&self, records: Vec<Visibility>) -> impl Future<Output = u64> + Send;

    /// Replaces partly delivered records by their remainders; answers, per replacement,
    /// whether it was done. One that was not leaves its record to come back whole.
    fn replace(&self, replacements: Vec<Replacement>) -> impl Future<Output = Vec<bool>> + Send {
        std::future::ready(vec![false; replacements.len()])
    }
}

/// No changes: failed records come back after the queue's visibility timeout.
pub struct QueueDefault;

impl Requeue for QueueDefault {
    async fn set_visibility(&self, _records: Vec<Visibility>) -> u64 {
        0
    }
}

/// `ChangeMessageVisibilityBatch` on the export queue.
pub struct SqsRequeue {
    client: aws_sdk_sqs::Client,
    /// `None` without `QUEUE_URL`: the queue's own timeout applies.
    queue_url: Option<String>,
    /// `None` without `DEAD_LETTER_QUEUE_URL`: partly delivered records come back whole.
    dead_letter_url: Option<String>,
}

/// Entries per `ChangeMessageVisibilityBatch` call: SQS's limit.
const BATCH: usize = 10;

impl SqsRequeue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: Some(queue_url.into()),
            dead_letter_url: None,
        }
    }

    /// Where remainders that no retry can help, or that reached the bound, go (the
    /// queue's dead-letter queue); with none, partly delivered records come back whole.
    pub fn with_dead_letter(mut self, dead_letter_url: Option<String>) -> Self {
        if dead_letter_url.is_none() {
            tracing::warn!(
                "DEAD_LETTER_QUEUE_URL is not set: partly delivered records come back whole, to every destination"
            );
        }
        self.dead_letter_url = dead_letter_url;
        self
    }

    /// The queue at `queue_url` (`export`'s `QUEUE_URL`, which the stack sets); with none,
    /// failed records come back after the queue's own visibility timeout.
    pub fn optional(client: aws_sdk_sqs::Client, queue_url: Option<String>) -> Self {
        if queue_url.is_none() {
            tracing::warn!(
                "QUEUE_URL is not set: failed records come back after the queue's visibility timeout"
            );
        }
        Self {
            client,
            queue_url,
            dead_letter_url: None,
        }
    }

    /// One call for up to [`BATCH`] records; answers how many were not changed.
    async fn change(&self, queue_url: &str, chunk: &[Visibility]) -> u64 {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&v.receipt_handle)
                    .visibility_timeout(v.timeout.as_secs() as i32)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let result = self
            .client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) => {
                for failed in &out.failed {
                    tracing::warn!(code = %failed.code, "changing a failed record's visibility was refused; the queue's timeout applies");
                }
                out.failed.len() as u64
            }
            Err(e) => {
                tracing::warn!(records = chunk.len(), error = %aws_sdk_sqs::error::DisplayErrorContext(e), "changing failed records' visibility failed; the queue's timeout applies");
                chunk.len() as u64
            }
        }
    }
}

impl Requeue for SqsRequeue {
    async fn set_visibility(&self, records: Vec<Visibility>) -> u64 {
        let Some(queue_url) = self.queue_url.as_deref() else {
            return 0;
        };
        let failed = AtomicU64::new(0);
        stream::iter(records.chunks(BATCH))
            .for_each_concurrent(4, |chunk| async {
                failed.fetch_add(self.change(queue_url, chunk).await, Ordering::Relaxed);
            })
            .await;
        failed.into_inner()
    }

    async fn replace(&self, replacements: Vec<Replacement>) -> Vec<bool> {
        self.replace_all(replacements).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap_with_a_quarter_of_jitter() {
        let s = RetrySchedule::default();
        let floors: Vec<u64> = (1..=9).map(|n| s.floor(n).as_secs()).collect();
        assert_eq!(floors, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        for n in 1..=20 {
            let d = s.delay(n);
            assert!(
                d >= s.floor(n) && d <= s.floor(n).mul_f64(1.25),
                "receipt {n}: {d:?}"
            );
        }
    }

    #[test]
    fn the_default_receive_count_covers_more_than_six_hours() {
        let covered = RetrySchedule::default().covers(12);
        assert!(covered >= Duration::from_secs(6 * 3600), "{covered:?}");
        assert_eq!(covered.as_secs(), 25_380);
    }

    #[tokio::test]
    async fn every_record_whose_visibility_could_not_be_changed_is_counted() {
        // Nothing listens on port 9: every call fails, at once and without retries.
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        let records: Vec<Visibility> = (0..12)
            .map(|i| Visibility {
                receipt_handle: format!("handle-{i}"),
                timeout: Duration::from_secs(60),
            })
            .collect();
        let requeue = SqsRequeue::new(client.clone(), "http://127.0.0.1:9/000000000000/q");
        assert_eq!(
            requeue.set_visibility(records.clone()).await,
            12,
            "two calls of 10 and 2 failed"
        );
        let no_queue = SqsRequeue::optional(client, None);
        assert_eq!(no_queue.set_visibility(records).await, 0);
        assert_eq!(QueueDefault.set_visibility(Vec::new()).await, 0);
    }

    #[test]
    fn never_past_sqs_longest_visibility() {
        let s = RetrySchedule {
            base: Duration::from_secs(3600),
            cap: Duration::from_secs(100_000),
        };
        assert_eq!(s.delay(10), MAX_VISIBILITY);
    }
}
