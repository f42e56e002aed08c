//! A stand-in for Segment's HTTP Tracking API that enforces Segment's documented
//! rules, records what it accepted, and injects faults per write key.
//!
//! Rules (<https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/>):
//! Basic auth with the write key as user name; a message ≤ 32,000 bytes; a body
//! ≤ 500,000 bytes; ≤ 2,500 messages per batch; `userId` or `anonymousId` on every
//! message; `event` on every track.
//!
//! Control API, for tests and the local run:
//! - `POST /__receiver/faults` `{"writeKey": k, "faults": [Fault…], "always": Fault?}`
//!   where a Fault is `{"status": 500, "retryAfter": "2", "body": "…"}`, `{"delayMs": 3000}`
//!   (take the messages, then answer late; with `status`: answer that late) or
//!   `{"drop": true}` (close the connection without an answer).
//!   Queued faults are used one per request; `always` applies after them.
//! - `GET /__receiver/messages[?writeKey=k]`, `GET /__receiver/requests[?writeKey=k]`,
//!   `POST /__receiver/reset`.

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub const MAX_MESSAGE_BYTES: usize = 32_000;
pub const MAX_BODY_BYTES: usize = 500_000;
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// A fault to inject into one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Self {
            status: Some(status),
            retry_after: Some(seconds.to_string()),
            ..Self::default()
        }
    }

    pub fn delay(ms: u64) -> Self {
        Self {
            delay_ms: Some(ms),
            ..Self::default()
        }
    }

    pub fn drop_connection() -> Self {
        Self {
            drop: true,
            ..Self::default()
        }
    }
}

/// The faults planned for one write key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    pub write_key: String,
    #[serde(default)]
    pub faults: VecDeque<Fault>,
    #[serde(default)]
    pub always: Option<Fault>,
}

/// One message the receiver accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub write_key: String,
    pub message: Value,
    /// `sentAt` of the batch it came in.
    pub sent_at: Option<String>,
}

/// One request the receiver saw, whatever it answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub write_key: Option<String>,
    pub path: String,
    /// Milliseconds since the receiver started.
    pub at_ms: u64,
    /// 0 when the connection was dropped.
    pub status: u16,
    pub messages: usize,
    pub bytes: usize,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Default)]
struct Inner {
    accepted: Vec<Accepted>,
    requests: Vec<RequestRecord>,
    faults: HashMap<String, FaultPlan>,
}

/// The receiver's memory, shared by its connections and its owner.
pub struct Receiver {
    started: Instant,
    inner: Mutex<Inner>,
    /// Benchmark sink: check the limits and count, but keep no messages.
    sink: bool,
}

impl Receiver {
    fn new(sink: bool) -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
            sink,
        }
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        self.lock().faults.insert(plan.write_key.clone(), plan);
    }

    /// Accepted messages, for one write key or all.
    pub fn messages(&self, write_key: Option<&str>) -> Vec<Accepted> {
        self.lock()
            .accepted
            .iter()
            .filter(|a| write_key.is_none_or(|k| a.write_key == k))
            .cloned()
            .collect()
    }

    pub fn requests(&self, write_key: Option<&str>) -> Vec<RequestRecord> {
        self.lock()
            .requests
            .iter()
            .filter(|r| write_key.is_none_or(|k| r.write_key.as_deref() == Some(k)))
            .cloned()
            .collect()
    }

    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("receiver lock")
    }

    fn next_fault(&self, write_key: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let plan = inner.faults.get_mut(write_key)?;
        plan.faults.pop_front().or_else(|| plan.always.clone())
    }

    fn record(&self, mut r: RequestRecord) {
        r.at_ms = self.started.elapsed().as_millis() as u64;
        self.lock().requests.push(r);
    }
}

/// A running receiver: its address and its memory.
#[derive(Clone)]
pub struct ReceiverHandle {
    pub addr: SocketAddr,
    pub state: Arc<Receiver>,
}

impl ReceiverHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl std::ops::Deref for ReceiverHandle {
    type Target = Receiver;
    fn deref(&self) -> &Receiver {
        &self.state
    }
}

/// Starts a receiver on `addr` (port 0 for any free port) in the current Tokio runtime.
pub async fn start(addr: SocketAddr) -> std::io::Result<ReceiverHandle> {
    serve(addr, false).await
}

/// Starts a benchmark sink: Basic auth and Segment's size and count limits are checked,
/// requests are counted, messages are neither parsed nor kept.
pub async fn start_sink(addr: SocketAddr) -> std::io::Result<ReceiverHandle> {
    serve(addr, true).await
}

async fn serve(addr: SocketAddr, sink: bool) -> std::io::Result<ReceiverHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Receiver::new(sink));
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(state.clone(), req));
                // An error here is a dropped connection: deliberate, or the client's.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(ReceiverHandle { addr, state })
}

/// Starts a receiver on 127.0.0.1:`port` (0: any free port) on its own thread and
/// runtime, so that it outlives any test's runtime.
pub fn start_in_background(port: u16) -> ReceiverHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("segment-receiver".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(async move {
                let handle = start(([127, 0, 0, 1], port).into())
                    .await
                    .unwrap_or_else(|e| panic!("binding the receiver to 127.0.0.1:{port}: {e}"));
                tx.send(handle).expect("hand over the receiver");
                std::future::pending::<()>().await;
            });
        })
        .expect("receiver thread");
    rx.recv().expect("receiver started")
}

/// Closing the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

type Reply = Result<Response<Full<Bytes>>, Dropped>;

async fn handle(state: Arc<Receiver>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, "/v1/batch" | "/v1/track" | "/v1/page") => segment(state, req, path).await,
        (Method::GET, "/__receiver/messages") => {
            let key = query_param(&query, "writeKey");
            Ok(json_reply(
                200,
                &json!({"messages": state.messages(key.as_deref())}),
            ))
        }
        (Method::GET, "/__receiver/requests") => {
            let key = query_param(&query, "writeKey");
            Ok(json_reply(
                200,
                &json!({"requests": state.requests(key.as_deref())}),
            ))
        }
        (Method::POST, "/__receiver/faults") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            match serde_json::from_slice::<FaultPlan>(&body) {
                Ok(plan) => {
                    state.set_faults(plan);
                    Ok(json_reply(200, &json!({"ok": true})))
                }
                Err(e) => Ok(json_reply(400, &json!({"error": e.to_string()}))),
            }
        }
        (Method::POST, "/__receiver/reset") => {
            state.reset();
            Ok(json_reply(200, &json!({"ok": true})))
        }
        _ => Ok(json_reply(404, &json!({"error": "not found"}))),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

async fn segment(state: Arc<Receiver>, req: Request<Incoming>, path: String) -> Reply {
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut record = RequestRecord {
        write_key: header(http::header::AUTHORIZATION)
            .as_deref()
            .and_then(write_key_of),
        path: path.clone(),
        at_ms: 0,
        status: 0,
        messages: 0,
        bytes: 0,
        user_agent: header(http::header::USER_AGENT),
        content_type: header(http::header::CONTENT_TYPE),
    };
    // Read at most one byte past the limit, to tell "too large" from "just right".
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES + 1).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            record.status = 400;
            record.bytes = MAX_BODY_BYTES + 1;
            state.record(record);
            return Ok(error(400, "request body exceeds 500,000 bytes"));
        }
    };
    record.bytes = body.len();

    let Some(write_key) = record.write_key.clone() else {
        record.status = 401;
        state.record(record);
        return Ok(error(
            401,
            "missing or malformed Basic authorization with the write key",
        ));
    };

    let fault = state.next_fault(&write_key).unwrap_or_default();
    let delay = Duration::from_millis(fault.delay_ms.unwrap_or(0));
    if fault.drop || fault.status.is_some() {
        tokio::time::sleep(delay).await;
        if fault.drop {
            state.record(record);
            return Err(Dropped);
        }
        let status = fault.status.unwrap_or(500);
        record.status = status;
        state.record(record);
        let mut reply = error(status, fault.body.as_deref().unwrap_or("injected fault"));
        if let Some(ra) = &fault.retry_after {
            reply
                .headers_mut()
                .insert(http::header::RETRY_AFTER, ra.parse().expect("Retry-After value"));
        }
        return Ok(reply);
    }

    // A slow reply: Segment has taken the messages even if the client gives up waiting.
    let reply = accept(&state, record, &path, &body, &write_key);
    tokio::time::sleep(delay).await;
    Ok(reply)
}

fn accept(
    state: &Receiver,
    mut record: RequestRecord,
    path: &str,
    body: &[u8],
    write_key: &str,
) -> Response<Full<Bytes>> {
    if state.sink {
        return match check_limits(body) {
            Ok(count) => {
                record.status = 200;
                record.messages = count;
                state.record(record);
                json_reply(200, &json!({"success": true}))
            }
            Err(reason) => {
                record.status = 400;
                state.record(record);
                error(400, &reason)
            }
        };
    }
    match validate(path, body) {
        Ok((messages, sent_at)) => {
            record.status = 200;
            record.messages = messages.len();
            state.record(record);
            let mut inner = state.lock();
            for message in messages {
                inner.accepted.push(Accepted {
                    write_key: write_key.to_owned(),
                    message,
                    sent_at: sent_at.clone(),
                });
            }
            json_reply(200, &json!({"success": true}))
        }
        Err(reason) => {
            record.status = 400;
            state.record(record);
            error(400, &reason)
        }
    }
}

/// The write key of a `Basic base64(key:)` header.
fn write_key_of(authorization: &str) -> Option<String> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, _password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<String>,
}

/// Segment's rules for one request; the accepted messages and the batch's `sentAt`.
fn validate(path: &str, body: &[u8]) -> Result<(Vec<Value>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let (raws, sent_at, implied_type) = if path == "/v1/batch" {
        let b: BatchBody = serde_json::from_str(text).map_err(|e| format!("invalid batch JSON: {e}"))?;
        (b.batch, b.sent_at, None)
    } else {
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        (vec![raw], None, Some(path.trim_start_matches("/v1/")))
    };
    if raws.len() > MAX_BATCH_MESSAGES {
        return Err(format!(
            "{} messages in one batch; the limit is 2,500",
            raws.len()
        ));
    }
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let size = raw.get().len();
            if size > MAX_MESSAGE_BYTES {
                return Err(format!("message {i} is {size} bytes; the limit is 32,000"));
            }
            let mut message: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
            if let Some(t) = implied_type {
                message["type"] = Value::from(t);
            }
            check_message(&message).map_err(|e| format!("message {i}: {e}"))?;
            Ok(message)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|messages| (messages, sent_at))
}

/// The sink's cheap check of a batch body: JSON, message sizes and count.
fn check_limits(body: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let b: BatchBody = serde_json::from_str(text).map_err(|e| format!("invalid batch JSON: {e}"))?;
    if b.batch.len() > MAX_BATCH_MESSAGES {
        return Err(format!(
            "{} messages in one batch; the limit is 2,500",
            b.batch.len()
        ));
    }
    if let Some(big) = b.batch.iter().find(|m| m.get().len() > MAX_MESSAGE_BYTES) {
        return Err(format!(
            "a message of {} bytes; the limit is 32,000",
            big.get().len()
        ));
    }
    Ok(b.batch.len())
}

fn check_message(m: &Value) -> Result<(), String> {
    let obj = m.as_object().ok_or("not a JSON object")?;
    let non_empty = |k: &str| obj.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let kind = obj.get("type").and_then(Value::as_str).ok_or("no `type`")?;
    if !["track", "page", "screen", "identify", "group", "alias"].contains(&kind) {
        return Err(format!("unknown type {kind:?}"));
    }
    if !non_empty("userId") && !non_empty("anonymousId") {
        return Err("neither `userId` nor `anonymousId`".into());
    }
    if kind == "track" && !non_empty("event") {
        return Err("a track needs `event`".into());
    }
    Ok(())
}

fn json_reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("valid status"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error(status: u16, message: &str) -> Response<Full<Bytes>> {
    json_reply(status, &json!({"success": false, "message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_write_key_from_basic_auth() {
        assert_eq!(write_key_of("Basic YWJjOg=="), Some("abc".into()));
        assert_eq!(write_key_of("Bearer abc"), None);
        assert_eq!(write_key_of("Basic Og=="), None);
    }

    #[test]
    fn enforces_segment_message_rules() {
        let ok = r#"{"batch":[{"type":"track","event":"e","userId":"u"},{"type":"page","anonymousId":"a"}]}"#;
        assert_eq!(validate("/v1/batch", ok.as_bytes()).unwrap().0.len(), 2);
        let no_id = r#"{"batch":[{"type":"track","event":"e"}]}"#;
        assert!(
            validate("/v1/batch", no_id.as_bytes())
                .unwrap_err()
                .contains("anonymousId")
        );
        let no_event = r#"{"batch":[{"type":"track","userId":"u"}]}"#;
        assert!(
            validate("/v1/batch", no_event.as_bytes())
                .unwrap_err()
                .contains("event")
        );
        let big = format!(
            r#"{{"batch":[{{"type":"page","userId":"u","p":"{}"}}]}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(
            validate("/v1/batch", big.as_bytes())
                .unwrap_err()
                .contains("32,000")
        );
        let many = format!(
            r#"{{"batch":[{}]}}"#,
            vec![r#"{"type":"page","userId":"u"}"#; 2501].join(",")
        );
        assert!(
            validate("/v1/batch", many.as_bytes())
                .unwrap_err()
                .contains("2,500")
        );
        let single = r#"{"event":"e","userId":"u"}"#;
        assert_eq!(
            validate("/v1/track", single.as_bytes()).unwrap().0[0]["type"],
            "track"
        );
    }
}
