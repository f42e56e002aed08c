//! Replays in-process (CONTRACT §4.4; README, "Replays"), over the in-memory archive,
//! queues and table: the `replay` function's reading (the range, one line per event id, a
//! task cut short put back and resumed where it stopped) and `export`'s counting of what
//! became of each replayed event. The whole path runs through the real functions and
//! moto in `end_to_end::replay`.

use aws_lambda_events::sqs::SqsEvent;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use shared::archive::{Archive, ArchiveError, ArchiveReader, hour_prefix};
use shared::deadline::Deadline;
use shared::export::Exporter;
use shared::replay::{HOUR_MS, Replay, ReplayCounts, ReplayKey, ReplayState, ReplayTask, Replayer};
use shared::segment::DeliveryError;
use shared::store::ReplayStore;
use std::io::Write;
use std::time::Duration;
use tests::fixtures::*;
use tests::memory::{Answer, MemoryArchive, MemoryQueue, MemorySegment, MemoryStore};

/// An archive whose reads take a while (Tokio's real clock), so that a short invocation
/// cannot read it all.
#[derive(Clone)]
struct SlowArchive(MemoryArchive);

impl ArchiveReader for SlowArchive {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        self.0.list(prefix).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, ArchiveError> {
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.0.get(key).await
    }
}

fn gzip(lines: &[String]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for line in lines {
        encoder.write_all(line.as_bytes()).unwrap();
        encoder.write_all(b"\n").unwrap();
    }
    Bytes::from(encoder.finish().unwrap())
}

/// The start of the hour two hours ago.
fn hour() -> i64 {
    let now = shared::timestamp::now_millis() as i64;
    (now / HOUR_MS - 2) * HOUR_MS
}

fn event(project: &str, env: &str, kind: &str, id: &str, at: i64) -> String {
    let mut e =
        json!({"kind": kind, "id": id, "creationDate": at, "key": "purchase", "contextKeys": {"user": "u1"}});
    if kind == "feature" {
        e["key"] = json!("late-flag");
        e["value"] = json!(true);
    }
    envelope(project, env, e)
}

/// Writes one archive object of `lines` in the hour `hour`, named `n` (key order).
async fn keep(archive: &MemoryArchive, project: &str, env: &str, hour: i64, n: usize, lines: &[String]) {
    let key = format!("{}{n:04}.jsonl.gz", hour_prefix(project, env, hour).unwrap());
    archive.put(&key, gzip(lines)).await.unwrap();
}

async fn start(
    store: &MemoryStore,
    destination: &str,
    project: &str,
    env: &str,
    from: i64,
    to: i64,
) -> Replay {
    let replay = Replay {
        key: ReplayKey {
            project: project.into(),
            environment: env.into(),
            destination: destination.into(),
            id: unique("r"),
        },
        from,
        to,
        created_at: 0,
        counts: ReplayCounts::default(),
        read_at: None,
        error: None,
    };
    store.create_replay(&replay).await.unwrap();
    replay
}

/// The envelopes of queued message bodies (one envelope, or an array of them).
fn envelopes(bodies: &[String]) -> Vec<Value> {
    bodies
        .iter()
        .flat_map(|b| match serde_json::from_str::<Value>(b).unwrap() {
            Value::Array(many) => many,
            one => vec![one],
        })
        .collect()
}

fn ids(envelopes: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = envelopes
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_replay_reads_its_range_once_per_event_id_tagged_for_its_one_destination() {
    let (project, env) = (unique("p"), unique("e"));
    let (archive, queue, tasks, store) = (
        MemoryArchive::new(),
        MemoryQueue::default(),
        MemoryQueue::default(),
        MemoryStore::new(),
    );
    let h = hour();
    let e = |id: &str, at: i64| event(&project, &env, "custom", id, at);
    // Kept twice (a record that failed once is archived again), and one before `from`.
    keep(
        &archive,
        &project,
        &env,
        h,
        1,
        &[e("a1", h + 10), e("a2", h + 20), e("early", h + 1)],
    )
    .await;
    keep(
        &archive,
        &project,
        &env,
        h,
        2,
        &[e("a1", h + 10), e("b1", h + 30)],
    )
    .await;
    // The next hour, partly past `to`.
    keep(
        &archive,
        &project,
        &env,
        h + HOUR_MS,
        1,
        &[e("c1", h + HOUR_MS + 5), e("late", h + HOUR_MS + 500)],
    )
    .await;
    // Another environment's events, in the same hour.
    keep(
        &archive,
        &project,
        "other",
        h,
        1,
        &[event(&project, "other", "custom", "x1", h + 10)],
    )
    .await;
    let replay = start(&store, "d1", &project, &env, h + 5, h + HOUR_MS + 100).await;
    let replayer = Replayer::new(archive, queue.clone(), tasks.clone(), store.clone());
    replayer
        .run(&ReplayTask::of(&replay), Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();
    let queued = envelopes(&queue.take());
    assert_eq!(ids(&queued), ["a1", "a2", "b1", "c1"]);
    for e in &queued {
        assert_eq!(e["destinations"], json!(["d1"]), "{e}");
        assert_eq!(e["replay"], json!(replay.key.id), "{e}");
    }
    assert!(tasks.take().is_empty(), "nothing put back");
    let read = store.get_replay(&replay.key).await.unwrap().unwrap();
    assert_eq!((read.counts.read, read.counts.queued), (4, 4));
    assert!(read.read_at.is_some());
    assert_eq!(
        read.state(),
        ReplayState::Running,
        "until export has counted them"
    );
}

#[tokio::test]
async fn a_replay_cut_short_puts_the_rest_back_and_resumes_where_it_stopped() {
    let (project, env) = (unique("p"), unique("e"));
    let (archive, queue, tasks, store) = (
        MemoryArchive::new(),
        MemoryQueue::default(),
        MemoryQueue::default(),
        MemoryStore::new(),
    );
    let h = hour();
    let mut expected = Vec::new();
    for n in 0..8 {
        let lines: Vec<String> = (0..5)
            .map(|i| {
                let id = format!("e{n}-{i}");
                expected.push(id.clone());
                event(&project, &env, "custom", &id, h + (n * 5 + i) as i64)
            })
            .collect();
        keep(&archive, &project, &env, h, n, &lines).await;
    }
    expected.sort();
    let replay = start(&store, "d1", &project, &env, h, h + HOUR_MS).await;
    // Each read takes 40 ms and an invocation has 100 ms beyond its reserve: eight objects
    // take several invocations.
    let reserve = Duration::from_secs(1);
    let replayer = Replayer::new(SlowArchive(archive), queue.clone(), tasks.clone(), store.clone())
        .with_reserve(reserve);
    let mut task = ReplayTask::of(&replay);
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 50, "the replay never finishes");
        replayer
            .run(&task, Deadline::after(reserve + Duration::from_millis(100)))
            .await
            .unwrap();
        let mut put_back = tasks.take();
        match put_back.pop() {
            Some(rest) => {
                assert!(put_back.is_empty(), "one task put back at a time");
                task = serde_json::from_str(&rest).unwrap();
                assert_eq!(task.hour, Some(h));
            }
            None => break,
        }
    }
    assert!(runs >= 3, "{runs} runs");
    assert_eq!(
        ids(&envelopes(&queue.take())),
        expected,
        "every event once, across the runs"
    );
    let done = store.get_replay(&replay.key).await.unwrap().unwrap();
    assert_eq!((done.counts.read, done.counts.queued), (40, 40));
    assert!(done.read_at.is_some());
}

/// SQS records of message bodies, received `receives` times.
fn records(bodies: &[String], receives: u32) -> SqsEvent {
    let named: Vec<(String, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("m{i}"), b.as_str()))
        .collect();
    let mut event = batch(&named);
    for r in &mut event.records {
        r.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
    }
    event
}

#[tokio::test]
async fn export_counts_what_became_of_each_replayed_event_under_todays_settings() {
    let store = MemoryStore::new();
    let (project, env) = (unique("p"), unique("e"));
    let (ours, other) = (
        destination(&project, &env, "wk-replay-ours"),
        destination(&project, &env, "wk-replay-other"),
    );
    store.put_destination(ours.clone());
    store.put_destination(other.clone());
    let (archive, queue, tasks) = (
        MemoryArchive::new(),
        MemoryQueue::default(),
        MemoryQueue::default(),
    );
    let h = hour();
    let lines = vec![
        event(&project, &env, "custom", "c1", h + 1),
        event(&project, &env, "custom", "c2", h + 2),
        event(&project, &env, "feature", "f1", h + 3),
        event(&project, &env, "index", "i1", h + 4),
    ];
    keep(&archive, &project, &env, h, 1, &lines).await;
    let replay = start(&store, &ours.id, &project, &env, h, h + HOUR_MS).await;
    Replayer::new(archive, queue.clone(), tasks, store.clone())
        .run(&ReplayTask::of(&replay), Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();
    let bodies = queue.take();
    let segment = MemorySegment::new();
    let exporter = Exporter::new(store.clone(), segment);
    let (response, _) = exporter
        .export(&records(&bodies, 1), Deadline::after(Duration::from_secs(25)))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let done = store.get_replay(&replay.key).await.unwrap().unwrap();
    assert_eq!(
        done.counts,
        ReplayCounts {
            read: 4,
            queued: 4,
            delivered: 2,
            failed: 0,
            // The flag is not enabled for Data Export; index events are never exported.
            skipped: 2
        }
    );
    assert_eq!(done.state(), ReplayState::Done);
    assert_eq!(exporter.segment().messages(Some("wk-replay-ours")).len(), 2);
    assert!(
        exporter.segment().messages(Some("wk-replay-other")).is_empty(),
        "the other destination gets nothing"
    );

    // The same events once the flag is enabled: its evaluation is delivered too.
    store.put_export_settings(&project, &env, false, &["late-flag"]);
    let again = start(&store, &ours.id, &project, &env, h, h + HOUR_MS).await;
    let retagged: Vec<String> = bodies
        .iter()
        .map(|b| b.replace(&replay.key.id, &again.key.id))
        .collect();
    exporter
        .export(&records(&retagged, 1), Deadline::after(Duration::from_secs(25)))
        .await;
    let counts = store.get_replay(&again.key).await.unwrap().unwrap().counts;
    assert_eq!((counts.delivered, counts.skipped), (3, 1));
}

#[tokio::test]
async fn a_replayed_event_that_keeps_failing_counts_as_failed_only_at_its_last_receipt() {
    let store = MemoryStore::new();
    let (project, env) = (unique("p"), unique("e"));
    let ours = destination(&project, &env, "wk-replay-down");
    store.put_destination(ours.clone());
    let replay = start(&store, &ours.id, &project, &env, 0, 1).await;
    let body = shared::replay::tag(
        &event(&project, &env, "custom", "c1", 0),
        &ours.id,
        &replay.key.id,
    )
    .unwrap();
    let segment = MemorySegment::new();
    segment.script(
        "wk-replay-down",
        vec![],
        Some(Answer::Fail(
            Duration::ZERO,
            DeliveryError::GaveUp {
                attempts: 1,
                last: "503".into(),
            },
        )),
    );
    let exporter = Exporter::new(store.clone(), segment).with_max_receives(3);
    let counts = async || store.get_replay(&replay.key).await.unwrap().unwrap().counts;
    for receipt in 1..=3 {
        let (response, _) = exporter
            .export(
                &records(std::slice::from_ref(&body), receipt),
                Deadline::after(Duration::from_secs(25)),
            )
            .await;
        assert_eq!(response.batch_item_failures.len(), 1);
        let failed = if receipt < 3 { 0 } else { 1 };
        assert_eq!(counts().await.failed, failed, "receipt {receipt}");
    }
    let mut failed = store.get_replay(&replay.key).await.unwrap().unwrap();
    failed.read_at = Some(1);
    failed.counts.queued = 1;
    assert_eq!(failed.state(), ReplayState::Failed);
}
