//! `config.endpoint`'s outbound rules (README, "Segment-compatible endpoints"): every class
//! of address refused when a destination is created, when it is patched, and when it is
//! sent to; names are resolved through a fixed hosts table, so no traffic goes anywhere
//! but a listener on 127.0.0.1 that counts the connections a refused send never makes.

use bytes::Bytes;
use serde_json::{Value, json};
use shared::api::Api;
use shared::api::auth::{Tokens, token_hash_hex};
use shared::deadline::Deadline;
use shared::destination::{Destination, SegmentConfig, WriteKey};
use shared::endpoint::{Endpoint, Outbound, OutboundPolicy, StaticLookup};
use shared::segment::client::http_client;
use shared::segment::{DeliveryError, SegmentApi, SegmentClient};
use shared::store::DynamoStore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tests::fixtures::unique;
use tests::stack::{LOCAL_API_TOKEN, shared};

/// One host name per class of address, and one public name.
const CLASSES: [(&str, &str, &str); 10] = [
    ("loopback.test", "127.0.0.1", "loopback"),
    ("loopback6.test", "::1", "loopback"),
    ("private.test", "10.1.2.3", "private"),
    ("private172.test", "172.20.0.5", "private"),
    ("private192.test", "192.168.0.10", "private"),
    ("linklocal.test", "169.254.7.7", "link-local"),
    ("ula.test", "fd00:1234::1", "unique-local"),
    ("cgnat.test", "100.64.3.4", "CGNAT"),
    ("metadata.test", "169.254.169.254", "cloud metadata"),
    ("mapped.test", "::ffff:10.0.0.1", "private"),
];

fn hosts() -> StaticLookup {
    let mut table: HashMap<String, Vec<IpAddr>> = CLASSES
        .iter()
        .map(|(host, ip, _)| ((*host).to_owned(), vec![ip.parse().unwrap()]))
        .collect();
    table.insert("public.test".into(), vec!["93.184.215.14".parse().unwrap()]);
    table.insert(
        "rebind.test".into(),
        vec!["93.184.215.14".parse().unwrap(), "127.0.0.1".parse().unwrap()],
    );
    StaticLookup(table)
}

fn outbound(lookup: StaticLookup) -> Outbound {
    Outbound::new(OutboundPolicy::default()).with_lookup(lookup)
}

async fn api(lookup: StaticLookup) -> Api<DynamoStore> {
    let tokens = Tokens::from_hashes(&token_hash_hex(LOCAL_API_TOKEN)).unwrap();
    Api::new(shared(false).store().await, tokens).with_outbound(outbound(lookup))
}

async fn call(api: &Api<DynamoStore>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"))
        .header("authorization", LOCAL_API_TOKEN)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap();
    let response = api.handle(&request, path, "req-1").await;
    let status = response.status().as_u16();
    let text = response.into_body();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post_body(endpoint: &str) -> Value {
    json!({"kind": "segment", "config": {"writeKey": "wk-endpoint-0123", "endpoint": endpoint}})
}

#[tokio::test]
async fn every_class_is_refused_at_create_and_at_patch() {
    let api = api(hosts()).await;
    let base = format!("/api/v2/destinations/{}/{}", unique("p"), unique("e"));
    let (status, created) = call(&api, "POST", &base, post_body("https://public.test/rudder")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["config"]["endpoint"], "https://public.test/rudder");
    let path = format!("{base}/{}", created["_id"].as_str().unwrap());

    let mut refused: Vec<(String, String)> = CLASSES
        .iter()
        .map(|(host, _, class)| (format!("https://{host}"), (*class).to_owned()))
        .collect();
    refused.push(("https://rebind.test".into(), "loopback".into()));
    for literal in [
        "https://127.0.0.1",
        "https://[::1]",
        "https://10.0.0.1",
        "https://169.254.169.254",
    ] {
        refused.push((literal.into(), "IP address".into()));
    }
    for (endpoint, says) in &refused {
        let (status, body) = call(&api, "POST", &base, post_body(endpoint)).await;
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "POST {endpoint}"
        );
        assert!(
            message.contains("config.endpoint") && message.contains(says.as_str()),
            "POST {endpoint}: {message}"
        );

        let patch = json!([{"op": "replace", "path": "/config/endpoint", "value": endpoint}]);
        let (status, body) = call(&api, "PATCH", &path, patch).await;
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "PATCH {endpoint}: {body}");
        assert!(message.contains(says.as_str()), "PATCH {endpoint}: {message}");
    }
    let (_, unchanged) = call(&api, "GET", &path, Value::Null).await;
    assert_eq!(unchanged["config"]["endpoint"], "https://public.test/rudder");
    assert_eq!(unchanged["version"], 1, "no refused PATCH was written");

    // A name that does not resolve now is accepted: sending checks it again.
    let (status, _) = call(&api, "POST", &base, post_body("https://not-yet.test")).await;
    assert_eq!(status, 201);
}

/// A listener on 127.0.0.1 that counts connections.
async fn counting_listener() -> (u16, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

fn destination(endpoint: &str) -> Destination {
    Destination {
        id: unique("d"),
        project: "p".into(),
        environment: "e".into(),
        name: String::new(),
        kind: "segment".into(),
        on: true,
        version: 1,
        created_at: 0,
        write_key_check: shared::segment::verify::KeyCheck::never(),
        config: SegmentConfig {
            write_key: WriteKey::new("wk-never-sent-0123"),
            // Stored as it is, as an item written before the rules, or by hand, would be.
            endpoint: Some(serde_json::from_value(json!(endpoint)).unwrap()),
            ..SegmentConfig::default()
        },
    }
}

#[tokio::test]
async fn every_class_is_refused_at_send_time_and_the_write_key_never_leaves() {
    let (port, connections) = counting_listener().await;
    let client = SegmentClient::new(http_client(), None).with_outbound(&outbound(hosts()));
    let mut endpoints: Vec<String> = CLASSES
        .iter()
        .map(|(host, _, _)| format!("https://{host}:{port}"))
        .collect();
    endpoints.push(format!("https://rebind.test:{port}"));
    endpoints.push(format!("https://127.0.0.1:{port}"));
    endpoints.push(format!("http://public.test:{port}"));
    for endpoint in &endpoints {
        let result = client
            .send_batch(
                &destination(endpoint),
                Bytes::from_static(b"{\"batch\":[]}"),
                Deadline::after(Duration::from_secs(10)),
            )
            .await;
        match result {
            Err(DeliveryError::Refused { reason }) => {
                assert!(reason.contains("config.endpoint"), "{endpoint}: {reason}");
                assert!(!reason.contains("wk-never-sent"), "{reason}");
            }
            other => panic!("{endpoint}: {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing connected to the listener"
    );
}

#[tokio::test]
async fn a_name_that_moves_to_a_private_address_after_it_was_stored_is_refused_when_sending() {
    // Stored while it resolved to a public address...
    let api = api(hosts()).await;
    let base = format!("/api/v2/destinations/{}/{}", unique("p"), unique("e"));
    let (status, _) = call(&api, "POST", &base, post_body("https://moving.test")).await;
    assert_eq!(status, 201, "it did not resolve at all yet");
    // ...then DNS changes: the send is refused, not connected.
    let moved = StaticLookup(HashMap::from([(
        "moving.test".to_owned(),
        vec!["10.9.9.9".parse().unwrap()],
    )]));
    let client = SegmentClient::new(http_client(), None).with_outbound(&outbound(moved));
    let endpoint = Endpoint::parse("https://moving.test", OutboundPolicy::default()).unwrap();
    let result = client
        .send_batch(
            &destination(endpoint.as_str()),
            Bytes::from_static(b"{}"),
            Deadline::after(Duration::from_secs(5)),
        )
        .await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("private address (10.9.9.9)"), "{err}");
    assert!(err.means_down(), "a refused endpoint fails its records at once");
}
