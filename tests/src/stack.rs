//! The local stack: moto's server with the table from `template.yaml` and the event
//! archive's bucket, the Segment receiver, and optionally the functions under
//! `cargo lambda watch`.

use crate::lambda::LambdaWatch;
use crate::moto::{self, Moto, Queues};
use crate::process::log_dir;
use crate::receiver::{self, ReceiverHandle};
use aws_sdk_dynamodb::types::AttributeValue;
use shared::api::auth::token_hash_hex;
use shared::store::DynamoStore;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

pub const TABLE: &str = "data-export";

/// The event archive's bucket in moto (`ARCHIVE_BUCKET` of `export`).
pub const ARCHIVE_BUCKET: &str = "data-export-archive";

/// The API token of local stacks (`make dev`, the tests and the `events/` files). Only
/// local stacks accept it: a deployment knows only the hashes of its own tokens.
pub const LOCAL_API_TOKEN: &str = "local-api-token-not-for-production";

/// A read-only API token of local stacks (`ro:` before its digest).
pub const LOCAL_READ_ONLY_TOKEN: &str = "local-read-only-token-not-for-production";

pub struct StackOptions {
    /// Names the log folder.
    pub label: &'static str,
    /// Start the functions under `cargo lambda watch`.
    pub lambda: bool,
    /// Reload functions on code changes (the local run does; tests do not).
    pub reload: bool,
    /// Build the functions with `--release` (the load runs of BENCHMARKS.md).
    pub release: bool,
    /// `DESTINATION_CACHE_TTL_SECONDS` of the functions.
    pub cache_ttl_seconds: u64,
    /// Fixed ports (the local run prints URLs a user can type); 0 picks free ones.
    pub ports: Ports,
    /// Create the export queue and its dead-letter queue from `template.yaml` in moto,
    /// and give `export` the queue's URL.
    pub queues: bool,
    /// More environment for the functions (after the defaults, so it wins).
    pub env: Vec<(String, String)>,
}

#[derive(Default, Clone, Copy)]
pub struct Ports {
    pub lambda: u16,
    pub receiver: u16,
    pub moto: u16,
}

impl StackOptions {
    pub fn tests(label: &'static str, lambda: bool) -> Self {
        Self {
            label,
            lambda,
            reload: false,
            release: false,
            cache_ttl_seconds: 1,
            ports: Ports::default(),
            // ingest needs the queue; the functions run only with it.
            queues: lambda,
            env: Vec::new(),
        }
    }
}

pub struct Stack {
    pub log_dir: PathBuf,
    pub moto: Moto,
    pub table: String,
    pub receiver: ReceiverHandle,
    pub lambda: Option<LambdaWatch>,
    pub cache_ttl_seconds: u64,
    pub queues: Option<Queues>,
    extra_env: Vec<(String, String)>,
}

impl Stack {
    /// Starts everything. Blocking; call it outside any async runtime (or use `shared`).
    pub fn start(options: StackOptions) -> io::Result<Self> {
        let log_dir = log_dir(options.label);
        let moto = Moto::start(&log_dir, options.ports.moto)?;
        let table = TABLE.to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let queues = runtime
            .block_on(async {
                let config = moto::aws_config(&moto.endpoint).await;
                moto::create_table_from_template(&aws_sdk_dynamodb::Client::new(&config), &table).await?;
                shared::archive::s3_client(&config)
                    .create_bucket()
                    .bucket(ARCHIVE_BUCKET)
                    .send()
                    .await?;
                if !options.queues {
                    return Ok(None);
                }
                moto::create_queues_from_template(&aws_sdk_sqs::Client::new(&config), "export")
                    .await
                    .map(Some)
            })
            .map_err(io::Error::other)?;
        let receiver = receiver::start_in_background(options.ports.receiver);
        let mut stack = Self {
            log_dir,
            moto,
            table,
            receiver,
            lambda: None,
            cache_ttl_seconds: options.cache_ttl_seconds,
            queues,
            extra_env: options.env,
        };
        if options.lambda {
            let watch = LambdaWatch::start(
                &stack.function_env(),
                &stack.log_dir,
                options.reload,
                options.release,
                options.ports.lambda,
            )?;
            runtime.block_on(watch.warm_up()).map_err(io::Error::other)?;
            stack.lambda = Some(watch);
        }
        Ok(stack)
    }

    /// The environment every function gets.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("TABLE_NAME", self.table.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.moto.endpoint.clone()),
            ("AWS_ENDPOINT_URL_SQS", self.moto.endpoint.clone()),
            ("AWS_ENDPOINT_URL_S3", self.moto.endpoint.clone()),
            ("ARCHIVE_BUCKET", ARCHIVE_BUCKET.to_owned()),
            ("AWS_REGION", moto::REGION.to_owned()),
            ("AWS_DEFAULT_REGION", moto::REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("SEGMENT_BASE_URL", self.receiver.base_url()),
            // Write keys are checked against the receiver's CDN route.
            ("SEGMENT_CDN_URL", self.receiver.base_url()),
            (
                "DESTINATION_CACHE_TTL_SECONDS",
                self.cache_ttl_seconds.to_string(),
            ),
            ("AWS_LAMBDA_LOG_LEVEL", "debug".to_owned()),
            // As the template's LoggingConfig sets it in AWS.
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            (
                "API_TOKEN_HASHES",
                format!(
                    "{},ro:{}",
                    token_hash_hex(LOCAL_API_TOKEN),
                    token_hash_hex(LOCAL_READ_ONLY_TOKEN)
                ),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(queues) = &self.queues {
            env.push(("QUEUE_URL".to_owned(), queues.queue.clone()));
            env.push(("DEAD_LETTER_QUEUE_URL".to_owned(), queues.dead_letter.clone()));
            env.push(("REPLAY_QUEUE_URL".to_owned(), queues.replay.clone()));
            env.push((
                "REPLAY_REQUEST_QUEUE_URL".to_owned(),
                queues.replay_requests.clone(),
            ));
        }
        env.retain(|(k, _)| !self.extra_env.iter().any(|(extra, _)| extra == k));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// An SQS client for the calling runtime.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&moto::aws_config(&self.moto.endpoint).await)
    }

    /// Puts `bodies` on the stack's queue, ten to a batch, as ingest would.
    pub async fn send_all(&self, bodies: &[String]) {
        let sqs = self.sqs().await;
        let url = &self.queues.as_ref().expect("a stack with queues").queue;
        for chunk in bodies.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .unwrap()
                })
                .collect();
            sqs.send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
    }

    /// An S3 client for the calling runtime (path-style, as moto wants).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        shared::archive::s3_client(&moto::aws_config(&self.moto.endpoint).await)
    }

    /// The lines of every archive object under `prefix` (gunzipped, parsed), with the
    /// key of their object.
    pub async fn archived(&self, prefix: &str) -> Vec<(String, serde_json::Value)> {
        let s3 = self.s3().await;
        let listed = s3
            .list_objects_v2()
            .bucket(ARCHIVE_BUCKET)
            .prefix(prefix)
            .send()
            .await
            .expect("moto lists the archive");
        let mut lines = Vec::new();
        for object in listed.contents() {
            let key = object.key().expect("a key").to_owned();
            let got = s3
                .get_object()
                .bucket(ARCHIVE_BUCKET)
                .key(&key)
                .send()
                .await
                .expect("moto serves the object");
            assert_eq!(got.content_encoding(), Some("gzip"), "{key}");
            let body = got.body.collect().await.expect("the object's body").into_bytes();
            for line in crate::memory::gunzip_lines(&body) {
                lines.push((key.clone(), line));
            }
        }
        lines
    }

    pub fn lambda(&self) -> &LambdaWatch {
        self.lambda.as_ref().expect("this stack runs no functions")
    }

    /// A DynamoDB client for the calling runtime.
    pub async fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&moto::aws_config(&self.moto.endpoint).await)
    }

    /// Writes an item as it is, straight to the table: one the service would never write
    /// (malformed, or damaged), to show what the service does with it.
    pub async fn put_raw_item(&self, pk: String, sk: &str, attributes: Vec<(String, AttributeValue)>) {
        let mut put = self
            .dynamo()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk.to_owned()));
        for (name, value) in attributes {
            put = put.item(name, value);
        }
        put.send().await.expect("moto takes the item");
    }

    /// The management API's base URL under `cargo lambda watch`, as a function URL.
    pub fn api_base(&self) -> String {
        self.lambda().function_url("destinations")
    }

    /// The service's own store over this stack's table.
    pub async fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo().await, &self.table)
    }
}

/// One stack per test binary and kind (with the functions or without), started on first
/// use and stopped when the process exits. Several suites share a binary, so the two kinds
/// are kept apart: a suite that needs the functions never gets a stack without them.
pub fn shared(lambda: bool) -> &'static Stack {
    static WITH_FUNCTIONS: OnceLock<Stack> = OnceLock::new();
    static WITHOUT: OnceLock<Stack> = OnceLock::new();
    let (cell, label) = if lambda {
        (&WITH_FUNCTIONS, "tests")
    } else {
        (&WITHOUT, "tests-moto")
    };
    cell.get_or_init(|| {
        // Setup blocks on its own runtime, so it runs on its own thread.
        std::thread::spawn(move || Stack::start(StackOptions::tests(label, lambda)))
            .join()
            .expect("stack setup panicked")
            .unwrap_or_else(|e| panic!("starting the local stack: {e}"))
    })
}
