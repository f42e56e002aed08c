//! `replay`: replay tasks from the replay-request queue in, the archived envelopes of
//! their range out on the replay queue, for `export` (README, "Replays").

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::archive::{S3Archive, s3_client};
use shared::config::ReplayConfig;
use shared::deadline::Deadline;
use shared::ingest::queue::SqsQueue;
use shared::replay::Replayer;
use shared::store::DynamoStore;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = ReplayConfig::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let replayer = Replayer::new(
        S3Archive::new(s3_client(&aws), config.archive_bucket),
        SqsQueue::new(sqs.clone(), config.replay_queue_url),
        SqsQueue::new(sqs, config.replay_request_queue_url),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
    )
    .with_max_receives(config.max_receive_count);
    let replayer = &replayer;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = Deadline::from_epoch_millis(event.context.deadline, Instant::now());
        Ok::<SqsBatchResponse, Error>(replayer.handle(&event.payload, deadline).await)
    }))
    .await
}
