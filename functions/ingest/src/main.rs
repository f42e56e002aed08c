//! `ingest`: what LaunchDarkly SDKs post to their events URL, onto the export queue.

use lambda_http::{Error, Request, run, service_fn};
use shared::config::IngestConfig;
use shared::ingest::Ingest;
use shared::ingest::forward::Forwarder;
use shared::ingest::queue::SqsQueue;
use shared::store::DynamoStore;
use shared::web::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = IngestConfig::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let sources = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), config.queue_url);
    let forwarder = config.forward_events_uri.as_deref().map(Forwarder::new);
    let ingest = Ingest::new(sources, queue).forwarding(forwarder);
    let ingest = &ingest;
    run(service_fn(move |request: Request| async move {
        let incoming = lambda::incoming(request);
        let response = ingest
            .handle(&incoming.request, &incoming.path, &incoming.request_id)
            .await;
        Ok::<_, Error>(lambda::outgoing(response))
    }))
    .await
}
