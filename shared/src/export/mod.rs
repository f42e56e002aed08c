//! The `export` pipeline: SQS records in, Segment batches out, failed records reported
//! (README, "How `export` handles a batch"). One invocation:
//! [`parse`] the records → read each environment once → [`route`] every event into
//! per-destination [`outbox`]es → pack and send, while the envelopes go to the
//! [`archive`] → the [`ledger`] answers SQS.

mod archive;
mod ledger;
mod outbox;
mod parse;
mod remainder;
mod replays;
mod route;
mod schedule;
mod skips;
mod status;

pub use parse::derive_event_id;
pub use schedule::MAX_CONCURRENT_REQUESTS;
pub use status::DEFAULT_INTERVAL as DEFAULT_STATUS_INTERVAL;

use crate::archive::{Archive, NoArchive};
use crate::deadline::Deadline;
use crate::delivery_status::DeliveryReport;
use crate::metrics::{self, ExportStats};
use crate::requeue::{self, QueueDefault, Replacement, Requeue, RetrySchedule, Visibility};
use crate::segment::SegmentApi;
use crate::store::{DeliveryStore, ReplayStore, Store, StoreError};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
use ledger::{Cause, Ledger};
use outbox::Outboxes;
use parse::{Parsed, RecordEvent};
use route::Environments;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most the status writes may take, and what they leave of the invocation's time.
const MAX_STATUS_TIME: Duration = Duration::from_secs(3);
const STATUS_MARGIN: Duration = Duration::from_millis(500);

/// Delivery-status writes in flight at once, across all destinations.
pub const MAX_CONCURRENT_STATUS_WRITES: usize = 16;

/// Environments looked up at once.
const MAX_CONCURRENT_LOOKUPS: usize = 16;

/// Time kept free of environment reads before the deadline, for sending what was read,
/// the status writes and answering the invocation: this share of the time left when the
/// reads start, and never less than [`READ_RESERVE`]. Reads that would take longer fail
/// their records for now, rather than leave nothing to send with (issue 19).
const SEND_SHARE: f64 = 0.5;
const READ_RESERVE: Duration = Duration::from_secs(2);

/// SQS's largest message: a remainder bigger than this goes in several records.
const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The pipeline over a store, a Segment sender, the queue's retry schedule and the
/// event archive.
pub struct Exporter<St, Se, Rq = QueueDefault, Ar = NoArchive> {
    store: St,
    segment: Se,
    requeue: Rq,
    archive: Ar,
    schedule: RetrySchedule,
    /// The queue's `maxReceiveCount`: a remainder that reaches it goes to the DLQ.
    max_receives: u32,
    status: status::StatusKeeper,
}

impl<St, Se> Exporter<St, Se> {
    /// Failed records come back after the queue's own visibility timeout; unchanged
    /// statuses are written every [`DEFAULT_STATUS_INTERVAL`] (see `with_status_interval`).
    pub fn new(store: St, segment: Se) -> Self {
        Self {
            store,
            segment,
            requeue: QueueDefault,
            archive: NoArchive,
            schedule: RetrySchedule::default(),
            max_receives: requeue::DEFAULT_MAX_RECEIVES,
            status: status::StatusKeeper::new(DEFAULT_STATUS_INTERVAL),
        }
    }
}

impl<St, Se, Rq, Ar> Exporter<St, Se, Rq, Ar> {
    /// Failed records come back on `schedule`, through `requeue`.
    pub fn with_requeue<R: Requeue>(self, requeue: R, schedule: RetrySchedule) -> Exporter<St, Se, R, Ar> {
        Exporter {
            store: self.store,
            segment: self.segment,
            requeue,
            archive: self.archive,
            schedule,
            max_receives: self.max_receives,
            status: self.status,
        }
    }

    /// Keeps every envelope received in `archive` (CONTRACT §6; default: none).
    pub fn with_archive<A: Archive>(self, archive: A) -> Exporter<St, Se, Rq, A> {
        Exporter {
            store: self.store,
            segment: self.segment,
            requeue: self.requeue,
            archive,
            schedule: self.schedule,
            max_receives: self.max_receives,
            status: self.status,
        }
    }

    /// The queue's `maxReceiveCount` (default [`requeue::DEFAULT_MAX_RECEIVES`]).
    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives.max(1);
        self
    }

    /// Writes a destination's unchanged status at most once per `interval` (zero: after
    /// every invocation).
    pub fn with_status_interval(mut self, interval: Duration) -> Self {
        self.status = status::StatusKeeper::new(interval);
        self
    }
}

impl<St: Store + DeliveryStore + ReplayStore, Se: SegmentApi, Rq: Requeue, Ar: Archive>
    Exporter<St, Se, Rq, Ar>
{
    pub fn store(&self) -> &St {
        &self.store
    }

    pub fn segment(&self) -> &Se {
        &self.segment
    }

    /// One Lambda invocation: exports, logs the outcome and its EMF metrics line.
    /// `deadline_ms` is the runtime's deadline (epoch ms; 0 when unknown).
    pub async fn handle(&self, batch: &SqsEvent, deadline_ms: u64, started: Instant) -> SqsBatchResponse {
        let deadline = Deadline::from_epoch_millis(deadline_ms, started);
        let (response, mut stats) = self.export(batch, deadline).await;
        stats.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            records = stats.records,
            failed_records = stats.failed_records,
            events = stats.events,
            exported = stats.exported,
            skipped = stats.skipped,
            failed_bad = stats.failed_bad,
            failed_transient = stats.failed_transient,
            segment_requests = stats.segment_requests,
            segment_bytes = stats.segment_bytes,
            visibility_failures = stats.visibility_failures,
            status_write_failures = stats.status_write_failures,
            elapsed_ms = stats.duration_ms,
            unreadable_destinations = stats.unreadable_destinations,
            replaced_records = stats.replaced_records,
            replace_failures = stats.replace_failures,
            archived = stats.archived,
            archive_objects = stats.archive_objects,
            archive_bytes = stats.archive_bytes,
            archive_write_failures = stats.archive_write_failures,
            "export finished"
        );
        // EMF goes to stdout as a bare JSON line, where CloudWatch picks it up.
        println!("{}", metrics::export_line(&metrics::function_name(), &stats));
        response
    }

    /// Delivers every exportable event of the batch and reports the records to retry.
    pub async fn export(&self, batch: &SqsEvent, deadline: Deadline) -> (SqsBatchResponse, ExportStats) {
        let mut ledger = Ledger::new(batch.records.len());
        let mut parsed = Parsed::default();
        let now = crate::timestamp::now_millis();
        // A remainder whose wait was longer than SQS's longest delay: not due yet.
        let waits: Vec<Option<Duration>> = batch
            .records
            .iter()
            .map(|r| requeue::not_due_for(r, now))
            .collect();
        for (i, r) in batch.records.iter().enumerate() {
            if waits[i].is_some() {
                ledger.fail_record(i, Cause::Transient);
                continue;
            }
            parse::parse_record(
                &mut ledger,
                i,
                r.message_id.as_deref(),
                r.body.as_deref(),
                &mut parsed,
            );
        }
        // The archive's work (compression, writes) goes side by side with reading,
        // routing and delivering, not after them.
        let mut outboxes = Outboxes::default();
        let ((outboxes, outcomes, skips, environments), archived) = tokio::join!(
            self.route_and_deliver(&parsed, &mut ledger, &mut outboxes, deadline),
            archive::keep(&self.archive, &parsed, deadline),
        );
        for &record in &archived.unarchived {
            ledger.fail_archive(record);
        }
        ledger.stats.archived = archived.events;
        ledger.stats.archive_objects = archived.objects;
        ledger.stats.archive_bytes = archived.bytes;
        ledger.stats.archive_write_failures = archived.failures;
        ledger.index_misses();
        let replaced = self
            .replace_partly_delivered(batch, &mut ledger, &parsed, &outboxes.boxes, deadline)
            .await;
        let tallies = replays::tally(batch, &ledger, &parsed, self.max_receives, &replaced);
        let visibilities = self.visibilities(batch, &ledger, &waits, &replaced);
        let to_set = visibilities.len() as u64;
        // Within the deadline too: what is not set by then is left to the queue's own timeout.
        let requeued = tokio::time::timeout(deadline.remaining(), self.requeue.set_visibility(visibilities));
        let (status_write_failures, visibility_failures, ()) = tokio::join!(
            self.record_deliveries(&outcomes, skips, &environments, deadline),
            async { requeued.await.unwrap_or(to_set) },
            self.count_replays(&tallies, deadline),
        );
        ledger.stats.status_write_failures = status_write_failures;
        ledger.stats.visibility_failures = visibility_failures;
        ledger.finish(batch)
    }

    /// Reads the environments, routes every event into `outboxes` and delivers them;
    /// answers the outboxes, filled, and what became of them.
    async fn route_and_deliver<'o, 'a>(
        &self,
        parsed: &'a Parsed<'a>,
        ledger: &mut Ledger,
        outboxes: &'o mut Outboxes,
        deadline: Deadline,
    ) -> (
        &'o Outboxes,
        Vec<schedule::LaneOutcome<'o>>,
        skips::Skips,
        Environments<'a>,
    ) {
        let environments = self.read_environments(&parsed.events, deadline).await;
        ledger.stats.unreadable_destinations = environments.unreadable_destinations();
        let mut skips = skips::Skips::default();
        for event in &parsed.events {
            route::route(event, &environments, ledger, outboxes, &mut skips);
        }
        let outboxes: &'o Outboxes = outboxes;
        let outcomes = schedule::deliver(&self.segment, &outboxes.boxes, ledger, deadline).await;
        (outboxes, outcomes, skips, environments)
    }

    /// Replaces each failed record that some destination got some event of by what is
    /// left of it (`remainder`), so that a later receipt or a redrive never sends an
    /// event to a destination that accepted it; and moves a remainder at the bound to the
    /// dead-letter queue. Answers, per record, whether it was
    /// replaced; such a record is still reported failed, as CONTRACT §3.4 says.
    ///
    /// A record whose archive write failed is never replaced: a remainder's envelopes
    /// carry `destinations`, so they would never be archived. It comes back whole, and
    /// the destinations that accepted its events get them again with the same
    /// `messageId`s, which Segment drops as repeats (it keeps them about 24 hours; the
    /// record is back within the schedule's cap, an hour by default).
    async fn replace_partly_delivered(
        &self,
        batch: &SqsEvent,
        ledger: &mut Ledger,
        parsed: &Parsed<'_>,
        outboxes: &[outbox::Outbox],
        deadline: Deadline,
    ) -> Vec<bool> {
        let mut replaced = vec![false; batch.records.len()];
        let mut records = Vec::new();
        let mut replacements = Vec::new();
        for (record, _) in ledger.failed_records() {
            let r = &batch.records[record];
            let Some(receipt_handle) = r.receipt_handle.clone() else {
                continue;
            };
            if !ledger.archived(record) {
                continue;
            }
            let receives = requeue::receives(r);
            // A remainder counts the receipts of the records before it, which SQS does
            // not: at the bound, it is moved to the dead-letter queue here.
            let at_bound = receives >= self.max_receives;
            let sqs_moves_it = requeue::sqs_receive_count(r) >= self.max_receives;
            if !ledger.delivered_any(record) && (!at_bound || sqs_moves_it) {
                continue;
            }
            let mut left = remainder::of_record(record, ledger, parsed, outboxes);
            if left.retry.is_empty() && left.dead.is_empty() {
                // Nothing parsed to carry over (a body that is not JSON): kept whole.
                continue;
            }
            if at_bound {
                left.dead.append(&mut left.retry);
            }
            records.push(record);
            replacements.push(Replacement {
                receipt_handle,
                retry: remainder::bodies(&left.retry, MAX_RECORD_BYTES),
                dead: remainder::bodies(&left.dead, MAX_RECORD_BYTES),
                receives,
                delay: self.schedule.delay(receives),
            });
        }
        if replacements.is_empty() {
            return replaced;
        }
        let wanted = replacements.len();
        let done = tokio::time::timeout(deadline.remaining(), self.requeue.replace(replacements))
            .await
            .unwrap_or_default();
        for (record, ok) in records.into_iter().zip(done) {
            replaced[record] = ok;
        }
        let ok = replaced.iter().filter(|&&r| r).count();
        ledger.stats.replaced_records = ok as u64;
        ledger.stats.replace_failures = (wanted - ok) as u64;
        replaced
    }

    /// Each destination's delivery status, when due (`status`): a destination's reports
    /// one after the other, destinations side by side (at most
    /// [`MAX_CONCURRENT_STATUS_WRITES`] at once), within the time left. A status that
    /// cannot be written is logged; it changes no record's outcome. Answers how many
    /// reports failed or were left unwritten.
    async fn record_deliveries(
        &self,
        outcomes: &[schedule::LaneOutcome<'_>],
        skips: skips::Skips,
        environments: &Environments<'_>,
        deadline: Deadline,
    ) -> u64 {
        let at = crate::timestamp::now_millis();
        let key_of =
            |d: &crate::destination::Destination| (d.project.clone(), d.environment.clone(), d.id.clone());
        let mut reports: Vec<(status::DestinationKey, DeliveryReport)> = outcomes
            .iter()
            .filter(|o| o.delivered + o.failed > 0)
            .map(|o| {
                let report = DeliveryReport {
                    delivered: o.delivered,
                    failed: o.failed,
                    skipped: crate::delivery_status::Skipped::default(),
                    failure: o.failure.clone(),
                    at,
                };
                (key_of(o.outbox.destination()), report)
            })
            .collect();
        // What each destination did not get goes in the same report as what it got.
        for (slot, skipped) in skips.into_slots() {
            let Some(d) = environments.destination(slot) else {
                continue;
            };
            let key = key_of(d);
            match reports.iter_mut().find(|(k, _)| *k == key) {
                Some((_, report)) => report.skipped = skipped,
                None => reports.push((
                    key,
                    DeliveryReport {
                        delivered: 0,
                        failed: 0,
                        skipped,
                        failure: None,
                        at,
                    },
                )),
            }
        }
        let mut by_destination: Vec<(status::DestinationKey, Vec<DeliveryReport>)> = Vec::new();
        for (key, report) in self.status.due(reports) {
            match by_destination.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(report),
                None => by_destination.push((key, vec![report])),
            }
        }
        let due = by_destination
            .iter()
            .map(|(_, reports)| reports.len() as u64)
            .sum::<u64>();
        let written = AtomicU64::new(0);
        let writes = by_destination.iter().map(|((project, environment, id), reports)| {
            let written = &written;
            async move {
                for report in reports {
                    match self.store.record_delivery(project, environment, id, report).await {
                        Ok(()) => _ = written.fetch_add(1, Ordering::Relaxed),
                        // Deleted since this process cached its environment: nothing to keep.
                        Err(StoreError::NotFound) => {
                            tracing::debug!(destination = %id, "a deleted destination's status is not written");
                            written.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!(destination = %id, error = %e, "the delivery status could not be written")
                        }
                    }
                }
            }
        });
        let time_left = deadline
            .remaining()
            .saturating_sub(STATUS_MARGIN)
            .min(MAX_STATUS_TIME);
        // Bounded in flight: a status write per destination, whatever their number.
        let writes = stream::iter(writes)
            .buffer_unordered(MAX_CONCURRENT_STATUS_WRITES)
            .collect::<()>();
        if tokio::time::timeout(time_left, writes).await.is_err() {
            tracing::warn!("delivery status not written in time: left unwritten");
        }
        due - written.load(Ordering::Relaxed)
    }

    /// Adds the batch's outcomes to each replay's counts, within the time left. A count
    /// that cannot be written is logged: the replay's progress then trails, its events
    /// are delivered all the same.
    async fn count_replays(
        &self,
        tallies: &[(crate::replay::ReplayKey, crate::replay::ReplayCounts)],
        deadline: Deadline,
    ) {
        let writes = stream::iter(tallies)
            .map(|(key, counts)| async move {
                match self.store.count_replay(key, counts).await {
                    Ok(()) => {}
                    Err(StoreError::NotFound) => {
                        tracing::debug!(
                            replay = key.id,
                            "no such replay (expired): its counts are dropped"
                        )
                    }
                    Err(e) => {
                        tracing::warn!(replay = key.id, error = %e, "a replay's counts could not be written")
                    }
                }
            })
            .buffer_unordered(MAX_CONCURRENT_STATUS_WRITES)
            .collect::<()>();
        let time_left = deadline
            .remaining()
            .saturating_sub(STATUS_MARGIN)
            .min(MAX_STATUS_TIME);
        if tokio::time::timeout(time_left, writes).await.is_err() {
            tracing::warn!("replay counts not written in time: left unwritten");
        }
    }

    /// When each failed record comes back: at once when it is bad in itself (so that
    /// it reaches the dead-letter queue fast), when it is due if it waits for that, else
    /// on the schedule for its receive count. A replaced record is gone already.
    fn visibilities(
        &self,
        batch: &SqsEvent,
        ledger: &Ledger,
        waits: &[Option<Duration>],
        replaced: &[bool],
    ) -> Vec<Visibility> {
        ledger
            .failed_records()
            .filter(|&(record, _)| !replaced[record])
            .filter_map(|(record, cause)| {
                let r = &batch.records[record];
                let timeout = match (waits[record], cause) {
                    (Some(wait), _) => wait,
                    (None, Cause::Bad) => Duration::ZERO,
                    (None, Cause::Transient) => self.schedule.delay(requeue::receives(r)),
                };
                Some(Visibility {
                    receipt_handle: r.receipt_handle.clone()?,
                    timeout,
                })
            })
            .collect()
    }

    /// Reads the environments of the batch, [`MAX_CONCURRENT_LOOKUPS`] at once, until
    /// only the reserve for sending is left ([`SEND_SHARE`] of the time, at least
    /// [`READ_RESERVE`]): an environment not read by then fails its records for now (they
    /// retry on the schedule), and everything read is still delivered.
    async fn read_environments<'a>(
        &self,
        events: &'a [RecordEvent<'a>],
        deadline: Deadline,
    ) -> Environments<'a> {
        // Skipped kinds (summary, index, …) too, for their destinations' skip counts; a
        // failed read fails none of them (`route`).
        let mut keys: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (&*e.envelope.project, &*e.envelope.environment))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut reads = stream::iter(keys.clone())
            .map(|(project, environment)| async move {
                let config = self.store.environment(project, environment).await;
                if let Err(e) = &config {
                    tracing::error!(project, environment, error = %e, "reading destinations failed");
                }
                ((project, environment), config)
            })
            .buffer_unordered(MAX_CONCURRENT_LOOKUPS);
        let left = deadline.remaining();
        let reserve = left.mul_f64(SEND_SHARE).max(READ_RESERVE);
        let cutoff = tokio::time::sleep(left.saturating_sub(reserve));
        tokio::pin!(cutoff);
        let mut environments = Environments::default();
        loop {
            tokio::select! {
                read = reads.next() => match read {
                    Some((key, config)) => environments.insert(key, config),
                    None => break,
                },
                () = &mut cutoff => break,
            }
        }
        for key in keys {
            if !environments.contains(key) {
                tracing::warn!(
                    project = key.0,
                    environment = key.1,
                    "environment not read before the deadline"
                );
                environments.insert(
                    key,
                    Err(StoreError::Dynamo {
                        operation: "Query",
                        source: "not read before the invocation's deadline".into(),
                    }),
                );
            }
        }
        environments
    }
}
