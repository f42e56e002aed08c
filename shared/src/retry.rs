//! The one retry policy of the service, on `backon`: exponential backoff with jitter, and
//! the one classification of HTTP answers ([`is_retryable_status`]) that every outbound
//! client uses (Segment and Segment-compatible endpoints, LaunchDarkly's events service).
//! "How long to wait" is [`wait_within`]: the server's `Retry-After` when it gave one,
//! never past the deadline.

use backon::ExponentialBuilder;
use http::HeaderValue;
use std::time::{Duration, SystemTime};

/// Answers worth another attempt: 408, 410, 429, 460 and 5xx other than 501 and 505 (which
/// say the server will never do it). Network errors and timeouts are retryable too; the
/// callers say so where they meet them.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 410 | 429 | 460) || ((500..600).contains(&status) && !matches!(status, 501 | 505))
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

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Backoff {
    /// The delays between attempts: doubling from `base_delay` up to `max_delay`, each with
    /// random jitter so that clients that failed together spread out.
    pub fn schedule(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }
}

/// The wait before the next attempt: `asked` (a server's `Retry-After`) over the
/// schedule's `proposed` delay; `None` (stop) when the schedule is exhausted or the wait
/// would not end within `time_left`.
pub fn wait_within(
    proposed: Option<Duration>,
    asked: Option<Duration>,
    time_left: Duration,
) -> Option<Duration> {
    let wait = asked.or(proposed)?;
    proposed?;
    (wait < time_left).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn retries_exactly_the_documented_statuses() {
        let retryable: Vec<u16> = (100..600).filter(|&s| is_retryable_status(s)).collect();
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
    fn the_schedule_doubles_with_jitter_up_to_the_cap_and_stops() {
        let b = Backoff {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = b.schedule().build().collect();
        assert_eq!(delays.len(), 7, "attempts after the first");
        for (i, d) in delays.iter().enumerate() {
            let exp = (b.base_delay * 2u32.pow(i as u32)).min(b.max_delay);
            assert!(*d >= exp && *d <= exp * 2, "delay {i}: {d:?} for {exp:?}");
        }
    }

    #[test]
    fn a_server_wait_wins_but_never_past_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(wait_within(Some(s(1)), None, s(10)), Some(s(1)));
        assert_eq!(wait_within(Some(s(1)), Some(s(3)), s(10)), Some(s(3)));
        assert_eq!(wait_within(Some(s(1)), Some(s(30)), s(10)), None);
        assert_eq!(wait_within(Some(s(11)), None, s(10)), None);
        assert_eq!(wait_within(None, Some(s(1)), s(10)), None, "schedule exhausted");
    }
}
