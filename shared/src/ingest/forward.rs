//! Forwarding to LaunchDarkly's events service (stack parameter `ForwardEventsUri`), so flag
//! insights and experiments keep working while SDKs point here. The SDK's payload goes on
//! as it came (body, encoding and the SDK's own headers), beside the queue write: the SDK's
//! answer (its status) depends on the queue alone, and a forward that fails is counted,
//! never retried by the SDK. The answer does wait for the forward, which is bounded: with
//! LaunchDarkly down, up to about 3.5 s more per post, in the background of the SDK's flush. Like the Relay Proxy, a failed post is retried once; unlike it, nothing waits
//! in memory for a later flush that a frozen Lambda might never run.

use crate::api::ApiRequest;
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

/// One post's time limit; with the one retry, a forward ends within about 3.5 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
const RETRY_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("LaunchDarkly answered {0}")]
    Status(u16),
    #[error("LaunchDarkly did not answer: {0}")]
    Unreachable(String),
}

impl ForwardError {
    fn retryable(&self) -> bool {
        match self {
            ForwardError::Status(code) => *code == 429 || *code >= 500,
            ForwardError::Unreachable(_) => true,
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
        match self.post(request, sdk_path).await {
            Err(e) if e.retryable() => {
                tokio::time::sleep(RETRY_AFTER).await;
                self.post(request, sdk_path).await
            }
            outcome => outcome,
        }
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
            .map_err(|e| ForwardError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        // Read to the end, so the connection can serve the next post.
        let _ = response.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(ForwardError::Status(status.as_u16()))
        }
    }
}
