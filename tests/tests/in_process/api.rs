//! The management API in-process over moto's DynamoDB: every route, status code and
//! validation rule of the API (README, "The API"), optimistic concurrency, and test events.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shared::api::Api;
use shared::api::auth::{Tokens, token_hash_hex};
use shared::api::test_event::{TEST_EVENT_KEY, TestEventApi};
use shared::deadline::Deadline;
use shared::segment::SegmentClient;
use shared::segment::client::http_client;
use shared::store::{DynamoStore, Store};
use std::time::Duration;
use tests::fixtures::{fast_retries, unique};
use tests::receiver::{Fault, FaultPlan};
use tests::stack::{LOCAL_API_TOKEN, shared};

fn tokens() -> Tokens {
    Tokens::from_hashes(&token_hash_hex(LOCAL_API_TOKEN)).unwrap()
}

async fn api() -> Api<DynamoStore> {
    Api::new(shared(false).store().await, tokens())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

fn request(
    method: &str,
    path: &str,
    body: Option<String>,
    content_type: Option<&str>,
    token: Option<&str>,
) -> http::Request<Bytes> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"));
    if let Some(t) = token {
        builder = builder.header("authorization", t);
    }
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Bytes::from(body.unwrap_or_default())).unwrap()
}

fn reply(response: http::Response<String>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.into_body();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Reply {
        status,
        headers,
        body,
        text,
    }
}

async fn send(api: &Api<DynamoStore>, req: http::Request<Bytes>) -> Reply {
    let path = req.uri().path().to_owned();
    reply(api.handle(&req, &path, "req-1234").await)
}

async fn call(api: &Api<DynamoStore>, method: &str, path: &str, body: Option<Value>) -> Reply {
    let ct = body.as_ref().map(|_| "application/json");
    send(
        api,
        request(
            method,
            path,
            body.map(|b| b.to_string()),
            ct,
            Some(LOCAL_API_TOKEN),
        ),
    )
    .await
}

/// Asserts an error reply: status, code, a message containing `fragment`, the request id.
fn assert_error(r: &Reply, status: u16, code: &str, fragment: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert_eq!(r.body["id"], "req-1234");
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains(fragment),
        "message {message:?} lacks {fragment:?}"
    );
    assert_eq!(
        r.body.as_object().unwrap().len(),
        3,
        "only code, message and id: {}",
        r.text
    );
}

fn env_path() -> String {
    format!("/api/v2/destinations/{}/{}", unique("proj"), unique("env"))
}

async fn create(api: &Api<DynamoStore>, base: &str, write_key: &str) -> Value {
    let r = call(
        api,
        "POST",
        base,
        Some(json!({"name": "Segment", "kind": "segment", "config": {"writeKey": write_key}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// Every page of a list, following `_links.next` from `path`.
async fn every_page(api: &Api<DynamoStore>, path: &str) -> Vec<Value> {
    let (mut pages, mut next) = (Vec::new(), Some(path.to_owned()));
    while let Some(path) = next {
        let r = call(api, "GET", &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["_links"]["self"]["href"], path.as_str());
        next = r.body["_links"]["next"]["href"].as_str().map(str::to_owned);
        pages.push(r.body);
    }
    pages
}

/// Every destination of a list, page after page.
async fn listed(api: &Api<DynamoStore>, path: &str) -> Vec<Value> {
    every_page(api, path)
        .await
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .collect()
}

fn item_path(base: &str, created: &Value) -> String {
    format!("{base}/{}", created["_id"].as_str().unwrap())
}

#[tokio::test]
async fn calls_without_a_valid_token_are_refused() {
    let api = api().await;
    for token in [None, Some("wrong-token"), Some("")] {
        let r = send(&api, request("GET", "/api/v2/destinations", None, None, token)).await;
        assert_error(&r, 401, "unauthorized", "token");
    }
    let bearer = format!("Bearer {LOCAL_API_TOKEN}");
    let r = send(
        &api,
        request("GET", "/api/v2/destinations", None, None, Some(&bearer)),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn post_creates_a_destination_with_the_write_key_masked() {
    let api = api().await;
    let base = env_path();
    let r = call(&api, "POST", &base, Some(json!({"name": "Prod", "kind": "segment",
        "config": {"writeKey": "wk-create-abcd1234", "region": "eu", "includeCustomData": true}, "_ignored": 1}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
    let d = &r.body;
    assert!(uuid::Uuid::parse_str(d["_id"].as_str().unwrap()).is_ok());
    assert_eq!(d["name"], "Prod");
    assert_eq!(d["kind"], "segment");
    assert_eq!(d["on"], true);
    assert_eq!(d["version"], 1);
    assert!(d["createdAt"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        d["config"],
        json!({"writeKey": "**************1234", "region": "eu", "includeCustomData": true, "experimentViewed": false})
    );
    assert_eq!(d["_links"]["self"]["href"], item_path(&base, d));
    assert_eq!(d["_links"]["parent"]["href"], "/api/v2/destinations");
    assert_eq!(d["_access"], json!({"allowed": [], "denied": []}));
    assert!(!r.text.contains("wk-create"));
    // The stored key is the real one.
    let stored = shared(false).store().await;
    let parts: Vec<&str> = base.split('/').collect();
    let got = stored
        .get_destination(parts[4], parts[5], d["_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.config.write_key.expose(), "wk-create-abcd1234");
}

#[tokio::test]
async fn post_validation_answers_400_with_what_to_fix() {
    let api = api().await;
    let base = env_path();
    let cases = [
        (
            json!({"kind": "kinesis", "config": {"writeKey": "wk-0123456789ab"}}),
            "\"kinesis\" is not supported",
        ),
        (
            json!({"config": {"writeKey": "wk-0123456789ab"}}),
            "kind is required",
        ),
        (json!({"kind": "segment"}), "config is required"),
        (
            json!({"kind": "segment", "config": {}}),
            "config.writeKey is required",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": ""}}),
            "must not be empty",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "region": "apac"}}),
            "config.region: unknown variant `apac`, expected `us` or `eu`",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "enabled": true}),
            "unknown field \"enabled\"",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "host": "x"}}),
            "config.host is not a Segment setting",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": 42}}),
            "config.writeKey: invalid type: integer `42`, expected a string",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "on": "true"}),
            "on must be true or false",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "name": 7}),
            "name must be a string",
        ),
        (
            json!({"kind": 1, "config": {"writeKey": "wk-0123456789ab"}}),
            "kind must be a string",
        ),
        (
            json!({"kind": "segment", "config": "k"}),
            "config must be an object",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "includeCustomData": "no"}}),
            "includeCustomData",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "anonymousIDContextKind": "has space"}}),
            "anonymousIDContextKind",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "********abcd"}}),
            "looks masked",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "experimentViewed": "yes"}}),
            "config.experimentViewed: invalid type: string \"yes\", expected a boolean",
        ),
        (
            json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "endpoint": "https://10.0.0.1"}}),
            "config.endpoint is an IP address",
        ),
        (json!(["kind", "segment"]), "JSON object"),
    ];
    for (body, fragment) in cases {
        let r = call(&api, "POST", &base, Some(body.clone())).await;
        assert_error(&r, 400, "invalid_request", fragment);
    }
}

#[tokio::test]
async fn bad_bodies_keys_and_content_types() {
    let api = api().await;
    let base = env_path();
    let post = |body: String, ct: Option<&'static str>| {
        request("POST", &base, Some(body), ct, Some(LOCAL_API_TOKEN))
    };
    let r = send(&api, post("{\"kind\": ".into(), Some("application/json"))).await;
    assert_error(&r, 400, "invalid_request", "not valid JSON");
    let r = send(&api, post("".into(), Some("application/json"))).await;
    assert_error(&r, 400, "invalid_request", "empty");
    let r = send(
        &api,
        post("kind=segment".into(), Some("application/x-www-form-urlencoded")),
    )
    .await;
    assert_error(&r, 400, "invalid_request", "Content-Type");
    let big =
        json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "name": "x".repeat(70_000)})
            .to_string();
    let r = send(&api, post(big, Some("application/json"))).await;
    assert_error(&r, 413, "payload_too_large", "65536");
    let ok = json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}}).to_string();
    let r = send(&api, post(ok.clone(), Some("application/json; charset=utf-8"))).await;
    assert_eq!(r.status, 201);
    let r = call(
        &api,
        "POST",
        "/api/v2/destinations/bad%20project/env",
        Some(json!({})),
    )
    .await;
    assert_error(&r, 400, "invalid_request", "projectKey \"bad project\"");
    let r = call(&api, "GET", "/api/v2/data-export/p/.hidden", None).await;
    assert_error(&r, 400, "invalid_request", "environmentKey \".hidden\"");
}

#[tokio::test]
async fn get_list_and_delete() {
    let api = api().await;
    let base = env_path();
    let created = create(&api, &base, "wk-get-list-0001").await;
    let path = item_path(&base, &created);
    let r = call(&api, "GET", &path, None).await;
    let mut shown = r.body.clone();
    let delivery = shown.as_object_mut().unwrap().remove("_delivery");
    assert_eq!(
        (r.status.as_u16(), &shown),
        (200, &created),
        "as created, with its delivery status"
    );
    assert_eq!(delivery.unwrap()["state"], "idle", "no events yet");

    // The environment's own list: the same, delivery status included.
    let r = call(&api, "GET", &base, None).await;
    assert_eq!(
        (r.status.as_u16(), r.body["items"][0]["_id"].clone()),
        (200, created["_id"].clone())
    );
    assert_eq!(r.body["items"][0]["_delivery"]["state"], "idle");
    assert_eq!(r.headers["x-access"], "read-write");

    let r = call(&api, "GET", "/api/v2/destinations", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["_links"]["self"]["href"], "/api/v2/destinations");
    assert!(!r.text.contains("wk-get-list"));
    assert!(
        listed(&api, "/api/v2/destinations?limit=50")
            .await
            .contains(&created)
    );

    let r = call(&api, "DELETE", &path, None).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_error(
        &call(&api, "DELETE", &path, None).await,
        404,
        "not_found",
        "no destination",
    );
    assert_error(
        &call(&api, "GET", &path, None).await,
        404,
        "not_found",
        "no destination",
    );
    assert_error(
        &call(&api, "PATCH", &path, Some(json!([]))).await,
        404,
        "not_found",
        "no destination",
    );
}

#[tokio::test]
async fn the_list_is_complete_across_scan_pages() {
    let stack = shared(false);
    let api = Api::new(stack.store().await.with_scan_page_size(2), tokens());
    let base = env_path();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create(&api, &base, &format!("wk-page-000000{i}")).await["_id"].clone());
    }
    let all = listed(&api, "/api/v2/destinations?limit=50").await;
    let listed: Vec<&Value> = all.iter().map(|d| &d["_id"]).collect();
    for id in &ids {
        assert!(listed.contains(&id), "{id} missing from the list");
    }
}

/// README, "Pages": both lists page by `limit`, with `_links.next` while there are more;
/// following it lists each destination once, an environment's sorted by id.
#[tokio::test]
async fn lists_page_by_limit_with_links_to_the_next_page() {
    let api = api().await;
    let base = env_path();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&api, &base, &format!("wk-paged-00000{i}")).await["_id"].clone());
    }
    ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let pages = every_page(&api, &format!("{base}?limit=2")).await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["items"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
    let next = pages[0]["_links"]["next"]["href"].as_str().unwrap();
    assert!(next.starts_with(&format!("{base}?limit=2&after=")), "{next}");
    let shown: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        shown.iter().map(|d| d["_id"].clone()).collect::<Vec<_>>(),
        ids,
        "sorted by id, each once"
    );
    assert!(shown.iter().all(|d| d["_delivery"]["state"] == "idle"));

    // The default page: at most 20 of an environment's 21, and a next one.
    for i in 5..21 {
        create(&api, &base, &format!("wk-paged-0000{i:02}")).await;
    }
    let r = call(&api, "GET", &base, None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 20);
    assert_eq!(r.body["_links"]["self"]["href"], base.as_str());
    let rest = call(
        &api,
        "GET",
        r.body["_links"]["next"]["href"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert!(
        rest.body["_links"].get("next").is_none(),
        "the last page has no next"
    );

    // Every environment's list, 3 a page: every page full but the last, no one twice.
    let pages = every_page(&api, "/api/v2/destinations?limit=3").await;
    assert!(pages.len() >= 7, "21 destinations at least");
    let all: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .collect();
    assert!(
        pages[..pages.len() - 1]
            .iter()
            .all(|p| p["items"].as_array().unwrap().len() == 3)
    );
    let distinct: std::collections::HashSet<String> = all
        .iter()
        .map(|d| d["_links"]["self"]["href"].to_string())
        .collect();
    assert_eq!(distinct.len(), all.len(), "a destination listed twice");
    let ours: Vec<&Value> = all
        .iter()
        .filter(|d| d["_links"]["self"]["href"].as_str().unwrap().starts_with(&base))
        .collect();
    assert_eq!(ours.len(), 21);
}

#[tokio::test]
async fn bad_paging_parameters_are_a_400_saying_what_to_send() {
    let api = api().await;
    let base = env_path();
    for path in ["/api/v2/destinations", base.as_str()] {
        for limit in ["0", "-1", "51", "ten", "2.5"] {
            let r = call(&api, "GET", &format!("{path}?limit={limit}"), None).await;
            assert_error(
                &r,
                400,
                "invalid_request",
                "limit must be a whole number from 1 to 50",
            );
        }
        for after in ["garbage!", "eyJhIjoxfQ", "WyJwIiwiZSJd"] {
            let r = call(&api, "GET", &format!("{path}?after={after}"), None).await;
            assert_error(&r, 400, "invalid_request", "_links.next");
        }
        let r = call(&api, "GET", &format!("{path}?offset=40"), None).await;
        assert_error(&r, 400, "invalid_request", "follow _links.next");
        assert_eq!(
            call(&api, "GET", &format!("{path}?offset=0&limit=50"), None)
                .await
                .status,
            200
        );
    }
    // A cursor of one environment's list is refused by another's.
    let other = env_path();
    for i in 0..2 {
        create(&api, &other, &format!("wk-other-list-{i:04}")).await;
    }
    let r = call(&api, "GET", &format!("{other}?limit=1"), None).await;
    let next = r.body["_links"]["next"]["href"].as_str().unwrap();
    let cursor = next.split("after=").nth(1).unwrap();
    let r = call(&api, "GET", &format!("{base}?after={cursor}"), None).await;
    assert_error(&r, 400, "invalid_request", "another list");
}

/// One destination item that cannot be read (written by hand, or by a version that had
/// other attributes) is left out of the list of every destination, not a 500 for all.
#[tokio::test]
async fn a_malformed_item_is_left_out_of_the_list_not_a_500() {
    let stack = shared(false);
    let api = api().await;
    let base = env_path();
    let good = create(&api, &base, "wk-beside-a-bad-one").await;
    stack
        .put_raw_item(format!("ENV#{}#bad", unique("p")), "DEST#no-write-key", vec![])
        .await;
    let all = listed(&api, "/api/v2/destinations?limit=50").await;
    let ids: Vec<&Value> = all.iter().map(|d| &d["_id"]).collect();
    assert!(ids.contains(&&good["_id"]));
    assert!(!ids.contains(&&json!("no-write-key")));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let api = api().await;
    let base = env_path();
    let created = create(&api, &base, "wk-methods-0001").await;
    let path = item_path(&base, &created);
    for (method, p, allow) in [
        ("PUT", path.as_str(), "GET, PATCH, DELETE"),
        ("POST", path.as_str(), "GET, PATCH, DELETE"),
        ("DELETE", "/api/v2/destinations", "GET"),
        ("DELETE", base.as_str(), "GET, POST"),
        ("POST", "/api/v2/data-export/p/e", "GET, PATCH"),
    ] {
        let r = call(&api, method, p, None).await;
        assert_error(&r, 405, "method_not_allowed", allow);
        assert_eq!(r.headers["allow"], allow);
    }
    assert_error(
        &call(&api, "GET", "/api/v2/flags", None).await,
        404,
        "not_found",
        "no route",
    );
    assert_error(&call(&api, "GET", "/", None).await, 404, "not_found", "no route");
    assert_error(
        &call(&api, "POST", &format!("{path}/test"), None).await,
        404,
        "not_found",
        "test-event",
    );
}

#[tokio::test]
async fn patch_applies_json_patch_with_versions_and_read_only_paths() {
    let api = api().await;
    let base = env_path();
    let created = create(&api, &base, "wk-patch-original-9999").await;
    let path = item_path(&base, &created);
    let store = shared(false).store().await;
    let parts: Vec<String> = base.split('/').map(str::to_owned).collect();
    let stored_key = || async {
        store
            .get_destination(&parts[4], &parts[5], created["_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap()
            .config
            .write_key
            .expose()
            .to_owned()
    };

    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([
            {"op": "replace", "path": "/name", "value": "Renamed"},
            {"op": "replace", "path": "/on", "value": false},
            {"op": "add", "path": "/config/userIDContextKind", "value": "account"},
            {"op": "copy", "from": "/config/userIDContextKind", "path": "/config/anonymousIDContextKind"},
            {"op": "test", "path": "/version", "value": 1}
        ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["name"], &r.body["on"], &r.body["version"]),
        (&json!("Renamed"), &json!(false), &json!(2))
    );
    assert_eq!(r.body["config"]["userIDContextKind"], "account");
    assert_eq!(r.body["config"]["anonymousIDContextKind"], "account");
    assert_eq!(
        stored_key().await,
        "wk-patch-original-9999",
        "the masked key was kept"
    );

    // The comment wrapper, move and remove, and `~1`/`~0` escapes in a path that does not exist.
    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!({"comment": "tidy", "patch": [
            {"op": "move", "from": "/config/anonymousIDContextKind", "path": "/config/userIDContextKind"},
            {"op": "remove", "path": "/config/userIDContextKind"}
        ]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 3);
    assert!(r.body["config"].get("userIDContextKind").is_none());
    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "replace", "path": "/config/a~1b~0c", "value": 1}])),
    )
    .await;
    assert_error(&r, 400, "invalid_request", "/config/a~1b~0c");

    // A new key replaces the stored one; the response still masks it.
    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "replace", "path": "/config/writeKey", "value": "wk-patch-rotated-7777"}])),
    )
    .await;
    assert_eq!(
        r.body["config"]["writeKey"],
        format!("{}7777", "*".repeat("wk-patch-rotated-7777".len() - 4))
    );
    assert_eq!(stored_key().await, "wk-patch-rotated-7777");

    // Read-only paths, a failed test, a result that is not a valid destination.
    for (ops, status, code, fragment) in [
        (
            json!([{"op": "replace", "path": "/_id", "value": "x"}]),
            400,
            "invalid_request",
            "read-only",
        ),
        (
            json!([{"op": "replace", "path": "/kind", "value": "kinesis"}]),
            400,
            "invalid_request",
            "read-only",
        ),
        (
            json!([{"op": "replace", "path": "/version", "value": 99}]),
            400,
            "invalid_request",
            "read-only",
        ),
        (
            json!([{"op": "test", "path": "/version", "value": 1}, {"op": "replace", "path": "/name", "value": "x"}]),
            409,
            "optimistic_locking_error",
            "test operation 0 failed",
        ),
        (
            json!([{"op": "remove", "path": "/config/writeKey"}]),
            400,
            "invalid_request",
            "writeKey is required",
        ),
        (
            json!([{"op": "replace", "path": "/on", "value": "off"}]),
            400,
            "invalid_request",
            "on must be true or false",
        ),
        (
            json!([{"op": "add", "path": "/colour", "value": "red"}]),
            400,
            "invalid_request",
            "unknown field \"colour\"",
        ),
        (
            json!([{"op": "remove", "path": "/nothing"}]),
            400,
            "invalid_request",
            "/nothing",
        ),
        (
            json!([{"op": "jump", "path": "/name"}]),
            400,
            "invalid_request",
            "invalid JSON Patch",
        ),
        (
            json!({"name": "not a patch"}),
            400,
            "invalid_request",
            "unknown field \"name\"",
        ),
    ] {
        let r = call(&api, "PATCH", &path, Some(ops.clone())).await;
        assert_error(&r, status, code, fragment);
    }
    let r = call(&api, "GET", &path, None).await;
    assert_eq!(r.body["version"], 4, "failed patches changed nothing");

    // A patch that changes nothing keeps the version.
    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "replace", "path": "/name", "value": "Renamed"}])),
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body["version"]), (200, &json!(4)));
}

#[tokio::test]
async fn concurrent_patches_with_a_version_test_have_one_winner() {
    let base = env_path();
    let created = create(&api().await, &base, "wk-race-test-0001").await;
    let path = item_path(&base, &created);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            tokio::spawn(async move {
                let api = api().await;
                let ops = json!([{"op": "test", "path": "/version", "value": 1},
                                 {"op": "replace", "path": "/name", "value": format!("writer-{i}")}]);
                let r = call(&api, "PATCH", &path, Some(ops)).await;
                (i, r.status.as_u16(), r.body)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, status, body) = t.await.unwrap();
        match status {
            200 => winners.push(i),
            409 => assert_eq!(body["code"], "optimistic_locking_error"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner for version 1: {winners:?}");
    let r = call(&api().await, "GET", &path, None).await;
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["name"], format!("writer-{}", winners[0]));
}

#[tokio::test]
async fn concurrent_patches_without_a_test_all_apply() {
    let base = env_path();
    let created = create(&api().await, &base, "wk-race-all-0001").await;
    let path = item_path(&base, &created);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            tokio::spawn(async move {
                let api = api().await;
                let ops = json!([{"op": "replace", "path": "/name", "value": format!("writer-{i}")}]);
                call(&api, "PATCH", &path, Some(ops)).await.status.as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let r = call(&api().await, "GET", &path, None).await;
    assert_eq!(r.body["version"], 21, "every one of the 20 changes applied");

    // No lost update: 20 writers each enable their own flag.
    let settings = format!("/api/v2/data-export/{}/{}", unique("proj"), unique("env"));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let settings = settings.clone();
            tokio::spawn(async move {
                let ops = json!([{"op": "add", "path": format!("/flags/flag-{i}"), "value": true}]);
                call(&api().await, "PATCH", &settings, Some(ops))
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let r = call(&api().await, "GET", &settings, None).await;
    assert_eq!(r.body["flags"].as_object().unwrap().len(), 20, "{}", r.text);
    assert_eq!(r.body["version"], 20);
}

#[tokio::test]
async fn data_export_settings() {
    let api = api().await;
    let path = format!("/api/v2/data-export/{}/{}", unique("proj"), unique("env"));
    let r = call(&api, "GET", &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (&r.body["allFlags"], &r.body["flags"]),
        (&json!(false), &json!({}))
    );
    assert_eq!(r.body["_links"]["self"]["href"], path);

    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "add", "path": "/flags/checkout-flow", "value": true}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["flags"], &r.body["version"]),
        (&json!({"checkout-flow": true}), &json!(1))
    );
    let r = call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "replace", "path": "/allFlags", "value": true}])),
    )
    .await;
    assert_eq!(
        (&r.body["allFlags"], &r.body["version"]),
        (&json!(true), &json!(2))
    );

    for (ops, status, code, fragment) in [
        (
            json!([{"op": "add", "path": "/flags/bad key", "value": true}]),
            400,
            "invalid_request",
            "flag key \"bad key\"",
        ),
        (
            json!([{"op": "replace", "path": "/allFlags", "value": "yes"}]),
            400,
            "invalid_request",
            "allFlags",
        ),
        (
            json!([{"op": "add", "path": "/flags/x", "value": 1}]),
            400,
            "invalid_request",
            "flags.x",
        ),
        (
            json!([{"op": "replace", "path": "/version", "value": 1}]),
            400,
            "invalid_request",
            "read-only",
        ),
        (
            json!([{"op": "test", "path": "/version", "value": 1}, {"op": "replace", "path": "/allFlags", "value": false}]),
            409,
            "optimistic_locking_error",
            "test operation 0",
        ),
    ] {
        assert_error(
            &call(&api, "PATCH", &path, Some(ops)).await,
            status,
            code,
            fragment,
        );
    }
}

async fn test_event_api() -> TestEventApi<DynamoStore, SegmentClient> {
    let stack = shared(false);
    let segment =
        SegmentClient::new(http_client(), Some(stack.receiver.base_url())).with_policy(fast_retries());
    TestEventApi::new(stack.store().await, segment, tokens())
}

async fn post_test(api: &TestEventApi<DynamoStore, SegmentClient>, method: &str, path: &str) -> Reply {
    let req = request(method, path, None, None, Some(LOCAL_API_TOKEN));
    reply(
        api.handle(&req, path, "req-1234", Deadline::after(Duration::from_secs(20)))
            .await,
    )
}

#[tokio::test]
async fn test_events_go_through_the_sender_whether_the_destination_is_on_or_off() {
    let api = api().await;
    let base = env_path();
    let key = unique("wk-test-event");
    let created = create(&api, &base, &key).await;
    let path = item_path(&base, &created);
    call(
        &api,
        "PATCH",
        &path,
        Some(json!([{"op": "replace", "path": "/on", "value": false}])),
    )
    .await;

    let tester = test_event_api().await;
    let r = post_test(&tester, "POST", &format!("{path}/test")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], 200);
    let message_id = r.body["messageId"].as_str().unwrap().to_owned();
    assert!(r.body["message"].as_str().unwrap().contains("wrong write key"));
    assert!(r.body["message"].as_str().unwrap().contains("Debugger"));
    let got = shared(false).receiver.messages(Some(&key));
    assert_eq!(got.len(), 1);
    let m = &got[0].message;
    assert_eq!((&m["type"], &m["event"]), (&json!("track"), &json!("custom")));
    assert_eq!(m["properties"]["key"], TEST_EVENT_KEY);
    assert_eq!(m["messageId"], message_id);
    assert!(!r.text.contains(&key));

    shared(false).receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        faults: Default::default(),
        always: Some(Fault::status(401)),
        ..FaultPlan::default()
    });
    let r = post_test(&tester, "POST", &format!("{path}/test")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(
        (&r.body["code"], &r.body["segmentStatus"]),
        (&json!("segment_error"), &json!(401))
    );
    assert!(r.body["message"].as_str().unwrap().contains("401"));
    assert_eq!(r.body["id"], "req-1234");

    let r = post_test(&tester, "GET", &format!("{path}/test")).await;
    assert_error(&r, 405, "method_not_allowed", "POST");
    let r = post_test(&tester, "POST", &format!("{base}/no-such-id/test")).await;
    assert_error(&r, 404, "not_found", "no destination");
    let r = post_test(&tester, "POST", "/api/v2/destinations").await;
    assert_error(&r, 404, "not_found", "no route");
}

#[tokio::test]
async fn the_openapi_description_is_served_without_a_token() {
    let api = api().await;
    let req = http::Request::builder()
        .method("GET")
        .uri("/api/v2/openapi.json")
        .body(Bytes::new())
        .unwrap();
    let r = send(&api, req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    assert!(r.body["paths"]["/api/v2/destinations/{projectKey}/{environmentKey}/{id}"]["patch"].is_object());
    let r = call(&api, "POST", "/api/v2/openapi.json", Some(json!({}))).await;
    assert_eq!(r.status, 405);
}

/// The environment a credential resolves to, through the store (one GetItem).
async fn resolves(
    store: &shared::store::DynamoStore,
    kind: shared::sources::SourceKind,
    credential: &str,
) -> Option<(String, String)> {
    use shared::store::SourceStore;
    let id = shared::sources::lookup_id(kind, credential);
    store
        .resolve(kind, &id)
        .await
        .unwrap()
        .map(|r| (r.project, r.environment))
}

#[tokio::test]
async fn event_sources_are_stored_as_digests_resolved_in_one_read_and_rotated() {
    use shared::sources::SourceKind;
    let stack = shared(false);
    let api = api().await;
    let store = stack.store().await;
    let (project, env) = (unique("proj"), unique("env"));
    let path = format!("/api/v2/event-sources/{project}/{env}");
    let (old_key, new_key, mobile_key) = (unique("sdk-old"), unique("sdk-new"), unique("mob"));
    let client_side = unique("cs");

    let r = call(&api, "GET", &path, None).await;
    assert_eq!((r.status.as_u16(), r.body["version"].as_u64()), (200, Some(0)));
    let r = call(
        &api,
        "PUT",
        &path,
        Some(json!({"sdkKeys": [old_key], "mobileKeys": [mobile_key], "clientSideIds": [client_side]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = r.body.to_string();
    assert!(
        !shown.contains(&old_key) && !shown.contains(&mobile_key),
        "keys are never returned: {shown}"
    );
    assert_eq!(r.body["sdkKeys"][0]["sha256Prefix"].as_str().unwrap().len(), 8);
    let here = Some((project.clone(), env.clone()));
    assert_eq!(resolves(&store, SourceKind::Sdk, &old_key).await, here);
    assert_eq!(resolves(&store, SourceKind::Mobile, &mobile_key).await, here);
    assert_eq!(resolves(&store, SourceKind::ClientSide, &client_side).await, here);
    assert_eq!(resolves(&store, SourceKind::Sdk, "sdk-unknown-key").await, None);

    // Rotation with a grace period: the old key kept by its digest beside the new one...
    let old_digest = shared::sources::key_digest(&old_key);
    let r = call(
        &api,
        "PUT",
        &path,
        Some(json!({"sdkKeys": [{"sha256": old_digest}, new_key]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["sdkKeys"].as_array().unwrap().len(), 2);
    assert_eq!(resolves(&store, SourceKind::Sdk, &new_key).await, here);
    // ...and the mobile key and client-side ID left out are gone.
    assert_eq!(resolves(&store, SourceKind::Mobile, &mobile_key).await, None);
    assert_eq!(resolves(&store, SourceKind::ClientSide, &client_side).await, None);
    // Then the old key is dropped.
    let r = call(&api, "PUT", &path, Some(json!({"sdkKeys": [new_key]}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(resolves(&store, SourceKind::Sdk, &old_key).await, None);

    // A key belongs to one environment.
    let other = format!("/api/v2/event-sources/{project}/{}", unique("other"));
    let r = call(&api, "PUT", &other, Some(json!({"sdkKeys": [new_key]}))).await;
    assert_error(&r, 409, "optimistic_locking_error", "another environment");
    assert_eq!(resolves(&store, SourceKind::Sdk, &new_key).await, here);
    let r = call(&api, "PATCH", &path, Some(json!([]))).await;
    assert_eq!(r.status, 405);
}

/// A client-side ID's `allowedOrigins`: stored normalised on its lookup item (what `ingest`
/// reads, in the same one read), shown as sent; bad origins are a 400 naming the entry and
/// what to send; items written before there were allowed origins still read, as any origin,
/// and can be given a list.
#[tokio::test]
async fn allowed_origins_are_validated_stored_with_the_lookup_and_old_items_still_read() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::sources::{Resolved, SourceKind};
    use shared::store::SourceStore;
    let stack = shared(false);
    let api = api().await;
    let store = stack.store().await;
    let (project, env) = (unique("proj"), unique("env"));
    let path = format!("/api/v2/event-sources/{project}/{env}");
    let (shop, open) = (unique("shop"), unique("open"));
    let origins_of = |r: Option<Resolved>| -> Option<Vec<String>> {
        r.map(|r| {
            r.allowed_origins
                .origins()
                .iter()
                .map(|o| o.to_string())
                .collect()
        })
    };

    let body = json!({"clientSideIds": [
        {"id": shop, "allowedOrigins": ["https://Shop.Example:443", "http://localhost:3000"]},
        open,
    ]});
    let r = call(&api, "PUT", &path, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = json!([
        {"id": shop, "allowedOrigins": ["https://shop.example", "http://localhost:3000"]},
        open,
    ]);
    assert_eq!(r.body["clientSideIds"], shown);
    let r = call(&api, "GET", &path, None).await;
    assert_eq!(r.body["clientSideIds"], shown, "GET shows it too");
    let lookup = store.resolve(SourceKind::ClientSide, &shop).await.unwrap();
    assert_eq!(
        origins_of(lookup),
        Some(vec![
            "https://shop.example".to_owned(),
            "http://localhost:3000".to_owned()
        ]),
        "on the lookup item"
    );
    let lookup = store.resolve(SourceKind::ClientSide, &open).await.unwrap();
    assert_eq!(origins_of(lookup), Some(vec![]));

    // Bad input: a 400 in the contract's shape, naming the entry and what to send.
    let many: Vec<String> = (0..51).map(|i| format!("https://h{i}.example")).collect();
    for (ids, fragment) in [
        (
            json!([{"id": shop, "allowedOrigins": ["https://shop.example/"]}]),
            "clientSideIds[0].allowedOrigins[0] has a path",
        ),
        (
            json!([open, {"id": shop, "allowedOrigins": ["shop.example"]}]),
            "clientSideIds[1].allowedOrigins[0] is not an origin",
        ),
        (
            json!([{"id": shop, "allowedOrigins": ["ftp://shop.example"]}]),
            "http or https",
        ),
        (json!([{"id": shop, "allowedOrigins": many}]), "at most 50"),
        (
            json!([{"id": shop, "allowedOrigins": "https://shop.example"}]),
            "must be an array",
        ),
        (json!([{"id": shop, "origins": []}]), "unknown field"),
    ] {
        let r = call(&api, "PUT", &path, Some(json!({"clientSideIds": ids}))).await;
        assert_error(&r, 400, "invalid_request", fragment);
    }
    let r = call(&api, "GET", &path, None).await;
    assert_eq!(r.body["clientSideIds"], shown, "a refused PUT changes nothing");

    // Items as written before allowed origins: the ID a plain string, the lookup without them.
    let (old_project, old_env, old_id) = (unique("proj"), unique("env"), unique("old"));
    let s = |v: &str| AttributeValue::S(v.to_owned());
    stack
        .put_raw_item(
            shared::store::environment_pk(&old_project, &old_env),
            "SOURCES",
            vec![
                ("project".into(), s(&old_project)),
                ("environment".into(), s(&old_env)),
                ("sdkKeys".into(), AttributeValue::L(vec![])),
                ("mobileKeys".into(), AttributeValue::L(vec![])),
                ("clientSideIds".into(), AttributeValue::L(vec![s(&old_id)])),
                ("version".into(), AttributeValue::N("1".into())),
            ],
        )
        .await;
    stack
        .put_raw_item(
            format!("SOURCE#client#{old_id}"),
            "SOURCE",
            vec![
                ("project".into(), s(&old_project)),
                ("environment".into(), s(&old_env)),
            ],
        )
        .await;
    let old_path = format!("/api/v2/event-sources/{old_project}/{old_env}");
    let r = call(&api, "GET", &old_path, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["clientSideIds"], json!([old_id]));
    let lookup = store.resolve(SourceKind::ClientSide, &old_id).await.unwrap();
    assert_eq!(origins_of(lookup), Some(vec![]), "an old lookup: any origin");
    let r = call(
        &api,
        "PUT",
        &old_path,
        Some(json!({"clientSideIds": [{"id": old_id, "allowedOrigins": ["https://old.example"]}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lookup = store.resolve(SourceKind::ClientSide, &old_id).await.unwrap();
    assert_eq!(origins_of(lookup), Some(vec!["https://old.example".to_owned()]));
}

/// A table that cannot be reached is an outage: 503 with `Retry-After`, in the API's
/// error shape, whatever the route (the one mapping of store failures, shared with ingest).
#[tokio::test]
async fn an_unreachable_table_is_a_503_with_retry_after() {
    let config = tests::moto::aws_config("http://127.0.0.1:1").await;
    let api = Api::new(
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "data-export"),
        tokens(),
    );
    let base = env_path();
    for (method, path, body) in [
        ("GET", "/api/v2/destinations".to_owned(), None),
        ("GET", base.clone(), None),
        (
            "POST",
            base.clone(),
            Some(json!({"kind": "segment", "config": {"writeKey": "wk-outage-0123"}})),
        ),
        (
            "GET",
            format!("/api/v2/data-export/{}", &base["/api/v2/destinations/".len()..]),
            None,
        ),
    ] {
        let r = call(&api, method, &path, body).await;
        assert_error(&r, 503, "service_unavailable", "retry");
        assert_eq!(r.headers["retry-after"], "1", "{method} {path}");
    }
}
