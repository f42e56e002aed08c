//! A server-side SDK's events payload (schema 4) built from the mix of [`crate::sample`],
//! for the ingest benchmarks: an `index` event with the full context the first time a
//! context appears in the payload, `feature` events with `contextKeys`, `custom` events with
//! `contextKeys`, `data` and (half of them) `metricValue`, and one `summary` event of every
//! evaluation at the end. SDKs send no event ids: ingest derives them. (Server SDKs send no
//! page views or clicks: those events of the mix are left out.)

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

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
    let sample = crate::sample::envelopes(4 * n, "bench", "production");
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

/// A payload's JSON text of as many events as fit in `limit` bytes (the events of
/// [`sdk_payload`] over and over), for bodies at ingest's size limit.
pub fn sdk_body_up_to(limit: usize) -> Vec<u8> {
    let events: Vec<String> = sdk_payload(1000).iter().map(Value::to_string).collect();
    let mut out = b"[".to_vec();
    for event in events.iter().cycle() {
        if out.len() + event.len() + 2 > limit {
            break;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(event.as_bytes());
    }
    out.push(b']');
    out
}
