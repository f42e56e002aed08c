//! A pass-through proxy in front of `ingest` that notes what every SDK got back: each
//! request is passed on unchanged (any method, CORS preflights included) and its answer
//! returned unchanged, headers and all, while the proxy keeps the method, path, credential,
//! payload id, body and status of each exchange. Unlike [`crate::proxy::FailFirstProxy`] it never
//! answers on its own, except 502 when `ingest` could not be reached at all.
//!
//! It passes on at most `max_in_flight` requests at a time; the others wait their turn. In
//! AWS each concurrent request gets an instance of its own, while `cargo lambda watch` runs
//! one and queues the rest, and (cargo-lambda 1.9.2) wedges for good once more than 100
//! wait: its request queue is a bounded channel pushed to while holding the lock that the
//! instance needs to take the next request (`crates/cargo-lambda-watch/src/state.rs`).
//! Each request goes on a connection of its own: reusing kept-alive connections to
//! `cargo lambda watch` under this load had some requests invoke the function twice (the
//! first answer then found nobody waiting: "Lambda Runtime API returned non-200 response").

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request and what the SDK got back.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The `Authorization` header (a server SDK's key), if any.
    pub authorization: Option<String>,
    /// `X-LaunchDarkly-Payload-ID`, if any.
    pub payload_id: Option<String>,
    /// The request's body, as it came.
    pub body: Bytes,
    /// 502 when `ingest` did not answer; 0 when the SDK hung up before the answer.
    pub status: u16,
}

struct Inner {
    target: String,
    client: reqwest::Client,
    in_flight: tokio::sync::Semaphore,
    exchanges: Mutex<Vec<Exchange>>,
}

#[derive(Clone)]
pub struct RecordingProxy {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl RecordingProxy {
    /// Starts on 127.0.0.1 (any free port), on its own thread and runtime, passing
    /// requests on to `target`, at most `max_in_flight` at a time.
    pub fn start(target: &str, max_in_flight: usize) -> Self {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("an HTTP client"),
            in_flight: tokio::sync::Semaphore::new(max_in_flight.max(1)),
            exchanges: Mutex::default(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let state = inner.clone();
        std::thread::Builder::new()
            .name("recording-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                    tx.send(listener.local_addr().expect("address"))
                        .expect("hand over");
                    let app = Router::new().fallback(pass_on).with_state(state);
                    axum::serve(listener, app).await.expect("serve");
                });
            })
            .expect("proxy thread");
        let addr = rx.recv().expect("proxy started");
        Self { addr, inner }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every exchange so far, in the order the answers went out.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.inner.exchanges.lock().unwrap().clone()
    }
}

/// Headers that belong to one hop, never passed on.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ]
    .contains(name)
}

async fn pass_on(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let text =
        |headers: &HeaderMap, name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let exchange = Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        authorization: text(&parts.headers, "authorization"),
        payload_id: text(&parts.headers, "x-launchdarkly-payload-id"),
        body: body.clone(),
        status: 0,
    };
    // Noted however the exchange ends, also when the SDK hangs up and this future is dropped.
    let mut pending = Pending {
        inner: inner.clone(),
        exchange: Some(exchange),
    };
    let mut forward = inner
        .client
        .request(parts.method.clone(), format!("{}{path}", inner.target))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            forward = forward.header(name, value);
        }
    }
    let turn = inner.in_flight.acquire().await.expect("never closed");
    let answer = forward.send().await;
    drop(turn);
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => {
            pending.finish(502);
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    pending.finish(status.as_u16());
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// An exchange under way: noted when it ends, with status 0 if it never got to.
struct Pending {
    inner: Arc<Inner>,
    exchange: Option<Exchange>,
}

impl Pending {
    fn finish(&mut self, status: u16) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.status = status;
            self.inner.exchanges.lock().unwrap().push(exchange);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(0);
    }
}
