//! A big replay beside live traffic (BENCHMARKS.md, "A replay beside live traffic"): does a
//! replay delay live events? Runs only with `REPLAY_BENCH_EVENTS` set (`make bench-replay`,
//! 100,000 by default); `make test` skips it.
//!
//! The archive is seeded with that many events of one environment's hour (objects of 2,000
//! as `export` writes them). Live traffic is batches of 100 events through the `export`
//! binary under `cargo lambda watch`, one every 250 ms; a batch's time to Segment is its
//! invocation's time (`export` answers once the receiver accepted them). It is measured
//! alone, then while the replay runs: the `replay` binary reads the archive, and two
//! consumers of the replay queue (the template's `ReplayMaximumConcurrency`) run the same
//! export pipeline in-process, as `ReplayExportFunction` would run apart from the live
//! function in AWS. On one 2-core machine they share the CPU with live traffic, which a
//! deployment does not: the figure is an upper bound of the interference.

use aws_lambda_events::sqs::SqsEvent;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use tests::event_source::EventSource;
use tests::fixtures::{destination, envelope, exporter, fast_retries, put_destination, unique};
use tests::replays::api;
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{ARCHIVE_BUCKET, Stack, StackOptions};

const OBJECT_EVENTS: usize = 2_000;
const LIVE_BATCH: usize = 100;
const LIVE_EVERY: Duration = Duration::from_millis(250);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Live batches until `until` says stop (at least `min` of them): each one's time in ms.
async fn live(stack: &Stack, project: &str, env: &str, min: usize, until: impl Fn() -> bool) -> Vec<f64> {
    let mut times = Vec::new();
    let mut round = 0;
    while times.len() < min || !until() {
        round += 1;
        let at = shared::timestamp::now_millis() as i64;
        let bodies: Vec<String> = (0..LIVE_BATCH)
            .map(|i| {
                envelope(
                    project,
                    env,
                    json!({"kind": "custom", "id": unique(&format!("live-{round}-{i}")), "key": "purchase",
                                              "creationDate": at, "contextKeys": {"user": format!("u{i}")}}),
                )
            })
            .collect();
        let ids: Vec<String> = (0..LIVE_BATCH).map(|i| format!("m{i}")).collect();
        let event = sqs_event(
            ids.iter()
                .map(String::as_str)
                .zip(bodies.iter().map(String::as_str)),
        );
        let started = Instant::now();
        let response = stack.lambda().invoke("export", &event).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(failed_ids(&response).is_empty(), "{response}");
        tokio::time::sleep(LIVE_EVERY).await;
        if times.len() > 2_000 {
            break;
        }
    }
    times
}

fn summary(times: &[f64]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{} batches of {LIVE_BATCH}: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        sorted.len(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.95),
        sorted[sorted.len() - 1]
    )
}

/// Every process of the run on CPU 1, then the live `export` function on CPU 0.
fn pin_live_apart(stack: &Stack) {
    let pin = |cpu: &str, pid: u32| {
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-cp", cpu, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            pin("1", pid);
        }
    }
    pin("0", stack.lambda().function_pid("export").expect("export ran"));
}

#[tokio::test]
async fn a_big_replay_beside_live_traffic() {
    let Some(events) = std::env::var("REPLAY_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    else {
        eprintln!("REPLAY_BENCH_EVENTS is not set: skipped (make bench-replay)");
        return;
    };
    let _heavy = super::HEAVY.lock().await;
    let stack = std::thread::spawn(|| Stack::start(StackOptions::tests("replay-bench", true)))
        .join()
        .unwrap()
        .expect("the local stack");
    let (project, env) = (unique("bench"), unique("env"));
    let (live_key, replay_key) = (unique("wk-live"), unique("wk-replayed"));
    let store = stack.store().await;
    put_destination(&store, &destination(&project, "live", &live_key)).await;
    let target = destination(&project, &env, &replay_key);
    put_destination(&store, &target).await;

    // The archive: `events` events of the hour before last.
    let hour = (shared::timestamp::now_millis() as i64 / 3_600_000 - 2) * 3_600_000;
    let prefix = shared::archive::hour_prefix(&project, &env, hour).unwrap();
    let s3 = stack.s3().await;
    for object in 0..events.div_ceil(OBJECT_EVENTS) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..OBJECT_EVENTS.min(events - object * OBJECT_EVENTS) {
            let n = object * OBJECT_EVENTS + i;
            let line = envelope(
                &project,
                &env,
                json!({"kind": "custom", "id": format!("a{n}"), "key": "purchase",
                "creationDate": hour + (n % 3_600_000) as i64, "contextKeys": {"user": format!("u{}", n % 5000)},
                "data": {"cart": n, "currency": "EUR"}}),
            );
            std::io::Write::write_all(&mut gz, line.as_bytes()).unwrap();
            std::io::Write::write_all(&mut gz, b"\n").unwrap();
        }
        s3.put_object()
            .bucket(ARCHIVE_BUCKET)
            .key(format!("{prefix}{object:05}.jsonl.gz"))
            .body(gz.finish().unwrap().into())
            .send()
            .await
            .unwrap();
    }

    // The live function on a core of its own, as its own microVM would be in AWS, and
    // everything else (the replay function, its consumers, moto, the receiver) on the
    // other (REPLAY_BENCH_PIN=0 leaves the scheduler to share both).
    live(&stack, &project, "live", 1, || true).await;
    let pinned = std::env::var("REPLAY_BENCH_PIN").map_or(true, |v| v != "0");
    if pinned {
        pin_live_apart(&stack);
    }
    eprintln!("pinned: {pinned}");

    // Live traffic alone.
    let alone = live(&stack, &project, "live", 40, || true).await;
    eprintln!("live alone: {}", summary(&alone));

    // The replay, and live traffic beside it until every replayed event is delivered.
    let replays = format!("/api/v2/destinations/{project}/{env}/{}/replays", target.id);
    let (status, started) = api(
        &stack,
        Method::POST,
        &replays,
        Some(json!({"from": hour, "to": hour + 3_600_000})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let replay = started["_links"]["self"]["href"].as_str().unwrap().to_owned();
    let began = Instant::now();
    let queues = stack.queues.as_ref().unwrap();
    let sqs = stack.sqs().await;
    let tasks = EventSource {
        sqs: sqs.clone(),
        queue_url: queues.replay_requests.clone(),
        batch_size: 1,
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let replay_exporter = exporter(&stack, Duration::from_secs(30), fast_retries()).await;
    let consumer = || async {
        let source = EventSource {
            sqs: sqs.clone(),
            queue_url: queues.replay.clone(),
            batch_size: 10,
        };
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let messages = source.receive_messages().await.unwrap();
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let event: SqsEvent = serde_json::from_value(json!({
                "Records": messages.iter().map(tests::sqs::lambda_record).collect::<Vec<_>>()
            }))
            .unwrap();
            let (response, _) = replay_exporter
                .export(&event, tests::fixtures::export_deadline())
                .await;
            let failed: Vec<String> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            let ok: Vec<_> = messages
                .iter()
                .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
                .collect();
            source.delete_messages(&ok).await.unwrap();
        }
    };
    let reader = async {
        loop {
            tasks.poll(stack.lambda(), "replay").await.unwrap();
            let (_, r) = api(&stack, Method::GET, &replay, None).await;
            if r["state"] != "running" {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                return (r, began.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let beside = live(&stack, &project, "live", 20, || {
        done.load(std::sync::atomic::Ordering::Relaxed)
    });
    let ((finished, took), (), (), beside) = tokio::join!(reader, consumer(), consumer(), beside);
    assert_eq!(finished["state"], "done", "{finished}");
    assert_eq!(finished["events"]["delivered"], json!(events), "{finished}");
    assert_eq!(stack.receiver.messages(Some(&replay_key)).len(), events);
    eprintln!(
        "replay of {events} events: done in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    eprintln!("live beside the replay: {}", summary(&beside));
}
