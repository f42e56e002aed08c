//! `export`: SQS batches of LaunchDarkly events in, Segment batches out.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::endpoint::{ALLOW_LOOPBACK_VARIABLE, Outbound, OutboundPolicy};
use shared::export::Exporter;
use shared::requeue::{RetrySchedule, SqsRequeue};
use shared::segment::SegmentClient;
use shared::segment::client::http_client;
use shared::store::{CachedStore, DynamoStore};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let aws = aws_config::load_from_env().await;
    let store = CachedStore::from_env(DynamoStore::from_env(aws_sdk_dynamodb::Client::new(&aws))?);
    let requeue = SqsRequeue::from_env(aws_sdk_sqs::Client::new(&aws));
    let outbound = Outbound::new(OutboundPolicy {
        allow_loopback: std::env::var(ALLOW_LOOPBACK_VARIABLE).is_ok_and(|v| v == "true"),
    });
    let segment = SegmentClient::from_env(http_client()).with_outbound(&outbound);
    let exporter = Exporter::new(store, segment).with_requeue(requeue, RetrySchedule::from_env());
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
