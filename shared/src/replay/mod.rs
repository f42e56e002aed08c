//! Replays (CONTRACT §4.4; README, "Replays"): the events a destination missed, read
//! back from the archive and sent to that one destination through `export`.
//!
//! - [`Replay`]: what the API shows and the table keeps, with its [`ReplayCounts`];
//! - `request`: a caller's `{"from", "to"}`, checked against what the archive keeps;
//! - [`ReplayTask`]: the work item on the replay-request queue (a range of hours, and
//!   where a cut-short run resumes);
//! - `run`: the `replay` function, which reads the archive and queues the envelopes.

mod request;
mod run;

pub use request::{CLOCK_SLACK, RangeError, ReplayRange, parse_range};
pub use run::{REPLAY_RESERVE, Replayer, tag};

use serde::{Deserialize, Serialize};

/// One hour in milliseconds: the archive's unit (one prefix per hour).
pub const HOUR_MS: i64 = 3_600_000;

/// How a replay's envelopes were handled so far. `read`: archived events of the range
/// (one per event id); `queued`: put on the replay queue for `export`; then each queued
/// event is `delivered` to the destination, `skipped` (the environment's current settings
/// do not export it: a kind never exported, a flag not enabled, the destination off), or
/// `failed` (it reached the replay queue's dead-letter queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayCounts {
    pub read: u64,
    pub queued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl ReplayCounts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayState {
    Running,
    Done,
    Failed,
}

/// Which replay: its destination, and its own id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayKey {
    pub project: String,
    pub environment: String,
    pub destination: String,
    pub id: String,
}

/// A replay as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub key: ReplayKey,
    /// `[from, to)`, epoch milliseconds of `creationDate`.
    pub from: i64,
    pub to: i64,
    pub created_at: i64,
    pub counts: ReplayCounts,
    /// When the archive was read to the end (every event `queued` that will be).
    pub read_at: Option<i64>,
    /// Why the replay stopped short, when it did.
    pub error: Option<String>,
}

impl Replay {
    /// Running until the whole range is read and every queued event has an outcome;
    /// failed when it stopped short, or when some events failed.
    pub fn state(&self) -> ReplayState {
        let c = &self.counts;
        if self.error.is_some() {
            return ReplayState::Failed;
        }
        if self.read_at.is_none() || c.delivered + c.failed + c.skipped < c.queued {
            return ReplayState::Running;
        }
        if c.failed > 0 {
            ReplayState::Failed
        } else {
            ReplayState::Done
        }
    }
}

/// A message on the replay-request queue: read the archive of `replay`'s environment for
/// `[from, to)`, from `hour` (the start of an hour, epoch ms; none: the first) and within
/// it past the object `after` (none: from its first). A run that runs out of time puts
/// the rest back as a task of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayTask {
    pub replay: ReplayKey,
    pub from: i64,
    pub to: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl ReplayTask {
    pub fn of(replay: &Replay) -> Self {
        Self {
            replay: replay.key.clone(),
            from: replay.from,
            to: replay.to,
            hour: None,
            after: None,
        }
    }

    /// The starts of the hours left to read, in order.
    pub fn hours(&self) -> impl Iterator<Item = i64> + use<> {
        let first = self.hour.unwrap_or(self.from.div_euclid(HOUR_MS) * HOUR_MS);
        let to = self.to;
        (0..)
            .map(move |n| first + n * HOUR_MS)
            .take_while(move |&h| h < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(counts: ReplayCounts, read: bool) -> Replay {
        Replay {
            key: ReplayKey {
                project: "p".into(),
                environment: "e".into(),
                destination: "d".into(),
                id: "r".into(),
            },
            from: 0,
            to: HOUR_MS,
            created_at: 0,
            counts,
            read_at: read.then_some(1),
            error: None,
        }
    }

    #[test]
    fn a_replay_is_done_once_read_and_every_queued_event_has_an_outcome() {
        let c = |queued, delivered, skipped, failed| ReplayCounts {
            read: queued,
            queued,
            delivered,
            skipped,
            failed,
        };
        assert_eq!(replay(c(3, 3, 0, 0), false).state(), ReplayState::Running);
        assert_eq!(replay(c(3, 2, 0, 0), true).state(), ReplayState::Running);
        assert_eq!(replay(c(3, 2, 1, 0), true).state(), ReplayState::Done);
        assert_eq!(replay(c(3, 2, 0, 1), true).state(), ReplayState::Failed);
        assert_eq!(replay(c(0, 0, 0, 0), true).state(), ReplayState::Done);
        let mut stopped = replay(c(0, 0, 0, 0), false);
        stopped.error = Some("x".into());
        assert_eq!(stopped.state(), ReplayState::Failed);
    }

    #[test]
    fn a_task_walks_the_hours_of_its_range() {
        let mut task = ReplayTask::of(&replay(ReplayCounts::default(), false));
        task.from = HOUR_MS + 5;
        task.to = 3 * HOUR_MS + 1;
        assert_eq!(
            task.hours().collect::<Vec<_>>(),
            [HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS]
        );
        task.hour = Some(3 * HOUR_MS);
        assert_eq!(task.hours().collect::<Vec<_>>(), [3 * HOUR_MS]);
        let text = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<ReplayTask>(&text).unwrap(), task);
        assert!(serde_json::from_str::<ReplayTask>(r#"{"x":1}"#).is_err());
    }
}
