//! Where `export` keeps every envelope it receives (CONTRACT §6; README, "The event
//! archive"): objects in the stack's S3 bucket. How envelopes become objects is
//! `export::archive`; this is only the store.

use crate::timestamp::Timestamp;
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::future::Future;
use std::io::{BufRead, BufReader};

/// What a project or environment key may hold in an object key as it is: LaunchDarkly's
/// key characters. Anything else (a `/` would move the object) is percent-encoded.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// `{project}/{environment}/{yyyy}/{mm}/{dd}/{hh}/` of an event created at `at`.
pub fn prefix(project: &str, environment: &str, at: &Timestamp) -> String {
    let t = at.as_str();
    format!(
        "{}/{}/{}/{}/{}/{}/",
        utf8_percent_encode(project, KEY_ESCAPES),
        utf8_percent_encode(environment, KEY_ESCAPES),
        &t[0..4],
        &t[5..7],
        &t[8..10],
        &t[11..13]
    )
}

/// The prefix of the hour that starts at `hour` (epoch ms); `None` out of range.
pub fn hour_prefix(project: &str, environment: &str, hour: i64) -> Option<String> {
    Timestamp::from_epoch_millis(hour).map(|at| prefix(project, environment, &at))
}

/// The lines of an object as written: gzip members of JSON Lines (a member per write;
/// a reader must take every member, so `MultiGzDecoder`).
pub fn lines(body: &[u8]) -> Result<Vec<String>, std::io::Error> {
    BufReader::new(flate2::read::MultiGzDecoder::new(body))
        .lines()
        .filter(|l| !matches!(l, Ok(l) if l.trim().is_empty()))
        .collect()
}

/// An archive write that failed: its records are failed for now and retried.
#[derive(Debug, thiserror::Error)]
#[error("archive write of {key} failed: {message}")]
pub struct ArchiveError {
    pub key: String,
    pub message: String,
}

/// Objects written whole, under keys that are never reused.
pub trait Archive: Sync {
    /// Whether anything is kept: when not, `export` does no archive work at all.
    fn is_on(&self) -> bool {
        true
    }

    /// Writes `body` (gzipped JSON Lines) under `key`.
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), ArchiveError>> + Send;
}

/// Reads the archive back (the `replay` function).
pub trait ArchiveReader: Sync {
    /// The keys under `prefix`, in key order (which is the order they were written in:
    /// an object's name begins with when).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, ArchiveError>> + Send;

    /// An object's body, as written (gzipped).
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes, ArchiveError>> + Send;
}

/// No archive (`ARCHIVE_BUCKET` unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoArchive;

impl Archive for NoArchive {
    fn is_on(&self) -> bool {
        false
    }

    async fn put(&self, _key: &str, _body: Bytes) -> Result<(), ArchiveError> {
        Ok(())
    }
}

/// An archive that may be off.
impl<A: Archive> Archive for Option<A> {
    fn is_on(&self) -> bool {
        self.as_ref().is_some_and(A::is_on)
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), ArchiveError> {
        match self {
            Some(archive) => archive.put(key, body).await,
            None => Ok(()),
        }
    }
}

/// The stack's bucket.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Archive {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl Archive for S3Archive {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ArchiveError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(drop)
            .map_err(|e| ArchiveError {
                key: key.to_owned(),
                message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })
    }
}

impl ArchiveReader for S3Archive {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let failed = |e: String| ArchiveError {
            key: prefix.to_owned(),
            message: e,
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        keys.sort_unstable();
        Ok(keys)
    }

    async fn get(&self, key: &str) -> Result<Bytes, ArchiveError> {
        let failed = |e: String| ArchiveError {
            key: key.to_owned(),
            message: e,
        };
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let body = out.body.collect().await.map_err(|e| failed(e.to_string()))?;
        Ok(body.into_bytes())
    }
}

/// An S3 client over the shared configuration (`aws::sdk_config`, with its timeouts). An
/// endpoint of its own (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`: moto, MinIO) is
/// addressed by path, as such servers expect (`http://host/bucket/key`), not by a
/// virtual host name per bucket.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(overridden || config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
