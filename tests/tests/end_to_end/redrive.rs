//! The DLQ redrive path against moto's SQS: a record that kept failing lands in the
//! dead-letter queue after `maxReceiveCount` receipts; once the cause is fixed, `redrive`
//! moves it back and it is delivered.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use std::time::Duration;
use tests::fixtures::*;
use tests::moto::{aws_config, create_queues_from_template};
use tests::receiver::{Fault, FaultPlan};
use tests::stack::shared;

async fn visible(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages).cloned())
        .unwrap()
        .parse()
        .unwrap()
}

/// Receives what is visible (and makes it visible again at once), as Lambda's poller does
/// for a record it reports failed.
async fn poll(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// The shared stack, an SQS client, and a fresh queue and DLQ from the template.
pub(crate) async fn queues(
    prefix: &str,
) -> (
    &'static tests::stack::Stack,
    aws_sdk_sqs::Client,
    tests::moto::Queues,
) {
    let stack = shared(false);
    let sqs = aws_sdk_sqs::Client::new(&aws_config(&stack.moto.endpoint).await);
    let queues = create_queues_from_template(&sqs, &unique(prefix)).await.unwrap();
    (stack, sqs, queues)
}

#[tokio::test]
async fn a_message_that_failed_into_the_dlq_is_moved_back_and_delivered() {
    let (stack, sqs, queues) = queues("redrive").await;
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    put_destination(&stack.store().await, &destination(&project, &env, &key)).await;
    stack.receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        faults: Default::default(),
        // Down, and asking for longer than an invocation has: each receipt fails at once.
        always: Some(Fault::retry_after(503, 60)),
        ..FaultPlan::default()
    });

    let body = envelope(
        &project,
        &env,
        json!({"kind": "custom", "id": "redriven-1", "creationDate": 1,
        "key": "k", "contextKeys": {"user": "u"}}),
    );
    sqs.send_message()
        .queue_url(&queues.queue)
        .message_body(&body)
        .send()
        .await
        .unwrap();

    // Segment is down: every receipt fails, until SQS moves the message to the DLQ.
    let exporter = exporter(stack, Duration::ZERO, fast_retries()).await;
    let mut receipts = 0;
    for _ in 0..30 {
        let messages = poll(&sqs, &queues.queue).await;
        if messages.is_empty() {
            break;
        }
        let records: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.message_id.clone().unwrap(), m.body.clone().unwrap()))
            .collect();
        let (response, _) = exporter.export(&batch(&records), export_deadline()).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        receipts += 1;
    }
    let max_receive_count = tests::template::template()["Parameters"]["MaxReceiveCount"]["Default"]
        .as_u64()
        .unwrap();
    assert_eq!(receipts, max_receive_count, "the template's maxReceiveCount");
    assert_eq!(visible(&sqs, &queues.dead_letter).await, 1);
    assert!(stack.receiver.messages(Some(&key)).is_empty());

    // The cause is fixed; redrive puts the message back, and it is delivered.
    stack.receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        faults: Default::default(),
        always: None,
        ..FaultPlan::default()
    });
    let done = redrive::redrive(&sqs, &queues.dead_letter, &queues.queue, None)
        .await
        .unwrap();
    assert_eq!((done.moved, done.refused, done.copied_not_deleted), (1, 0, 0));
    assert_eq!(visible(&sqs, &queues.dead_letter).await, 0);

    let messages = poll(&sqs, &queues.queue).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body.as_deref(), Some(body.as_str()));
    let records = [(
        messages[0].message_id.clone().unwrap(),
        messages[0].body.clone().unwrap(),
    )];
    let (response, stats) = exporter.export(&batch(&records), export_deadline()).await;
    assert!(response.batch_item_failures.is_empty(), "{stats:?}");
    let delivered = stack.receiver.messages(Some(&key));
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].message["properties"]["eventId"], "redriven-1");
}

#[tokio::test]
async fn a_visibility_change_that_fails_changes_no_outcome() {
    let (stack, sqs, queues) = queues("requeue").await;
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    let down_env = unique("env-down");
    let down_key = unique("wk-down");
    put_destination(&stack.store().await, &destination(&project, &env, &key)).await;
    put_destination(&stack.store().await, &destination(&project, &down_env, &down_key)).await;
    stack.receiver.set_faults(FaultPlan {
        write_key: down_key.clone(),
        always: Some(Fault::retry_after(503, 60)),
        ..FaultPlan::default()
    });
    // Receipt handles SQS never issued (an expired one looks the same to SQS).
    let records = [
        ("ok", envelope(&project, &env, custom_event("v-ok", "u"))),
        ("down", envelope(&project, &down_env, custom_event("v-down", "u"))),
        ("bad", "{nope".to_owned()),
    ];
    let requeue = shared::requeue::SqsRequeue::new(sqs.clone(), &queues.queue);
    let exporter = exporter(stack, Duration::ZERO, fast_retries())
        .await
        .with_requeue(requeue, shared::requeue::RetrySchedule::default());
    let (response, stats) = exporter.export(&batch(&records), export_deadline()).await;
    assert_eq!(failed(&response), ["bad", "down"], "{stats:?}");
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (1, 1, 1),
        "the bad record counts as bad, the one Segment keeps refusing as transient"
    );
    assert_eq!(
        stats.visibility_failures, 2,
        "SQS refused both failed records' visibility changes"
    );
    assert_eq!(stack.receiver.messages(Some(&key)).len(), 1);
}

#[tokio::test]
async fn failed_records_come_back_when_export_says() {
    let (stack, sqs, queues) = queues("schedule").await;
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    put_destination(&stack.store().await, &destination(&project, &env, &key)).await;
    stack.receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        always: Some(Fault::retry_after(503, 60)),
        ..FaultPlan::default()
    });
    let body = envelope(&project, &env, custom_event("later-1", "u"));
    for b in [body.as_str(), "{nope"] {
        sqs.send_message()
            .queue_url(&queues.queue)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let received = sqs
        .receive_message()
        .queue_url(&queues.queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 2);
    let records: Vec<Value> = received
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "awsRegion": "us-east-1"})
        })
        .collect();
    let event = serde_json::from_value(json!({"Records": records})).unwrap();
    // Long enough that the export call and the first poll end well within it on a busy
    // machine (a 2 s one came back before the poll once, under four parallel builds).
    let schedule = shared::requeue::RetrySchedule {
        base: Duration::from_secs(6),
        cap: Duration::from_secs(6),
    };
    let exporter = exporter(stack, Duration::ZERO, fast_retries())
        .await
        .with_requeue(
            shared::requeue::SqsRequeue::new(sqs.clone(), &queues.queue),
            schedule,
        );
    let (response, _) = exporter.export(&event, export_deadline()).await;
    assert_eq!(response.batch_item_failures.len(), 2);
    // The bad record is back at once; the undeliverable one only after its 6 s (the
    // queue's own visibility timeout is 180 s).
    let now = poll(&sqs, &queues.queue).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].body(), Some("{nope"));
    tokio::time::sleep(Duration::from_millis(7_600)).await;
    let later = poll(&sqs, &queues.queue).await;
    assert!(
        later.iter().any(|m| m.body() == Some(body.as_str())),
        "back after its schedule"
    );
}

#[tokio::test]
async fn large_messages_are_redriven_in_batches_that_fit_and_all_are_counted() {
    let (_, sqs, queues) = queues("big").await;
    // Ten 100 KB messages: together four times what one SendMessageBatch may carry.
    let bodies: Vec<String> = (0..10)
        .map(|i| format!("{i}:{}", "x".repeat(100 * 1024)))
        .collect();
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queues.dead_letter)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let done = redrive::redrive(&sqs, &queues.dead_letter, &queues.queue, None)
        .await
        .unwrap();
    assert_eq!((done.moved, done.refused, done.copied_not_deleted), (10, 0, 0));
    assert_eq!(visible(&sqs, &queues.dead_letter).await, 0);
    assert_eq!(visible(&sqs, &queues.queue).await, 10);
}
