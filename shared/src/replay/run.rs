//! The `replay` function (README, "Replays"): one task from the replay-request queue at
//! a time. It walks the task's hours, reads each archived object of the hour, keeps one
//! line per event id whose `creationDate` is in the range, tags it for the one
//! destination and the replay (`destinations`, `replay`) and puts it on the replay queue,
//! which feeds `export` at its own concurrency. When the invocation's time runs low it
//! puts the rest back on the request queue as a task of its own.

use super::{Replay, ReplayCounts, ReplayKey, ReplayTask};
use crate::archive::{ArchiveReader, hour_prefix, lines};
use crate::deadline::Deadline;
use crate::event::Envelope;
use crate::ingest::queue::{EventQueue, pack};
use crate::store::{ReplayStore, StoreError};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Time kept free before the deadline: to queue what was read and put the rest back.
pub const REPLAY_RESERVE: Duration = Duration::from_secs(10);

/// Envelopes queued at once: about ten SQS messages (one SendMessageBatch).
const FLUSH_BYTES: usize = 2_400_000;

/// An archived envelope with `destinations` set to the one destination and `replay` to
/// the replay's id; every other member keeps its exact text. `None`: not a JSON object.
pub fn tag(line: &str, destination: &str, replay: &str) -> Option<String> {
    let mut fields = serde_json::from_str::<BTreeMap<&str, &RawValue>>(line).ok()?;
    fields.remove("destinations");
    fields.remove("replay");
    let mut out = String::with_capacity(line.len() + destination.len() + replay.len() + 40);
    out.push('{');
    for (name, value) in fields {
        out.push_str(&serde_json::to_string(name).ok()?);
        out.push(':');
        out.push_str(value.get());
        out.push(',');
    }
    out.push_str("\"destinations\":");
    out.push_str(&serde_json::to_string(&[destination]).ok()?);
    out.push_str(",\"replay\":");
    out.push_str(&serde_json::to_string(replay).ok()?);
    out.push('}');
    Some(out)
}

/// Why a task could not be carried out now (its record is retried).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the archive failed: {0}")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("the replay queue refused envelopes: {0}")]
    Queue(#[from] crate::ingest::queue::QueueError),
    #[error("the table failed: {0}")]
    Store(#[from] StoreError),
}

/// What one run read and queued, not yet counted in the table.
#[derive(Default)]
struct Pending {
    envelopes: Vec<String>,
    bytes: usize,
    counts: ReplayCounts,
}

pub struct Replayer<A, Q, T, S> {
    archive: A,
    /// The replay queue: envelopes for `export`.
    queue: Q,
    /// The replay-request queue: the rest of a task cut short.
    tasks: T,
    store: S,
    /// The request queue's `maxReceiveCount`: at the last receipt, a task that fails
    /// fails its replay.
    max_receives: u32,
    reserve: Duration,
}

impl<A: ArchiveReader, Q: EventQueue, T: EventQueue, S: ReplayStore> Replayer<A, Q, T, S> {
    pub fn new(archive: A, queue: Q, tasks: T, store: S) -> Self {
        Self {
            archive,
            queue,
            tasks,
            store,
            max_receives: 5,
            reserve: REPLAY_RESERVE,
        }
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives.max(1);
        self
    }

    /// The time kept free before the deadline (tests shorten it to see a task put back).
    pub fn with_reserve(mut self, reserve: Duration) -> Self {
        self.reserve = reserve;
        self
    }

    /// One invocation: each record is a task; a task that fails is reported for a retry,
    /// and at its last receipt its replay is marked failed.
    pub async fn handle(&self, batch: &SqsEvent, deadline: Deadline) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &batch.records {
            let body = record.body.as_deref().unwrap_or_default();
            let outcome = match serde_json::from_str::<ReplayTask>(body) {
                Ok(task) => self
                    .run(&task, deadline)
                    .await
                    .map_err(|e| (Some(task), e.to_string())),
                Err(e) => Err((None, format!("not a replay task: {e}"))),
            };
            let Err((task, error)) = outcome else {
                continue;
            };
            let receives = crate::requeue::sqs_receive_count(record);
            tracing::error!(message_id = ?record.message_id, receives, error, "replay task failed");
            if receives >= self.max_receives
                && let Some(task) = task
            {
                let why = format!("stopped after {receives} attempts: {error}");
                let at = crate::timestamp::now_millis() as i64;
                if let Err(e) = self
                    .store
                    .finish_replay_reading(&task.replay, at, Some(&why))
                    .await
                {
                    tracing::error!(error = %e, "the replay could not be marked failed");
                }
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Carries out one task until it is done or the time left reaches the reserve.
    pub async fn run(&self, task: &ReplayTask, deadline: Deadline) -> Result<(), RunError> {
        let Some(replay) = self.store.get_replay(&task.replay).await? else {
            tracing::warn!(
                replay = task.replay.id,
                "no such replay (expired or never written): task dropped"
            );
            return Ok(());
        };
        if replay.read_at.is_some() {
            // A task received again after it finished: nothing left to read.
            return Ok(());
        }
        let key = &replay.key;
        let mut pending = Pending::default();
        for hour in task.hours() {
            let Some(prefix) = hour_prefix(&key.project, &key.environment, hour) else {
                continue;
            };
            let mut seen: HashSet<String> = HashSet::new();
            let after = task.after.as_deref().filter(|_| task.hour == Some(hour));
            let objects = self.archive.list(&prefix).await?;
            let mut last: Option<&str> = None;
            for object in objects.iter().filter(|o| after.is_none_or(|a| o.as_str() > a)) {
                if deadline.remaining() <= self.reserve {
                    self.flush(key, &mut pending).await?;
                    return self.put_back(task, hour, last.or(after)).await;
                }
                let body = self.archive.get(object).await?;
                let read = lines(&body).map_err(|e| crate::archive::ArchiveError {
                    key: object.clone(),
                    message: e.to_string(),
                })?;
                for line in &read {
                    self.take(&replay, line, &mut seen, &mut pending);
                }
                if pending.bytes >= FLUSH_BYTES {
                    self.flush(key, &mut pending).await?;
                }
                last = Some(object);
            }
        }
        self.flush(key, &mut pending).await?;
        let at = crate::timestamp::now_millis() as i64;
        self.store.finish_replay_reading(key, at, None).await?;
        Ok(())
    }

    /// One archived line: kept when its event is in the range and not seen yet this hour.
    fn take(&self, replay: &Replay, line: &str, seen: &mut HashSet<String>, pending: &mut Pending) {
        let Ok(envelope) = serde_json::from_str::<Envelope>(line) else {
            tracing::warn!("an archived line is not an envelope: left out");
            return;
        };
        let event = &envelope.event;
        let (Some(at), Some(id)) = (event.creation_date, event.id.as_deref()) else {
            // No creationDate (a summary event): in no range.
            return;
        };
        if at < replay.from || at >= replay.to || !seen.insert(id.to_owned()) {
            return;
        }
        pending.counts.read += 1;
        if let Some(tagged) = tag(line, &replay.key.destination, &replay.key.id) {
            pending.bytes += tagged.len();
            pending.envelopes.push(tagged);
            pending.counts.queued += 1;
        }
    }

    /// Queues what was read, then counts it: a count is never ahead of the queue.
    async fn flush(&self, key: &ReplayKey, pending: &mut Pending) -> Result<(), RunError> {
        let taken = std::mem::take(pending);
        if !taken.envelopes.is_empty() {
            self.queue.send(pack(&taken.envelopes)).await?;
        }
        if !taken.counts.is_empty() {
            self.store.count_replay(key, &taken.counts).await?;
        }
        Ok(())
    }

    /// The rest of `task` as a new task: from `hour`, past the object `after`.
    async fn put_back(&self, task: &ReplayTask, hour: i64, after: Option<&str>) -> Result<(), RunError> {
        let rest = ReplayTask {
            hour: Some(hour),
            after: after.map(str::to_owned),
            ..task.clone()
        };
        tracing::info!(
            replay = task.replay.id,
            hour,
            "out of time: the rest of the replay is put back"
        );
        let body = serde_json::to_string(&rest).expect("a task serializes");
        self.tasks.send(vec![body]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_tagged_line_is_for_the_one_destination_and_keeps_every_other_text() {
        let line = r#"{"project":"p","environment":"e","event":{"kind":"custom","id":"a","metricValue":1.50},"destinations":["x"],"replay":"old"}"#;
        let tagged = tag(line, "d1", "r1").unwrap();
        let value: Value = serde_json::from_str(&tagged).unwrap();
        assert_eq!(value["destinations"], json!(["d1"]));
        assert_eq!(value["replay"], "r1");
        assert!(tagged.contains(r#""metricValue":1.50"#), "{tagged}");
        assert!(tag("[1]", "d", "r").is_none());
    }
}
