//! Delivery status per destination (README, "Delivery status"): the table's conditional
//! updates keep what the model (`DeliveryStatus::apply`) says, on moto; `export` writes one
//! update per destination per invocation and never a key or an event value; and through
//! the real binaries, the API shows `export`'s deliveries and failures on the destination.

use aws_lambda_events::sqs::SqsBatchResponse;
use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::delivery_status::{DeliveryReport, DeliveryStatus};
use shared::store::{DeliveryStore, Store};
use std::time::Duration;
use tests::fixtures::*;
use tests::receiver::{Fault, FaultPlan};
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{LOCAL_API_TOKEN, shared};

const HOUR: u64 = 3_600_000;

#[tokio::test]
async fn the_tables_updates_keep_what_the_model_says() {
    let store = shared(true).store().await;
    let (project, env) = (unique("dproj"), unique("env"));
    let start = 1_795_629_600_000 - 1_795_629_600_000 % HOUR;
    // Deliveries, failures, a failing spell, hours rolling over, and a slot reused a day
    // later.
    let reports = [
        (0, 10, 0, None),
        (60_000, 5, 1, Some("Segment refused the request with HTTP 400")),
        (
            HOUR + 1,
            0,
            7,
            Some("Segment still failing after 4 attempts (HTTP 503)"),
        ),
        (
            HOUR + 2,
            0,
            3,
            Some("Segment still failing after 4 attempts (HTTP 503)"),
        ),
        (2 * HOUR, 4, 0, None),
        (25 * HOUR + 5, 2, 0, None),
        (25 * HOUR + 6, 0, 2, Some("x".repeat(300).leak() as &str)),
    ];
    let mut model = DeliveryStatus::default();
    for (offset, delivered, failed, failure) in reports {
        let report = DeliveryReport {
            delivered,
            failed,
            skipped: shared::delivery_status::Skipped::default(),
            failure: failure.map(str::to_owned),
            at: start + offset,
        };
        store
            .record_delivery(&project, &env, "d1", &report)
            .await
            .unwrap();
        model.apply(&report);
        let stored = &store.delivery_statuses(&project, &env).await.unwrap()["d1"];
        for now in [report.at, report.at + HOUR, report.at + 23 * HOUR] {
            assert_eq!(
                stored.to_json(now),
                model.to_json(now),
                "after {report:?}, seen at {now}"
            );
        }
    }
    let last = &store.delivery_statuses(&project, &env).await.unwrap()["d1"];
    assert_eq!(last.state(), "failing");
    assert_eq!(
        last.last_failure.as_ref().unwrap().len(),
        200,
        "reasons are bounded"
    );
    assert!(
        last.hours.len() <= 24,
        "the item never grows past a day of buckets"
    );

    store.forget_delivery(&project, &env, "d1").await;
    assert!(store.delivery_statuses(&project, &env).await.unwrap().is_empty());
}

fn current_hour() -> u64 {
    shared::timestamp::now_millis() / HOUR
}

/// What the second of two invocations (20 custom events each) did to the table.
struct SecondInvocation {
    /// DynamoDB requests it made.
    requests: u64,
    /// An hour began while it ran (a slot reset: one more UpdateItem per destination).
    hour_began: bool,
    response: SqsBatchResponse,
}

/// Two invocations of `exporter` for the environment; the first reads the environment
/// (and may begin an hour's buckets), so the second shows the steady state.
async fn second_invocation(exporter: &TestExporter, project: &str, env: &str) -> SecondInvocation {
    let records = custom_records(project, env, 0..40);
    let deadline = || Deadline::after(Duration::from_secs(20));
    exporter.export(&batch(&records[..20]), deadline()).await;
    let (before, hour) = (exporter.store().inner().requests(), current_hour());
    let (response, _) = exporter.export(&batch(&records[20..]), deadline()).await;
    SecondInvocation {
        requests: exporter.store().inner().requests() - before,
        hour_began: current_hour() != hour,
        response,
    }
}

/// Custom events with values that must never reach a status.
fn custom_records(project: &str, env: &str, ids: std::ops::Range<u32>) -> Vec<(String, String)> {
    ids.map(|i| {
        let event = json!({"kind": "custom", "key": "purchase", "creationDate": 1_764_093_600_000_i64,
                           "id": format!("ev-{i}"), "contextKeys": {"user": "secret-user-value"},
                           "data": {"card": "secret-event-value"}});
        (format!("m{i}"), envelope(project, env, event))
    })
    .collect()
}

/// A healthy destination and one whose key Segment refuses with 503, in a new environment.
async fn two_destinations(healthy: &str, broken: &str) -> (String, String, String, String) {
    let stack = shared(true);
    let (project, env) = (unique("dproj"), unique("env"));
    let store = stack.store().await;
    let (ok, bad) = (
        destination(&project, &env, healthy),
        destination(&project, &env, broken),
    );
    put_destination(&store, &ok).await;
    put_destination(&store, &bad).await;
    stack.receiver.set_faults(FaultPlan {
        write_key: broken.to_owned(),
        always: Some(Fault::status(503)),
        ..FaultPlan::default()
    });
    (project, env, ok.id, bad.id)
}

#[tokio::test]
async fn export_writes_at_most_one_update_per_destination_per_invocation_and_no_secret() {
    let stack = shared(true);
    let (healthy, broken) = (unique("wk-delivering"), unique("wk-failing"));
    let (project, env, ok_id, bad_id) = two_destinations(&healthy, &broken).await;
    let exporter = exporter(stack, Duration::from_secs(30), fast_retries())
        .await
        .with_status_interval(Duration::ZERO);
    let second = second_invocation(&exporter, &project, &env).await;
    // Across an hour's start a slot is reset first: a second UpdateItem.
    if !second.hour_began {
        assert_eq!(
            second.requests, 2,
            "one UpdateItem per destination, the environment cached"
        );
    }
    let response = second.response;
    assert_eq!(
        failed(&response).len(),
        20,
        "the broken destination's records fail"
    );

    let statuses = stack
        .store()
        .await
        .delivery_statuses(&project, &env)
        .await
        .unwrap();
    let ok = &statuses[&ok_id];
    assert_eq!(
        (ok.state(), ok.hours.iter().map(|h| h.delivered).sum::<u64>()),
        ("delivering", 40)
    );
    let bad = &statuses[&bad_id];
    assert_eq!(
        (bad.state(), bad.hours.iter().map(|h| h.failed).sum::<u64>()),
        ("failing", 40)
    );
    let reason = bad.last_failure.clone().unwrap();
    assert!(reason.contains("HTTP 503"), "{reason}");
    let shown = serde_json::to_string(&bad.to_json(bad.last_failed_at.unwrap())).unwrap();
    for secret in [broken.as_str(), "secret-user-value", "secret-event-value"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(bad.failing_since.unwrap() <= bad.last_failed_at.unwrap());

    // With an interval, a warm process writes an unchanged status at most once per
    // interval: the second invocation changes nothing either destination shows.
    let (project, env, ok_id, _) = two_destinations(&healthy, &broken).await;
    let exporter = tests::fixtures::exporter(stack, Duration::from_secs(30), fast_retries())
        .await
        .with_status_interval(Duration::from_secs(60));
    let second = second_invocation(&exporter, &project, &env).await;
    if second.hour_began {
        return; // An hour began: its counts were written, as they must be.
    }
    assert_eq!(second.requests, 0, "nothing changed: nothing written");
    let statuses = stack
        .store()
        .await
        .delivery_statuses(&project, &env)
        .await
        .unwrap();
    assert_eq!(
        statuses[&ok_id].hours.iter().map(|h| h.delivered).sum::<u64>(),
        20,
        "the first invocation's"
    );
}

/// The destination as the API shows it, through the `destinations` binary.
async fn shown(project: &str, env: &str, id: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/destinations/{project}/{env}/{id}",
            shared(true).api_base()
        ))
        .header("authorization", LOCAL_API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-access"], "read-write");
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_api_shows_what_the_export_binary_delivered_and_failed() {
    let stack = shared(true);
    let (project, env) = (unique("dproj"), unique("env"));
    let key = unique("wk-status");
    let d = destination(&project, &env, &key);
    put_destination(&stack.store().await, &d).await;
    assert_eq!(shown(&project, &env, &d.id).await["_delivery"]["state"], "idle");

    let event = |i: u32| {
        envelope(
            &project,
            &env,
            json!({"kind": "custom", "key": "k", "creationDate": 1_764_093_600_000_i64,
                                         "id": format!("e-{i}"), "contextKeys": {"user": "u"}}),
        )
    };
    let (a, b) = (event(1), event(2));
    let response = stack
        .lambda()
        .invoke("export", &sqs_event([("r1", a.as_str()), ("r2", b.as_str())]))
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    let delivery = shown(&project, &env, &d.id).await["_delivery"].clone();
    assert_eq!(delivery["state"], "delivering", "{delivery}");
    assert_eq!(delivery["hours"][0]["delivered"], 2, "{delivery}");

    stack.receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        always: Some(Fault::status(401)),
        ..FaultPlan::default()
    });
    let c = event(3);
    let response = stack
        .lambda()
        .invoke("export", &sqs_event([("r3", c.as_str())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["r3"]);
    let delivery = shown(&project, &env, &d.id).await["_delivery"].clone();
    assert_eq!(delivery["state"], "failing", "{delivery}");
    assert!(
        delivery["lastFailure"].as_str().unwrap().contains("write key"),
        "{delivery}"
    );
    assert_eq!(delivery["failingSince"], delivery["lastFailedAt"]);
    assert!(!delivery.to_string().contains(&key));
}

#[tokio::test]
async fn a_status_that_cannot_be_written_is_counted_and_changes_no_outcome() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = shared(true);
    let (project, env, key) = (unique("dproj"), unique("env"), unique("wk"));
    let d = destination(&project, &env, &key);
    put_destination(&stack.store().await, &d).await;
    // A status item whose delivered counts are strings: DynamoDB refuses to add to them.
    let hour = shared::timestamp::now_millis() / HOUR * HOUR;
    let slots = (0..shared::delivery_status::HOURS_KEPT).flat_map(|slot| {
        [
            (format!("h{slot}"), AttributeValue::N(hour.to_string())),
            (format!("d{slot}"), AttributeValue::S("corrupt".into())),
        ]
    });
    stack
        .put_raw_item(shared::store::delivery_pk(&project, &env), &d.id, slots.collect())
        .await;
    let exporter = exporter(stack, Duration::from_secs(30), fast_retries())
        .await
        .with_status_interval(Duration::ZERO);
    let records = [("m", envelope(&project, &env, custom_event("st-1", "u")))];
    let (response, stats) = exporter
        .export(&batch(&records), Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!((stats.exported, stats.status_write_failures), (1, 1));
    assert_eq!(stack.receiver.messages(Some(&key)).len(), 1);
}

/// A destination deleted while an `export` process still holds it in its cache: that
/// export still delivers to it (it cannot know), but never writes its delivery status
/// again, and nothing of it stays in the table but an expiring marker.
#[tokio::test]
async fn a_deleted_destinations_status_is_not_written_again_by_a_cached_export() {
    let stack = shared(true);
    let (project, env, key) = (unique("dproj"), unique("env"), unique("wk-deleted"));
    let store = stack.store().await;
    let d = destination(&project, &env, &key);
    put_destination(&store, &d).await;
    let exporter = exporter(stack, Duration::from_secs(60), fast_retries())
        .await
        .with_status_interval(Duration::ZERO);
    let records = custom_records(&project, &env, 0..2);
    let deadline = || Deadline::after(Duration::from_secs(20));
    exporter.export(&batch(&records[..1]), deadline()).await;
    assert!(
        store
            .delivery_statuses(&project, &env)
            .await
            .unwrap()
            .contains_key(&d.id)
    );

    // Deleted as the API deletes it: the destination, then its status.
    store.delete_destination(&project, &env, &d.id).await.unwrap();
    store.forget_delivery(&project, &env, &d.id).await;
    let (response, stats) = exporter.export(&batch(&records[1..]), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(stats.status_write_failures, 0, "a gone destination is no failure");
    assert!(
        store.delivery_statuses(&project, &env).await.unwrap().is_empty(),
        "the status was written again"
    );
}
