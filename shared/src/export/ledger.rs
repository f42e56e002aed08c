//! Per-invocation bookkeeping of what failed: which records to report back to SQS, which
//! destinations still miss which events (for the retry of a partial failure), and the
//! counts for logs and metrics.

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
    /// Per event: its record.
    records: Vec<u32>,
    /// Per event: how many destinations it was written for (0: nobody gets it).
    queued: Vec<u16>,
    /// Per event: why it could not be delivered somewhere it should go, the transient
    /// cause winning over the bad one.
    failed_events: Vec<Option<Cause>>,
    /// Deliveries that failed at one destination: few, so a list.
    misses: Vec<Miss>,
    /// Per record: whether an archive write of its envelopes failed.
    unarchived: Vec<bool>,
    pub stats: ExportStats,
}

/// What became of one event: every destination that should have it got it; none should
/// (its kind, its flag or its destinations' state); or some did not get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Delivered,
    Skipped,
    Failed,
}

/// An event that one destination (by outbox number) did not get, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    pub event: u32,
    pub outbox: u32,
    pub cause: Cause,
}

impl Ledger {
    pub fn new(records: usize) -> Self {
        Self {
            failed_records: vec![None; records],
            records: Vec::new(),
            queued: Vec::new(),
            failed_events: Vec::new(),
            misses: Vec::new(),
            unarchived: vec![false; records],
            stats: ExportStats {
                records: records as u64,
                ..ExportStats::default()
            },
        }
    }

    /// Numbers a new event of the invocation, from record `record`.
    pub fn new_event(&mut self, record: usize) -> usize {
        self.records.push(record as u32);
        self.queued.push(0);
        self.failed_events.push(None);
        self.queued.len() - 1
    }

    /// The event was written for one more destination.
    pub fn queue_event(&mut self, event: usize) {
        self.queued[event] += 1;
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

    /// Some envelope of record `record` was not archived: the record fails for now, and
    /// comes back whole (never as a remainder, whose envelopes would not be archived).
    pub fn fail_archive(&mut self, record: usize) {
        self.fail_record(record, Cause::Transient);
        self.unarchived[record] = true;
    }

    /// Whether every envelope of record `record` that the archive keeps was kept.
    pub fn archived(&self, record: usize) -> bool {
        !self.unarchived[record]
    }

    /// The event did not reach the destination of outbox `outbox`.
    pub fn miss(&mut self, record: usize, event: usize, outbox: usize, cause: Cause) {
        self.fail_event(record, event, cause);
        self.misses.push(Miss {
            event: event as u32,
            outbox: outbox as u32,
            cause,
        });
    }

    /// The events of record `record`, in their order in it.
    pub fn events_of(&self, record: usize) -> impl Iterator<Item = usize> + '_ {
        // Events are numbered record by record, so a record's are side by side.
        let start = self.records.partition_point(|&r| (r as usize) < record);
        let end = self.records.partition_point(|&r| (r as usize) <= record);
        start..end
    }

    /// Orders the misses by event, once delivery is over, for [`Self::misses_of`].
    pub fn index_misses(&mut self) {
        self.misses.sort_unstable_by_key(|m| (m.event, m.outbox, m.cause));
        self.misses.dedup_by(|later, earlier| {
            // Same event and destination: keep one, with the cause that wins.
            let same = (later.event, later.outbox) == (earlier.event, earlier.outbox);
            if same {
                earlier.cause = earlier.cause.max(later.cause);
            }
            same
        });
    }

    /// The destinations (by outbox) that did not get the event, each once, with why (the
    /// transient cause winning). Needs [`Self::index_misses`] first.
    pub fn misses_of(&self, event: usize) -> &[Miss] {
        let event = event as u32;
        let start = self.misses.partition_point(|m| m.event < event);
        let end = self.misses.partition_point(|m| m.event <= event);
        &self.misses[start..end]
    }

    /// Why the event failed where no destination was tried (a bad event, its environment
    /// not read), if it did.
    pub fn failed_everywhere(&self, event: usize) -> Option<Cause> {
        self.failed_events[event].filter(|_| self.misses_of(event).is_empty())
    }

    /// What became of the event this invocation (once delivery is over and
    /// [`Self::index_misses`] ran).
    pub fn outcome(&self, event: usize) -> EventOutcome {
        if self.failed_events[event].is_some() {
            EventOutcome::Failed
        } else if self.queued[event] == 0 {
            EventOutcome::Skipped
        } else {
            EventOutcome::Delivered
        }
    }

    /// Whether some destination got some event of the record: then a retry of the whole
    /// record would send that event again.
    pub fn delivered_any(&self, record: usize) -> bool {
        self.events_of(record)
            .any(|e| usize::from(self.queued[e]) > self.misses_of(e).len())
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
            .filter(|&e| self.queued[e] > 0 && self.failed_events[e].is_none())
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
