//! The management API under `cargo lambda watch` (function URLs, the real runtime):
//! LaunchDarkly's own Python client against it, and `export` following what the API
//! changes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tests::fixtures::{envelope, python_script, unique};
use tests::process::{command, workspace_root};
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{LOCAL_API_TOKEN, LOCAL_READ_ONLY_TOKEN, Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

async fn api(
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let url = format!("{}{path}", stack().api_base());
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("authorization", LOCAL_API_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, body)
}

#[tokio::test]
async fn launchdarkly_python_client_works_unchanged() {
    let (project, env, key) = (unique("ldproj"), unique("ldenv"), unique("wk-ldclient"));
    let args = vec![stack().api_base(), LOCAL_API_TOKEN.to_owned(), project, env, key];
    let stdout = python_script("ld_client_check.py", args).await;
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["patchedVersion"], 2);
    assert_eq!(
        (&seen["deleted"], &seen["unauthorized"]),
        (&json!(true), &json!(true))
    );
    assert!(seen["badRequest"].as_str().unwrap().contains("writeKey"));
}

#[tokio::test]
async fn launchdarkly_typescript_client_works_unchanged() {
    let (project, env) = (unique("tsclient"), unique("env"));
    let tools = std::env::var("DATA_EXPORT_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/data-export-segment/tools",
            std::env::var("HOME").unwrap()
        )
    });
    let out = command("node")
        .arg(workspace_root().join("tests/node/ld_client_check.js"))
        .args([
            &stack().api_base(),
            LOCAL_API_TOKEN,
            &project,
            &env,
            &unique("wk-ts-client"),
        ])
        .env("NODE_PATH", format!("{tools}/node/node_modules"))
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the TypeScript client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["patchedVersion"], 2);
    assert_eq!(
        (seen["deleted"].as_bool(), seen["unauthorized"].as_bool()),
        (Some(true), Some(true))
    );
}

#[tokio::test]
async fn every_route_answers_through_function_urls() {
    let base = format!("/api/v2/destinations/{}/{}", unique("p"), unique("e"));
    let (status, headers, created) = api(
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "config": {"writeKey": "wk-url-0001-abcd"}})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(headers["content-type"], "application/json");
    let path = format!("{base}/{}", created["_id"].as_str().unwrap());
    assert_eq!(api(Method::GET, &path, None).await.0, 200);
    assert_eq!(api(Method::GET, "/api/v2/destinations", None).await.0, 200);
    // The query string reaches the function: a page of one, and a bad limit refused.
    let (status, _, page) = api(Method::GET, &format!("{base}?limit=1"), None).await;
    assert_eq!(
        (status.as_u16(), page["items"].as_array().unwrap().len()),
        (200, 1)
    );
    let (status, _, err) = api(Method::GET, "/api/v2/destinations?limit=0", None).await;
    assert_eq!((status.as_u16(), &err["code"]), (400, &json!("invalid_request")));
    let (status, _, patched) = api(
        Method::PATCH,
        &path,
        Some(json!([{"op": "replace", "path": "/name", "value": "n"}])),
    )
    .await;
    assert_eq!((status.as_u16(), &patched["version"]), (200, &json!(2)));
    let (status, headers, err) = api(Method::PUT, &path, None).await;
    assert_eq!(
        (status.as_u16(), &err["code"]),
        (405, &json!("method_not_allowed"))
    );
    assert_eq!(headers["allow"], "GET, PATCH, DELETE");
    assert!(
        !err["id"].as_str().unwrap().is_empty(),
        "every error names its request"
    );
    let test_url = format!("{}{path}/test", stack().lambda().function_url("test-event"));
    let r = reqwest::Client::new()
        .post(test_url)
        .header("authorization", LOCAL_API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(api(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(api(Method::GET, &path, None).await.0, 404);
    let settings = format!("/api/v2/data-export/{}/{}", unique("p"), unique("e"));
    assert_eq!(api(Method::GET, &settings, None).await.0, 200);
}

async fn export(records: &[(&str, String)]) -> Value {
    let event = sqs_event(records.iter().map(|(id, body)| (*id, body.as_str())));
    stack().lambda().invoke("export", &event).await.unwrap()
}

fn received(key: &str) -> Vec<String> {
    let mut ids: Vec<String> = stack()
        .receiver
        .messages(Some(key))
        .iter()
        .map(|a| a.message["properties"]["eventId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits out `export`'s destination cache (1 s in the test stack).
async fn cache_expires() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn export_follows_what_the_api_changes() {
    let (project, env) = (unique("follow"), unique("env"));
    let base = format!("/api/v2/destinations/{project}/{env}");
    let settings = format!("/api/v2/data-export/{project}/{env}");
    let (first_key, second_key, rotated_key) =
        (unique("wk-first"), unique("wk-second"), unique("wk-rotated"));
    let batch = |n: &str| -> Vec<(&'static str, String)> {
        let feature = |id: String, flag: &str| {
            envelope(
                &project,
                &env,
                json!({"kind": "feature", "id": id, "creationDate": 1, "key": flag,
                "contextKeys": {"user": "u"}, "value": true}),
            )
        };
        vec![
            ("enabled", feature(format!("{n}-enabled"), "checkout-flow")),
            ("other", feature(format!("{n}-other"), "other-flag")),
            (
                "custom",
                envelope(
                    &project,
                    &env,
                    json!({"kind": "custom", "id": format!("{n}-custom"),
                "creationDate": 1, "key": "k", "contextKeys": {"user": "u"}}),
                ),
            ),
        ]
    };

    // A destination created through the API, one flag enabled.
    let (_, _, first) = api(
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "config": {"writeKey": first_key}})),
    )
    .await;
    let first_path = format!("{base}/{}", first["_id"].as_str().unwrap());
    api(
        Method::PATCH,
        &settings,
        Some(json!([{"op": "add", "path": "/flags/checkout-flow", "value": true}])),
    )
    .await;
    let out = export(&batch("b1")).await;
    assert!(failed_ids(&out).is_empty());
    assert_eq!(received(&first_key), ["b1-custom", "b1-enabled"]);

    // Turned off: the next batch delivers nothing to it.
    api(
        Method::PATCH,
        &first_path,
        Some(json!([{"op": "replace", "path": "/on", "value": false}])),
    )
    .await;
    cache_expires().await;
    export(&batch("b2")).await;
    assert_eq!(received(&first_key), ["b1-custom", "b1-enabled"]);

    // Back on with a new key, a second destination added, every flag enabled.
    api(
        Method::PATCH,
        &first_path,
        Some(json!([{"op": "replace", "path": "/on", "value": true},
        {"op": "replace", "path": "/config/writeKey", "value": rotated_key}])),
    )
    .await;
    api(
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "config": {"writeKey": second_key}})),
    )
    .await;
    api(
        Method::PATCH,
        &settings,
        Some(json!([{"op": "replace", "path": "/allFlags", "value": true}])),
    )
    .await;
    cache_expires().await;
    export(&batch("b3")).await;
    assert_eq!(received(&first_key).len(), 2, "the old key gets nothing more");
    assert_eq!(received(&rotated_key), ["b3-custom", "b3-enabled", "b3-other"]);
    assert_eq!(received(&second_key), ["b3-custom", "b3-enabled", "b3-other"]);

    // The environment disabled and the first destination deleted.
    api(
        Method::PATCH,
        &settings,
        Some(json!([{"op": "replace", "path": "/allFlags", "value": false},
        {"op": "replace", "path": "/flags/checkout-flow", "value": false}])),
    )
    .await;
    api(Method::DELETE, &first_path, None).await;
    cache_expires().await;
    export(&batch("b4")).await;
    assert_eq!(
        received(&rotated_key).len(),
        3,
        "a deleted destination gets nothing"
    );
    let second_got = received(&second_key);
    assert!(second_got.contains(&"b4-custom".to_owned()));
    assert!(!second_got.contains(&"b4-enabled".to_owned()) && !second_got.contains(&"b4-other".to_owned()));
}

#[tokio::test]
async fn a_read_only_token_reads_but_every_write_is_a_403() {
    let (project, env) = (unique("ro"), unique("env"));
    let base = format!("/api/v2/destinations/{project}/{env}");
    let (status, _, created) = api(
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "config": {"writeKey": "wk-read-only-0001"}})),
    )
    .await;
    assert_eq!(status, 201);
    let item = format!("{base}/{}", created["_id"].as_str().unwrap());
    let settings = format!("/api/v2/data-export/{project}/{env}");
    let as_read_only = async |method: Method, url: String, body: Option<Value>| {
        let mut req = reqwest::Client::new()
            .request(method, url)
            .header("authorization", LOCAL_READ_ONLY_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let api_base = stack().api_base();
    for path in ["/api/v2/destinations", item.as_str(), settings.as_str()] {
        let (status, _) = as_read_only(Method::GET, format!("{api_base}{path}"), None).await;
        assert_eq!(status, 200, "GET {path}");
    }
    let patch = Some(json!([{"op": "replace", "path": "/on", "value": false}]));
    let writes = [
        (
            Method::POST,
            format!("{api_base}{base}"),
            Some(json!({"kind": "segment", "config": {"writeKey": "wk-read-only-0002"}})),
        ),
        (Method::PATCH, format!("{api_base}{item}"), patch),
        (Method::DELETE, format!("{api_base}{item}"), None),
        (
            Method::PATCH,
            format!("{api_base}{settings}"),
            Some(json!([{"op": "replace", "path": "/allFlags", "value": true}])),
        ),
        (
            Method::POST,
            format!("{}{item}/test", stack().lambda().function_url("test-event")),
            None,
        ),
    ];
    for (method, url, body) in writes {
        let (status, error) = as_read_only(method.clone(), url.clone(), body).await;
        assert_eq!(status, 403, "{method} {url}");
        assert_eq!(error["code"], "forbidden");
        assert!(
            error["message"].as_str().unwrap().contains("read-only"),
            "{error}"
        );
        assert!(error["id"].is_string());
    }
    // Nothing changed.
    let (_, _, still) = api(Method::GET, &item, None).await;
    assert_eq!(still["on"], true);
}

/// The outbound rules through the real function, whose resolver is the system's: a name
/// that resolves to loopback (`localhost`) and IP literals are refused at create and at
/// PATCH, and nothing refused is stored.
#[tokio::test]
async fn endpoints_inside_the_network_are_refused_through_the_function() {
    let base = format!("/api/v2/destinations/{}/{}", unique("p"), unique("e"));
    let post = |endpoint: &str| json!({"kind": "segment", "config": {"writeKey": "wk-ssrf-0123-abcd", "endpoint": endpoint}});
    let (status, _, created) = api(Method::POST, &base, Some(post("https://rudder.invalid"))).await;
    assert_eq!(
        status, 201,
        "a name that does not resolve now is accepted: {created}"
    );
    let path = format!("{base}/{}", created["_id"].as_str().unwrap());
    for (endpoint, says) in [
        ("https://localhost:8443", "loopback address"),
        ("https://127.0.0.1", "IP address"),
        ("https://[::1]", "IP address"),
        ("https://169.254.169.254", "IP address"),
        ("https://10.0.0.8", "IP address"),
        ("http://rudder.invalid", "https://"),
    ] {
        let (status, _, body) = api(Method::POST, &base, Some(post(endpoint))).await;
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        assert_eq!(status, 400, "POST {endpoint}: {body}");
        assert!(message.contains(says), "POST {endpoint}: {message}");
        let patch = json!([{"op": "replace", "path": "/config/endpoint", "value": endpoint}]);
        let (status, _, body) = api(Method::PATCH, &path, Some(patch)).await;
        assert_eq!(status, 400, "PATCH {endpoint}: {body}");
    }
    let (_, _, listed) = api(Method::GET, &base, None).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the accepted destination was stored");
    assert_eq!(items[0]["config"]["endpoint"], "https://rudder.invalid");
    assert_eq!(items[0]["version"], 1);
}

/// Write keys are checked with Segment's CDN (CONTRACT §4.1), here the receiver's CDN
/// route: a key it does not know is a 400 and nothing is stored; a key it knows is
/// `verified`; with the CDN down the write goes through, `unchecked`, and says why. A
/// PATCH that changes the key checks the new one.
#[tokio::test]
async fn write_keys_are_verified_with_segments_cdn_through_the_real_function() {
    let (project, env) = (unique("verify"), unique("env"));
    let path = format!("/api/v2/destinations/{project}/{env}");
    let create = |key: &str| json!({"name": "S", "kind": "segment", "config": {"writeKey": key}});
    let receiver = &stack().receiver;

    let unknown = unique("wk-unknown");
    receiver.set_cdn_key(&unknown, tests::receiver::CdnKey::Unknown);
    let (status, _, body) = api(Method::POST, &path, Some(create(&unknown))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_request");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("Segment does not know this write key"),
        "{message}"
    );
    assert!(!message.contains(&unknown), "the key is never echoed");
    let (_, _, listed) = api(Method::GET, &path, None).await;
    assert_eq!(listed["items"], json!([]), "nothing was stored");

    let known = unique("wk-known");
    let (status, _, created) = api(Method::POST, &path, Some(create(&known))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["_writeKey"]["status"], "verified");
    assert!(created["_writeKey"]["checkedAt"].as_u64().unwrap() > 0);
    let id = created["_id"].as_str().unwrap().to_owned();
    let (_, _, read) = api(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(
        read["_writeKey"]["status"], "verified",
        "kept with the destination"
    );

    let down = unique("wk-cdn-down");
    receiver.set_cdn_key(&down, tests::receiver::CdnKey::Down);
    let (status, _, unchecked) = api(Method::POST, &path, Some(create(&down))).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the CDN being down never blocks a write"
    );
    assert_eq!(unchecked["_writeKey"]["status"], "unchecked");
    assert_eq!(unchecked["_writeKey"]["reason"], "Segment's CDN answered 503");

    // A PATCH to a key Segment does not know is refused, and the stored key stays.
    let patch = json!([{"op": "replace", "path": "/config/writeKey", "value": unknown}]);
    let (status, _, body) = api(Method::PATCH, &format!("{path}/{id}"), Some(patch)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, _, read) = api(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(read["version"], 1);
    assert_eq!(read["_writeKey"]["status"], "verified");

    // Segment stops knowing the stored key: the test event (its own function) finds out,
    // says so, and keeps it with the destination.
    receiver.set_cdn_key(&known, tests::receiver::CdnKey::Unknown);
    let test_url = format!("{}{path}/{id}/test", stack().lambda().function_url("test-event"));
    let r = reqwest::Client::new()
        .post(test_url)
        .header("authorization", LOCAL_API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let said: Value = r.json().await.unwrap();
    assert_eq!(said["writeKey"]["status"], "rejected", "{said}");
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("Segment does not know this write key"),
        "{said}"
    );
    let (_, _, read) = api(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(read["_writeKey"]["status"], "rejected");
    assert_eq!(read["version"], 1, "a check is not a change of the destination");
}
