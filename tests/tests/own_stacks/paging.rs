//! Issue 19's must-show: a big table's list of every destination, paged. The
//! destinations are written straight into moto (BatchWriteItem, 25 an item request), then
//! listed through the API in-process over `DynamoStore`, `_links.next` after
//! `_links.next` at the largest `limit`: each destination once, every page under 1 MB.
//! `PAGING_DESTINATIONS` sets how many (default 1,500; `make paging` runs 15,000).

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::{StreamExt, stream};
use serde_json::Value;
use shared::api::Api;
use shared::api::auth::{Tokens, token_hash_hex};
use shared::api::paging::MAX_LIMIT;
use shared::store::environment_pk;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tests::stack::{LOCAL_API_TOKEN, Stack, StackOptions};

/// Destinations per environment: with the settings item of each, the table holds other
/// items between destinations, as a real one does.
const PER_ENVIRONMENT: usize = 50;
const MB: usize = 1024 * 1024;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A destination item as the service writes it (`shared/src/store/item.rs`), with a
/// name and keys of realistic length.
fn destination_item(i: usize) -> HashMap<String, AttributeValue> {
    let (project, environment) = (
        format!("project-{:03}", i / 1_000),
        format!("environment-{:04}", i / PER_ENVIRONMENT),
    );
    let id = uuid::Uuid::new_v4().to_string();
    HashMap::from([
        ("pk".into(), s(environment_pk(&project, &environment))),
        ("sk".into(), s(format!("DEST#{id}"))),
        ("id".into(), s(id)),
        ("project".into(), s(project)),
        ("environment".into(), s(environment)),
        (
            "name".into(),
            s(format!("Segment destination number {i} (production)")),
        ),
        ("kind".into(), s("segment")),
        ("on".into(), AttributeValue::Bool(true)),
        ("version".into(), AttributeValue::N("1".into())),
        ("createdAt".into(), AttributeValue::N("1764093600000".into())),
        ("writeKey".into(), s(format!("wk-scale-{i:08}-0123456789abcdef"))),
        ("region".into(), s("us")),
        ("includeCustomData".into(), AttributeValue::Bool(false)),
        ("experimentViewed".into(), AttributeValue::Bool(false)),
        ("writeKeyStatus".into(), s("verified")),
        (
            "writeKeyCheckedAt".into(),
            AttributeValue::N("1764093600000".into()),
        ),
    ])
}

fn settings_item(environment: usize) -> HashMap<String, AttributeValue> {
    let i = environment * PER_ENVIRONMENT;
    let (project, environment) = (
        format!("project-{:03}", i / 1_000),
        format!("environment-{environment:04}"),
    );
    HashMap::from([
        ("pk".into(), s(environment_pk(&project, &environment))),
        ("sk".into(), s("SETTINGS")),
        ("project".into(), s(project)),
        ("environment".into(), s(environment)),
        ("allFlags".into(), AttributeValue::Bool(true)),
        ("version".into(), AttributeValue::N("1".into())),
    ])
}

async fn bulk_insert(stack: &Stack, destinations: usize) {
    let client = stack.dynamo().await;
    let items: Vec<_> = (0..destinations)
        .map(destination_item)
        .chain((0..destinations.div_ceil(PER_ENVIRONMENT)).map(settings_item))
        .collect();
    let batches: Vec<Vec<_>> = items.chunks(25).map(<[_]>::to_vec).collect();
    stream::iter(batches)
        .for_each_concurrent(4, |batch| {
            let client = client.clone();
            let table = stack.table.clone();
            async move {
                let mut requests: Vec<WriteRequest> = batch
                    .into_iter()
                    .map(|item| {
                        WriteRequest::builder()
                            .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                            .build()
                    })
                    .collect();
                while !requests.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, requests)
                        .send()
                        .await
                        .expect("moto takes the batch");
                    requests = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&table))
                        .unwrap_or_default();
                }
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_big_list_pages_with_every_page_under_a_megabyte() {
    let _heavy = crate::HEAVY.lock().await;
    let destinations: usize = std::env::var("PAGING_DESTINATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500);
    let stack = std::thread::spawn(|| Stack::start(StackOptions::tests("paging", false)))
        .join()
        .unwrap()
        .expect("the local stack");
    let started = Instant::now();
    bulk_insert(&stack, destinations).await;
    let inserted = started.elapsed();

    let api = Api::new(
        stack.store().await,
        Tokens::from_hashes(&token_hash_hex(LOCAL_API_TOKEN)).unwrap(),
    );
    let get = async |path: &str| -> (String, Duration) {
        let request = http::Request::builder()
            .uri(format!("https://api.example.com{path}"))
            .header("authorization", LOCAL_API_TOKEN)
            .body(bytes::Bytes::new())
            .unwrap();
        let at = Instant::now();
        let response = api
            .handle(&request, path.split('?').next().unwrap(), "req-paging")
            .await;
        assert_eq!(response.status(), 200, "{path}: {}", response.body());
        (response.into_body(), at.elapsed())
    };

    let (first, _) = get("/api/v2/destinations").await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 20, "the default page");

    let started = Instant::now();
    let (mut next, mut seen, mut sizes, mut times) = (
        Some(format!("/api/v2/destinations?limit={MAX_LIMIT}")),
        HashSet::new(),
        Vec::new(),
        Vec::new(),
    );
    while let Some(path) = next {
        let (body, took) = get(&path).await;
        sizes.push(body.len());
        times.push(took);
        let page: Value = serde_json::from_str(&body).unwrap();
        let items = page["items"].as_array().unwrap();
        for d in items {
            assert!(
                seen.insert(d["_id"].as_str().unwrap().to_owned()),
                "{} listed twice",
                d["_id"]
            );
        }
        next = page["_links"]["next"]["href"].as_str().map(str::to_owned);
        assert!(
            items.len() == MAX_LIMIT || next.is_none(),
            "only the last page is short"
        );
    }
    let listed = started.elapsed();
    times.sort();
    let largest = *sizes.iter().max().unwrap();
    println!(
        "{destinations} destinations: inserted in {:.1} s; listed in {} pages of {MAX_LIMIT} in {:.1} s \
         (median page {} ms, slowest {} ms); largest page {largest} bytes, {} bytes in all",
        inserted.as_secs_f64(),
        sizes.len(),
        listed.as_secs_f64(),
        times[times.len() / 2].as_millis(),
        times.last().unwrap().as_millis(),
        sizes.iter().sum::<usize>(),
    );
    assert_eq!(seen.len(), destinations, "every destination once");
    assert!(largest < MB, "a page of {largest} bytes");
}
