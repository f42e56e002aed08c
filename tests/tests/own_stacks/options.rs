//! The two destination options end to end, through the real functions under `cargo lambda
//! watch`: LaunchDarkly's Python API client (unchanged) creates a destination with
//! `experimentViewed` and an `endpoint`, and `export` sends an experiment evaluation to that
//! endpoint as two messages, with the same ids on a retry.
//!
//! This stack has no `SEGMENT_BASE_URL` (it would win over every endpoint) and sets the
//! test-only `ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`, so that an endpoint may name the
//! receiver on 127.0.0.1 over http; every other outbound rule still holds (shown here for
//! an IP literal at send time, and in tests/tests/in_process/endpoint.rs for every class).

use serde_json::{Value, json};
use shared::segment::identity::experiment_viewed_id;
use shared::segment::message_id;
use std::sync::OnceLock;
use tests::fixtures::{envelope, put_settings, python_script, unique};
use tests::receiver::{Fault, FaultPlan};
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{LOCAL_API_TOKEN, Stack, StackOptions};

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let options = StackOptions {
            env: vec![
                ("SEGMENT_BASE_URL".into(), String::new()),
                ("ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS".into(), "true".into()),
            ],
            ..StackOptions::tests("options", true)
        };
        std::thread::spawn(move || Stack::start(options))
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("starting the options stack: {e}"))
    })
}

/// Creates the destination through LaunchDarkly's Python client; its id.
async fn create_with_python_client(project: &str, environment: &str, key: &str, endpoint: &str) -> Value {
    let args = vec![
        stack().api_base(),
        LOCAL_API_TOKEN.to_owned(),
        project.to_owned(),
        environment.to_owned(),
        key.to_owned(),
        endpoint.to_owned(),
    ];
    let stdout = python_script("ld_client_options.py", args).await;
    serde_json::from_str(stdout.trim()).unwrap()
}

fn experiment_evaluation(id: &str) -> Value {
    json!({
        "kind": "feature", "id": id, "creationDate": 1_700_000_000_000_i64, "key": "checkout-flow",
        "contextKeys": {"user": "u-42"}, "value": true, "variation": 1, "variationName": "treatment",
        "version": 3, "reason": {"kind": "FALLTHROUGH", "inExperiment": true}
    })
}

#[tokio::test]
async fn experiment_viewed_reaches_a_segment_compatible_endpoint_and_keeps_its_ids_on_a_retry() {
    let (project, environment, key) = (unique("opt"), unique("env"), unique("wk-options"));
    let endpoint = stack().receiver.base_url();
    let created = create_with_python_client(&project, &environment, &key, &endpoint).await;
    assert_eq!(created["config"]["endpoint"], endpoint.as_str());
    assert_eq!(created["config"]["experimentViewed"], true);
    let destination = created["id"].as_str().unwrap().to_owned();
    // Only experiments are exported here: the flag itself is not enabled.
    put_settings(&stack().store().await, &project, &environment, false, &[]).await;

    let event_id = unique("exp-ev");
    let body = envelope(&project, &environment, experiment_evaluation(&event_id));
    let batch = sqs_event([("m-exp", body.as_str())]);
    // The first request fails: the client's retry must carry the same two ids.
    stack().receiver.set_faults(FaultPlan {
        write_key: key.clone(),
        faults: [Fault::status(500)].into(),
        ..FaultPlan::default()
    });
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");
    // And a second receipt of the same record (as after a lost answer) sends them again.
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");

    let messages: Vec<Value> = stack()
        .receiver
        .messages(Some(&key))
        .into_iter()
        .map(|a| a.message)
        .collect();
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    let feature_id = message_id(&destination, &event_id).hyphenated().to_string();
    let viewed_id = experiment_viewed_id(&destination, &event_id)
        .hyphenated()
        .to_string();
    let (f, v) = (feature_id.as_str(), viewed_id.as_str());
    assert_eq!(ids, [f, v, f, v], "{messages:#?}");
    let requests = stack().receiver.requests(Some(&key));
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [500, 200, 200],
        "one retry, then one request per receipt"
    );
    assert!(
        requests.iter().all(|r| r.path == "/v1/batch"),
        "the endpoint's /v1/batch"
    );

    let viewed = &messages[1];
    assert_eq!(viewed["event"], "Experiment Viewed");
    assert_eq!(viewed["userId"], "u-42");
    assert_eq!(
        viewed["properties"],
        json!({
            "experiment_id": "checkout-flow", "experiment_name": "checkout-flow",
            "variation_id": "1", "variation_name": "treatment", "project": project,
            "environment": environment, "eventId": event_id, "contextKeys": {"user": "u-42"}
        })
    );
    assert_eq!(messages[0]["event"], "feature");
    assert_eq!(messages[0]["properties"]["inExperiment"], true);
}

#[tokio::test]
async fn an_endpoint_refused_at_send_time_fails_its_record_and_sends_nothing() {
    let (project, environment, key) = (unique("opt"), unique("env"), unique("wk-refused"));
    // Written straight to the table, as the API would never store it.
    let store = stack().store().await;
    let mut d = tests::fixtures::destination(&project, &environment, &key);
    d.config.endpoint = Some(serde_json::from_value(json!("https://169.254.169.254")).unwrap());
    tests::fixtures::put_destination(&store, &d).await;
    put_settings(&store, &project, &environment, true, &[]).await;

    let body = envelope(&project, &environment, experiment_evaluation(&unique("ev")));
    let response = stack()
        .lambda()
        .invoke("export", &sqs_event([("m-refused", body.as_str())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["m-refused"]);
    assert!(stack().receiver.requests(Some(&key)).is_empty());
    let log = std::fs::read_to_string(&stack().lambda().service.log).unwrap();
    assert!(!log.contains(&key), "the write key is in the log");
}
