//! `test-event`: sends one test event to a Segment destination.

use lambda_http::{Error, Request, run, service_fn};
use shared::api::test_event::TestEventApi;
use shared::config::TestEventConfig;
use shared::deadline::Deadline;
use shared::endpoint::Outbound;
use shared::segment::SegmentClient;
use shared::segment::client::http_client;
use shared::segment::verify::KeyVerifier;
use shared::store::DynamoStore;
use shared::web::lambda;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = TestEventConfig::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
    let segment = SegmentClient::new(http_client(), config.segment_base_url)
        .with_outbound(&Outbound::new(config.outbound));
    let api = TestEventApi::new(store, segment, config.tokens)
        .with_key_verifier(KeyVerifier::new(&config.segment_cdn_url)?);
    let api = &api;
    run(service_fn(move |request: Request| async move {
        let started = Instant::now();
        let incoming = lambda::incoming(request);
        let deadline = Deadline::from_epoch_millis(incoming.deadline_ms, started);
        let response = api
            .handle(&incoming.request, &incoming.path, &incoming.request_id, deadline)
            .await;
        Ok::<_, Error>(lambda::outgoing(response))
    }))
    .await
}
