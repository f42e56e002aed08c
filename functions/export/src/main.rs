//! `export`: SQS batches of LaunchDarkly events in, Segment batches out, every envelope
//! kept in the event archive.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::archive::{S3Archive, s3_client};
use shared::config::ExportConfig;
use shared::endpoint::Outbound;
use shared::export::Exporter;
use shared::requeue::SqsRequeue;
use shared::segment::SegmentClient;
use shared::segment::client::http_client;
use shared::store::{CachedStore, DynamoStore};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = ExportConfig::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store = CachedStore::new(
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        config.cache_ttl,
    );
    let requeue = SqsRequeue::optional(aws_sdk_sqs::Client::new(&aws), config.queue_url)
        .with_dead_letter(config.dead_letter_queue_url);
    let segment = SegmentClient::new(http_client(), config.segment_base_url)
        .with_outbound(&Outbound::new(config.outbound));
    let archive = match config.archive_bucket {
        Some(bucket) => {
            tracing::info!(bucket, "the event archive is on");
            Some(S3Archive::new(s3_client(&aws), bucket))
        }
        None => {
            tracing::warn!("ARCHIVE_BUCKET is not set: no envelope is archived");
            None
        }
    };
    let exporter = Exporter::new(store, segment)
        .with_status_interval(config.status_interval)
        .with_requeue(requeue, config.retry)
        .with_max_receives(config.max_receive_count)
        .with_archive(archive);
    let exporter = &exporter;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let started = Instant::now();
        Ok::<SqsBatchResponse, Error>(
            exporter
                .handle(&event.payload, event.context.deadline, started)
                .await,
        )
    }))
    .await
}
