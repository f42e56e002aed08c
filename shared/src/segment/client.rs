//! Delivering `/v1/batch` requests to Segment, retried on the service's one policy (README,
//! "How `export` handles a batch", steps 5-6). Building the request lives here; whether an
//! answer is worth another attempt lives in [`super::response`], how long to wait in
//! [`crate::retry`].

use super::batch;
use super::response::{AttemptError, error_answer, network_error};
use crate::answer_body::{MAX_ANSWER_BYTES, read_capped};
use crate::deadline::Deadline;
use crate::destination::Destination;
use crate::endpoint::{Outbound, OutboundPolicy, Refused};
use crate::retry::{Backoff, wait_within};
use backon::Retryable;
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("data-export-segment/", env!("CARGO_PKG_VERSION"));

/// What Segment answered to a request it accepted, and how many attempts it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub status: u16,
    pub attempts: u32,
}

/// Why a request was not delivered. Never carries the write key.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// Segment's answer's text is kept for the test event's caller, and never shown by
    /// `Display` (what the logs print): a 400's text can quote the events' values.
    #[error("Segment rejected the request with HTTP {status}")]
    Rejected {
        attempts: u32,
        status: u16,
        message: String,
    },
    #[error("Segment still failing after {attempts} attempts, last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("no time left before the invocation deadline after {attempts} attempts, last: {last}")]
    OutOfTime { attempts: u32, last: String },
    /// The destination's `config.endpoint` may not receive a write key: nothing was sent.
    #[error("not sent: {reason}")]
    Refused { reason: String },
}

impl DeliveryError {
    /// Why, for a destination's delivery status: the kind of failure and Segment's HTTP
    /// status only, never its answer's text (which might quote a message).
    pub fn reason(&self) -> String {
        match self {
            Self::Rejected {
                status: 401 | 403, ..
            } => {
                format!(
                    "Segment refused the write key (HTTP {}): check it in Segment's source settings",
                    self.status().unwrap_or(0)
                )
            }
            Self::Rejected { status: 404, .. } => {
                "Segment answered HTTP 404: check the destination's region".into()
            }
            Self::Rejected { status, .. } => format!("Segment refused the request with HTTP {status}"),
            Self::GaveUp { attempts, last } => {
                format!("Segment still failing after {attempts} attempts ({last})")
            }
            Self::OutOfTime { attempts, last } => {
                format!("no time left before the invocation's deadline after {attempts} attempts ({last})")
            }
            Self::Refused { reason } => format!("not sent: {reason}"),
        }
    }

    /// The text of Segment's refusal (scrubbed of the write key), for the caller of a test
    /// event only: never for a log line, since it can quote the events' values.
    pub fn segment_message(&self) -> Option<&str> {
        match self {
            Self::Rejected { message, .. } if !message.is_empty() => Some(message),
            _ => None,
        }
    }

    /// Segment's HTTP status, when it refused the request outright.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Segment refused the request as invalid (400, 413): some message in it is at fault.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self.status(), Some(400 | 413))
    }

    /// The failure says the destination is down for now: no answer, errors after every
    /// retry, a wait longer than the time left, or a key or address that cannot work.
    pub fn means_down(&self) -> bool {
        match self {
            Self::GaveUp { .. } | Self::OutOfTime { .. } | Self::Refused { .. } => true,
            Self::Rejected { status, .. } => matches!(status, 401 | 403 | 404),
        }
    }

    /// HTTP requests made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected { attempts, .. }
            | Self::GaveUp { attempts, .. }
            | Self::OutOfTime { attempts, .. } => *attempts,
            Self::Refused { .. } => 0,
        }
    }
}

/// Sends one `/v1/batch` body to a destination.
pub trait SegmentApi: Sync {
    fn send_batch(
        &self,
        destination: &Destination,
        body: Bytes,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Accepted, DeliveryError>> + Send;
}

/// How hard to try one request.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    pub backoff: Backoff,
    pub request_timeout: Duration,
    /// Time kept free before the deadline, for answering the invocation.
    pub reserve: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff {
                max_attempts: 8,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
            },
            request_timeout: Duration::from_secs(10),
            reserve: Duration::from_millis(500),
        }
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(50))
        // Export has at most this many requests in flight: keeping more idle connections
        // per host would only hold descriptors (issue 19).
        .pool_max_idle_per_host(crate::export::MAX_CONCURRENT_REQUESTS)
        .tcp_nodelay(true)
        // A redirect would turn the POST into a GET that "succeeds", or carry the write key
        // somewhere else: never follow one.
        .redirect(reqwest::redirect::Policy::none())
}

/// The HTTP client of a process: build it once and share it.
pub fn http_client() -> reqwest::Client {
    client_builder().build().expect("the TLS backend is available")
}

/// The client for `config.endpoint`s: every name it connects to goes through the outbound
/// rules first, and no proxy stands between (a proxy would resolve names itself).
pub fn endpoint_client(outbound: &Outbound) -> reqwest::Client {
    client_builder()
        .dns_resolver(Arc::new(outbound.resolver()))
        .no_proxy()
        .build()
        .expect("the TLS backend is available")
}

/// Segment's HTTP Tracking API over one shared `reqwest::Client`, and a destination's
/// Segment-compatible endpoint over another that checks where it connects.
#[derive(Clone)]
pub struct SegmentClient {
    http: reqwest::Client,
    endpoints: reqwest::Client,
    outbound: OutboundPolicy,
    base_url_override: Option<String>,
    policy: SendPolicy,
}

impl SegmentClient {
    /// `base_url_override` (`SEGMENT_BASE_URL`, local runs) wins over every destination's
    /// region and endpoint. Endpoints follow the strict rules, through the system's resolver.
    pub fn new(http: reqwest::Client, base_url_override: Option<String>) -> Self {
        let outbound = Outbound::default();
        Self {
            http,
            endpoints: endpoint_client(&outbound),
            outbound: outbound.policy,
            base_url_override: base_url_override.map(|u| u.trim_end_matches('/').to_owned()),
            policy: SendPolicy::default(),
        }
    }

    /// The rules and resolver for `config.endpoint`s.
    pub fn with_outbound(mut self, outbound: &Outbound) -> Self {
        self.endpoints = endpoint_client(outbound);
        self.outbound = outbound.policy;
        self
    }

    pub fn with_policy(mut self, policy: SendPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Where a destination's batches go, and through which client.
    fn target(&self, destination: &Destination) -> Result<(&reqwest::Client, String), Refused> {
        if let Some(base) = &self.base_url_override {
            return Ok((&self.http, format!("{base}/v1/batch")));
        }
        match &destination.config.endpoint {
            Some(endpoint) => Ok((&self.endpoints, endpoint.batch_url(self.outbound)?)),
            None => Ok((
                &self.http,
                format!("{}/v1/batch", destination.config.region.base_url()),
            )),
        }
    }

    #[cfg(test)]
    fn batch_url(&self, destination: &Destination) -> String {
        self.target(destination).unwrap().1
    }

    fn time_left(&self, deadline: &Deadline) -> Duration {
        deadline.remaining().saturating_sub(self.policy.reserve)
    }

    /// One HTTP request; the success status, or why it failed. `retry`: the body is sent
    /// again, with `sentAt` refreshed.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        url: &str,
        destination: &Destination,
        mut body: Bytes,
        retry: bool,
        deadline: &Deadline,
    ) -> Result<u16, AttemptError> {
        let time_left = self.time_left(deadline);
        if time_left.is_zero() {
            return Err(AttemptError::NoTime);
        }
        if retry {
            let mut fresh = body.to_vec();
            batch::refresh_sent_at(&mut fresh);
            body = Bytes::from(fresh);
        }
        let write_key = &destination.config.write_key;
        let response = http
            .post(url)
            // Marked sensitive by reqwest, so it stays out of its debug output.
            .basic_auth(write_key.expose(), None::<&str>)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.policy.request_timeout.min(time_left))
            .body(body)
            .send()
            .await
            .map_err(network_error)?;
        if response.status().is_success() {
            let status = response.status().as_u16();
            // Read to the end (up to a cap), so that the connection goes back to the pool.
            read_capped(response, MAX_ANSWER_BYTES).await;
            return Ok(status);
        }
        Err(error_answer(response, write_key).await)
    }
}

impl SegmentApi for SegmentClient {
    async fn send_batch(
        &self,
        destination: &Destination,
        body: Bytes,
        deadline: Deadline,
    ) -> Result<Accepted, DeliveryError> {
        let (http, url) = match self.target(destination) {
            Ok(target) => target,
            Err(refused) => {
                return Err(DeliveryError::Refused {
                    reason: refused.to_string(),
                });
            }
        };
        let attempts = AtomicU32::new(0);
        let mut out_of_time = false;
        let result = (|| {
            let retry = attempts.fetch_add(1, Ordering::Relaxed) > 0;
            self.attempt(http, &url, destination, body.clone(), retry, &deadline)
        })
        .retry(self.policy.backoff.schedule())
        .sleep(tokio::time::sleep)
        .when(AttemptError::is_retryable)
        .adjust(|e, proposed| {
            let wait = wait_within(proposed, e.retry_after(), self.time_left(&deadline));
            out_of_time = wait.is_none() && proposed.is_some();
            wait
        })
        .notify(|e, wait| {
            tracing::debug!(last = %e.describe(), wait_ms = wait.as_millis() as u64, "retrying Segment request");
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Ok(status) => Ok(Accepted { status, attempts }),
            Err(AttemptError::Refused(reason)) => Err(DeliveryError::Refused { reason }),
            Err(AttemptError::NoTime) => Err(DeliveryError::OutOfTime {
                attempts: attempts - 1,
                last: AttemptError::NoTime.describe(),
            }),
            Err(AttemptError::Status { status, message, .. }) if !super::response::is_retryable(status) => {
                Err(DeliveryError::Rejected {
                    attempts,
                    status,
                    message,
                })
            }
            Err(e) if out_of_time => Err(DeliveryError::OutOfTime {
                attempts,
                last: e.describe(),
            }),
            Err(e) => Err(DeliveryError::GaveUp {
                attempts,
                last: e.describe(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_the_write_key_and_an_empty_password_marked_sensitive() {
        let request = reqwest::Client::new()
            .post("http://127.0.0.1:9/v1/batch")
            .basic_auth("abc", None::<&str>)
            .build()
            .unwrap();
        let auth = &request.headers()[reqwest::header::AUTHORIZATION];
        assert_eq!(auth, "Basic YWJjOg==");
        assert!(auth.is_sensitive());
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_not_a_delivery() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut requests = 0;
            while let Ok(Ok((mut conn, _))) =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
            {
                let mut buf = vec![0; 64 * 1024];
                let _ = conn.read(&mut buf).await;
                requests += 1;
                let _ = conn
                    .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
            requests
        });
        let client = SegmentClient::new(http_client(), Some(format!("http://{addr}")));
        let d = crate::destination::test_destination("d", Default::default());
        let result = client
            .send_batch(
                &d,
                Bytes::from_static(b"{}"),
                Deadline::after(Duration::from_secs(5)),
            )
            .await;
        assert_eq!(result.unwrap_err().status(), Some(307));
        assert_eq!(server.await.unwrap(), 1, "one POST, no follow-up request");
    }

    #[test]
    fn a_refusal_shows_its_status_and_never_segments_text() {
        let e = DeliveryError::Rejected {
            attempts: 1,
            status: 400,
            message: "invalid message: properties.email \"jane@example.com\"".into(),
        };
        let shown = e.to_string();
        assert_eq!(shown, "Segment rejected the request with HTTP 400");
        assert_eq!(
            e.segment_message(),
            Some("invalid message: properties.email \"jane@example.com\"")
        );
        assert!(!e.reason().contains("jane"), "the delivery status either");
    }

    #[test]
    fn override_wins_over_the_region() {
        let d = crate::destination::test_destination(
            "d",
            crate::destination::SegmentConfig {
                region: crate::destination::Region::Eu,
                ..Default::default()
            },
        );
        let http = reqwest::Client::new();
        assert_eq!(
            SegmentClient::new(http.clone(), None).batch_url(&d),
            "https://events.eu1.segmentapis.com/v1/batch"
        );
        assert_eq!(
            SegmentClient::new(http, Some("http://127.0.0.1:9/".into())).batch_url(&d),
            "http://127.0.0.1:9/v1/batch"
        );
    }
}
