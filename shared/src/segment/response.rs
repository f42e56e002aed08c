//! What one attempt at a Segment request came to, and whether it is worth another:
//! kept apart from sending ([`super::client`]) and from the schedule ([`crate::retry`]).

use crate::answer_body::{MAX_ANSWER_BYTES, read_capped};
use crate::destination::WriteKey;
use reqwest::header::RETRY_AFTER;
use std::time::Duration;

/// A failed attempt. Never carries the write key; its text is its kind and status only
/// (what logs and the delivery status show).
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// Segment answered with an error status.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No answer: connection refused or reset, timeout (the error kept, with its source).
    #[error("{}", describe_network(.0))]
    Network(#[source] reqwest::Error),
    /// No time was left for the attempt.
    #[error("deadline reached before sending")]
    NoTime,
    /// The outbound rules refused the address (README, "Segment-compatible endpoints").
    #[error("{0}")]
    Refused(String),
}

impl AttemptError {
    /// Network errors, timeouts, 408, 410, 429, 460 and 5xx other than 501 and 505.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => is_retryable(*status),
            Self::Network(_) => true,
            Self::NoTime | Self::Refused(_) => false,
        }
    }

    /// The wait Segment asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        self.to_string()
    }
}

pub use crate::retry::{is_retryable_status as is_retryable, parse_retry_after};

/// An error answer, read to its end (so the connection can be reused) up to a cap, and
/// scrubbed.
pub async fn error_answer(response: reqwest::Response, write_key: &WriteKey) -> AttemptError {
    let status = response.status().as_u16();
    let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
    let body = read_capped(response, MAX_ANSWER_BYTES).await;
    let message = scrub(&String::from_utf8_lossy(&body), write_key);
    AttemptError::Status {
        status,
        retry_after,
        message,
    }
}

pub fn network_error(e: reqwest::Error) -> AttemptError {
    match crate::endpoint::refused_by_resolver(&e) {
        Some(why) => AttemptError::Refused(why),
        None => AttemptError::Network(e.without_url()),
    }
}

/// What a network failure was, for logs and the delivery status: its kind and its
/// innermost cause, never a URL (which could name an endpoint's path).
fn describe_network(e: &reqwest::Error) -> String {
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

    #[test]
    fn error_text_never_carries_the_write_key() {
        let key = WriteKey::new("wk-super-secret-9999");
        let s = scrub("invalid write key wk-super-secret-9999", &key);
        assert!(!s.contains("super-secret") && s.ends_with("9999"), "{s}");
    }
}
