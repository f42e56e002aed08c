//! Delivering `/v1/batch` requests to Segment with retries (CONTRACT §3.3).

use crate::deadline::Deadline;
use crate::destination::{Destination, WriteKey};
use base64::Engine;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT as USER_AGENT_HEADER};
use std::future::Future;
use std::time::{Duration, SystemTime};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("data-export-segment/", env!("CARGO_PKG_VERSION"));

/// Where a batch goes: the destination's region (or the override) and its write key.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub destination: &'a Destination,
}

/// What Segment answered to a delivered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: u16,
    pub attempts: u32,
}

/// Why a request was not delivered. Never carries the write key.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("Segment rejected the request with HTTP {status}: {message}")]
    Rejected {
        attempts: u32,
        status: u16,
        message: String,
    },
    #[error("Segment still failing after {attempts} attempts, last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("no time left before the invocation deadline after {attempts} attempts, last: {last}")]
    OutOfTime { attempts: u32, last: String },
}

impl DeliveryError {
    /// Segment's HTTP status, when it refused the request outright.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// HTTP requests made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected { attempts, .. }
            | Self::GaveUp { attempts, .. }
            | Self::OutOfTime { attempts, .. } => *attempts,
        }
    }
}

/// Sends one `/v1/batch` body to a destination.
pub trait SegmentApi: Sync {
    fn send_batch(
        &self,
        target: Target<'_>,
        body: Bytes,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Delivery, DeliveryError>> + Send;
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub request_timeout: Duration,
    /// Time kept free before the deadline, for answering the invocation.
    pub reserve: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            reserve: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half fixed, half random.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }
}

/// The HTTP client of a process: build it once and share it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true)
        .build()
        .expect("the TLS backend is available")
}

/// Segment's HTTP Tracking API over one shared `reqwest::Client`.
#[derive(Clone)]
pub struct SegmentClient {
    http: reqwest::Client,
    base_url_override: Option<String>,
    policy: RetryPolicy,
}

impl SegmentClient {
    pub fn new(http: reqwest::Client, base_url_override: Option<String>) -> Self {
        Self {
            http,
            base_url_override: base_url_override.map(|u| u.trim_end_matches('/').to_owned()),
            policy: RetryPolicy::default(),
        }
    }

    /// Honours `SEGMENT_BASE_URL`.
    pub fn from_env(http: reqwest::Client) -> Self {
        Self::new(
            http,
            std::env::var("SEGMENT_BASE_URL").ok().filter(|s| !s.is_empty()),
        )
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn batch_url(&self, destination: &Destination) -> String {
        let base = self
            .base_url_override
            .as_deref()
            .unwrap_or(destination.config.region.base_url());
        format!("{base}/v1/batch")
    }
}

impl SegmentApi for SegmentClient {
    async fn send_batch(
        &self,
        target: Target<'_>,
        body: Bytes,
        deadline: Deadline,
    ) -> Result<Delivery, DeliveryError> {
        let write_key = &target.destination.config.write_key;
        let url = self.batch_url(target.destination);
        let auth = basic_auth(write_key);
        let policy = &self.policy;
        let mut attempts = 0;
        loop {
            let time_left = deadline.remaining().saturating_sub(policy.reserve);
            if time_left.is_zero() {
                return Err(DeliveryError::OutOfTime {
                    attempts,
                    last: "deadline reached before sending".into(),
                });
            }
            attempts += 1;
            let sent = self
                .http
                .post(&url)
                .header(AUTHORIZATION, &auth)
                .header(CONTENT_TYPE, "application/json")
                .header(USER_AGENT_HEADER, USER_AGENT)
                .timeout(policy.request_timeout.min(time_left))
                .body(body.clone())
                .send()
                .await;
            let (last, retry_after) = match sent {
                Ok(response) if response.status().is_success() => {
                    return Ok(Delivery {
                        status: response.status().as_u16(),
                        attempts,
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
                    let message = scrub(&response.text().await.unwrap_or_default(), write_key);
                    if !is_retryable(status) {
                        return Err(DeliveryError::Rejected {
                            attempts,
                            status: status.as_u16(),
                            message,
                        });
                    }
                    (format!("HTTP {}", status.as_u16()), retry_after)
                }
                Err(e) => (describe(&e), None),
            };
            if attempts >= policy.max_attempts {
                return Err(DeliveryError::GaveUp { attempts, last });
            }
            let wait = retry_after.unwrap_or_else(|| policy.backoff(attempts - 1));
            if wait >= deadline.remaining().saturating_sub(policy.reserve) {
                return Err(DeliveryError::OutOfTime { attempts, last });
            }
            tracing::debug!(attempts, %last, wait_ms = wait.as_millis() as u64, "retrying Segment request");
            tokio::time::sleep(wait).await;
        }
    }
}

fn basic_auth(write_key: &WriteKey) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:", write_key.expose()));
    format!("Basic {token}")
}

/// Network errors, timeouts, 408, 410, 429, 460 and 5xx other than 501 and 505.
pub fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 410 | 429 | 460)
        || (status.is_server_error() && !matches!(status.as_u16(), 501 | 505))
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(value: &reqwest::header::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Segment's error text, shortened, with any echo of the write key masked.
fn scrub(text: &str, write_key: &WriteKey) -> String {
    let mut short: String = text.chars().take(300).collect();
    if !write_key.expose().is_empty() {
        short = short.replace(write_key.expose(), &write_key.masked());
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retries_exactly_the_documented_statuses() {
        let retryable: Vec<u16> = (100..600)
            .filter(|&s| is_retryable(StatusCode::from_u16(s).unwrap()))
            .collect();
        let mut expected = vec![408, 410, 429, 460];
        expected.extend((500..600).filter(|s| *s != 501 && *s != 505));
        assert_eq!(retryable, expected);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("3")),
            Some(Duration::from_secs(3))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&HeaderValue::from_str(&later).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..20 {
            let exp = (p.base_delay * 2u32.pow(attempt.min(16))).min(p.max_delay);
            let d = p.backoff(attempt);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn basic_auth_is_the_write_key_and_an_empty_password() {
        assert_eq!(basic_auth(&WriteKey::new("abc")), "Basic YWJjOg==");
    }

    #[test]
    fn error_text_never_carries_the_write_key() {
        let key = WriteKey::new("wk-super-secret-9999");
        let s = scrub("invalid write key wk-super-secret-9999", &key);
        assert!(!s.contains("super-secret") && s.ends_with("9999"), "{s}");
    }

    #[test]
    fn override_wins_over_the_region() {
        let d = Destination {
            id: "d".into(),
            project: "p".into(),
            environment: "e".into(),
            name: String::new(),
            kind: "segment".into(),
            on: true,
            version: 1,
            created_at: 0,
            config: crate::destination::SegmentConfig {
                region: crate::destination::Region::Eu,
                ..Default::default()
            },
        };
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
