//! A function's configuration, read from the environment once, at start (README,
//! "Configuration"). Each binary calls its `…Config::from_env()` first thing and stops
//! when it fails: a variable that is unset or empty takes its documented default, one set
//! to a value it does not accept is an error that names the variable, the value (never a
//! secret's) and what it accepts. Nothing else in the library reads the environment, but
//! the runtime's own variables: `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG` and
//! `AWS_LAMBDA_LOG_FORMAT` (`logging`), `AWS_LAMBDA_FUNCTION_NAME` (`metrics`), and the
//! AWS SDK's (`AWS_REGION`, `AWS_ENDPOINT_URL…`, read by `aws_config`).
//!
//! `tools/redrive` reads no variable of its own (its queues are arguments), so it has no
//! configuration here.

use crate::api::auth::Tokens;
use crate::endpoint::{ALLOW_LOOPBACK_VARIABLE, OutboundPolicy};
use crate::export::DEFAULT_STATUS_INTERVAL;
use crate::requeue::RetrySchedule;
use crate::store::MAX_CACHE_TTL;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

/// A variable the function cannot run with.
#[derive(thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} is not set: expected {expected}")]
    Missing {
        name: &'static str,
        expected: &'static str,
    },
    /// A variable set to a value it does not accept.
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A secret variable set to a value it does not accept; its value is never shown.
    #[error("{name} is not valid ({problem}): expected {expected}")]
    InvalidSecret {
        name: &'static str,
        problem: String,
        expected: &'static str,
    },
}

impl ConfigError {
    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing { name, .. } | Self::Invalid { name, .. } | Self::InvalidSecret { name, .. } => {
                name
            }
        }
    }
}

/// The message itself: `main` returning the error prints its `Debug` (`Error: …`), which
/// must be the sentence a reader of the function's log can act on.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The process environment as a lookup (a value that is not UTF-8 is read lossily, so it
/// is refused as malformed rather than taken for unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Typed reads of variables through a lookup (the process environment, or a map in tests).
pub struct Vars<L> {
    lookup: L,
}

impl<L: Fn(&str) -> Option<String>> Vars<L> {
    pub fn new(lookup: L) -> Self {
        Self { lookup }
    }

    /// The value without surrounding whitespace; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `parse`d, `None` when unset or empty; a value `parse` refuses is an error.
    pub fn optional<T>(
        &self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match parse(&value) {
            Some(parsed) => Ok(Some(parsed)),
            None => Err(ConfigError::Invalid {
                name,
                value,
                expected,
            }),
        }
    }

    /// Like [`Self::optional`], but unset or empty is an error too.
    pub fn required<T>(
        &self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        self.optional(name, expected, parse)?
            .ok_or(ConfigError::Missing { name, expected })
    }

    /// A whole number of seconds within `range`, or `default`.
    pub fn seconds(
        &self,
        name: &'static str,
        default: Duration,
        range: RangeInclusive<u64>,
        expected: &'static str,
    ) -> Result<Duration, ConfigError> {
        let seconds = self.optional(name, expected, |v| {
            v.parse::<u64>().ok().filter(|s| range.contains(s))
        })?;
        Ok(seconds.map_or(default, Duration::from_secs))
    }

    /// An `http` or `https` URL with a host, or `None`.
    pub fn http_url(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        self.optional(name, expected, |v| http_url(v).then(|| v.to_owned()))
    }
}

fn http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
}

/// A DynamoDB table name (3 to 255 of `A-Z a-z 0-9 _ - .`) or a table's ARN.
fn table_name(value: &str) -> Option<String> {
    let name_ok = (3..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    let arn_ok =
        value.starts_with("arn:") && value.contains(":table/") && !value.contains(char::is_whitespace);
    (name_ok || arn_ok).then(|| value.to_owned())
}

const TABLE_NAME: &str = "TABLE_NAME";
const TABLE_NAME_EXPECTED: &str = "the destinations table's name (3 to 255 letters, digits, '_', '-' or '.') or ARN, such as data-export-Table";

fn table<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<String, ConfigError> {
    vars.required(TABLE_NAME, TABLE_NAME_EXPECTED, table_name)
}

const SEGMENT_BASE_URL: &str = "SEGMENT_BASE_URL";
const SEGMENT_BASE_URL_EXPECTED: &str = "an http(s) URL that replaces Segment's host, such as http://127.0.0.1:8080, or nothing (each destination's region)";

fn segment_base_url<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<Option<String>, ConfigError> {
    vars.http_url(SEGMENT_BASE_URL, SEGMENT_BASE_URL_EXPECTED)
}

const QUEUE_URL: &str = "QUEUE_URL";
const QUEUE_URL_EXPECTED: &str =
    "the export queue's URL, such as https://sqs.us-east-1.amazonaws.com/123456789012/data-export-Queue";

const API_TOKEN_HASHES: &str = "API_TOKEN_HASHES";
const API_TOKEN_HASHES_EXPECTED: &str = "comma-separated hex SHA-256 digests of the API tokens (64 hex digits each, ro: before a read-only token's), as scripts/api-token prints them";

/// `API_TOKEN_HASHES`, a secret: its errors never show the value. Unset: no token is
/// accepted.
fn tokens<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<Tokens, ConfigError> {
    Tokens::from_hashes(&vars.get(API_TOKEN_HASHES).unwrap_or_default()).map_err(|problem| {
        ConfigError::InvalidSecret {
            name: API_TOKEN_HASHES,
            problem,
            expected: API_TOKEN_HASHES_EXPECTED,
        }
    })
}

const ALLOW_LOOPBACK_EXPECTED: &str =
    "true or false (local test runs only: lets a destination's endpoint name 127.0.0.1 over http)";

/// `ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`, the outbound rules' test-only switch (README,
/// "Destination options"); the template never sets it.
fn outbound<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<OutboundPolicy, ConfigError> {
    let allow_loopback = vars.optional(ALLOW_LOOPBACK_VARIABLE, ALLOW_LOOPBACK_EXPECTED, |v| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    })?;
    Ok(OutboundPolicy {
        allow_loopback: allow_loopback.unwrap_or(false),
    })
}

/// `export`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// `TABLE_NAME`, required.
    pub table_name: String,
    /// `SEGMENT_BASE_URL`: none sends to each destination's region.
    pub segment_base_url: Option<String>,
    /// `QUEUE_URL`: none leaves failed records to the queue's own visibility timeout.
    pub queue_url: Option<String>,
    /// `DEAD_LETTER_QUEUE_URL`: none, or no `QUEUE_URL`, retries a partly delivered
    /// record whole, to every destination.
    pub dead_letter_queue_url: Option<String>,
    /// `MAX_RECEIVE_COUNT`: the queue's `maxReceiveCount` (1 to 1000, default 12).
    pub max_receive_count: u32,
    /// `RETRY_BASE_SECONDS` (default 60, at least 1) and `RETRY_CAP_SECONDS` (default
    /// 3600, at least 1; never below the base).
    pub retry: RetrySchedule,
    /// `DESTINATION_CACHE_TTL_SECONDS`: 0 to 30, default 30.
    pub cache_ttl: Duration,
    /// `DELIVERY_STATUS_INTERVAL_SECONDS`: default 2, 0 writes after every invocation.
    pub status_interval: Duration,
    /// `ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`: default false.
    pub outbound: OutboundPolicy,
    /// `ARCHIVE_BUCKET`: the event archive's S3 bucket (CONTRACT §6); none keeps no
    /// archive (the template always sets it).
    pub archive_bucket: Option<String>,
}

impl ExportConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        let default = RetrySchedule::default();
        let base = vars.seconds(
            "RETRY_BASE_SECONDS",
            default.base,
            1..=u64::from(u32::MAX),
            "a whole number of seconds, at least 1, such as 60",
        )?;
        let cap = vars.seconds(
            "RETRY_CAP_SECONDS",
            default.cap,
            1..=u64::from(u32::MAX),
            "a whole number of seconds, at least 1, such as 3600",
        )?;
        Ok(Self {
            table_name: table(&vars)?,
            segment_base_url: segment_base_url(&vars)?,
            queue_url: vars.http_url(QUEUE_URL, QUEUE_URL_EXPECTED)?,
            dead_letter_queue_url: vars.http_url(
                "DEAD_LETTER_QUEUE_URL",
                "the export queue's dead-letter queue URL, such as https://sqs.us-east-1.amazonaws.com/123456789012/data-export-DeadLetterQueue",
            )?,
            max_receive_count: vars
                .optional(
                    "MAX_RECEIVE_COUNT",
                    "the queue's maxReceiveCount, a whole number from 1 to 1000, such as 12",
                    |v| v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)),
                )?
                .unwrap_or(crate::requeue::DEFAULT_MAX_RECEIVES),
            retry: RetrySchedule {
                base,
                cap: cap.max(base),
            },
            cache_ttl: vars.seconds(
                "DESTINATION_CACHE_TTL_SECONDS",
                MAX_CACHE_TTL,
                0..=MAX_CACHE_TTL.as_secs(),
                "a whole number of seconds from 0 to 30, such as 30",
            )?,
            status_interval: vars.seconds(
                "DELIVERY_STATUS_INTERVAL_SECONDS",
                DEFAULT_STATUS_INTERVAL,
                0..=u64::from(u32::MAX),
                "a whole number of seconds, such as 2 (0: after every invocation)",
            )?,
            outbound: outbound(&vars)?,
            archive_bucket: vars.optional(
                "ARCHIVE_BUCKET",
                "an S3 bucket name (3 to 63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit), such as data-export-archivebucket-1a2b3c",
                bucket_name,
            )?,
        })
    }
}

/// An S3 bucket name, by S3's naming rules (not an ARN: the SDK wants the name).
fn bucket_name(value: &str) -> Option<String> {
    let b = value.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !value.contains("..");
    ok.then(|| value.to_owned())
}

/// `destinations`' configuration (the management API).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `TABLE_NAME`, required.
    pub table_name: String,
    /// `API_TOKEN_HASHES`: none accepts no token.
    pub tokens: Tokens,
    /// `ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`: default false.
    pub outbound: OutboundPolicy,
    /// `SEGMENT_CDN_URL`: where write keys are checked (default Segment's CDN).
    pub segment_cdn_url: String,
    /// `REPLAY_REQUEST_QUEUE_URL`: where replays' tasks go; none: replays are off.
    pub replay_request_queue_url: Option<String>,
    /// `ARCHIVE_RETENTION_DAYS` (1 to 3650, default 30): what the archive keeps, which
    /// bounds the replays accepted (the template passes `ArchiveRetentionDays`).
    pub archive_retention: Duration,
}

pub const DEFAULT_ARCHIVE_RETENTION_DAYS: u64 = 30;

const REPLAY_REQUEST_QUEUE_URL_EXPECTED: &str = "the replay-request queue's URL, such as https://sqs.us-east-1.amazonaws.com/123456789012/data-export-ReplayRequestQueue";

fn archive_retention<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<Duration, ConfigError> {
    let days = vars
        .optional(
            "ARCHIVE_RETENTION_DAYS",
            "a whole number of days from 1 to 3650 (the stack's ArchiveRetentionDays), such as 30",
            |v| v.parse::<u64>().ok().filter(|d| (1..=3650).contains(d)),
        )?
        .unwrap_or(DEFAULT_ARCHIVE_RETENTION_DAYS);
    Ok(Duration::from_secs(days * 86_400))
}

const SEGMENT_CDN_URL_EXPECTED: &str = "an http(s) URL that replaces https://cdn.segment.com (where write keys are checked), such as http://127.0.0.1:8080";

/// `SEGMENT_CDN_URL`, else Segment's own CDN.
fn segment_cdn_url<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<String, ConfigError> {
    Ok(vars
        .http_url("SEGMENT_CDN_URL", SEGMENT_CDN_URL_EXPECTED)?
        .unwrap_or_else(|| crate::segment::verify::CDN_URL.to_owned()))
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        Ok(Self {
            table_name: table(&vars)?,
            tokens: tokens(&vars)?,
            outbound: outbound(&vars)?,
            segment_cdn_url: segment_cdn_url(&vars)?,
            replay_request_queue_url: vars
                .http_url("REPLAY_REQUEST_QUEUE_URL", REPLAY_REQUEST_QUEUE_URL_EXPECTED)?,
            archive_retention: archive_retention(&vars)?,
        })
    }
}

/// `replay`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// `TABLE_NAME`, required (the replays).
    pub table_name: String,
    /// `ARCHIVE_BUCKET`, required: the archive replays read.
    pub archive_bucket: String,
    /// `REPLAY_QUEUE_URL`, required: where replayed envelopes go, for `export`.
    pub replay_queue_url: String,
    /// `REPLAY_REQUEST_QUEUE_URL`, required: where the rest of a task cut short goes.
    pub replay_request_queue_url: String,
    /// `MAX_RECEIVE_COUNT`: the request queue's `maxReceiveCount` (1 to 1000, default 5).
    pub max_receive_count: u32,
}

impl ReplayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        let url = |v: &str| http_url(v).then(|| v.to_owned());
        Ok(Self {
            table_name: table(&vars)?,
            archive_bucket: vars.required(
                "ARCHIVE_BUCKET",
                "the event archive's S3 bucket name, such as data-export-archivebucket-1a2b3c",
                bucket_name,
            )?,
            replay_queue_url: vars.required(
                "REPLAY_QUEUE_URL",
                "the replay queue's URL, such as https://sqs.us-east-1.amazonaws.com/123456789012/data-export-ReplayQueue",
                url,
            )?,
            replay_request_queue_url: vars.required(
                "REPLAY_REQUEST_QUEUE_URL",
                REPLAY_REQUEST_QUEUE_URL_EXPECTED,
                url,
            )?,
            max_receive_count: vars
                .optional(
                    "MAX_RECEIVE_COUNT",
                    "the replay-request queue's maxReceiveCount, a whole number from 1 to 1000, such as 5",
                    |v| v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)),
                )?
                .unwrap_or(5),
        })
    }
}

/// `test-event`'s configuration.
#[derive(Debug, Clone)]
pub struct TestEventConfig {
    /// `TABLE_NAME`, required.
    pub table_name: String,
    /// `API_TOKEN_HASHES`: none accepts no token.
    pub tokens: Tokens,
    /// `SEGMENT_BASE_URL`: none sends to the destination's region.
    pub segment_base_url: Option<String>,
    /// `ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`: default false.
    pub outbound: OutboundPolicy,
    /// `SEGMENT_CDN_URL`: where write keys are checked (default Segment's CDN).
    pub segment_cdn_url: String,
}

impl TestEventConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        Ok(Self {
            table_name: table(&vars)?,
            tokens: tokens(&vars)?,
            segment_base_url: segment_base_url(&vars)?,
            outbound: outbound(&vars)?,
            segment_cdn_url: segment_cdn_url(&vars)?,
        })
    }
}

/// `ingest`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// `TABLE_NAME`, required (the event sources).
    pub table_name: String,
    /// `QUEUE_URL`, required: where the SDKs' events go.
    pub queue_url: String,
    /// `FORWARD_EVENTS_URI`: LaunchDarkly's events service to forward to; none: off.
    pub forward_events_uri: Option<String>,
}

impl IngestConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        Ok(Self {
            table_name: table(&vars)?,
            queue_url: vars.required(QUEUE_URL, QUEUE_URL_EXPECTED, |v| http_url(v).then(|| v.to_owned()))?,
            forward_events_uri: vars.http_url(
                "FORWARD_EVENTS_URI",
                "LaunchDarkly's events service as an http(s) URL, such as https://events.launchdarkly.com, or nothing (forwarding off)",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::token_hash_hex;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn export(vars: &[(&str, &str)]) -> Result<ExportConfig, ConfigError> {
        let mut all = vec![("TABLE_NAME", "table")];
        all.extend_from_slice(vars);
        ExportConfig::from_lookup(lookup(&all))
    }

    fn invalid(e: ConfigError) -> (&'static str, String) {
        match e {
            ConfigError::Invalid { name, value, .. } => (name, value),
            other => panic!("not Invalid: {other}"),
        }
    }

    #[test]
    fn export_defaults_when_unset() {
        let config = export(&[]).unwrap();
        assert_eq!(
            config,
            ExportConfig {
                table_name: "table".into(),
                segment_base_url: None,
                queue_url: None,
                dead_letter_queue_url: None,
                max_receive_count: 12,
                retry: RetrySchedule {
                    base: Duration::from_secs(60),
                    cap: Duration::from_secs(3600),
                },
                cache_ttl: Duration::from_secs(30),
                status_interval: Duration::from_secs(2),
                outbound: OutboundPolicy::default(),
                archive_bucket: None,
            }
        );
    }

    #[test]
    fn the_archive_bucket_is_an_s3_bucket_name() {
        let bucket = |value: &str| export(&[("ARCHIVE_BUCKET", value)]).map(|c| c.archive_bucket);
        assert_eq!(
            bucket("data-export-archive.1"),
            Ok(Some("data-export-archive.1".into()))
        );
        assert_eq!(bucket(" "), Ok(None));
        for bad in [
            "ab",
            "Upper",
            "-start",
            "end-",
            "a..b",
            "arn:aws:s3:::b",
            "under_score",
        ] {
            let (name, value) = invalid(bucket(bad).unwrap_err());
            assert_eq!((name, value.as_str()), ("ARCHIVE_BUCKET", bad));
        }
    }

    #[test]
    fn the_loopback_switch_is_true_or_false() {
        let allow = |value: &str| {
            export(&[("ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS", value)]).map(|c| c.outbound.allow_loopback)
        };
        assert_eq!(allow("true"), Ok(true));
        assert_eq!(allow("false"), Ok(false));
        assert_eq!(allow(""), Ok(false));
        let err = allow("yes").unwrap_err().to_string();
        assert!(
            err.starts_with("ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS=\"yes\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn empty_or_blank_is_unset() {
        let blank = [
            ("SEGMENT_BASE_URL", ""),
            ("QUEUE_URL", " "),
            ("RETRY_BASE_SECONDS", ""),
            ("RETRY_CAP_SECONDS", "\t"),
            ("DESTINATION_CACHE_TTL_SECONDS", ""),
            ("DELIVERY_STATUS_INTERVAL_SECONDS", ""),
        ];
        assert_eq!(export(&blank).unwrap(), export(&[]).unwrap());
        let e = ExportConfig::from_lookup(lookup(&[("TABLE_NAME", "")])).unwrap_err();
        assert_eq!(
            e,
            ConfigError::Missing {
                name: "TABLE_NAME",
                expected: TABLE_NAME_EXPECTED
            }
        );
        assert!(
            e.to_string().starts_with("TABLE_NAME is not set: expected "),
            "{e}"
        );
    }

    #[test]
    fn good_values_are_read() {
        let config = export(&[
            ("SEGMENT_BASE_URL", "http://127.0.0.1:8080/"),
            ("QUEUE_URL", " http://127.0.0.1:5000/123456789012/q "),
            ("RETRY_BASE_SECONDS", "1"),
            ("RETRY_CAP_SECONDS", "4"),
            ("DESTINATION_CACHE_TTL_SECONDS", "0"),
            ("DELIVERY_STATUS_INTERVAL_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(config.segment_base_url.as_deref(), Some("http://127.0.0.1:8080/"));
        assert_eq!(
            config.queue_url.as_deref(),
            Some("http://127.0.0.1:5000/123456789012/q")
        );
        assert_eq!(config.retry.base, Duration::from_secs(1));
        assert_eq!(config.retry.cap, Duration::from_secs(4));
        assert_eq!(config.cache_ttl, Duration::ZERO);
        assert_eq!(config.status_interval, Duration::ZERO);
    }

    #[test]
    fn the_cap_is_never_below_the_base() {
        let config = export(&[("RETRY_BASE_SECONDS", "7200")]).unwrap();
        assert_eq!(config.retry.cap, Duration::from_secs(7200));
    }

    #[test]
    fn malformed_numbers_are_errors_that_name_the_variable_and_value() {
        let e = export(&[("RETRY_BASE_SECONDS", "abc")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "RETRY_BASE_SECONDS=\"abc\" is not valid: expected a whole number of seconds, at least 1, such as 60"
        );
        assert_eq!(format!("{e:?}"), e.to_string(), "what main prints");
        assert_eq!(e.variable(), "RETRY_BASE_SECONDS");
        for (name, value) in [
            ("RETRY_BASE_SECONDS", "0"),
            ("RETRY_BASE_SECONDS", "1.5"),
            ("RETRY_CAP_SECONDS", "-1"),
            ("RETRY_CAP_SECONDS", "1h"),
            ("DESTINATION_CACHE_TTL_SECONDS", "31"),
            ("DESTINATION_CACHE_TTL_SECONDS", "ten"),
            ("DELIVERY_STATUS_INTERVAL_SECONDS", "2s"),
            ("DELIVERY_STATUS_INTERVAL_SECONDS", "99999999999999999999999"),
        ] {
            let e = export(&[(name, value)]).unwrap_err();
            assert_eq!(invalid(e), (name, value.to_owned()));
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        for (name, value) in [
            ("SEGMENT_BASE_URL", "api.segment.io"),
            ("SEGMENT_BASE_URL", "ftp://example.com"),
            ("QUEUE_URL", "not a url"),
            ("QUEUE_URL", "file:///tmp/q"),
        ] {
            let e = export(&[(name, value)]).unwrap_err();
            assert_eq!(invalid(e), (name, value.to_owned()));
        }
        let e = export(&[("SEGMENT_BASE_URL", "localhost:8080")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SEGMENT_BASE_URL=\"localhost:8080\" is not valid: expected an http(s) URL"),
            "{e}"
        );
    }

    #[test]
    fn table_names_are_checked() {
        for good in [
            "abc",
            "data-export-Table-1AB2.x_y",
            "arn:aws:dynamodb:us-east-1:123456789012:table/t",
        ] {
            assert_eq!(
                ApiConfig::from_lookup(lookup(&[("TABLE_NAME", good)]))
                    .unwrap()
                    .table_name,
                good
            );
        }
        for bad in ["ab", "my table", "t/x"] {
            let e = ApiConfig::from_lookup(lookup(&[("TABLE_NAME", bad)])).unwrap_err();
            assert_eq!(invalid(e), ("TABLE_NAME", bad.to_owned()));
        }
    }

    #[test]
    fn api_tokens_are_read_and_a_bad_one_is_never_shown() {
        let good = format!("{},ro:{}", token_hash_hex("rw"), token_hash_hex("ro"));
        let config =
            ApiConfig::from_lookup(lookup(&[("TABLE_NAME", "table"), ("API_TOKEN_HASHES", &good)])).unwrap();
        assert!(config.tokens.check(Some("rw")).is_ok());
        assert!(config.tokens.check(Some("ro")).is_ok());

        // Unset or empty: no token is accepted (every call is refused).
        for vars in [
            vec![("TABLE_NAME", "table")],
            vec![("TABLE_NAME", "table"), ("API_TOKEN_HASHES", "")],
        ] {
            let config = ApiConfig::from_lookup(lookup(&vars)).unwrap();
            assert_eq!(config.tokens.check(Some("rw")).unwrap_err().code, "unauthorized");
        }

        let secret = format!("{},my-actual-token-0123456789", token_hash_hex("rw"));
        for config in [
            ApiConfig::from_lookup(lookup(&[("TABLE_NAME", "table"), ("API_TOKEN_HASHES", &secret)]))
                .map(|_| ()),
            TestEventConfig::from_lookup(lookup(&[("TABLE_NAME", "table"), ("API_TOKEN_HASHES", &secret)]))
                .map(|_| ()),
        ] {
            let e = config.unwrap_err();
            let shown = format!("{e} {e:?}");
            assert_eq!(e.variable(), "API_TOKEN_HASHES");
            assert!(matches!(e, ConfigError::InvalidSecret { .. }));
            assert!(shown.contains("entry 2 of 2"), "{shown}");
            assert!(!shown.contains("my-actual"), "{shown}");
            assert!(!shown.contains(&token_hash_hex("rw")[..8]), "{shown}");
        }
    }

    #[test]
    fn test_event_reads_tokens_and_the_segment_url() {
        let config = TestEventConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "table"),
            ("SEGMENT_BASE_URL", "https://events.eu1.segmentapis.com"),
        ]))
        .unwrap();
        assert_eq!(
            config.segment_base_url.as_deref(),
            Some("https://events.eu1.segmentapis.com")
        );
        let e =
            TestEventConfig::from_lookup(lookup(&[("TABLE_NAME", "table"), ("SEGMENT_BASE_URL", "nope")]))
                .unwrap_err();
        assert_eq!(invalid(e), ("SEGMENT_BASE_URL", "nope".to_owned()));
        let e = TestEventConfig::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(e.variable(), "TABLE_NAME");
    }

    #[test]
    fn ingest_needs_the_queue_and_forwards_only_over_http() {
        let base = [
            ("TABLE_NAME", "table"),
            ("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q"),
        ];
        let config = IngestConfig::from_lookup(lookup(&base)).unwrap();
        assert_eq!(config.queue_url, "https://sqs.us-east-1.amazonaws.com/1/q");
        assert_eq!(config.forward_events_uri, None);

        let mut vars = base.to_vec();
        vars.push(("FORWARD_EVENTS_URI", "https://events.launchdarkly.com"));
        let config = IngestConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            config.forward_events_uri.as_deref(),
            Some("https://events.launchdarkly.com")
        );

        let mut vars = base.to_vec();
        vars.push(("FORWARD_EVENTS_URI", ""));
        assert_eq!(
            IngestConfig::from_lookup(lookup(&vars))
                .unwrap()
                .forward_events_uri,
            None
        );

        let mut vars = base.to_vec();
        vars.push(("FORWARD_EVENTS_URI", "events.launchdarkly.com"));
        let e = IngestConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert_eq!(
            invalid(e),
            ("FORWARD_EVENTS_URI", "events.launchdarkly.com".to_owned())
        );

        for queue in [None, Some("")] {
            let mut vars = vec![("TABLE_NAME", "table")];
            vars.extend(queue.map(|q| ("QUEUE_URL", q)));
            let e = IngestConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(
                matches!(
                    e,
                    ConfigError::Missing {
                        name: "QUEUE_URL",
                        ..
                    }
                ),
                "{e}"
            );
        }
        let e =
            IngestConfig::from_lookup(lookup(&[("TABLE_NAME", "table"), ("QUEUE_URL", "q")])).unwrap_err();
        assert_eq!(invalid(e), ("QUEUE_URL", "q".to_owned()));
    }

    #[test]
    fn replays_need_the_archive_and_both_queues() {
        let q = "http://127.0.0.1:5000/123456789012/q";
        let all = [
            ("TABLE_NAME", "table"),
            ("ARCHIVE_BUCKET", "archive"),
            ("REPLAY_QUEUE_URL", q),
            ("REPLAY_REQUEST_QUEUE_URL", q),
        ];
        let config = ReplayConfig::from_lookup(lookup(&all)).unwrap();
        assert_eq!(config.max_receive_count, 5);
        for missing in 1..all.len() {
            let vars: Vec<(&str, &str)> = all
                .iter()
                .copied()
                .filter(|(n, _)| *n != all[missing].0)
                .collect();
            let e = ReplayConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert_eq!(e.variable(), all[missing].0);
        }
        let api = ApiConfig::from_lookup(lookup(&[("TABLE_NAME", "table")])).unwrap();
        assert_eq!(api.replay_request_queue_url, None);
        assert_eq!(api.archive_retention, Duration::from_secs(30 * 86_400));
        let e = ApiConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "table"),
            ("ARCHIVE_RETENTION_DAYS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable(), "ARCHIVE_RETENTION_DAYS");
    }

    #[test]
    fn a_value_that_is_not_utf8_is_refused_not_ignored() {
        let e = export(&[("RETRY_CAP_SECONDS", "6\u{fffd}0")]).unwrap_err();
        assert_eq!(e.variable(), "RETRY_CAP_SECONDS");
    }
}
