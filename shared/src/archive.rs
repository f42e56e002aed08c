//! Where `export` keeps every envelope it receives (CONTRACT §6; README, "The event
//! archive"): objects in the stack's S3 bucket. How envelopes become objects is
//! `export::archive`; this is only the store.

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::future::Future;

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
