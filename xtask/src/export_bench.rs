//! `make bench`'s export benchmark: 10,000 events of a realistic mix, from SQS envelopes
//! through the `export` handler to a local Segment sink (the receiver, in its own
//! process), against moto's DynamoDB. Then Segment's official Python library sends the
//! same messages to the same sink, and the two are compared.
//!
//! Usage: export-bench [EVENTS] [ROUNDS]   (defaults 10000 and 5; build with --release)

use crate::archive_sink::ArchiveSink;
use crate::status_off::StatusOff;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use shared::archive::{S3Archive, s3_client};
use shared::deadline::Deadline;
use shared::destination::ExportSettings;
use shared::event::{Envelope, Kind};
use shared::export::Exporter;
use shared::segment::client::http_client;
use shared::segment::{ExportEvent, SegmentClient};
use shared::store::{CachedStore, DynamoStore, Store};
use std::process::Command;
use std::time::{Duration, Instant};
use tests::fixtures::destination;
use tests::moto::{self, Moto};
use tests::process::{Service, command, free_port, log_dir, workspace_root};

const PROJECT: &str = "bench";
const ENVIRONMENT: &str = "production";

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut args = args.iter();
    let events: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let logs = log_dir("bench");

    // The sink: the Segment receiver binary beside this one, in its own process.
    let port = free_port();
    let receiver_bin = std::env::current_exe()?.with_file_name("segment-receiver");
    let mut cmd = Command::new(&receiver_bin);
    cmd.args([&port.to_string(), "--sink"]);
    let mut sink = Service::spawn("segment-receiver", cmd, &logs)?;
    sink.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30))?;
    let sink_url = format!("http://127.0.0.1:{port}");
    let moto = Moto::start(&logs, 0)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(measure(&moto, &sink_url, events, rounds))?;
    let peak_rss_mb = report.peak_rss_kb as f64 / 1024.0;

    let python = python_peer(&runtime, &sink_url, &report.messages_file, rounds)?;
    println!("\n## export benchmark ({events} events, {rounds} rounds)");
    println!("rounds (ms):           {:?}", report.round_ms);
    println!(
        "best round:            {:.1} ms = {:.0} events/s",
        report.best_ms(),
        events as f64 / (report.best_ms() / 1000.0)
    );
    println!(
        "median round:          {:.1} ms = {:.0} events/s",
        report.median_ms(),
        events as f64 / (report.median_ms() / 1000.0)
    );
    println!(
        "Segment requests:      {} per round (receiver saw {})",
        report.requests, report.sink_requests
    );
    println!("bytes sent:            {} per round", report.bytes);
    println!(
        "connections:           {} for {} events = {:.2} per 10,000 events",
        report.connections,
        events * rounds,
        report.connections as f64 * 10_000.0 / (events * rounds) as f64
    );
    let off = median(&report.without_status_ms);
    println!(
        "delivery status:       median {:.1} ms with, {:.1} ms without ({} rounds each, alternated): {:+.1} % time",
        report.median_ms(),
        off,
        report.without_status_ms.len(),
        (report.median_ms() / off - 1.0) * 100.0
    );
    let a = &report.archive;
    let (plain, into_sink, s3) = (median(&a.off_ms), median(&a.sink_ms), median(&a.s3_ms));
    println!(
        "archive:               median {plain:.1} ms off, {into_sink:.1} ms into a sink ({:+.1} %), \
         {s3:.1} ms into moto's S3 ({:+.1} %) ({} rounds each, alternated); \
         {} objects, {} gzipped bytes per round ({:.1} bytes per event)",
        (into_sink / plain - 1.0) * 100.0,
        (s3 / plain - 1.0) * 100.0,
        a.off_ms.len(),
        a.objects,
        a.bytes,
        a.bytes as f64 / events as f64
    );
    let b = &report.backlog;
    println!(
        "backlog of {} events in batches of {}: {:.2} s one invocation at a time ({:.0} events/s), \
         {:.2} s with {} at once ({:.0} events/s)",
        b.events,
        BACKLOG_BATCH,
        b.sequential_s,
        b.events as f64 / b.sequential_s,
        b.concurrent_s,
        BACKLOG_CONCURRENCY,
        b.events as f64 / b.concurrent_s
    );
    println!("peak RSS:              {peak_rss_mb:.1} MB");
    println!(
        "segment-analytics-python rounds (ms): {:?}",
        python.round_ms.iter().map(|ms| ms.round()).collect::<Vec<_>>()
    );
    println!(
        "segment-analytics-python: median {:.1} ms = {:.0} events/s, {} requests per round, {} errors",
        python.median_ms(),
        events as f64 / (python.median_ms() / 1000.0),
        python.requests / rounds,
        python.errors
    );
    println!(
        "ratio of medians (python / ours): {:.1}x",
        python.median_ms() / report.median_ms()
    );
    drop(sink);
    Ok(())
}

/// The archive's A/B: the same exporter (delivery status on) without an archive, with
/// one that drops what it gets, and with S3 (moto's), round by round.
#[derive(Default)]
struct ArchiveAb {
    off_ms: Vec<f64>,
    sink_ms: Vec<f64>,
    s3_ms: Vec<f64>,
    objects: u64,
    bytes: u64,
}

struct Report {
    archive: ArchiveAb,
    /// Each round without delivery status (the A/B's other side).
    without_status_ms: Vec<f64>,
    round_ms: Vec<f64>,
    /// TCP connections the sink accepted from our client over all rounds.
    connections: u64,
    backlog: Backlog,
    requests: u64,
    sink_requests: usize,
    bytes: u64,
    peak_rss_kb: u64,
    messages_file: std::path::PathBuf,
}

impl Report {
    fn best_ms(&self) -> f64 {
        self.round_ms.iter().copied().fold(f64::MAX, f64::min)
    }

    fn median_ms(&self) -> f64 {
        median(&self.round_ms)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn measure(
    moto: &Moto,
    sink: &str,
    events: usize,
    rounds: usize,
) -> Result<Report, Box<dyn std::error::Error>> {
    let config = moto::aws_config(&moto.endpoint).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    moto::create_table_from_template(&dynamo, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let store = DynamoStore::new(dynamo.clone(), "bench");
    let key = "bench-write-key-ours";
    store
        .create_destination(&destination(PROJECT, ENVIRONMENT, key))
        .await?;
    let settings = ExportSettings {
        all_flags: true,
        version: 1,
        ..ExportSettings::default()
    };
    store.put_settings(PROJECT, ENVIRONMENT, &settings, 0).await?;

    let bodies = shared::sample::envelopes(events, PROJECT, ENVIRONMENT);
    let sqs = sqs_batch(&bodies);

    let s3 = s3_client(&config);
    s3.create_bucket().bucket("bench-archive").send().await?;
    let to_sink = Exporter::new(
        CachedStore::new(DynamoStore::new(dynamo.clone(), "bench"), Duration::from_secs(30)),
        SegmentClient::new(http_client(), Some(sink.to_owned())),
    )
    .with_archive(ArchiveSink::default());
    let to_s3 = Exporter::new(
        CachedStore::new(DynamoStore::new(dynamo.clone(), "bench"), Duration::from_secs(30)),
        SegmentClient::new(http_client(), Some(sink.to_owned())),
    )
    .with_archive(S3Archive::new(s3, "bench-archive"));
    let without_status = Exporter::new(
        StatusOff(CachedStore::new(
            DynamoStore::new(dynamo, "bench"),
            Duration::from_secs(30),
        )),
        SegmentClient::new(http_client(), Some(sink.to_owned())),
    );
    let exporter = Exporter::new(
        CachedStore::new(store, Duration::from_secs(30)),
        SegmentClient::new(http_client(), Some(sink.to_owned())),
    );
    // Warm both (environment read, connections), then alternate them round by round, so
    // that the machine's drift touches both alike.
    let run = async |round_ms: Option<&mut Vec<f64>>, with_status: bool| {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_secs(25));
        let (response, stats) = if with_status {
            exporter.export(&sqs, deadline).await
        } else {
            without_status.export(&sqs, deadline).await
        };
        if let Some(round_ms) = round_ms {
            round_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        assert!(
            response.batch_item_failures.is_empty(),
            "failures in the benchmark"
        );
        assert_eq!(stats.exported as usize, events);
        stats
    };
    let mut round_ms = Vec::new();
    let mut without_status_ms = Vec::new();
    run(None, false).await;
    let mut last = run(Some(&mut round_ms), true).await;
    for round in 1..rounds {
        if round % 2 == 0 {
            last = run(Some(&mut round_ms), true).await;
            run(Some(&mut without_status_ms), false).await;
        } else {
            run(Some(&mut without_status_ms), false).await;
            last = run(Some(&mut round_ms), true).await;
        }
    }
    run(Some(&mut without_status_ms), false).await;

    // The archive's A/B, after the figures above (which keep their meaning: no archive).
    let mut archive = ArchiveAb::default();
    let archive_rounds = rounds.max(3);
    let timed = |ms: &mut Vec<f64>, started: Instant, response: &aws_lambda_events::sqs::SqsBatchResponse| {
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(
            response.batch_item_failures.is_empty(),
            "failures in the benchmark"
        );
    };
    for round in 0..=archive_rounds {
        for turn in 0..3 {
            let deadline = Deadline::after(Duration::from_secs(25));
            let started = Instant::now();
            // Round 0 warms each side; the order turns round by round.
            match (round + turn) % 3 {
                0 => {
                    let (response, _) = exporter.export(&sqs, deadline).await;
                    if round > 0 {
                        timed(&mut archive.off_ms, started, &response);
                    }
                }
                1 => {
                    let (response, stats) = to_sink.export(&sqs, deadline).await;
                    assert_eq!(stats.archived as usize, events);
                    if round > 0 {
                        timed(&mut archive.sink_ms, started, &response);
                    }
                }
                _ => {
                    let (response, stats) = to_s3.export(&sqs, deadline).await;
                    assert_eq!(
                        (stats.archived as usize, stats.archive_write_failures),
                        (events, 0)
                    );
                    archive.objects = stats.archive_objects;
                    archive.bytes = stats.archive_bytes;
                    if round > 0 {
                        timed(&mut archive.s3_ms, started, &response);
                    }
                }
            }
        }
    }

    let peak_rss_kb = peak_rss_kb();
    let connections: Value = reqwest::get(format!("{sink}/__receiver/connections"))
        .await?
        .json()
        .await?;
    let connections = connections["connections"].as_u64().unwrap_or(0);
    let backlog = drain_backlog(&exporter).await;

    let requests: Value = reqwest::get(format!("{sink}/__receiver/requests?writeKey={key}"))
        .await?
        .json()
        .await?;
    let sink_requests = requests["requests"].as_array().map_or(0, Vec::len);
    let messages_file = std::env::temp_dir().join("data-export-segment-bench-messages.json");
    std::fs::write(
        &messages_file,
        segment_messages(&bodies, &destination(PROJECT, ENVIRONMENT, key)),
    )?;
    Ok(Report {
        archive,
        round_ms,
        without_status_ms,
        connections,
        backlog,
        requests: last.segment_requests,
        sink_requests: sink_requests / rounds,
        bytes: last.segment_bytes,
        peak_rss_kb,
        messages_file,
    })
}

/// Records per invocation, and invocations at once: the template's `BatchSize` and
/// `ExportMaximumConcurrency` defaults.
const BACKLOG_BATCH: usize = 1000;
const BACKLOG_CONCURRENCY: usize = 5;

struct Backlog {
    events: usize,
    sequential_s: f64,
    concurrent_s: f64,
}

/// A backlog that became visible at once when an outage ended (`BENCH_BACKLOG` events,
/// default 100,000), one envelope per record, through `export` in batches as Lambda
/// hands them over: one invocation at a time, then as many at once as the stack allows.
async fn drain_backlog<
    St: shared::store::Store + shared::store::DeliveryStore + shared::store::ReplayStore,
    Se: shared::segment::SegmentApi,
>(
    exporter: &Exporter<St, Se>,
) -> Backlog {
    use futures::stream::{self, StreamExt};
    let events: usize = std::env::var("BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let bodies = shared::sample::envelopes(events, PROJECT, ENVIRONMENT);
    let batches: Vec<SqsEvent> = bodies.chunks(BACKLOG_BATCH).map(sqs_batch).collect();
    let run = |batch: &SqsEvent| {
        let batch = batch.clone();
        async move {
            let (response, _) = exporter
                .export(&batch, Deadline::after(Duration::from_secs(25)))
                .await;
            assert!(response.batch_item_failures.is_empty(), "failures in the backlog");
        }
    };
    let started = Instant::now();
    for batch in &batches {
        run(batch).await;
    }
    let sequential_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    stream::iter(&batches)
        .for_each_concurrent(BACKLOG_CONCURRENCY, run)
        .await;
    Backlog {
        events,
        sequential_s,
        concurrent_s: started.elapsed().as_secs_f64(),
    }
}

/// The Segment messages of the envelopes, as a JSON array: what the Python peer sends.
fn segment_messages(bodies: &[String], destination: &shared::destination::Destination) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, body) in bodies.iter().enumerate() {
        let envelope: Envelope = serde_json::from_str(body).expect("sample envelopes parse");
        let kind = Kind::of(&envelope.event.kind);
        let id = envelope.event.id.as_deref().unwrap_or_default();
        if i > 0 {
            out.push(b',');
        }
        ExportEvent::new(&envelope, kind, id)
            .expect("sample events map")
            .write(destination, &mut out);
    }
    out.push(b']');
    out
}

struct Python {
    round_ms: Vec<f64>,
    requests: usize,
    errors: u64,
}

impl Python {
    fn median_ms(&self) -> f64 {
        median(&self.round_ms)
    }
}

fn python_peer(
    runtime: &tokio::runtime::Runtime,
    sink: &str,
    messages: &std::path::Path,
    rounds: usize,
) -> Result<Python, Box<dyn std::error::Error>> {
    let key = "bench-write-key-python";
    let out = command("python3")
        .arg(workspace_root().join("scripts/bench_segment_python.py"))
        .args([sink, key])
        .arg(messages)
        .arg(rounds.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!("python peer failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let result: Value = serde_json::from_slice(&out.stdout)?;
    let requests = runtime.block_on(async {
        let v: Value = reqwest::get(format!("{sink}/__receiver/requests?writeKey={key}"))
            .await?
            .json()
            .await?;
        Ok::<_, reqwest::Error>(v["requests"].as_array().map_or(0, Vec::len))
    })?;
    Ok(Python {
        round_ms: result["seconds"]
            .as_array()
            .ok_or("no seconds")?
            .iter()
            .filter_map(|s| s.as_f64().map(|s| s * 1000.0))
            .collect(),
        requests,
        errors: result["errors"].as_u64().unwrap_or(0),
    })
}

/// The batch as the Lambda runtime hands it over: deserialized from the invoke payload,
/// which is written here the way SQS and Lambda write it.
fn sqs_batch(bodies: &[String]) -> SqsEvent {
    let mut payload = String::with_capacity(bodies.iter().map(|b| b.len() + 700).sum());
    payload.push_str(r#"{"Records":["#);
    for (i, body) in bodies.iter().enumerate() {
        if i > 0 {
            payload.push(',');
        }
        payload.push_str(&format!(
            concat!(
                r#"{{"messageId":"msg-{i:06}","receiptHandle":"handle-{i:06}","body":{body},"#,
                r#""attributes":{{"ApproximateReceiveCount":"1","SentTimestamp":"1764093600000","#,
                r#""SenderId":"AIDAEXAMPLE","ApproximateFirstReceiveTimestamp":"1764093600010"}},"#,
                r#""messageAttributes":{{}},"md5OfBody":"","eventSource":"aws:sqs","#,
                r#""eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:data-export","awsRegion":"us-east-1"}}"#
            ),
            i = i,
            body = serde_json::to_string(body).expect("a string serializes")
        ));
    }
    payload.push_str("]}");
    serde_json::from_str(&payload).expect("an SqsEvent")
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
