//! Forwarding to LaunchDarkly's events service (stack parameter `ForwardEventsUri`), so flag
//! insights and experiments keep working while SDKs point here. The SDK's payload goes on
//! as it came (body, encoding and the SDK's own headers), beside the queue write: the SDK's
//! answer (its status) depends on the queue alone, and a forward that fails is counted,
//! never retried by the SDK. The answer does wait for the forward, which is bounded: with
//! LaunchDarkly down, up to about 4 s more per post, in the background of the SDK's flush.
//! Like the Relay Proxy, a failed post is retried once, on the service's one retry policy
//! and classification ([`crate::retry`]); unlike it, nothing waits in memory for a later
//! flush that a frozen Lambda might never run.

use crate::answer_body::{MAX_ANSWER_BYTES, read_capped};
use crate::retry::{Backoff, is_retryable_status, parse_retry_after, wait_within};
use crate::web::ApiRequest;
use backon::Retryable;
use std::time::Duration;

/// The SDK's headers that LaunchDarkly reads; nothing else is passed on.
const FORWARDED_HEADERS: [&str; 9] = [
    "authorization",
    "content-type",
    "content-encoding",
    "user-agent",
    "x-launchdarkly-event-schema",
    "x-launchdarkly-payload-id",
    "x-launchdarkly-user-agent",
    "x-launchdarkly-wrapper",
    "x-launchdarkly-tags",
];

/// One post's time limit; with the one retry, a forward ends within about 4 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// One retry, after half a second or so (jittered, like every retry of the service).
const FORWARD_BACKOFF: Backoff = Backoff {
    max_attempts: 2,
    base_delay: Duration::from_millis(500),
    max_delay: Duration::from_millis(500),
};

/// The longest `Retry-After` worth waiting for; a longer one ends the forward.
const MAX_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("LaunchDarkly answered {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("LaunchDarkly did not answer: {}", crate::errors::chain(.0))]
    Unreachable(#[source] reqwest::Error),
}

impl ForwardError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::Unreachable(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::Unreachable(_) => None,
        }
    }

    /// The status LaunchDarkly answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Unreachable(_) => None,
        }
    }
}

/// Posts SDK payloads on to an events service.
pub struct Forwarder {
    client: reqwest::Client,
    base: String,
}

impl Forwarder {
    /// Forwards to `base` (e.g. `https://events.launchdarkly.com`).
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .expect("an HTTP client");
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Posts `request`'s payload to the same SDK path (`/bulk`, `/events/bulk/{id}`, …) of
    /// the events service, retrying once.
    pub async fn forward(&self, request: &ApiRequest, sdk_path: &str) -> Result<(), ForwardError> {
        (|| self.post(request, sdk_path))
            .retry(FORWARD_BACKOFF.schedule())
            .sleep(tokio::time::sleep)
            .when(ForwardError::is_retryable)
            .adjust(|e, proposed| wait_within(proposed, e.retry_after(), MAX_WAIT))
            .await
    }

    async fn post(&self, request: &ApiRequest, sdk_path: &str) -> Result<(), ForwardError> {
        let mut post = self
            .client
            .post(format!("{}{sdk_path}", self.base))
            .body(request.body().clone());
        for name in FORWARDED_HEADERS {
            if let Some(value) = request.headers().get(name) {
                post = post.header(name, value);
            }
        }
        let response = post
            .send()
            .await
            .map_err(|e| ForwardError::Unreachable(e.without_url()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(parse_retry_after);
        // Read to the end (up to a cap), so the connection can serve the next post.
        read_capped(response, MAX_ANSWER_BYTES).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(ForwardError::Status {
                status: status.as_u16(),
                retry_after,
            })
        }
    }
}
