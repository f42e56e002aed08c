//! Peak memory of the `ingest` handler for one payload at the size limit (BENCHMARKS.md §3):
//! what the function's process holds at its highest, read from `/proc/self/status` (VmHWM).
//!
//! `write DIR` writes the Lambda events (an HTTP API v2 request, as `ingest` receives it) of
//! a plain JSON body of just under `MAX_PAYLOAD_BYTES`, and of a gzip body that inflates to
//! exactly `MAX_PAYLOAD_BYTES` (base64, `isBase64Encoded`), built from `shared::sample_sdk`.
//! `measure FILE`, in a fresh process so that building the body counts for nothing, does
//! what the Lambda runtime and `functions/ingest` do with one invocation: reads the event's
//! bytes, deserializes them into `lambda_http`'s request (then drops the bytes, as the
//! runtime does), and runs the real `Ingest::handle` against a source store that knows the
//! key and a queue that only counts (the AWS SDK's own request serialization, ~300 KB per
//! SendMessageBatch, is not in it). Not modelled either: hyper's chunks while the runtime
//! collects the invocation's body (about the event's size, briefly, before the handler).
//!
//! `make bench-ingest-rss`, or:
//! `cargo run --release -p shared --features sample --example ingest_rss -- write /tmp/rss`
//! `cargo run --release -p shared --features sample --example ingest_rss -- measure /tmp/rss/plain.json`

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use shared::ingest::Ingest;
use shared::ingest::payload::MAX_PAYLOAD_BYTES;
use shared::ingest::queue::{EventQueue, QueueError};
use shared::sources::{EventSources, SourceKind};
use shared::store::{SourceStore, StoreError};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Knows every key, as the cached lookup of a registered key does.
struct EveryKey;

impl SourceStore for EveryKey {
    async fn get_sources(&self, _: &str, _: &str) -> Result<EventSources, StoreError> {
        Ok(EventSources::default())
    }
    async fn put_sources(
        &self,
        _: &str,
        _: &str,
        _: &EventSources,
        _: &EventSources,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn resolve(&self, _: SourceKind, _: &str) -> Result<Option<shared::sources::Resolved>, StoreError> {
        Ok(Some(shared::sources::Resolved {
            project: "bench".into(),
            environment: "production".into(),
            allowed_origins: Default::default(),
        }))
    }
}

/// Takes the message bodies and drops them, counting.
#[derive(Default, Clone)]
struct CountingQueue(Arc<Counts>);

#[derive(Default)]
struct Counts {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

impl EventQueue for CountingQueue {
    async fn send(&self, messages: Vec<String>) -> Result<(), QueueError> {
        self.0.messages.fetch_add(messages.len(), Ordering::Relaxed);
        self.0
            .bytes
            .fetch_add(messages.iter().map(String::len).sum(), Ordering::Relaxed);
        Ok(())
    }
}

/// A line of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("the field is there")
}

fn lambda_event(body: &str, gzip: bool) -> Value {
    let mut headers = json!({
        "authorization": "sdk-rss-key",
        "content-type": "application/json",
        "user-agent": "PythonClient/9.20.0",
        "x-launchdarkly-event-schema": "4",
        "x-launchdarkly-payload-id": "4a3b2c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    });
    if gzip {
        headers["content-encoding"] = json!("gzip");
    }
    json!({
        "version": "2.0", "routeKey": "POST /bulk", "rawPath": "/bulk", "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example", "domainPrefix": "api",
            "http": {"method": "POST", "path": "/bulk", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "PythonClient/9.20.0"},
            "requestId": "rss", "routeKey": "POST /bulk", "stage": "$default",
            "time": "25/Nov/2026:18:00:00 +0000", "timeEpoch": 1795629600000_u64
        },
        "body": body, "isBase64Encoded": gzip
    })
}

fn write(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine;
    std::fs::create_dir_all(dir)?;
    let plain = shared::sample_sdk::sdk_body_up_to(MAX_PAYLOAD_BYTES);
    std::fs::write(
        dir.join("plain.json"),
        lambda_event(std::str::from_utf8(&plain)?, false).to_string(),
    )?;
    // Padded with whitespace to exactly the limit after gunzipping.
    let mut inflated = plain.clone();
    inflated.resize(MAX_PAYLOAD_BYTES, b' ');
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&inflated)?;
    let gzip = gz.finish()?;
    let base64 = base64::engine::general_purpose::STANDARD.encode(&gzip);
    std::fs::write(dir.join("gzip.json"), lambda_event(&base64, true).to_string())?;
    println!(
        "plain body {} bytes; gzip body {} bytes, inflating to {} bytes; in {}",
        plain.len(),
        gzip.len(),
        inflated.len(),
        dir.display()
    );
    Ok(())
}

async fn measure(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let queue = CountingQueue::default();
    let ingest = Ingest::new(EveryKey, queue.clone());
    let start = status_kb("VmHWM");
    let bytes = std::fs::read(file)?;
    let event: lambda_http::request::LambdaRequest = serde_json::from_slice(&bytes)?;
    let event_bytes = bytes.len();
    drop(bytes);
    let request = lambda_http::Request::from(event);
    let incoming = shared::web::lambda::incoming(request);
    let body_bytes = incoming.request.body().len();
    let response = ingest
        .handle(&incoming.request, &incoming.path, &incoming.request_id)
        .await;
    drop(incoming);
    let peak = status_kb("VmHWM");
    assert_eq!(response.status(), 202, "{}", response.body());
    println!(
        "{}: event {event_bytes} bytes, body {body_bytes} bytes; queued {} messages, {} bytes; VmHWM {:.1} MiB (at start {:.1} MiB)",
        file.display(),
        queue.0.messages.load(Ordering::Relaxed),
        queue.0.bytes.load(Ordering::Relaxed),
        peak as f64 / 1024.0,
        start as f64 / 1024.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, dir] if command == "write" => write(Path::new(dir)),
        [command, file] if command == "measure" => measure(Path::new(file)).await,
        _ => Err("usage: ingest_rss write DIR | ingest_rss measure FILE".into()),
    }
}
