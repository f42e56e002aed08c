//! Per-invocation bookkeeping of what failed: which records to report back to SQS, and
//! the counts for logs and metrics.

use crate::metrics::ExportStats;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

/// Why an event or record failed, which decides when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// Bad in itself (not JSON, no context, oversized, refused by Segment as invalid):
    /// no retry can help, so it goes to the dead-letter queue at once.
    Bad,
    /// Delivery or the store failed: worth retrying later.
    Transient,
}

pub struct Ledger {
    /// Per record: why it failed, the transient cause winning over the bad one.
    failed_records: Vec<Option<Cause>>,
    /// Per event: it produced at least one message.
    queued: Vec<bool>,
    /// Per event: why it could not be delivered somewhere it should go, the transient
    /// cause winning over the bad one.
    failed_events: Vec<Option<Cause>>,
    pub stats: ExportStats,
}

impl Ledger {
    pub fn new(records: usize) -> Self {
        Self {
            failed_records: vec![None; records],
            queued: Vec::new(),
            failed_events: Vec::new(),
            stats: ExportStats {
                records: records as u64,
                ..ExportStats::default()
            },
        }
    }

    /// Numbers a new event of the invocation.
    pub fn new_event(&mut self) -> usize {
        self.queued.push(false);
        self.failed_events.push(None);
        self.queued.len() - 1
    }

    pub fn queue_event(&mut self, event: usize) {
        self.queued[event] = true;
    }

    pub fn fail_record(&mut self, record: usize, cause: Cause) {
        let failed = &mut self.failed_records[record];
        *failed = (*failed).max(Some(cause));
    }

    pub fn fail_event(&mut self, record: usize, event: usize, cause: Cause) {
        self.fail_record(record, cause);
        let failed = &mut self.failed_events[event];
        *failed = (*failed).max(Some(cause));
    }

    /// The failed records, by index in the batch, with why.
    pub fn failed_records(&self) -> impl Iterator<Item = (usize, Cause)> + '_ {
        self.failed_records
            .iter()
            .enumerate()
            .filter_map(|(record, cause)| cause.map(|c| (record, c)))
    }

    /// The response for SQS (failed records by `messageId`) and the final counts.
    pub fn finish(mut self, batch: &SqsEvent) -> (SqsBatchResponse, ExportStats) {
        let total = self.queued.len();
        let failed_by = |cause| self.failed_events.iter().filter(|&&f| f == Some(cause)).count();
        let (bad, transient) = (failed_by(Cause::Bad), failed_by(Cause::Transient));
        let failed = bad + transient;
        let exported = (0..total)
            .filter(|&e| self.queued[e] && self.failed_events[e].is_none())
            .count();
        self.stats.events = total as u64;
        self.stats.failed_bad = bad as u64;
        self.stats.failed_transient = transient as u64;
        self.stats.exported = exported as u64;
        self.stats.skipped = (total - failed - exported) as u64;
        let mut response = SqsBatchResponse::default();
        for (record, _) in self.failed_records() {
            let mut failure = BatchItemFailure::default();
            // An empty identifier makes Lambda retry the whole batch: safe, never lossy.
            failure.item_identifier = batch.records[record].message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        self.stats.failed_records = response.batch_item_failures.len() as u64;
        (response, self.stats)
    }
}
