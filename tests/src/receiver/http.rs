//! The receiver over HTTP/1.1: an axum router for Segment's endpoints and the control
//! API. Each connection gets its own hyper task rather than `axum::serve`, whose
//! services cannot fail: a `drop` fault fails the service, and hyper then closes the
//! connection without an answer.

use super::rules::{self, MAX_BODY_BYTES};
use super::{CdnKey, FaultPlan, Receiver, RequestRecord};
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

type Shared = State<Arc<Receiver>>;

/// Serves every connection `listener` accepts, for ever.
pub(super) async fn serve(listener: TcpListener, receiver: Arc<Receiver>) {
    let app = router(receiver.clone());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: let some connections close.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        receiver.count_connection();
        let app = app.clone();
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(app.clone(), req));
            // An error here is a dropped connection: deliberate, or the client's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            receiver.connection_closed();
        });
    }
}

/// Closing the connection without an answer: a mark on the handler's reply, then the
/// error that makes hyper drop the connection.
#[derive(Debug, Clone, Copy)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

async fn answer(app: Router, req: hyper::Request<Incoming>) -> Result<Response, Dropped> {
    let Ok(reply) = app.oneshot(req).await;
    match reply.extensions().get::<Dropped>() {
        Some(&dropped) => Err(dropped),
        None => Ok(reply),
    }
}

fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/v1/batch", post(segment))
        .route("/v1/track", post(segment))
        .route("/v1/page", post(segment))
        .route("/v1/projects/{key}/settings", get(cdn_settings))
        .route("/__receiver/keys", post(cdn_keys))
        .route("/__receiver/messages", get(messages))
        .route("/__receiver/requests", get(requests))
        .route("/__receiver/connections", get(connections))
        .route("/__receiver/faults", post(faults))
        .route("/__receiver/reset", post(reset))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(receiver)
}

/// `?writeKey=k`
#[derive(Deserialize)]
struct KeyFilter {
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

async fn messages(State(receiver): Shared, Query(filter): Query<KeyFilter>) -> Response {
    let messages = receiver.messages(filter.write_key.as_deref());
    json_reply(StatusCode::OK, json!({ "messages": messages }))
}

async fn requests(State(receiver): Shared, Query(filter): Query<KeyFilter>) -> Response {
    let requests = receiver.requests(filter.write_key.as_deref());
    json_reply(StatusCode::OK, json!({ "requests": requests }))
}

async fn connections(State(receiver): Shared) -> Response {
    json_reply(StatusCode::OK, json!({ "connections": receiver.connections() }))
}

async fn faults(State(receiver): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            receiver.set_faults(plan);
            json_reply(StatusCode::OK, json!({"ok": true}))
        }
        Err(e) => json_reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

/// Segment's CDN: a source's settings for a write key it knows, 404 for one it does not.
async fn cdn_settings(State(receiver): Shared, Path(key): Path<String>) -> Response {
    match receiver.cdn_key(&key) {
        CdnKey::Known => json_reply(
            StatusCode::OK,
            json!({"integrations": {"Segment.io": {"apiKey": key}}, "plan": {"track": {"__default": {"enabled": true}}}}),
        ),
        CdnKey::Unknown => (StatusCode::NOT_FOUND, "Invalid path or write key provided.").into_response(),
        CdnKey::Down => json_reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"})),
    }
}

#[derive(Deserialize)]
struct CdnKeyPlan {
    #[serde(rename = "writeKey")]
    write_key: String,
    cdn: CdnKey,
}

async fn cdn_keys(State(receiver): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<CdnKeyPlan>(&body) {
        Ok(plan) => {
            receiver.set_cdn_key(&plan.write_key, plan.cdn);
            json_reply(StatusCode::OK, json!({"ok": true}))
        }
        Err(e) => json_reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

async fn reset(State(receiver): Shared) -> Response {
    receiver.reset();
    json_reply(StatusCode::OK, json!({"ok": true}))
}

async fn not_found() -> Response {
    json_reply(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

/// `POST /v1/batch`, `/v1/track`, `/v1/page`: Segment's rules, then the planned fault.
async fn segment(State(receiver): Shared, request: Request) -> Response {
    let (head, body) = request.into_parts();
    let text = |name: HeaderName| {
        let value = head.headers.get(name)?.to_str().ok()?;
        Some(value.to_owned())
    };
    let path = head.uri.path().to_owned();
    let mut request = RequestRecord {
        write_key: text(header::AUTHORIZATION)
            .as_deref()
            .and_then(rules::write_key_of),
        path: path.clone(),
        at_ms: 0,
        status: 0,
        messages: 0,
        bytes: 0,
        user_agent: text(header::USER_AGENT),
        content_type: text(header::CONTENT_TYPE),
    };
    // Read at most one byte past the limit, to tell "too large" from "just right".
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(body) if body.len() <= MAX_BODY_BYTES => body,
        _ => {
            request.status = 400;
            request.bytes = MAX_BODY_BYTES + 1;
            receiver.record(request);
            return error(StatusCode::BAD_REQUEST, "request body exceeds 500,000 bytes");
        }
    };
    request.bytes = body.len();

    let Some(write_key) = request.write_key.clone() else {
        request.status = 401;
        receiver.record(request);
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or malformed Basic authorization with the write key",
        );
    };

    let fault = receiver.next_fault(&write_key).unwrap_or_default();
    let delay = Duration::from_millis(fault.delay_ms.unwrap_or(0));
    if fault.drop || fault.status.is_some() {
        tokio::time::sleep(delay).await;
        if fault.drop {
            receiver.record(request);
            return Extension(Dropped).into_response();
        }
        let status = fault.status.unwrap_or(500);
        request.status = status;
        receiver.record(request);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut reply = error(status, fault.body.as_deref().unwrap_or("injected fault"));
        if let Some(value) = fault.retry_after.and_then(|ra| HeaderValue::try_from(ra).ok()) {
            reply.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return reply;
    }

    if let Some(reason) = receiver.refusal(&write_key, &body) {
        request.status = 400;
        receiver.record(request);
        return error(StatusCode::BAD_REQUEST, &reason);
    }

    // A slow reply: Segment has taken the messages even if the client gives up waiting.
    let reply = match receiver.take(request, &path, &body, &write_key) {
        Ok(()) => json_reply(StatusCode::OK, json!({"success": true})),
        Err(reason) => error(StatusCode::BAD_REQUEST, &reason),
    };
    tokio::time::sleep(delay).await;
    reply
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json_reply(status, json!({"success": false, "message": message}))
}
