//! `ingest`: what LaunchDarkly SDKs post to their events URL, onto the export queue.

use lambda_http::{Error, Request, run, service_fn};
use shared::api::lambda;
use shared::ingest::Ingest;
use shared::ingest::forward::Forwarder;
use shared::ingest::queue::SqsQueue;
use shared::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let aws = aws_config::load_from_env().await;
    let sources = DynamoStore::from_env(aws_sdk_dynamodb::Client::new(&aws))?;
    let queue = SqsQueue::from_env(aws_sdk_sqs::Client::new(&aws))?;
    let ingest = Ingest::new(sources, queue).forwarding(Forwarder::from_env());
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
