//! `export`: SQS batches of LaunchDarkly events in, Segment batches out.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use data_export::export::Exporter;
use data_export::segment::SegmentClient;
use data_export::segment::client::http_client;
use data_export::store::{CachedStore, DynamoStore};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let aws = aws_config::load_from_env().await;
    let store = CachedStore::from_env(DynamoStore::from_env(aws_sdk_dynamodb::Client::new(&aws))?);
    let exporter = Exporter::new(store, SegmentClient::from_env(http_client()));
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
