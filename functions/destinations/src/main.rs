//! `destinations`: the management API for Segment destinations and Data Export settings.

use lambda_http::{Error, Request, run, service_fn};
use shared::api::Api;
use shared::config::ApiConfig;
use shared::endpoint::Outbound;
use shared::ingest::queue::{EventQueue, SqsQueue};
use shared::segment::verify::KeyVerifier;
use shared::store::{DeliveryStore, DynamoStore, ReplayStore, SourceStore, Store};
use shared::web::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = ApiConfig::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let api = Api::new(
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        config.tokens,
    )
    .with_outbound(Outbound::new(config.outbound))
    .with_key_verifier(KeyVerifier::new(&config.segment_cdn_url)?);
    match config.replay_request_queue_url {
        Some(url) => {
            let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), url);
            serve(&api.with_replays(queue, config.archive_retention)).await
        }
        None => serve(&api).await,
    }
}

async fn serve<S, Q>(api: &Api<S, Q>) -> Result<(), Error>
where
    S: Store + SourceStore + DeliveryStore + ReplayStore,
    Q: EventQueue,
{
    run(service_fn(move |request: Request| async move {
        let incoming = lambda::incoming(request);
        let response = api
            .handle(&incoming.request, &incoming.path, &incoming.request_id)
            .await;
        Ok::<_, Error>(lambda::outgoing(response))
    }))
    .await
}
