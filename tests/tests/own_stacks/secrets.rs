//! No response body, error message or log line of a whole run contains a write key. (Nor does
//! the API token.) One run through everything that touches keys: the API (create, read, list,
//! patch with the masked key sent back, rotation, invalid requests), test events (accepted, and
//! refused by Segment with the key echoed back), `export`, and LaunchDarkly's Python client,
//! with every function logging at TRACE. Then the functions' logs and every captured
//! response are searched for the keys used.

use reqwest::Method;
use serde_json::{Value, json};
use tests::fixtures::{envelope, unique};
use tests::process::{command, workspace_root};
use tests::receiver::{Fault, FaultPlan};
use tests::sqs::sqs_event;
use tests::stack::{LOCAL_API_TOKEN, Stack, StackOptions};

#[tokio::test]
async fn no_write_key_reaches_a_response_or_a_log_line() {
    let options = StackOptions {
        env: vec![("AWS_LAMBDA_LOG_LEVEL".into(), "trace".into())],
        ..StackOptions::tests("secrets", true)
    };
    let stack = std::thread::spawn(move || Stack::start(options))
        .join()
        .unwrap()
        .expect("the stack starts");
    let keys: Vec<String> = ["created", "rotated", "refused", "invalid", "ldclient"]
        .iter()
        .map(|k| unique(&format!("secret-wk-{k}")))
        .collect();
    let (project, env) = (unique("secrets"), unique("env"));
    let base = format!("/api/v2/destinations/{project}/{env}");
    let mut responses: Vec<String> = Vec::new();
    let http = reqwest::Client::new();
    let mut call = async |method: Method, url: String, body: Option<Value>| -> Value {
        let mut req = http.request(method, url).header("authorization", LOCAL_API_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let headers = format!("{:?}", r.headers());
        let text = r.text().await.unwrap();
        responses.push(format!("{headers}\n{text}"));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    let api = stack.api_base();
    let tests = stack.lambda().function_url("test-event");

    let created = call(
        Method::POST,
        format!("{api}{base}"),
        Some(json!({"kind": "segment", "config": {"writeKey": keys[0]}})),
    )
    .await;
    let path = format!("{base}/{}", created["_id"].as_str().unwrap());
    call(Method::GET, format!("{api}{path}"), None).await;
    call(Method::GET, format!("{api}/api/v2/destinations"), None).await;
    let masked = created["config"]["writeKey"].clone();
    call(
        Method::PATCH,
        format!("{api}{path}"),
        Some(json!([{"op": "replace", "path": "/config", "value": {"writeKey": masked, "region": "eu"}}])),
    )
    .await;
    call(Method::POST, format!("{tests}{path}/test"), None).await;
    call(
        Method::PATCH,
        format!("{api}{path}"),
        Some(json!([{"op": "replace", "path": "/config/writeKey", "value": keys[1]}])),
    )
    .await;

    // Segment refuses the rotated key and echoes it back in its error.
    stack.receiver.set_faults(FaultPlan {
        write_key: keys[1].clone(),
        faults: vec![Fault {
            status: Some(401),
            body: Some(format!("invalid write key {}", keys[1])),
            ..Fault::default()
        }]
        .into(),
        always: None,
        ..FaultPlan::default()
    });
    let refused = call(Method::POST, format!("{tests}{path}/test"), None).await;
    assert_eq!(refused["segmentStatus"], 401, "{refused}");

    // Invalid requests that carry keys.
    call(
        Method::POST,
        format!("{api}{base}"),
        Some(json!({"kind": "kinesis", "config": {"writeKey": keys[3]}})),
    )
    .await;
    call(
        Method::POST,
        format!("{api}{base}"),
        Some(json!({"kind": "segment", "config": {"writeKey": keys[3], "extra": keys[3]}})),
    )
    .await;
    call(
        Method::PATCH,
        format!("{api}{path}"),
        Some(json!([{"op": "test", "path": "/config/writeKey", "value": keys[3]}])),
    )
    .await;
    call(
        Method::PATCH,
        format!("{api}{path}"),
        Some(json!([{"op": "replace", "path": "/kind", "value": keys[3]}])),
    )
    .await;

    // export, with a destination whose Segment fails and one that works.
    stack.receiver.set_faults(FaultPlan {
        write_key: keys[2].clone(),
        faults: Default::default(),
        always: Some(Fault {
            status: Some(400),
            body: Some(format!("bad key {}", keys[2])),
            ..Fault::default()
        }),
        ..FaultPlan::default()
    });
    call(
        Method::POST,
        format!("{api}{base}"),
        Some(json!({"kind": "segment", "config": {"writeKey": keys[2]}})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let body = envelope(
        &project,
        &env,
        json!({"kind": "custom", "id": "s1", "creationDate": 1, "key": "k", "contextKeys": {"user": "u"}}),
    );
    let out = stack
        .lambda()
        .invoke("export", &sqs_event([("s1", body.as_str())]))
        .await
        .unwrap();
    responses.push(out.to_string());

    // LaunchDarkly's client with its own key.
    let out = command("python3")
        .arg(workspace_root().join("tests/python/ld_client_check.py"))
        .args([&api, LOCAL_API_TOKEN, &project, &unique("ldenv"), &keys[4]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    responses.push(String::from_utf8_lossy(&out.stdout).into_owned());

    // Let the functions flush their logs, then search them.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(&stack.lambda().service.log).unwrap();
    assert!(log.contains("destination created"), "the API logged its work");
    assert!(
        log.contains("Segment refused a message as invalid"),
        "export logged the refused delivery"
    );
    assert!(
        !log.contains(LOCAL_API_TOKEN),
        "a log line contains the API token"
    );
    for key in &keys {
        for (i, response) in responses.iter().enumerate() {
            assert!(
                !response.contains(key.as_str()),
                "response {i} contains write key {key}: {response}"
            );
        }
        if let Some(line) = log.lines().find(|l| l.contains(key.as_str())) {
            panic!("a log line contains write key {key}: {line}");
        }
    }
}
