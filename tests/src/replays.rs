//! Replays through the real functions: the API called over its function URL, and
//! Lambda's two SQS event sources played against moto — the replay-request queue into
//! `replay`, the replay queue into `export` — until both are empty.

use crate::event_source::EventSource;
use crate::stack::{LOCAL_API_TOKEN, Stack};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One API call with `token`: status and body (`Null` when empty).
pub async fn api_as(
    stack: &Stack,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", stack.api_base()))
        .header("authorization", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// [`api_as`] with the read-write token.
pub async fn api(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    api_as(stack, LOCAL_API_TOKEN, method, path, body).await
}

/// What the two event sources handed over, and what failed.
#[derive(Debug, Default)]
pub struct Drained {
    pub tasks: usize,
    pub records: usize,
    pub failed: usize,
}

/// Polls the replay-request queue into `replay` and the replay queue into `export`
/// (batches of ten, as the template's event source) until a round finds both empty,
/// at most `rounds` rounds.
pub async fn drain_replays(stack: &Stack, rounds: usize) -> Drained {
    let queues = stack.queues.as_ref().expect("a stack with queues");
    let sqs = stack.sqs().await;
    let tasks = EventSource {
        sqs: sqs.clone(),
        queue_url: queues.replay_requests.clone(),
        batch_size: 1,
    };
    let records = EventSource {
        sqs,
        queue_url: queues.replay.clone(),
        batch_size: 10,
    };
    let mut drained = Drained::default();
    for _ in 0..rounds {
        let task = tasks.poll(stack.lambda(), "replay").await.expect("replay runs");
        let mut idle = task.received.is_empty();
        drained.tasks += task.received.len();
        drained.failed += task.failed.len();
        loop {
            let poll = records.poll(stack.lambda(), "export").await.expect("export runs");
            if poll.received.is_empty() {
                break;
            }
            idle = false;
            drained.records += poll.received.len();
            drained.failed += poll.failed.len();
        }
        if idle {
            break;
        }
    }
    drained
}
