//! The `ingest` function's CPU work per SDK payload of 1,000 events, everything but the
//! network: gunzip (for gzip bodies), the events read in place, envelopes with ids derived
//! from the payload id written straight into SQS message bodies (and those grouped into
//! SendMessageBatch calls). Beside it, the previous pipeline (`ingest::before`: a `Map` per
//! event, an envelope string each, then packed) and the peer's packing: one envelope per
//! SQS message.
//!
//! The payload is `shared::sample_sdk`'s: what a server-side SDK posts (schema 4), built
//! from the realistic mix of `shared::sample`, with no event ids (ingest derives them).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use shared::ingest::{before, payload, queue};
use std::hint::black_box;
use std::io::Write;

const N: usize = 1000;
const PAYLOAD_ID: &str = "4a3b2c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

/// What ingest does with a body once the credential is resolved (the network call aside).
fn ingest(body: &[u8], gzipped: bool) -> Vec<String> {
    let json = payload::decode(body, gzipped).unwrap();
    payload::messages(&json, "bench", "production", PAYLOAD_ID)
        .unwrap()
        .messages
}

/// The same, as ingest did it before.
fn ingest_before(body: &[u8], gzipped: bool) -> Vec<String> {
    before::messages(body, gzipped, "bench", "production", PAYLOAD_ID).unwrap()
}

/// Every envelope of a message body, parsed.
fn parsed(messages: &[String]) -> Vec<Value> {
    messages
        .iter()
        .flat_map(|m| serde_json::from_str::<Vec<Value>>(m).unwrap())
        .collect()
}

/// Prints the payload's make-up and what it becomes on the queue (computed, not guessed).
fn report(events: &[Value], plain: &[u8], gzip: &[u8]) {
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    eprintln!(
        "payload: {} events (index {}, feature {}, custom {}, summary {}); body {} bytes plain, {} bytes gzip",
        events.len(),
        count("index"),
        count("feature"),
        count("custom"),
        count("summary"),
        plain.len(),
        gzip.len()
    );
    let envelopes = payload::envelopes(plain, "bench", "production", PAYLOAD_ID).unwrap();
    let envelope_bytes: usize = envelopes.iter().map(String::len).sum();
    let messages = ingest(plain, false);
    assert_eq!(
        messages,
        ingest(gzip, true),
        "gzip and plain bodies queue the same"
    );
    assert_eq!(
        parsed(&messages),
        parsed(&ingest_before(plain, false)),
        "the same envelopes as before, as export reads them"
    );
    let batches = queue::batches(&messages);
    // SQS bills every 64 KiB chunk of a request's payload as one request.
    let chunks = |bytes: usize| bytes.div_ceil(64 * 1024);
    let billed_send: usize = batches
        .iter()
        .map(|b| chunks(b.iter().map(String::len).sum()))
        .sum();
    let billed_receive: usize = messages.iter().map(|m| chunks(m.len())).sum();
    // How a record's body weighs in the `export` invoke payload (a JSON string).
    let escaped: Vec<usize> = messages
        .iter()
        .map(|m| serde_json::to_string(m).unwrap().len())
        .collect();
    eprintln!(
        "envelopes: {} bytes in all, {} bytes on average",
        envelope_bytes,
        envelope_bytes / envelopes.len()
    );
    eprintln!(
        "packed: {} SQS messages of {:?} bytes ({:?} bytes as JSON strings in an invoke payload), {} SendMessageBatch request(s) of {:?} messages; billed 64 KiB chunks: {} to send, {} to receive",
        messages.len(),
        messages.iter().map(String::len).collect::<Vec<_>>(),
        escaped,
        batches.len(),
        batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
        billed_send,
        billed_receive
    );
    let peer_batches = queue::batches(&envelopes);
    let peer_billed: usize = peer_batches
        .iter()
        .map(|b| chunks(b.iter().map(String::len).sum()))
        .sum();
    eprintln!(
        "peer (one envelope per message): {} SQS messages, {} SendMessageBatch requests (billed 64 KiB chunks: {})",
        envelopes.len(),
        peer_batches.len(),
        peer_billed
    );
}

fn ingest_benches(c: &mut Criterion) {
    let events = shared::sample_sdk::sdk_payload(N);
    let plain = serde_json::to_vec(&events).unwrap();
    let gzip = {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&plain).unwrap();
        gz.finish().unwrap()
    };
    report(&events, &plain, &gzip);

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("plain_json", |b| {
        b.iter(|| black_box(ingest(black_box(&plain), false)))
    });
    group.bench_function("gzip", |b| b.iter(|| black_box(ingest(black_box(&gzip), true))));
    // The parts: gunzip alone; envelopes written into message bodies alone (read the
    // events, derive ids, write, pack).
    group.bench_function("part_gunzip", |b| {
        b.iter(|| black_box(payload::decode(black_box(&gzip), true).unwrap()))
    });
    group.bench_function("part_messages", |b| {
        b.iter(|| black_box(payload::messages(black_box(&plain), "bench", "production", PAYLOAD_ID).unwrap()))
    });
    group.bench_function("part_batches", |b| {
        let messages = ingest(&plain, false);
        b.iter(|| black_box(queue::batches(black_box(&messages)).len()))
    });
    // Before: the same bodies through the previous pipeline, in the same run.
    group.bench_function("before_plain_json", |b| {
        b.iter(|| black_box(ingest_before(black_box(&plain), false)))
    });
    group.bench_function("before_gzip", |b| {
        b.iter(|| black_box(ingest_before(black_box(&gzip), true)))
    });
    // The peer: the same envelopes, one per SQS message, grouped ten per SendMessageBatch.
    group.bench_function("peer_one_per_message_plain_json", |b| {
        b.iter(|| {
            let envelopes = payload::envelopes(black_box(&plain), "bench", "production", PAYLOAD_ID).unwrap();
            black_box(queue::batches(&envelopes).len())
        })
    });
    group.finish();
}

criterion_group!(benches, ingest_benches);
criterion_main!(benches);
