//! A stand-in for LaunchDarkly's events service, where `ingest` forwards SDK payloads: it
//! keeps every post (path, headers, body) and answers each with the next of a script of
//! statuses (202 once the script is spent), or never answers while `hang` is set.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One post as the events service got it.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    posts: Mutex<Vec<Post>>,
    script: Mutex<VecDeque<u16>>,
    hang: AtomicBool,
}

#[derive(Clone)]
pub struct EventsService {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl EventsService {
    /// Starts on 127.0.0.1 (any free port), on its own thread and runtime.
    pub fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let state = inner.clone();
        std::thread::Builder::new()
            .name("events-service".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("events service runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                    tx.send(listener.local_addr().expect("address"))
                        .expect("hand over");
                    let app = Router::new().fallback(post(answer)).with_state(state);
                    axum::serve(listener, app).await.expect("serve");
                });
            })
            .expect("events service thread");
        let addr = rx.recv().expect("events service started");
        Self { addr, inner }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The statuses of the next posts, in order.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.inner.script.lock().unwrap().extend(statuses);
    }

    /// While set, posts are kept but never answered.
    pub fn hang(&self, on: bool) {
        self.inner.hang.store(on, Ordering::SeqCst);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.inner.posts.lock().unwrap().clone()
    }
}

async fn answer(State(inner): State<Arc<Inner>>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    inner.posts.lock().unwrap().push(Post {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    });
    if inner.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let status = inner.script.lock().unwrap().pop_front().unwrap_or(202);
    StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED)
}
