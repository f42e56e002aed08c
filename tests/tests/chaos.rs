//! Chaos: the real `export` binary under `cargo lambda watch`, fed from moto's SQS queue
//! the way Lambda's event source feeds it (receive, invoke, delete successes; failed
//! records come back when the visibility `export` set runs out, and moto's redrive policy
//! moves them to the DLQ after `maxReceiveCount` receipts), with three destinations in one
//! environment: one healthy, one flaky (random 5xx, 429 + `Retry-After`, dropped
//! connections, slow replies), and one down for a stretch, then back.
//!
//! The retry schedule's base is 1 s (the stack's `RetryBaseSeconds`), so hours become
//! seconds. `CHAOS_EVENTS` sets the size (`make chaos` runs a bigger one).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};
use tests::event_source::{EventSource, queue_depth};
use tests::fixtures::*;
use tests::receiver::{Fault, FaultPlan};
use tests::stack::{Stack, StackOptions};

const PROJECT: &str = "chaos";
const ENVIRONMENT: &str = "production";

fn start_stack() -> Stack {
    let options = StackOptions {
        queues: true,
        env: vec![
            ("RETRY_BASE_SECONDS".into(), "1".into()),
            ("RETRY_CAP_SECONDS".into(), "4".into()),
        ],
        ..StackOptions::tests("chaos", true)
    };
    std::thread::spawn(move || Stack::start(options))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("starting the chaos stack: {e}"))
}

/// A random mix of what a flaky Segment does, one fault per request, then all well.
fn flaky_faults(seed: u64, n: usize) -> Vec<Fault> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| match rng.u32(0..100) {
            0..50 => Fault::default(),
            50..65 => Fault::status(*[500, 502, 503, 504].get(rng.usize(0..4)).unwrap()),
            65..75 => Fault::retry_after(429, 1),
            75..85 => Fault::drop_connection(),
            _ => Fault::delay(1500),
        })
        .collect()
}

/// Envelopes packed 1–3 to a record, as producers do; returns (bodies, event ids).
fn records(events: usize) -> (Vec<String>, BTreeSet<String>) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut bodies = Vec::new();
    let mut ids = BTreeSet::new();
    let mut i = 0;
    while i < events {
        let n = rng.usize(1..=3).min(events - i);
        let envelopes: Vec<String> = (i..i + n)
            .map(|e| {
                let id = format!("chaos-{e}");
                ids.insert(id.clone());
                envelope(
                    PROJECT,
                    ENVIRONMENT,
                    json!({"kind": "custom", "id": id, "creationDate": 1_764_093_600_000_i64 + e as i64,
                           "key": "purchase", "contextKeys": {"user": format!("user-{}", e % 50)},
                           "metricValue": e}),
                )
            })
            .collect();
        bodies.push(if n == 1 {
            envelopes[0].clone()
        } else {
            format!("[{}]", envelopes.join(","))
        });
        i += n;
    }
    (bodies, ids)
}

/// The event ids in a record body (none for a bad one).
fn event_ids_of(body: &str) -> Vec<String> {
    let envelopes = match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => vec![],
    };
    envelopes
        .iter()
        .filter_map(|e| e["event"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Event ids a destination received, and whether every copy of a messageId was the same.
fn delivered(stack: &Stack, key: &str) -> (BTreeSet<String>, usize) {
    let mut by_message_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for accepted in stack.receiver.messages(Some(key)) {
        let id = accepted.message["messageId"].as_str().unwrap().to_owned();
        by_message_id.entry(id).or_default().push(accepted.message);
    }
    for (id, copies) in &by_message_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "messageId {id} delivered with different content"
        );
    }
    let ids = by_message_id
        .values()
        .map(|copies| copies[0]["properties"]["eventId"].as_str().unwrap().to_owned())
        .collect();
    (ids, by_message_id.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_healthy_flaky_and_down_destinations_each_get_every_event_and_nothing_is_lost() {
    let events: usize = std::env::var("CHAOS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let down_for = Duration::from_secs(8);
    let stack = start_stack();
    let store = stack.store().await;
    let keys: Vec<String> = ["healthy", "flaky", "down"]
        .iter()
        .map(|k| unique(&format!("wk-{k}")))
        .collect();
    for key in &keys {
        put_destination(&store, &destination(PROJECT, ENVIRONMENT, key)).await;
    }
    let (healthy, flaky, down) = (&keys[0], &keys[1], &keys[2]);
    stack.receiver.set_faults(FaultPlan {
        write_key: flaky.clone(),
        faults: flaky_faults(42, events / 5 + 20).into(),
        always: None,
        ..FaultPlan::default()
    });
    // Down: Segment answers 503 and asks for minutes, longer than an invocation has.
    stack.receiver.set_faults(FaultPlan {
        write_key: down.clone(),
        faults: Default::default(),
        always: Some(Fault::retry_after(503, 120)),
        ..FaultPlan::default()
    });

    let (mut bodies, ids) = records(events);
    let good_records = bodies.len();
    // Bad in themselves: they must reach the DLQ quickly, and alone.
    bodies.extend(["{not json".to_owned(), json!({"project": PROJECT}).to_string()]);
    stack.send_all(&bodies).await;

    let queues = stack.queues.as_ref().unwrap();
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: queues.queue.clone(),
        batch_size: 50,
    };
    let started = Instant::now();
    // Bodies handed over: the records sent, and the remainders of partly delivered ones.
    let mut handed_over: HashSet<String> = HashSet::new();
    let (mut invocations, mut receipts) = (0, 0);
    let mut first_receipt_events: BTreeSet<String> = BTreeSet::new();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(240) {
        if !recovered && started.elapsed() >= down_for {
            stack.receiver.set_faults(FaultPlan {
                write_key: down.clone(),
                ..FaultPlan::default()
            });
            recovered = true;
        }
        let poll = source.poll(stack.lambda(), "export").await.unwrap();
        if poll.received.is_empty() {
            if recovered && source.depth().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        invocations += 1;
        receipts += poll.received.len();
        for record in &poll.received {
            assert!(
                record.receive_count >= 1,
                "the event source reads ApproximateReceiveCount"
            );
            if record.receive_count == 1 {
                first_receipt_events.extend(event_ids_of(&record.body));
            }
            handed_over.insert(record.body.clone());
        }
        // The healthy destination got every event in the invocation of its first receipt.
        let (got, _) = delivered(&stack, healthy);
        let late: Vec<&String> = first_receipt_events.difference(&got).collect();
        assert!(
            late.is_empty(),
            "the healthy destination missed {} events of their first receipt",
            late.len()
        );
    }
    let never: Vec<&String> = bodies.iter().filter(|b| !handed_over.contains(*b)).collect();
    assert!(never.is_empty(), "{} records were never received", never.len());
    assert_eq!(first_receipt_events, ids);
    assert_eq!(
        source.depth().await.unwrap(),
        0,
        "the queue drained within the time allowed"
    );

    for (name, key) in [("healthy", healthy), ("flaky", flaky), ("down", down)] {
        let (got, message_ids) = delivered(&stack, key);
        assert_eq!(
            got.len(),
            ids.len(),
            "{name}: {} of {} events",
            got.len(),
            ids.len()
        );
        assert_eq!(got, ids, "{name} lost events");
        assert_eq!(message_ids, ids.len(), "{name}: one messageId per event");
    }
    // A destination that accepted an event never gets it again (CONTRACT §3.4): the
    // healthy one, which never failed, got every event exactly once.
    let accepted = stack.receiver.messages(Some(healthy)).len();
    assert_eq!(
        accepted,
        ids.len(),
        "healthy: {accepted} messages for {} events",
        ids.len()
    );
    let dead_letters = queue_depth(&source.sqs, &queues.dead_letter).await.unwrap();
    assert_eq!(dead_letters, 2, "only the two bad records are in the DLQ");
    println!(
        "chaos: the healthy destination got each of the {} events in the invocation of its first receipt",
        ids.len()
    );
    println!(
        "chaos: {events} events in {good_records} records to 3 destinations: {invocations} invocations, \
         {receipts} receipts, drained in {:?}; flaky requests {}, down requests {}",
        started.elapsed(),
        stack.receiver.requests(Some(flaky)).len(),
        stack.receiver.requests(Some(down)).len(),
    );
}
