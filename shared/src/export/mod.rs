//! The `export` pipeline: SQS records in, Segment batches out, failed records reported
//! (README, "How `export` handles a batch"). One invocation:
//! [`parse`] the records → read each environment once → [`route`] every event into
//! per-destination [`outbox`]es → pack and send → the [`ledger`] answers SQS.

mod ledger;
mod outbox;
mod parse;
mod route;
mod schedule;
mod status;

pub use parse::derive_event_id;
pub use schedule::MAX_CONCURRENT_REQUESTS;
pub use status::DEFAULT_INTERVAL as DEFAULT_STATUS_INTERVAL;

use crate::deadline::Deadline;
use crate::delivery_status::DeliveryReport;
use crate::event::Kind;
use crate::metrics::{self, ExportStats};
use crate::requeue::{QueueDefault, Requeue, RetrySchedule, Visibility};
use crate::segment::SegmentApi;
use crate::store::{DeliveryStore, Store, StoreError};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
use ledger::{Cause, Ledger};
use outbox::Outboxes;
use parse::RecordEvent;
use route::Environments;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most the status writes may take, and what they leave of the invocation's time.
const MAX_STATUS_TIME: Duration = Duration::from_secs(3);
const STATUS_MARGIN: Duration = Duration::from_millis(500);

/// Environments looked up at once.
const MAX_CONCURRENT_LOOKUPS: usize = 16;

/// Time kept free of environment reads before the deadline: for sending what was read, and
/// for answering the invocation.
const READ_RESERVE: Duration = Duration::from_secs(2);

/// The pipeline over a store, a Segment sender and the queue's retry schedule.
pub struct Exporter<St, Se, Rq = QueueDefault> {
    store: St,
    segment: Se,
    requeue: Rq,
    schedule: RetrySchedule,
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
            schedule: RetrySchedule::default(),
            status: status::StatusKeeper::new(DEFAULT_STATUS_INTERVAL),
        }
    }
}

impl<St, Se, Rq> Exporter<St, Se, Rq> {
    /// Failed records come back on `schedule`, through `requeue`.
    pub fn with_requeue<R: Requeue>(self, requeue: R, schedule: RetrySchedule) -> Exporter<St, Se, R> {
        Exporter {
            store: self.store,
            segment: self.segment,
            requeue,
            schedule,
            status: self.status,
        }
    }

    /// Writes a destination's unchanged status at most once per `interval` (zero: after
    /// every invocation).
    pub fn with_status_interval(mut self, interval: Duration) -> Self {
        self.status = status::StatusKeeper::new(interval);
        self
    }
}

impl<St: Store + DeliveryStore, Se: SegmentApi, Rq: Requeue> Exporter<St, Se, Rq> {
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
            "export finished"
        );
        // EMF goes to stdout as a bare JSON line, where CloudWatch picks it up.
        println!("{}", metrics::export_line(&metrics::function_name(), &stats));
        response
    }

    /// Delivers every exportable event of the batch and reports the records to retry.
    pub async fn export(&self, batch: &SqsEvent, deadline: Deadline) -> (SqsBatchResponse, ExportStats) {
        let mut ledger = Ledger::new(batch.records.len());
        let mut events = Vec::with_capacity(batch.records.len());
        for (i, r) in batch.records.iter().enumerate() {
            parse::parse_record(
                &mut ledger,
                i,
                r.message_id.as_deref(),
                r.body.as_deref(),
                &mut events,
            );
        }
        let environments = self.read_environments(&events, deadline).await;
        ledger.stats.unreadable_destinations = environments.unreadable_destinations();
        let mut outboxes = Outboxes::default();
        for event in &events {
            route::route(event, &environments, &mut ledger, &mut outboxes);
        }
        let outcomes = schedule::deliver(&self.segment, &outboxes.boxes, &mut ledger, deadline).await;
        let visibilities = self.visibilities(batch, &ledger);
        let to_set = visibilities.len() as u64;
        // Within the deadline too: what is not set by then is left to the queue's own timeout.
        let requeued = tokio::time::timeout(deadline.remaining(), self.requeue.set_visibility(visibilities));
        let (status_write_failures, visibility_failures) =
            tokio::join!(self.record_deliveries(&outcomes, deadline), async {
                requeued.await.unwrap_or(to_set)
            },);
        ledger.stats.status_write_failures = status_write_failures;
        ledger.stats.visibility_failures = visibility_failures;
        ledger.finish(batch)
    }

    /// Each destination's delivery status, when due (`status`): a destination's reports
    /// one after the other, destinations side by side, within the time left. A status that
    /// cannot be written is logged; it changes no record's outcome. Answers how many
    /// reports failed or were left unwritten.
    async fn record_deliveries(&self, outcomes: &[schedule::LaneOutcome<'_>], deadline: Deadline) -> u64 {
        let at = crate::timestamp::now_millis();
        let reports = outcomes
            .iter()
            .filter(|o| o.delivered + o.failed > 0)
            .map(|o| {
                let d = o.outbox.destination();
                let report = DeliveryReport {
                    delivered: o.delivered,
                    failed: o.failed,
                    failure: o.failure.clone(),
                    at,
                };
                ((d.project.clone(), d.environment.clone(), d.id.clone()), report)
            })
            .collect();
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
        if tokio::time::timeout(time_left, futures::future::join_all(writes))
            .await
            .is_err()
        {
            tracing::warn!("delivery status not written in time: left unwritten");
        }
        due - written.load(Ordering::Relaxed)
    }

    /// When each failed record comes back: at once when it is bad in itself (so that
    /// it reaches the dead-letter queue fast), else on the schedule for its receive count.
    fn visibilities(&self, batch: &SqsEvent, ledger: &Ledger) -> Vec<Visibility> {
        ledger
            .failed_records()
            .filter_map(|(record, cause)| {
                let r = &batch.records[record];
                let receive_count = r
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(1);
                let timeout = match cause {
                    Cause::Bad => Duration::ZERO,
                    Cause::Transient => self.schedule.delay(receive_count),
                };
                Some(Visibility {
                    receipt_handle: r.receipt_handle.clone()?,
                    timeout,
                })
            })
            .collect()
    }

    /// Reads the environments of the batch, side by side, until the deadline less
    /// [`READ_RESERVE`]: an environment not read by then fails its records for now (they
    /// retry on the schedule), and everything read is still delivered.
    async fn read_environments<'a>(
        &self,
        events: &'a [RecordEvent<'a>],
        deadline: Deadline,
    ) -> Environments<'a> {
        // Skipped kinds (summary, index, …) never need their environment read.
        let mut keys: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| Kind::of(&e.envelope.event.kind) != Kind::Skipped)
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
        let cutoff = tokio::time::sleep(deadline.remaining().saturating_sub(READ_RESERVE));
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
