//! The `ingest` function under `cargo lambda watch`, as an SDK's events URL: a payload as
//! LaunchDarkly's server-side SDKs post it (payload id, schema 4) goes onto moto's queue,
//! packed, and through the real `export` binary to the Segment receiver; an SDK's retry of
//! the payload yields no new `messageId`; a key nobody registered is a 401 and queues
//! nothing; a browser's post from an origin its client-side ID does not allow is a 403 and
//! queues nothing, one from an allowed origin reaches Segment. (Gzipped bodies are binary,
//! which the local emulator cannot carry to a function; `shared/src/ingest/payload.rs`
//! tests them.)

use serde_json::{Value, json};
use std::collections::HashSet;
use tests::event_source::{EventSource, queue_depth};
use tests::fixtures::*;
use tests::stack::{Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

/// The tests here sum `ingest`'s EMF lines in one log: one at a time, each counting what it
/// added.
static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _counting = COUNTING.lock().await;
    let counted_before = ingest_counts(COUNTERS);
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
    assert_counted(counted_before, [2, 1, 1, 1, 0, 0, 0]).await;
}

/// A page on an origin the client-side ID does not allow: its preflight is a 403 without
/// CORS headers, and its post (or one without Origin) a 403 that queues nothing; the
/// allowed origin's preflight and post are answered for it, and its events reach Segment.
#[tokio::test]
async fn browser_posts_follow_the_client_side_ids_allowed_origins() {
    let _counting = COUNTING.lock().await;
    let counted_before = ingest_counts(COUNTERS);
    let stack = stack();
    let (project, env) = (unique("originproj"), unique("env"));
    let write_key = unique("wk-origins");
    put_destination(&stack.store().await, &destination(&project, &env, &write_key)).await;
    let client_side_id = unique("cs-shop");
    register_event_sources(
        stack,
        &project,
        &env,
        json!({"clientSideIds": [{"id": client_side_id, "allowedOrigins": ["https://shop.example"]}]}),
    )
    .await;
    let queues = stack.queues.as_ref().expect("the stack has the export queue");
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: queues.queue.clone(),
        batch_size: 10,
    };
    drain(&source).await;
    let url = format!(
        "{}/events/bulk/{client_side_id}",
        stack.lambda().function_url("ingest")
    );
    let http = reqwest::Client::new();
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-launchdarkly-event-schema",
            )
            .send()
    };
    let post = |origin: Option<&str>, event_key: &str| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-launchdarkly-event-schema", "4")
            .header("x-launchdarkly-payload-id", unique("payload"))
            .body(
                json!([{"kind": "custom", "creationDate": 1_764_093_600_000_i64, "key": event_key,
                        "contextKeys": {"user": "u1"}}])
                .to_string(),
            );
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let allow_origin = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let r = preflight("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(allow_origin(&r), None);
    let r = preflight("https://shop.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(allow_origin(&r).as_deref(), Some("https://shop.example"));

    let before = queue_depth(&source.sqs, &queues.queue).await.unwrap();
    for origin in [Some("https://evil.example"), None] {
        let r = post(origin, "refused-purchase").await.unwrap();
        assert_eq!(r.status(), 403, "{origin:?}");
        assert_eq!(allow_origin(&r), None);
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["code"], "forbidden");
        assert!(
            error["message"].as_str().unwrap().contains("allowedOrigins"),
            "{error}"
        );
    }
    assert_eq!(
        queue_depth(&source.sqs, &queues.queue).await.unwrap(),
        before,
        "nothing queued"
    );
    let r = post(Some("https://shop.example"), "allowed-purchase")
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(allow_origin(&r).as_deref(), Some("https://shop.example"));
    drain(&source).await;
    let keys: Vec<Value> = stack
        .receiver
        .messages(Some(&write_key))
        .into_iter()
        .map(|a| a.message["properties"]["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [json!("allowed-purchase")],
        "the allowed origin's event only"
    );

    // The refused preflight and two refused posts; the accepted post.
    assert_counted(counted_before, [1, 0, 0, 0, 3, 0, 0]).await;
}

/// `ingest`'s counters, in the order of [`assert_counted`]'s additions.
const COUNTERS: [&str; 7] = [
    "PayloadsAccepted",
    "PayloadsRefusedUnknownKey",
    "PayloadsRefusedMalformed",
    "PayloadsRefusedTooLarge",
    "PayloadsRefusedOrigin",
    "QueueFailures",
    "SourceLookupFailures",
];

/// Waits until each of [`COUNTERS`] is `added` over its count `before`.
async fn assert_counted(before: [(&'static str, u64); 7], added: [u64; 7]) {
    let mut expected = before;
    for (e, a) in expected.iter_mut().zip(added) {
        e.1 += a;
    }
    let mut counted = before;
    for _ in 0..50 {
        counted = ingest_counts(COUNTERS);
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
