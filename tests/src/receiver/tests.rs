//! The receiver over HTTP: routes, JSON shapes, the body limit, auth and faults.

use super::{Fault, FaultPlan, MAX_BODY_BYTES, ReceiverHandle, start, start_sink};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PAGE: &str = r#"{"batch":[{"type":"page","userId":"u"}],"sentAt":"t"}"#;
/// The Basic authorization of write key `wk`.
const WK: &str = "Basic d2s6";

async fn receiver() -> ReceiverHandle {
    start(([127, 0, 0, 1], 0).into()).await.unwrap()
}

async fn send(
    rx: &ReceiverHandle,
    path: &str,
    auth: Option<&str>,
    body: String,
) -> reqwest::Result<(StatusCode, Value)> {
    let mut request = Client::new().post(format!("{}{path}", rx.base_url())).body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await?;
    Ok((response.status(), response.json().await?))
}

async fn get(rx: &ReceiverHandle, path: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{}{path}", rx.base_url())).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn accepts_and_reports_messages_per_write_key() {
    let rx = receiver().await;
    let (status, body) = send(&rx, "/v1/batch", Some(WK), PAGE.into()).await.unwrap();
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = send(&rx, "/v1/track", Some(WK), r#"{"event":"e","userId":"u"}"#.into())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, all) = get(&rx, "/__receiver/messages").await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 2);
    assert_eq!(all["messages"][0]["writeKey"], "wk");
    assert_eq!(all["messages"][0]["sentAt"], "t");
    assert_eq!(all["messages"][1]["message"]["type"], "track");
    let (_, none) = get(&rx, "/__receiver/messages?writeKey=other").await;
    assert_eq!(none, json!({"messages": []}));
    let (_, requests) = get(&rx, "/__receiver/requests?writeKey=wk").await;
    let first = &requests["requests"][0];
    assert_eq!(
        (first["path"].as_str(), first["status"].as_u64()),
        (Some("/v1/batch"), Some(200))
    );
    assert_eq!(first["messages"], 1);

    let reset = Client::new()
        .post(format!("{}/__receiver/reset", rx.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.json::<Value>().await.unwrap(), json!({"ok": true}));
    assert!(rx.messages(None).is_empty() && rx.requests(None).is_empty());
}

#[tokio::test]
async fn rejects_what_segment_rejects() {
    let rx = receiver().await;
    let (status, body) = send(&rx, "/v1/batch", None, PAGE.into()).await.unwrap();
    assert_eq!(
        (status, &body["success"]),
        (StatusCode::UNAUTHORIZED, &json!(false))
    );
    let (status, body) = send(
        &rx,
        "/v1/batch",
        Some(WK),
        r#"{"batch":[{"type":"page"}]}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("anonymousId"));
    // Trailing spaces keep the JSON valid: exactly the limit passes, one byte more does not.
    let exact = format!("{PAGE}{}", " ".repeat(MAX_BODY_BYTES - PAGE.len()));
    let (status, _) = send(&rx, "/v1/batch", Some(WK), exact.clone()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&rx, "/v1/batch", Some(WK), exact + " ").await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("500,000"));
    let seen: Vec<(u16, usize)> = rx.requests(None).iter().map(|r| (r.status, r.bytes)).collect();
    assert_eq!(seen[0].0, 401);
    assert_eq!(seen[2..], [(200, MAX_BODY_BYTES), (400, MAX_BODY_BYTES + 1)]);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_not_found() {
    let rx = receiver().await;
    let not_found = (StatusCode::NOT_FOUND, json!({"error": "not found"}));
    assert_eq!(get(&rx, "/nowhere").await, not_found);
    assert_eq!(get(&rx, "/v1/batch").await, not_found);
    assert_eq!(
        send(&rx, "/__receiver/messages", None, String::new())
            .await
            .unwrap(),
        not_found
    );
    let (status, body) = send(&rx, "/__receiver/faults", None, "{".into()).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn injects_the_planned_faults() {
    let rx = receiver().await;
    let plan = json!({"writeKey": "wk", "faults": [
        {"status": 429, "retryAfter": "7", "body": "slow down"}, {"drop": true}, {"delayMs": 300}
    ]});
    let (status, body) = send(&rx, "/__receiver/faults", None, plan.to_string())
        .await
        .unwrap();
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));

    let response = Client::new()
        .post(format!("{}/v1/batch", rx.base_url()))
        .header("authorization", WK)
        .body(PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.json::<Value>().await.unwrap()["message"], "slow down");
    send(&rx, "/v1/batch", Some(WK), PAGE.into())
        .await
        .expect_err("a dropped connection");
    assert!(rx.messages(None).is_empty());
    let started = Instant::now();
    let (status, _) = send(&rx, "/v1/batch", Some(WK), PAGE.into()).await.unwrap();
    assert!(status == StatusCode::OK && started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<u16> = rx.requests(Some("wk")).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 0, 200]);

    rx.set_faults(FaultPlan {
        write_key: "wk".into(),
        faults: Default::default(),
        always: Some(Fault::status(503)),
        refuse_event_ids: Vec::new(),
    });
    for _ in 0..2 {
        let (status, _) = send(&rx, "/v1/batch", Some(WK), PAGE.into()).await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(rx.messages(None).len(), 1);
}

#[tokio::test]
async fn the_sink_counts_without_keeping() {
    let rx = start_sink(([127, 0, 0, 1], 0).into()).await.unwrap();
    let (status, _) = send(&rx, "/v1/batch", Some(WK), PAGE.into()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&rx, "/v1/batch", Some(WK), "[]".into()).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(rx.messages(None).is_empty());
    let counted: Vec<(u16, usize)> = rx.requests(None).iter().map(|r| (r.status, r.messages)).collect();
    assert_eq!(counted, [(200, 1), (400, 0)]);
}
