//! `destinations`: the management API for Segment destinations and Data Export settings.

use lambda_http::{Error, Request, run, service_fn};
use shared::api::auth::Tokens;
use shared::api::{Api, lambda};
use shared::endpoint::{ALLOW_LOOPBACK_VARIABLE, Outbound, OutboundPolicy};
use shared::store::DynamoStore;

fn outbound_policy() -> OutboundPolicy {
    OutboundPolicy {
        allow_loopback: std::env::var(ALLOW_LOOPBACK_VARIABLE).is_ok_and(|v| v == "true"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let tokens = Tokens::from_env()?;
    let aws = aws_config::load_from_env().await;
    let api = Api::new(
        DynamoStore::from_env(aws_sdk_dynamodb::Client::new(&aws))?,
        tokens,
    )
    .with_outbound(Outbound::new(outbound_policy()));
    let api = &api;
    run(service_fn(move |request: Request| async move {
        let incoming = lambda::incoming(request);
        let response = api
            .handle(&incoming.request, &incoming.path, &incoming.request_id)
            .await;
        Ok::<_, Error>(lambda::outgoing(response))
    }))
    .await
}
