//! The `ingest` function's CPU work per SDK payload of 1,000 events, everything but the
//! network: gunzip (for gzip bodies), decode, envelopes with ids derived from the
//! payload id, packing into SQS message bodies (and grouping them into SendMessageBatch
//! calls). Beside it, the peer's packing: one envelope per SQS message.
//!
//! The payload is what a server-side SDK posts (schema 4), built from the realistic mix
//! of `shared::sample`: an `index` event with the full context the first time a context
//! appears in the payload, `feature` events with `contextKeys`, `custom` events with
//! `contextKeys`, `data` and (half of them) `metricValue`, and one `summary` event of
//! every evaluation at the end. SDKs send no event ids: ingest derives them. (Server SDKs
//! send no page views or clicks: those events of the mix are left out.)

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value, json};
use shared::ingest::{payload, queue};
use std::collections::{BTreeMap, HashSet};
use std::hint::black_box;
use std::io::Write;

const N: usize = 1000;
const PAYLOAD_ID: &str = "4a3b2c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

/// The full context of a sample event (`context`, `contextKeys` or legacy `userKey`).
fn full_context(event: &Map<String, Value>) -> Value {
    if let Some(context) = event.get("context") {
        return context.clone();
    }
    let key = event
        .get("contextKeys")
        .and_then(|k| k.get("user"))
        .or_else(|| event.get("userKey"))
        .cloned()
        .expect("every sample event has a context");
    json!({"kind": "user", "key": key})
}

/// `{kind: key}` of a context, as SDKs write `contextKeys`.
fn context_keys(context: &Value) -> Map<String, Value> {
    let mut keys = Map::new();
    if context["kind"] == "multi" {
        for (kind, c) in context.as_object().unwrap() {
            if kind != "kind" {
                keys.insert(kind.clone(), c["key"].clone());
            }
        }
    } else {
        keys.insert(
            context["kind"].as_str().unwrap().to_owned(),
            context["key"].clone(),
        );
    }
    keys
}

/// A server-side SDK's payload of exactly `n` events (the last one the summary).
pub fn sdk_payload(n: usize) -> Vec<Value> {
    let sample = shared::sample::envelopes(4 * n, "bench", "production");
    let mut events = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    // flag → (default, context kinds, (variation, version) → (value, count))
    type Counters = BTreeMap<(u64, u64), (Value, u64)>;
    let mut summary: BTreeMap<String, (Value, HashSet<String>, Counters)> = BTreeMap::new();
    let (mut start, mut end) = (i64::MAX, 0);
    for envelope in &sample {
        if events.len() + 2 > n - 1 {
            break;
        }
        let envelope: Value = serde_json::from_str(envelope).unwrap();
        let e = envelope["event"].as_object().unwrap();
        let kind = e["kind"].as_str().unwrap();
        if kind != "feature" && kind != "custom" {
            continue;
        }
        let created = e["creationDate"].as_i64().unwrap();
        (start, end) = (start.min(created), end.max(created));
        let context = full_context(e);
        let keys = context_keys(&context);
        if seen.insert(Value::Object(keys.clone()).to_string()) {
            events.push(json!({"kind": "index", "creationDate": created, "context": context}));
        }
        let mut out = Map::new();
        out.insert("kind".into(), json!(kind));
        out.insert("creationDate".into(), json!(created));
        out.insert("key".into(), e["key"].clone());
        out.insert("contextKeys".into(), Value::Object(keys.clone()));
        if kind == "feature" {
            for field in ["version", "variation", "value", "default", "reason"] {
                out.insert(field.into(), e[field].clone());
            }
            let (_, kinds, counters) = summary
                .entry(e["key"].as_str().unwrap().to_owned())
                .or_insert_with(|| (e["default"].clone(), HashSet::new(), BTreeMap::new()));
            kinds.extend(keys.keys().cloned());
            let version_variation = (e["variation"].as_u64().unwrap(), e["version"].as_u64().unwrap());
            counters
                .entry(version_variation)
                .or_insert_with(|| (e["value"].clone(), 0))
                .1 += 1;
        } else {
            out.insert("data".into(), e["data"].clone());
            if let Some(metric) = e.get("metricValue") {
                out.insert("metricValue".into(), metric.clone());
            }
        }
        events.push(Value::Object(out));
    }
    let features: Map<String, Value> = summary
        .into_iter()
        .map(|(flag, (default, kinds, counters))| {
            let mut kinds: Vec<String> = kinds.into_iter().collect();
            kinds.sort();
            let counters: Vec<Value> = counters
                .into_iter()
                .map(|((variation, version), (value, count))| {
                    json!({"variation": variation, "version": version, "value": value, "count": count})
                })
                .collect();
            (
                flag,
                json!({"default": default, "contextKinds": kinds, "counters": counters}),
            )
        })
        .collect();
    events.push(json!({"kind": "summary", "startDate": start, "endDate": end, "features": features}));
    assert_eq!(events.len(), n, "the payload has exactly {n} events");
    events
}

/// What ingest does with a body once the credential is resolved (the network call aside).
fn ingest(body: &[u8], gzipped: bool) -> Vec<String> {
    let json = payload::decode(body, gzipped).unwrap();
    let envelopes = payload::envelopes(&json, "bench", "production", PAYLOAD_ID).unwrap();
    queue::pack(&envelopes)
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
    let events = sdk_payload(N);
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
    // The parts: gunzip alone, envelopes alone (decode + ids + serialize), packing alone.
    group.bench_function("part_gunzip", |b| {
        b.iter(|| black_box(payload::decode(black_box(&gzip), true).unwrap()))
    });
    group.bench_function("part_envelopes", |b| {
        b.iter(|| {
            black_box(payload::envelopes(black_box(&plain), "bench", "production", PAYLOAD_ID).unwrap())
        })
    });
    let envelopes = payload::envelopes(&plain, "bench", "production", PAYLOAD_ID).unwrap();
    group.bench_function("part_pack", |b| {
        b.iter(|| {
            let messages = queue::pack(black_box(&envelopes));
            black_box(queue::batches(&messages).len())
        })
    });
    // The peer: the same envelopes, one per SQS message, grouped ten per SendMessageBatch.
    group.bench_function("peer_one_per_message_plain_json", |b| {
        b.iter(|| {
            let json = payload::decode(black_box(&plain), false).unwrap();
            let envelopes = payload::envelopes(&json, "bench", "production", PAYLOAD_ID).unwrap();
            black_box(queue::batches(&envelopes).len())
        })
    });
    group.finish();
}

criterion_group!(benches, ingest_benches);
criterion_main!(benches);
