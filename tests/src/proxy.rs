//! A proxy in front of `ingest` for the SDK tests: it passes every request on and keeps a
//! copy, but answers the first `/bulk` of each SDK key with a 503 *after* `ingest` took it,
//! the worst case for duplicates: the events are queued, and the SDK retries the payload.

use crate::events_service::Post;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

struct Inner {
    target: String,
    client: reqwest::Client,
    posts: Mutex<Vec<Post>>,
    failed_once: Mutex<HashSet<String>>,
}

#[derive(Clone)]
pub struct FailFirstProxy {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FailFirstProxy {
    /// Starts on 127.0.0.1 (any free port), passing requests on to `target`.
    pub fn start(target: &str) -> Self {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            posts: Mutex::default(),
            failed_once: Mutex::default(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let state = inner.clone();
        std::thread::Builder::new()
            .name("fail-first-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
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

    /// Every request as the SDKs sent it.
    pub fn posts(&self) -> Vec<Post> {
        self.inner.posts.lock().unwrap().clone()
    }
}

async fn pass_on(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    inner.posts.lock().unwrap().push(Post {
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let mut forward = inner
        .client
        .request(parts.method.clone(), format!("{}{path}", inner.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" && name != "transfer-encoding" {
            forward = forward.header(name, value);
        }
    }
    let Ok(answer) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let text: Bytes = answer.bytes().await.unwrap_or_default();
    let key = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if path.ends_with("/bulk") && status.is_success() && inner.failed_once.lock().unwrap().insert(key) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut response = (status, text).into_response();
    for name in ["date", "content-type"] {
        if let Some(v) = headers.get(name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}
