//! The `export` pipeline: SQS records in, Segment batches out, failed records reported
//! (CONTRACT §3.4).

use crate::deadline::Deadline;
use crate::destination::{Destination, EnvironmentConfig};
use crate::event::{Envelope, Kind};
use crate::metrics;
use crate::segment::batch::{self, MAX_MESSAGE_BYTES};
use crate::segment::{ExportEvent, SegmentApi, Target};
use crate::store::{EnvironmentStore, StoreError};
use crate::timestamp::Timestamp;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Requests in flight at once, across all destinations of an invocation.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;
/// Environments looked up at once.
const MAX_CONCURRENT_LOOKUPS: usize = 16;

/// Namespace of event ids derived for events that arrive without one.
const DERIVED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x3b8e_61a2_0f47_4d1c_a9e5_7c20_d4b8_1f06);

/// What one invocation did, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportStats {
    pub records: u64,
    pub failed_records: u64,
    pub events: u64,
    /// Events delivered to every destination that should have them.
    pub exported: u64,
    /// Events that Segment should not get: skipped kinds, flags not exported, no destination.
    pub skipped: u64,
    /// Events that could not be delivered: bad envelopes and events, oversized
    /// messages, store or delivery failures.
    pub failed: u64,
    pub segment_requests: u64,
    pub segment_bytes: u64,
}

/// The pipeline over a store and a Segment sender.
pub struct Exporter<St, Se> {
    store: St,
    segment: Se,
}

impl<St: EnvironmentStore, Se: SegmentApi> Exporter<St, Se> {
    pub fn new(store: St, segment: Se) -> Self {
        Self { store, segment }
    }

    pub fn store(&self) -> &St {
        &self.store
    }

    /// One Lambda invocation: exports, logs the outcome and its EMF metrics line.
    /// `deadline_ms` is the runtime's deadline (epoch ms; 0 when unknown).
    pub async fn handle(&self, batch: &SqsEvent, deadline_ms: u64, started: Instant) -> SqsBatchResponse {
        let deadline = Deadline::from_epoch_millis(deadline_ms, started);
        let (response, stats) = self.export(batch, deadline).await;
        tracing::info!(
            records = stats.records,
            failed_records = stats.failed_records,
            events = stats.events,
            exported = stats.exported,
            skipped = stats.skipped,
            failed = stats.failed,
            segment_requests = stats.segment_requests,
            segment_bytes = stats.segment_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "export finished"
        );
        // EMF goes to stdout as a bare JSON line, where CloudWatch picks it up.
        println!("{}", metrics::export_line("export", &stats));
        response
    }

    /// Delivers every exportable event of the batch and reports the records to retry.
    pub async fn export(&self, batch: &SqsEvent, deadline: Deadline) -> (SqsBatchResponse, ExportStats) {
        let mut run = Run::new(batch.records.len());
        let mut events = Vec::with_capacity(batch.records.len());
        for (i, r) in batch.records.iter().enumerate() {
            run.parse_record(i, r.message_id.as_deref(), r.body.as_deref(), &mut events);
        }
        let configs = self.lookup_environments(&events).await;
        let mut outboxes = Outboxes::default();
        for parsed in &events {
            run.route(parsed, &configs, &mut outboxes);
        }
        self.deliver(&mut run, &outboxes, deadline).await;
        run.finish(batch)
    }

    async fn lookup_environments<'a>(
        &self,
        events: &'a [Parsed<'a>],
    ) -> HashMap<(&'a str, &'a str), Result<Arc<EnvironmentConfig>, StoreError>> {
        // Skipped kinds (summary, index, …) never need their environment read.
        let mut keys: Vec<(&str, &str)> = events
            .iter()
            .filter(|p| Kind::of(&p.envelope.event.kind) != Kind::Skipped)
            .map(|p| (&*p.envelope.project, &*p.envelope.environment))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        stream::iter(keys)
            .map(|(project, environment)| async move {
                let config = self.store.environment(project, environment).await;
                if let Err(e) = &config {
                    tracing::error!(project, environment, error = %e, "reading destinations failed");
                }
                ((project, environment), config)
            })
            .buffer_unordered(MAX_CONCURRENT_LOOKUPS)
            .collect()
            .await
    }

    async fn deliver(&self, run: &mut Run, outboxes: &Outboxes, deadline: Deadline) {
        let jobs: Vec<(usize, Vec<usize>)> = outboxes
            .boxes
            .iter()
            .enumerate()
            .flat_map(|(o, outbox)| {
                batch::pack(&outbox.sizes())
                    .into_iter()
                    .map(move |group| (o, group))
            })
            .collect();
        let results: Vec<_> = stream::iter(jobs)
            .map(|(o, group)| async move {
                let outbox = &outboxes.boxes[o];
                let bytes: usize = group.iter().map(|&m| outbox.messages[m].len as usize + 1).sum();
                let body = batch::body(group.iter().map(|&m| outbox.message(m)), Timestamp::now(), bytes);
                let size = body.len();
                let target = Target {
                    destination: outbox.destination(),
                };
                let result = self.segment.send_batch(target, Bytes::from(body), deadline).await;
                (o, group, size, result)
            })
            .buffer_unordered(MAX_CONCURRENT_REQUESTS)
            .collect()
            .await;
        for (o, group, size, result) in results {
            let outbox = &outboxes.boxes[o];
            run.stats.segment_bytes += size as u64;
            match result {
                Ok(delivery) => run.stats.segment_requests += u64::from(delivery.attempts),
                Err(e) => {
                    run.stats.segment_requests += u64::from(e.attempts());
                    tracing::warn!(
                        destination = %outbox.destination().id,
                        messages = group.len(),
                        error = %e,
                        "delivery to Segment failed"
                    );
                    for m in group {
                        let message = &outbox.messages[m];
                        run.fail_event(message.record as usize, message.event as usize);
                    }
                }
            }
        }
    }
}

/// One envelope of a record, parsed, with its event id.
struct Parsed<'a> {
    envelope: Envelope<'a>,
    record: usize,
    /// Index among all events of the invocation.
    event: usize,
    derived_id: Option<String>,
}

impl Parsed<'_> {
    fn event_id(&self) -> &str {
        self.derived_id
            .as_deref()
            .or(self.envelope.event.id.as_deref())
            .unwrap_or_default()
    }
}

/// Per-invocation bookkeeping: which records and events failed.
struct Run {
    failed_records: Vec<bool>,
    /// Per event: produced at least one message / could not be delivered somewhere.
    queued: Vec<bool>,
    failed_events: Vec<bool>,
    stats: ExportStats,
}

impl Run {
    fn new(records: usize) -> Self {
        Self {
            failed_records: vec![false; records],
            queued: Vec::new(),
            failed_events: Vec::new(),
            stats: ExportStats {
                records: records as u64,
                ..ExportStats::default()
            },
        }
    }

    fn new_event(&mut self) -> usize {
        self.queued.push(false);
        self.failed_events.push(false);
        self.queued.len() - 1
    }

    fn fail_event(&mut self, record: usize, event: usize) {
        self.failed_records[record] = true;
        self.failed_events[event] = true;
    }

    /// A body is one envelope or a JSON array of them. A bad envelope fails its record
    /// but not the good envelopes beside it.
    fn parse_record<'a>(
        &mut self,
        record: usize,
        message_id: Option<&str>,
        body: Option<&'a str>,
        events: &mut Vec<Parsed<'a>>,
    ) {
        let body = body.unwrap_or_default();
        if !body.trim_start().starts_with('[') {
            self.parse_envelope(record, message_id, body, 0, events);
            return;
        }
        match serde_json::from_str::<Vec<&RawValue>>(body) {
            Ok(items) => {
                for (index, item) in items.into_iter().enumerate() {
                    self.parse_envelope(record, message_id, item.get(), index, events);
                }
            }
            Err(e) => {
                tracing::warn!(message_id, error = %e, "record is not an envelope or an array of envelopes");
                self.failed_records[record] = true;
            }
        }
    }

    fn parse_envelope<'a>(
        &mut self,
        record: usize,
        message_id: Option<&str>,
        text: &'a str,
        index: usize,
        events: &mut Vec<Parsed<'a>>,
    ) {
        let event = self.new_event();
        match serde_json::from_str::<Envelope>(text) {
            Ok(envelope) => {
                let derived_id = envelope.event.id.is_none().then(|| derive_event_id(text, index));
                events.push(Parsed {
                    envelope,
                    record,
                    event,
                    derived_id,
                });
            }
            Err(e) => {
                tracing::warn!(message_id, index, error = %e, "bad envelope");
                self.fail_event(record, event);
            }
        }
    }

    /// Decides what happens to one event and queues its messages.
    fn route(
        &mut self,
        parsed: &Parsed<'_>,
        configs: &HashMap<(&str, &str), Result<Arc<EnvironmentConfig>, StoreError>>,
        outboxes: &mut Outboxes,
    ) {
        let (envelope, record) = (&parsed.envelope, parsed.record);
        let kind = Kind::of(&envelope.event.kind);
        if kind == Kind::Skipped {
            return;
        }
        // A bad event fails its record whether or not anyone would receive it.
        let event = match ExportEvent::new(envelope, kind, parsed.event_id()) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(event_id = parsed.event_id(), error = %e, "bad event");
                self.fail_event(record, parsed.event);
                return;
            }
        };
        let key = (&*envelope.project, &*envelope.environment);
        let Some(Ok(config)) = configs.get(&key) else {
            // The lookup failed: retry the record once the store answers again.
            self.fail_event(record, parsed.event);
            return;
        };
        if config.active_destinations().next().is_none()
            || (kind == Kind::Feature && !feature_exported(envelope, config))
        {
            return;
        }
        self.queued[parsed.event] = true;
        for (index, destination) in config.destinations.iter().enumerate() {
            if !destination.is_active() {
                continue;
            }
            let outbox = outboxes.for_destination(config, index);
            let start = outbox.buf.len();
            event.write(destination, &mut outbox.buf);
            let len = outbox.buf.len() - start;
            if len > MAX_MESSAGE_BYTES {
                outbox.buf.truncate(start);
                tracing::warn!(
                    event_id = parsed.event_id(),
                    bytes = len,
                    "message over Segment's 32,000-byte limit"
                );
                self.fail_event(record, parsed.event);
                continue;
            }
            outbox.messages.push(Span {
                start: start as u32,
                len: len as u32,
                record: record as u32,
                event: parsed.event as u32,
            });
        }
    }

    fn finish(mut self, batch: &SqsEvent) -> (SqsBatchResponse, ExportStats) {
        let total = self.queued.len();
        let failed = self.failed_events.iter().filter(|&&f| f).count();
        let exported = (0..total)
            .filter(|&e| self.queued[e] && !self.failed_events[e])
            .count();
        self.stats.events = total as u64;
        self.stats.failed = failed as u64;
        self.stats.exported = exported as u64;
        self.stats.skipped = (total - failed - exported) as u64;
        let mut response = SqsBatchResponse::default();
        for (record, _) in self.failed_records.iter().enumerate().filter(|(_, f)| **f) {
            let mut failure = BatchItemFailure::default();
            // An empty identifier makes Lambda retry the whole batch: safe, never lossy.
            failure.item_identifier = batch.records[record].message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        self.stats.failed_records = response.batch_item_failures.len() as u64;
        (response, self.stats)
    }
}

/// Whether a `feature` event is exported: its flag or the whole environment is
/// enabled, or the evaluation is part of an experiment.
fn feature_exported(envelope: &Envelope, config: &EnvironmentConfig) -> bool {
    let event = &envelope.event;
    let in_experiment = event.reason.as_ref().and_then(|r| r.in_experiment) == Some(true);
    in_experiment
        || event
            .key
            .as_deref()
            .is_some_and(|k| config.settings.exports_flag(k))
}

/// A stable id for an event that has none: the same record always yields the same id.
pub fn derive_event_id(envelope_text: &str, index: usize) -> String {
    let mut name = Vec::with_capacity(8 + envelope_text.len());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    name.extend_from_slice(envelope_text.as_bytes());
    Uuid::new_v5(&DERIVED_ID_NAMESPACE, &name).simple().to_string()
}

/// Serialized messages per destination, in one buffer each.
#[derive(Default)]
struct Outboxes {
    boxes: Vec<Outbox>,
    /// By environment (its config's address) and index of the destination in it.
    by_destination: HashMap<(*const EnvironmentConfig, usize), usize>,
}

struct Outbox {
    config: Arc<EnvironmentConfig>,
    index: usize,
    buf: Vec<u8>,
    messages: Vec<Span>,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    record: u32,
    event: u32,
}

impl Outboxes {
    fn for_destination(&mut self, config: &Arc<EnvironmentConfig>, index: usize) -> &mut Outbox {
        let boxes = &mut self.boxes;
        let i = *self
            .by_destination
            .entry((Arc::as_ptr(config), index))
            .or_insert_with(|| {
                boxes.push(Outbox {
                    config: config.clone(),
                    index,
                    buf: Vec::new(),
                    messages: Vec::new(),
                });
                boxes.len() - 1
            });
        &mut self.boxes[i]
    }
}

impl Outbox {
    fn destination(&self) -> &Destination {
        &self.config.destinations[self.index]
    }

    fn sizes(&self) -> Vec<usize> {
        self.messages.iter().map(|m| m.len as usize).collect()
    }

    fn message(&self, i: usize) -> &[u8] {
        let m = self.messages[i];
        &self.buf[m.start as usize..(m.start + m.len) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derive_event_id(r#"{"x":1}"#, 0);
        assert_eq!(a, derive_event_id(r#"{"x":1}"#, 0));
        assert_ne!(a, derive_event_id(r#"{"x":1}"#, 1));
        assert_ne!(a, derive_event_id(r#"{"x":2}"#, 0));
        assert_eq!(a.len(), 32);
    }
}
