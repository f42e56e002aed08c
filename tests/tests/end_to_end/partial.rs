//! The retry of a partial failure through moto's SQS (CONTRACT §3.4): a record for A and
//! B while B is down. A gets each event in one request, once, across every later receipt,
//! the dead-letter queue and a redrive; B gets everything once it is back.

use serde_json::{Value, json};
use shared::export::Exporter;
use shared::requeue::{Requeue, RetrySchedule, SqsRequeue};
use shared::segment::SegmentApi;
use shared::store::{DeliveryStore, ReplayStore, Store};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tests::fixtures::*;
use tests::receiver::{Fault, FaultPlan};
use tests::stack::Stack;

/// One second between receipts, as the README's schedule would be with a base of 1 s.
const SCHEDULE: RetrySchedule = RetrySchedule {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(1),
};

fn down(stack: &Stack, key: &str, is_down: bool) {
    stack.receiver.set_faults(FaultPlan {
        write_key: key.to_owned(),
        always: is_down.then(|| Fault::retry_after(503, 60)),
        ..FaultPlan::default()
    });
}

/// How many accepted messages of each event id reached the key.
fn deliveries(stack: &Stack, key: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in stack.receiver.messages(Some(key)) {
        *counts
            .entry(m.message["properties"]["eventId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Receives what is visible within a few seconds, as Lambda's poller would.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(3)
        .visibility_timeout(60)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Runs receipts until the queue stays empty; `before_receipt(n)` runs before the n-th
/// (from 1). Answers the number of receipts.
async fn drain<St: Store + DeliveryStore + ReplayStore, Se: SegmentApi, Rq: Requeue>(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    exporter: &Exporter<St, Se, Rq>,
    mut before_receipt: impl FnMut(u32),
) -> u32 {
    let mut receipts = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let messages = receive(sqs, url).await;
        if messages.is_empty() {
            return receipts;
        }
        receipts += 1;
        before_receipt(receipts);
        let records: Vec<Value> = messages.iter().map(tests::sqs::lambda_record).collect();
        let event = serde_json::from_value(json!({ "Records": records })).unwrap();
        exporter.export(&event, export_deadline()).await;
    }
    panic!("the queue never emptied");
}

/// A fresh environment with destinations A and B, and a record of three events for it
/// (the third without an id, so `export` derives one).
struct Setup {
    a: String,
    b: String,
    b_id: String,
    record: String,
}

async fn setup(stack: &Stack, tag: &str) -> Setup {
    let (project, env) = (unique("proj"), unique("env"));
    let (a, b) = (unique("wk-a"), unique("wk-b"));
    let store = stack.store().await;
    let b_destination = destination(&project, &env, &b);
    put_destination(&store, &destination(&project, &env, &a)).await;
    put_destination(&store, &b_destination).await;
    let mut without_id = custom_event("", &format!("{tag}-u3"));
    without_id.as_object_mut().unwrap().remove("id");
    let record = format!(
        "[{},{},{}]",
        envelope(&project, &env, custom_event(&format!("{tag}-1"), "u1")),
        envelope(&project, &env, custom_event(&format!("{tag}-2"), "u2")),
        envelope(&project, &env, without_id),
    );
    Setup {
        a,
        b,
        b_id: b_destination.id,
        record,
    }
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_destination_that_accepted_never_gets_a_record_again_across_receipts_dlq_and_redrive() {
    let (stack, sqs, queues) = super::redrive::queues("partial").await;
    let requeue =
        SqsRequeue::new(sqs.clone(), &queues.queue).with_dead_letter(Some(queues.dead_letter.clone()));
    let exporter = exporter(stack, Duration::ZERO, fast_retries())
        .await
        .with_requeue(requeue, SCHEDULE)
        .with_max_receives(12);

    // B is down for the first three receipts, then back.
    let s = setup(stack, &unique("p")).await;
    down(stack, &s.b, true);
    send(&sqs, &queues.queue, &s.record).await;
    let receipts = drain(&sqs, &queues.queue, &exporter, |n| down(stack, &s.b, n <= 3)).await;
    assert_eq!(receipts, 4, "three failed receipts, then B's delivery");
    let at_a = deliveries(stack, &s.a);
    assert_eq!(at_a.len(), 3, "{at_a:?}");
    assert!(at_a.values().all(|&n| n == 1), "A got each event once: {at_a:?}");
    assert_eq!(
        stack.receiver.requests(Some(&s.a)).len(),
        1,
        "one request to A in all"
    );
    let at_b = deliveries(stack, &s.b);
    assert_eq!(
        at_a.keys().collect::<std::collections::BTreeSet<_>>(),
        at_b.keys().collect(),
        "B got everything, the derived event id the same at both"
    );

    // Now B stays down past the bound: the remainder, naming B alone, reaches the DLQ.
    let exporter = exporter.with_max_receives(3);
    let s = setup(stack, &unique("q")).await;
    down(stack, &s.b, true);
    send(&sqs, &queues.queue, &s.record).await;
    let receipts = drain(&sqs, &queues.queue, &exporter, |_| ()).await;
    assert_eq!(receipts, 3, "the bound of three receipts");
    let dead = receive(&sqs, &queues.dead_letter).await;
    assert_eq!(dead.len(), 1);
    let envelopes: Vec<Value> = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(envelopes.len(), 3);
    for e in &envelopes {
        assert_eq!(e["destinations"], json!([s.b_id]), "{e}");
    }
    sqs.change_message_visibility()
        .queue_url(&queues.dead_letter)
        .receipt_handle(dead[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    // B is fixed; a redrive brings the remainder back, and only B gets it.
    down(stack, &s.b, false);
    let done = redrive::redrive(&sqs, &queues.dead_letter, &queues.queue, None)
        .await
        .unwrap();
    assert_eq!(done.moved, 1);
    drain(&sqs, &queues.queue, &exporter, |_| ()).await;
    let at_a = deliveries(stack, &s.a);
    assert_eq!(at_a.len(), 3);
    assert!(at_a.values().all(|&n| n == 1), "A got each event once: {at_a:?}");
    assert_eq!(
        stack.receiver.requests(Some(&s.a)).len(),
        1,
        "zero repeated requests to A after the DLQ and the redrive"
    );
    let at_b = deliveries(stack, &s.b);
    assert_eq!(at_b.len(), 3, "B got everything after the redrive: {at_b:?}");
    assert!(at_b.values().all(|&n| n == 1), "{at_b:?}");
}
