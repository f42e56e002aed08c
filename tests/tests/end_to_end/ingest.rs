//! The `ingest` function under `cargo lambda watch`, as an SDK's events URL: a payload as
//! LaunchDarkly's server-side SDKs post it (payload id, schema 4) goes onto moto's queue,
//! packed, and through the real `export` binary to the Segment receiver; an SDK's retry of
//! the payload yields no new `messageId`; a key nobody registered is a 401 and queues
//! nothing. (Gzipped bodies are binary, which the local emulator cannot carry to a
//! function; `shared/src/ingest/payload.rs` tests them.)

use serde_json::{Value, json};
use std::collections::HashSet;
use tests::event_source::{EventSource, queue_depth};
use tests::fixtures::*;
use tests::stack::{Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

/// Posts a payload to `/bulk` as the server-side SDKs do.
async fn post_bulk(sdk_key: &str, payload_id: &str, events: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/bulk", stack().lambda().function_url("ingest")))
        .header("authorization", sdk_key)
        .header("content-type", "application/json")
        .header("x-launchdarkly-event-schema", "4")
        .header("x-launchdarkly-payload-id", payload_id)
        .header("user-agent", "PythonClient/9.20.0")
        .body(events.to_string())
        .send()
        .await
        .unwrap()
}

/// Hands everything on the queue to `export`, as Lambda's event source would.
async fn drain(source: &EventSource) {
    for _ in 0..20 {
        let poll = source.poll(stack().lambda(), "export").await.unwrap();
        assert!(poll.failed.is_empty(), "export failed records: {:?}", poll.failed);
        if poll.received.is_empty() {
            return;
        }
    }
}

#[tokio::test]
async fn sdk_payloads_reach_segment_once_and_unknown_keys_are_refused() {
    let stack = stack();
    let (project, env) = (unique("sdkproj"), unique("env"));
    let write_key = unique("wk-ingest");
    put_destination(&stack.store().await, &destination(&project, &env, &write_key)).await;
    put_settings(&stack.store().await, &project, &env, false, &["checkout-flow"]).await;
    let sdk_key = unique("sdk-key");
    register_event_sources(stack, &project, &env, json!({"sdkKeys": [sdk_key]})).await;
    let queues = stack.queues.as_ref().expect("the stack has the export queue");
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: queues.queue.clone(),
        batch_size: 10,
    };
    drain(&source).await;

    // What a server-side SDK sends: an index event, feature events for a flag with
    // detailed events, a custom event, and a summary.
    let events = json!([
        {"kind": "index", "creationDate": 1_764_093_600_000_i64, "context": {"kind": "user", "key": "u1", "name": "Ann"}},
        {"kind": "feature", "creationDate": 1_764_093_600_001_i64, "key": "checkout-flow", "version": 7,
         "contextKeys": {"user": "u1"}, "variation": 1, "value": true, "default": false},
        {"kind": "feature", "creationDate": 1_764_093_600_002_i64, "key": "other-flag", "version": 2,
         "contextKeys": {"user": "u1"}, "variation": 0, "value": "a", "default": "b"},
        {"kind": "custom", "creationDate": 1_764_093_600_003_i64, "key": "purchase",
         "contextKeys": {"user": "u1"}, "data": {"sku": "x"}, "metricValue": 9.5},
        {"kind": "summary", "startDate": 1, "endDate": 2, "features": {}}
    ]);
    let r = post_bulk(&sdk_key, "payload-0001", &events).await;
    assert_eq!(r.status(), 202);
    assert!(r.headers().contains_key("date"), "SDKs read Date");
    // The SDK retries the same payload (as after a 503): same ids, no new messageId.
    assert_eq!(post_bulk(&sdk_key, "payload-0001", &events).await.status(), 202);
    drain(&source).await;

    let accepted: Vec<Value> = stack
        .receiver
        .messages(Some(&write_key))
        .into_iter()
        .map(|a| a.message)
        .collect();
    let ids: HashSet<&str> = accepted
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "the enabled flag's evaluation and the custom event, once each: {accepted:#?}"
    );
    let feature = accepted.iter().find(|m| m["event"] == "feature").unwrap();
    assert_eq!(
        (
            &feature["userId"],
            &feature["properties"]["key"],
            &feature["properties"]["flagVersion"]
        ),
        (&json!("u1"), &json!("checkout-flow"), &json!(7))
    );
    let custom = accepted.iter().find(|m| m["event"] == "custom").unwrap();
    assert_eq!(custom["properties"]["metricValue"], json!(9.5));

    // A key nobody registered: 401 in the API's error shape, nothing queued.
    let before = queue_depth(&source.sqs, &queues.queue).await.unwrap();
    let r = post_bulk("sdk-not-registered-anywhere", "payload-0002", &events).await;
    assert_eq!(r.status(), 401);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(queue_depth(&source.sqs, &queues.queue).await.unwrap(), before);

    // A body that is no events payload (400), and one over the limit (413).
    let url = format!("{}/bulk", stack.lambda().function_url("ingest"));
    for (body, status) in [
        ("{\"not\": \"events\"}".to_owned(), 400),
        (" ".repeat(shared::ingest::payload::MAX_PAYLOAD_BYTES + 1), 413),
    ] {
        let r = reqwest::Client::new()
            .post(&url)
            .header("authorization", &sdk_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
    }

    // One EMF line per request, each counted once under its cause.
    let expected = [
        ("PayloadsAccepted", 2),
        ("PayloadsRefusedUnknownKey", 1),
        ("PayloadsRefusedMalformed", 1),
        ("PayloadsRefusedTooLarge", 1),
        ("QueueFailures", 0),
        ("SourceLookupFailures", 0),
    ];
    let mut counted = [("", 0); 6];
    for _ in 0..50 {
        counted = ingest_counts(expected.map(|(name, _)| name));
        if counted == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted, expected);
}

/// The sums of `names` over the EMF lines `ingest` logged.
fn ingest_counts<const N: usize>(names: [&'static str; N]) -> [(&'static str, u64); N] {
    let log = std::fs::read_to_string(&stack().lambda().service.log).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with("{\"") && l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("EMF lines are JSON"))
        .filter(|l: &Value| l["FunctionName"] == "ingest")
        .collect();
    names.map(|name| (name, lines.iter().filter_map(|l| l[name].as_u64()).sum()))
}
