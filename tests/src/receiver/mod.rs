//! A stand-in for Segment's HTTP Tracking API that enforces Segment's documented
//! rules ([`rules`]), records what it accepted, and injects faults per write key.
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
//! - `POST /__receiver/keys` `{"writeKey": k, "cdn": "known" | "unknown" | "down"}`: what
//!   the CDN route `GET /v1/projects/{writeKey}/settings` (Segment's way to check a key,
//!   `SEGMENT_CDN_URL` locally) answers for the key; it knows every key unless told.
//! - `GET /__receiver/messages[?writeKey=k]`, `GET /__receiver/requests[?writeKey=k]`,
//!   `GET /__receiver/connections` (TCP connections accepted), `POST /__receiver/reset`.

mod faults;
mod http;
mod rules;
mod state;

pub use faults::{Fault, FaultPlan};
pub use rules::{MAX_BATCH_MESSAGES, MAX_BODY_BYTES, MAX_MESSAGE_BYTES};
pub use state::{Accepted, CdnKey, RequestRecord};

use state::Memory;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::net::TcpListener;

/// The receiver's memory, shared by its connections and its owner.
pub struct Receiver {
    started: Instant,
    memory: Mutex<Memory>,
    /// Benchmark sink: check the limits and count, but keep no messages.
    sink: bool,
    /// TCP connections accepted so far: how well clients reuse them.
    connections: AtomicU64,
    /// Connections open now, and the most ever open at once.
    open: AtomicU64,
    peak_open: AtomicU64,
}

impl Receiver {
    fn new(sink: bool) -> Self {
        Self {
            started: Instant::now(),
            memory: Mutex::new(Memory::default()),
            sink,
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
        }
    }

    /// TCP connections accepted since the receiver started.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The most TCP connections open at once since the receiver started.
    pub fn peak_open_connections(&self) -> u64 {
        self.peak_open.load(Ordering::SeqCst)
    }

    fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_open.fetch_max(open, Ordering::SeqCst);
    }

    fn connection_closed(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Plans the faults of one write key, replacing its previous plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.lock().set_faults(plan);
    }

    /// Accepted messages, for one write key or all.
    pub fn messages(&self, write_key: Option<&str>) -> Vec<Accepted> {
        self.lock().messages(write_key)
    }

    /// Requests seen, for one write key or all.
    pub fn requests(&self, write_key: Option<&str>) -> Vec<RequestRecord> {
        self.lock().requests(write_key)
    }

    /// What the CDN's settings route answers for a key (default: it knows every key).
    pub fn set_cdn_key(&self, write_key: &str, answer: CdnKey) {
        self.lock().cdn.insert(write_key.to_owned(), answer);
    }

    fn cdn_key(&self, write_key: &str) -> CdnKey {
        self.lock().cdn.get(write_key).copied().unwrap_or_default()
    }

    /// Forgets every message, request and fault.
    pub fn reset(&self) {
        *self.lock() = Memory::default();
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().expect("receiver lock")
    }

    fn next_fault(&self, write_key: &str) -> Option<Fault> {
        self.lock().next_fault(write_key)
    }

    /// Why this body holds a message planned to be refused, if it does.
    fn refusal(&self, write_key: &str, body: &[u8]) -> Option<String> {
        let refused = self.lock().refused_events(write_key);
        if refused.is_empty() {
            return None;
        }
        let batch: serde_json::Value = serde_json::from_slice(body).ok()?;
        batch["batch"].as_array()?.iter().enumerate().find_map(|(i, m)| {
            let id = m["properties"]["eventId"].as_str()?;
            refused
                .iter()
                .any(|r| r == id)
                .then(|| format!("message {i} is invalid"))
        })
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records a request, stamped with the time since the receiver started.
    fn record(&self, mut request: RequestRecord) {
        request.at_ms = self.elapsed_ms();
        self.lock().record(request);
    }

    /// Takes the messages of a request to `path` if they keep Segment's rules (the sink
    /// only checks the limits and counts them), and records the request either way.
    fn take(
        &self,
        mut request: RequestRecord,
        path: &str,
        body: &[u8],
        write_key: &str,
    ) -> Result<(), String> {
        let outcome = if self.sink {
            rules::check_limits(body).map(|count| (count, Vec::new(), None))
        } else {
            rules::validate(path, body).map(|(messages, sent_at)| (messages.len(), messages, sent_at))
        };
        request.at_ms = self.elapsed_ms();
        let mut memory = self.lock();
        match outcome {
            Ok((count, messages, sent_at)) => {
                request.status = 200;
                request.messages = count;
                memory.record(request);
                memory.accept(write_key, messages, sent_at);
                Ok(())
            }
            Err(reason) => {
                request.status = 400;
                memory.record(request);
                Err(reason)
            }
        }
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
    tokio::spawn(http::serve(listener, state.clone()));
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

#[cfg(test)]
mod tests;
