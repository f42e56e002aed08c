//! Mapping + serialization throughput, beside plain `serde_json` parsing and
//! re-serializing the same envelopes (the floor the issue measures against).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use shared::destination::{Destination, SEGMENT_KIND, SegmentConfig, WriteKey};
use shared::event::{Envelope, Kind};
use shared::segment::ExportEvent;
use shared::timestamp::Timestamp;
use std::hint::black_box;

const N: usize = 1000;

fn destination() -> Destination {
    Destination {
        id: "4b9f6a2e-3c1d-4e5f-8a7b-9c0d1e2f3a4b".into(),
        project: "bench".into(),
        environment: "production".into(),
        name: "Segment".into(),
        kind: SEGMENT_KIND.into(),
        on: true,
        version: 1,
        created_at: 0,
        write_key_check: shared::segment::verify::KeyCheck::never(),
        config: SegmentConfig {
            write_key: WriteKey::new("bench-write-key"),
            include_custom_data: true,
            ..SegmentConfig::default()
        },
    }
}

fn mapping(c: &mut Criterion) {
    let envelopes = shared::sample::envelopes(N, "bench", "production");
    let bytes: usize = envelopes.iter().map(String::len).sum();
    let destination = destination();
    let mut group = c.benchmark_group("envelopes");
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("map_and_serialize", |b| {
        let mut out = Vec::with_capacity(bytes * 2);
        b.iter(|| {
            out.clear();
            for text in &envelopes {
                let envelope: Envelope = serde_json::from_str(text).unwrap();
                let kind = Kind::of(&envelope.event.kind);
                let id = envelope.event.id.as_deref().unwrap_or_default();
                let event = ExportEvent::new(&envelope, kind, id).unwrap();
                event.write(&destination, &mut out);
            }
            black_box(out.len())
        })
    });

    group.bench_function("serde_json_value_roundtrip", |b| {
        let mut out = Vec::with_capacity(bytes * 2);
        b.iter(|| {
            out.clear();
            for text in &envelopes {
                let value: Value = serde_json::from_str(text).unwrap();
                serde_json::to_writer(&mut out, &value).unwrap();
            }
            black_box(out.len())
        })
    });
    group.finish();
}

/// The hand-written RFC 3339 formatter beside a crate's (humantime), writing the same
/// 1,000 millisecond timestamps: the formatter stays only while it is the cheaper.
fn timestamps(c: &mut Criterion) {
    use std::io::Write;
    use std::time::{Duration, UNIX_EPOCH};
    let millis: Vec<i64> = (0..N as i64).map(|i| 1_764_093_600_000 + i * 7_919_113).collect();
    let mut group = c.benchmark_group("timestamps");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("ours", |b| {
        let mut out = Vec::with_capacity(N * 24);
        b.iter(|| {
            out.clear();
            for &ms in &millis {
                out.extend_from_slice(Timestamp::from_epoch_millis(ms).unwrap().as_str().as_bytes());
            }
            black_box(out.len())
        })
    });
    group.bench_function("humantime", |b| {
        let mut out = Vec::with_capacity(N * 24);
        b.iter(|| {
            out.clear();
            for &ms in &millis {
                let at = UNIX_EPOCH + Duration::from_millis(ms as u64);
                write!(out, "{}", humantime::format_rfc3339_millis(at)).unwrap();
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, mapping, timestamps);
criterion_main!(benches);
