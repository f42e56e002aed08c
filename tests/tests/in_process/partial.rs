//! The retry of a partial failure (CONTRACT §3.4), in-process: a record some destinations
//! accepted is replaced by its remainder, which names only the destinations still owed
//! (`destinations`, §2), keeps its event ids, and reaches the DLQ after as many failed
//! receipts as the record would have. The same path runs through moto's SQS in
//! `end_to_end::redrive`.

use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::export::Exporter;
use shared::requeue::{Replacement, RetrySchedule};
use shared::segment::DeliveryError;
use shared::store::CachedStore;
use std::collections::HashMap;
use std::time::Duration;
use tests::fixtures::*;
use tests::memory::{Answer, MemoryRequeue, MemorySegment, MemoryStore};

type PartialExporter = Exporter<CachedStore<MemoryStore>, MemorySegment, MemoryRequeue>;

const SCHEDULE: RetrySchedule = RetrySchedule {
    base: Duration::from_secs(60),
    cap: Duration::from_secs(3600),
};

fn exporter(max_receives: u32) -> (PartialExporter, MemoryRequeue) {
    let requeue = MemoryRequeue::new();
    let exporter = Exporter::new(
        CachedStore::new(MemoryStore::new(), Duration::ZERO),
        MemorySegment::new(),
    )
    .with_requeue(requeue.clone(), SCHEDULE)
    .with_max_receives(max_receives);
    (exporter, requeue)
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(25))
}

fn down() -> Option<Answer> {
    Some(Answer::Fail(
        Duration::ZERO,
        DeliveryError::GaveUp {
            attempts: 8,
            last: "HTTP 503".into(),
        },
    ))
}

/// An environment with destinations A and B: (project, environment, [(id, key)…]).
fn two_destinations(exporter: &PartialExporter) -> (String, String, [(String, String); 2]) {
    let (project, env) = (unique("proj"), unique("env"));
    let store = exporter.store().inner();
    let ab = [unique("wk-a"), unique("wk-b")].map(|key| {
        let d = destination(&project, &env, &key);
        store.put_destination(d.clone());
        (d.id, key)
    });
    (project, env, ab)
}

/// A record as SQS hands it over: its receive count, and the attributes a remainder
/// carries (due now, as SQS makes it visible then).
fn record(id: &str, body: &str, receive_count: u32, remainder: Option<&Replacement>) -> Value {
    let now = shared::timestamp::now_millis();
    let mut r = tests::sqs::sqs_event([(id, body)])["Records"][0].clone();
    r["attributes"]["ApproximateReceiveCount"] = json!(receive_count.to_string());
    r["attributes"]["SentTimestamp"] = json!(now.to_string());
    if let Some(rep) = remainder {
        let number = |n: u64| json!({"stringValue": n.to_string(), "dataType": "Number"});
        r["messageAttributes"] = json!({
            "exportReceives": number(u64::from(rep.receives)),
            "exportDueAt": number(now.saturating_sub(1)),
        });
    }
    r
}

fn event_of(records: Vec<Value>) -> aws_lambda_events::sqs::SqsEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// How many times each event id reached the write key, counting every accepted message.
fn deliveries(exporter: &PartialExporter, key: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in exporter.segment().messages(Some(key)) {
        *counts
            .entry(m["properties"]["eventId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

fn body_events(body: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(body).unwrap() {
        Value::Array(items) => items,
        one => vec![one],
    }
}

#[tokio::test]
async fn a_destination_that_accepted_is_never_sent_the_record_again() {
    let (exporter, requeue) = exporter(12);
    let (project, env, [(_, a), (b_id, b)]) = two_destinations(&exporter);
    // The second event has no id: its derived id must survive the move to a remainder.
    let mut no_id = custom_event("", "u2");
    no_id.as_object_mut().unwrap().remove("id");
    let body = format!(
        "[{},{}]",
        envelope(&project, &env, custom_event("e-1", "u1")),
        envelope(&project, &env, no_id)
    );
    exporter.segment().script(&b, vec![], down());

    let (response, stats) = exporter
        .export(&event_of(vec![record("m-1", &body, 1, None)]), deadline())
        .await;
    assert_eq!(
        failed(&response),
        ["m-1"],
        "still reported failed (CONTRACT §3.4)"
    );
    assert_eq!(stats.replaced_records, 1);
    let replacement = requeue
        .take_replacements()
        .pop()
        .expect("the record was replaced");
    assert_eq!(replacement.receives, 1);
    assert!(replacement.dead.is_empty());
    assert!(
        replacement.delay >= SCHEDULE.floor(1),
        "due when the record's own next receipt would be"
    );
    assert!(
        requeue.visibilities().is_empty(),
        "a replaced record is deleted, not made visible again"
    );
    let envelopes = body_events(&replacement.retry.concat());
    assert_eq!(envelopes.len(), 2);
    for e in &envelopes {
        assert_eq!(e["destinations"], json!([b_id]), "only B is still owed: {e}");
    }
    let derived = envelopes[1]["event"]["id"].as_str().unwrap().to_owned();
    assert!(!derived.is_empty());

    // B stays down for two more receipts of the remainder, then recovers. Nothing of
    // the remainder is delivered while B is down, so SQS brings it back itself, with
    // its receive count going up from the record's.
    for receive_count in 1..=3 {
        if receive_count == 3 {
            exporter.segment().script(&b, vec![], None);
        }
        let records: Vec<Value> = replacement
            .retry
            .iter()
            .enumerate()
            .map(|(i, body)| record(&format!("r-{i}"), body, receive_count, Some(&replacement)))
            .collect();
        let (response, _) = exporter.export(&event_of(records), deadline()).await;
        assert!(
            requeue.take_replacements().is_empty(),
            "nothing new was delivered"
        );
        if receive_count < 3 {
            assert_eq!(response.batch_item_failures.len(), replacement.retry.len());
            let visibility = requeue.visibilities()["handle-r-0"];
            let receives = replacement.receives + receive_count;
            assert!(
                visibility >= SCHEDULE.floor(receives) && visibility <= SCHEDULE.floor(receives) * 5 / 4,
                "receipt {receives} of the events: {visibility:?}"
            );
        } else {
            assert!(response.batch_item_failures.is_empty());
        }
    }

    let a_got = deliveries(&exporter, &a);
    assert_eq!(a_got.len(), 2);
    assert!(
        a_got.values().all(|&n| n == 1),
        "A got each event once: {a_got:?}"
    );
    assert_eq!(
        exporter.segment().requests(Some(&a)).len(),
        1,
        "one request to A in all"
    );
    let b_got = deliveries(&exporter, &b);
    assert_eq!(b_got.keys().len(), 2, "B got everything: {b_got:?}");
    assert!(b_got.contains_key("e-1") && b_got.contains_key(&derived));
    assert_eq!(
        deliveries(&exporter, &a).get(&derived),
        Some(&1),
        "the same derived id at A and B"
    );
}

#[tokio::test]
async fn a_remainder_that_reaches_the_bound_goes_to_the_dlq_naming_who_misses_it() {
    let (exporter, requeue) = exporter(3);
    let (project, env, [(_, a), (b_id, b)]) = two_destinations(&exporter);
    exporter.segment().script(&b, vec![], down());
    let body = envelope(&project, &env, custom_event("bound-1", "u"));
    // The record failed twice whole already (both down), and now only B fails.
    let (_, _) = exporter
        .export(&event_of(vec![record("m-3", &body, 3, None)]), deadline())
        .await;
    let replacement = requeue.take_replacements().pop().unwrap();
    assert_eq!(replacement.receives, 3);
    assert!(
        replacement.retry.is_empty(),
        "the bound is reached: nothing comes back"
    );
    let dead = body_events(&replacement.dead.concat());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["destinations"], json!([b_id]));
    assert_eq!(deliveries(&exporter, &a).get("bound-1"), Some(&1));
}

#[tokio::test]
async fn a_remainder_that_keeps_failing_reaches_the_dlq_at_the_records_bound() {
    let (exporter, requeue) = exporter(4);
    let (project, env, [_, (b_id, b)]) = two_destinations(&exporter);
    exporter.segment().script(&b, vec![], down());
    let mut remainder: Value =
        serde_json::from_str(&envelope(&project, &env, custom_event("r-1", "u"))).unwrap();
    remainder["destinations"] = json!([b_id]);
    let body = remainder.to_string();
    let after = |receives| Replacement {
        receipt_handle: String::new(),
        retry: vec![body.clone()],
        dead: vec![],
        receives,
        delay: Duration::ZERO,
    };
    // Two receipts of the record before it, one of its own: three in all, below four.
    let (_, _) = exporter
        .export(
            &event_of(vec![record("r", &body, 1, Some(&after(2)))]),
            deadline(),
        )
        .await;
    assert!(
        requeue.take_replacements().is_empty(),
        "below the bound, SQS brings it back"
    );
    // The fourth: at the bound, though SQS counts only two.
    let (response, _) = exporter
        .export(
            &event_of(vec![record("r", &body, 2, Some(&after(2)))]),
            deadline(),
        )
        .await;
    assert_eq!(failed(&response), ["r"]);
    let moved = requeue.take_replacements().pop().expect("moved to the DLQ");
    assert!(moved.retry.is_empty());
    assert_eq!(
        body_events(&moved.dead.concat())[0]["destinations"],
        json!([b_id])
    );
}

#[tokio::test]
async fn a_bad_envelope_beside_delivered_ones_goes_to_the_dlq_alone() {
    let (exporter, requeue) = exporter(12);
    let (project, env, [(_, a), (_, b)]) = two_destinations(&exporter);
    let body = format!(
        "[{},{{\"project\":\"{project}\"}}]",
        envelope(&project, &env, custom_event("good-1", "u"))
    );
    let (response, stats) = exporter
        .export(&event_of(vec![record("m-bad", &body, 1, None)]), deadline())
        .await;
    assert_eq!(failed(&response), ["m-bad"]);
    assert_eq!(stats.failed_bad, 1);
    let replacement = requeue.take_replacements().pop().unwrap();
    assert!(replacement.retry.is_empty());
    assert_eq!(
        body_events(&replacement.dead.concat()),
        [json!({"project": project})],
        "the bad envelope, as it came"
    );
    for key in [&a, &b] {
        assert_eq!(deliveries(&exporter, key).get("good-1"), Some(&1));
    }
}

#[tokio::test]
async fn nothing_delivered_leaves_the_record_to_the_queue_as_before() {
    let (exporter, requeue) = exporter(12);
    let (project, env, [(_, a), (_, b)]) = two_destinations(&exporter);
    for key in [&a, &b] {
        exporter.segment().script(key, vec![], down());
    }
    let body = envelope(&project, &env, custom_event("whole-1", "u"));
    let (response, stats) = exporter
        .export(&event_of(vec![record("m-w", &body, 2, None)]), deadline())
        .await;
    assert_eq!(failed(&response), ["m-w"]);
    assert_eq!(stats.replaced_records, 0);
    assert!(requeue.take_replacements().is_empty());
    let visibility = requeue.visibilities()["handle-m-w"];
    assert!(visibility >= SCHEDULE.floor(2), "{visibility:?}");
}

#[tokio::test]
async fn an_envelope_naming_destinations_goes_to_those_only() {
    let (exporter, _) = exporter(12);
    let (project, env, [(_, a), (b_id, b)]) = two_destinations(&exporter);
    let mut only_b: Value =
        serde_json::from_str(&envelope(&project, &env, custom_event("only-b", "u"))).unwrap();
    only_b["destinations"] = json!([b_id]);
    let mut nobody = only_b.clone();
    nobody["destinations"] = json!(["a-deleted-destination"]);
    nobody["event"]["id"] = json!("nobody");
    let records = vec![
        record("m-b", &only_b.to_string(), 1, None),
        record("m-n", &nobody.to_string(), 1, None),
    ];
    let (response, stats) = exporter.export(&event_of(records), deadline()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stats.skipped, 1, "a destination that is gone owes nothing");
    assert!(deliveries(&exporter, &a).is_empty());
    assert_eq!(deliveries(&exporter, &b).get("only-b"), Some(&1));
}

#[tokio::test]
async fn a_remainder_that_is_not_due_waits_without_being_sent() {
    let (exporter, requeue) = exporter(12);
    let (project, env, [(_, a), _]) = two_destinations(&exporter);
    let now = shared::timestamp::now_millis();
    let mut r = record(
        "m-later",
        &envelope(&project, &env, custom_event("later", "u")),
        1,
        None,
    );
    let number = |n: u64| json!({"stringValue": n.to_string(), "dataType": "Number"});
    r["messageAttributes"] = json!({"exportReceives": number(5), "exportDueAt": number(now + 2_700_000)});
    let (response, _) = exporter.export(&event_of(vec![r]), deadline()).await;
    assert_eq!(failed(&response), ["m-later"]);
    assert!(deliveries(&exporter, &a).is_empty());
    let wait = requeue.visibilities()["handle-m-later"];
    assert!(
        wait > Duration::from_secs(2690) && wait <= Duration::from_secs(2700),
        "{wait:?}"
    );
}
