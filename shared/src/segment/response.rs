//! What one attempt at a Segment request came to, and whether it is worth another:
//! kept apart from sending ([`super::client`]) and from the schedule ([`crate::retry`]).

use crate::destination::WriteKey;
use reqwest::StatusCode;
use reqwest::header::{HeaderValue, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// A failed attempt. Never carries the write key.
#[derive(Debug)]
pub enum AttemptError {
    /// Segment answered with an error status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No answer: connection refused or reset, timeout.
    Network(String),
    /// No time was left for the attempt.
    NoTime,
    /// The outbound rules refused the address (README, "Segment-compatible endpoints").
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
        match self {
            Self::Status { status, .. } => format!("HTTP {status}"),
            Self::Network(what) => what.clone(),
            Self::NoTime => "deadline reached before sending".to_owned(),
            Self::Refused(why) => why.clone(),
        }
    }
}

pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 410 | 429 | 460)
        || (StatusCode::from_u16(status).is_ok_and(|s| s.is_server_error()) && !matches!(status, 501 | 505))
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// An error answer, read whole (so the connection can be reused) and scrubbed.
pub async fn error_answer(response: reqwest::Response, write_key: &WriteKey) -> AttemptError {
    let status = response.status().as_u16();
    let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
    let message = scrub(&response.text().await.unwrap_or_default(), write_key);
    AttemptError::Status {
        status,
        retry_after,
        message,
    }
}

pub fn network_error(e: &reqwest::Error) -> AttemptError {
    if let Some(why) = crate::endpoint::refused_by_resolver(e) {
        return AttemptError::Refused(why);
    }
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
    AttemptError::Network(if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    })
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
    fn retries_exactly_the_documented_statuses() {
        let retryable: Vec<u16> = (100..600).filter(|&s| is_retryable(s)).collect();
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
    fn error_text_never_carries_the_write_key() {
        let key = WriteKey::new("wk-super-secret-9999");
        let s = scrub("invalid write key wk-super-secret-9999", &key);
        assert!(!s.contains("super-secret") && s.ends_with("9999"), "{s}");
    }
}
