//! The real `export` binary under `cargo lambda watch` (the Lambda runtime API), with
//! moto's DynamoDB and the Segment receiver.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::store::environment_pk;
use tests::fixtures::*;
use tests::golden::{assert_seed_messages, seed_environments};
use tests::process::workspace_root;
use tests::sqs::failed_ids;
use tests::stack::{Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

/// Registers a destination with a fresh write key in `project/environment`.
async fn register(project: &str, environment: &str, flags: &[&str]) -> String {
    let store = stack().store().await;
    let key = unique("wk");
    put_destination(&store, &destination(project, environment, &key)).await;
    put_settings(&store, project, environment, false, flags).await;
    key
}

fn received(key: &str) -> Vec<Value> {
    stack()
        .receiver
        .messages(Some(key))
        .into_iter()
        .map(|a| a.message)
        .collect()
}

/// EMF lines `export` logged, as JSON.
fn emf_lines() -> Vec<Value> {
    let log = std::fs::read_to_string(&stack().lambda().service.log).unwrap();
    log.lines()
        .filter(|l| l.starts_with("{\"") && l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("EMF lines are JSON"))
        .collect()
}

#[tokio::test]
async fn every_kind_of_event_through_the_export_binary() {
    let key = register("demo", "production", &["checkout-flow"]).await;
    let batch = read_event_file("sqs-all-kinds.json");
    let response = stack().lambda().invoke("export", &batch).await.unwrap();

    assert_eq!(
        failed_ids(&response),
        ["m-array-one-bad", "m-bad-json", "m-no-context", "m-no-project"]
    );
    let messages = received(&key);
    let mut by_id: Vec<(String, &Value)> = messages
        .iter()
        .map(|m| (m["properties"]["eventId"].as_str().unwrap().to_owned(), m))
        .collect();
    by_id.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = by_id.iter().map(|(id, _)| id.as_str()).collect();
    // demo-13 has no id of its own: it gets a derived one (32 hex digits).
    let (own, derived): (Vec<&str>, Vec<&str>) = ids.iter().partition(|id| id.starts_with("demo-"));
    assert_eq!(
        own,
        [
            "demo-1", "demo-12", "demo-15", "demo-3", "demo-5", "demo-6", "demo-7"
        ]
    );
    assert_eq!(derived.len(), 1, "{ids:?}");
    assert!(derived[0].len() == 32 && derived[0].chars().all(|c| c.is_ascii_hexdigit()));

    let get = |id: &str| by_id.iter().find(|(i, _)| i == id).unwrap().1;
    assert_eq!(get("demo-1")["event"], "feature");
    assert_eq!(get("demo-1")["properties"]["variationName"], "new-checkout");
    assert_eq!(get("demo-3")["properties"]["value"], json!({"price": 9.99}));
    assert_eq!(get("demo-3")["properties"]["inExperiment"], true);
    assert_eq!(
        get("demo-5")["properties"]["contextKeys"],
        json!({"org": "acme", "user": "user-1"})
    );
    assert!(
        get("demo-5")["properties"].get("data").is_none(),
        "includeCustomData is off"
    );
    assert_eq!(get("demo-5")["properties"]["metricValue"], 42.5);
    assert_eq!(
        (get("demo-6")["anonymousId"].as_str(), get("demo-6").get("userId")),
        (Some("anon-7"), None)
    );
    assert_eq!(get("demo-6")["properties"]["selector"], "#buy");
    assert_eq!(get("demo-7")["type"], "page");
    assert_eq!(get("demo-7")["anonymousId"], "legacy-anon");
    assert_eq!(get(derived[0])["type"], "page");

    // Logs are JSON lines (AWS_LAMBDA_LOG_FORMAT=JSON), the summary among them.
    let log = std::fs::read_to_string(&stack().lambda().service.log).unwrap();
    let summary = log
        .lines()
        .filter(|l| l.starts_with('{') && !l.contains("\"_aws\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .find(|l| l["fields"]["message"] == "export finished" && l["fields"]["records"] == 17)
        .expect("a JSON summary line for the 17-record batch");
    assert_eq!(summary["level"], "INFO");
    assert_eq!(
        (
            &summary["fields"]["exported"],
            &summary["fields"]["failed_records"]
        ),
        (&json!(8), &json!(4))
    );

    // The invocation's EMF line carries its counts.
    let line = emf_lines()
        .into_iter()
        .find(|l| l["Records"] == 17)
        .expect("an EMF line for the 17-record batch");
    assert_eq!(line["FunctionName"], "export");
    assert_eq!(
        (
            &line["FailedRecords"],
            &line["Events"],
            &line["EventsExported"],
            &line["EventsFailedBad"],
            &line["EventsFailedTransient"],
            &line["EventsSkipped"]
        ),
        (&json!(4), &json!(19), &json!(8), &json!(4), &json!(0), &json!(7)),
        "the four bad records count as bad"
    );
    assert_eq!(line["SegmentRequests"], 1);
    assert!(line["SegmentBytes"].as_u64().unwrap() > 1000);
    assert!(line["Duration"].is_u64(), "the invocation's duration: {line}");
    assert_eq!(
        line["VisibilityChangeFailures"], 4,
        "the file's receipt handles are none SQS issued"
    );
    assert_eq!(line["StatusWriteFailures"], 0);
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["FunctionName"]])
    );
}

#[tokio::test]
async fn seed_examples_through_cargo_lambda_invoke_match_the_reference() {
    let mut environments = seed_environments();
    environments.sort();
    environments.dedup();
    let mut keys = Vec::new();
    for (project, environment) in &environments {
        keys.push(register(project, environment, &["EXAMPLE-FLAG-KEY"]).await);
    }
    let lambda = stack().lambda();
    let file = workspace_root().join("events/sqs-seed-examples.json");
    let response = tokio::task::spawn_blocking(move || lambda.invoke_cli("export", &file))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    let all: Vec<Value> = keys.iter().flat_map(|k| received(k)).collect();
    assert_seed_messages(&all);
}

#[tokio::test]
async fn a_failing_destination_reports_its_records_through_the_runtime() {
    let (project, env) = (unique("proj"), unique("env"));
    let key = register(&project, &env, &[]).await;
    stack().receiver.set_faults(tests::receiver::FaultPlan {
        write_key: key.clone(),
        faults: Default::default(),
        always: Some(tests::receiver::Fault::status(400)),
        ..tests::receiver::FaultPlan::default()
    });
    let ok_env = unique("env-ok");
    let ok_key = register(&project, &ok_env, &[]).await;
    let body_bad = envelope(&project, &env, custom_event("rej-1", "u"));
    let body_ok = envelope(&project, &ok_env, custom_event("ok-1", "u"));
    let batch = tests::sqs::sqs_event([("rejected", body_bad.as_str()), ("fine", body_ok.as_str())]);
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert_eq!(failed_ids(&response), ["rejected"]);
    assert_eq!(received(&ok_key).len(), 1);
    assert!(received(&key).is_empty());
}

#[tokio::test]
async fn a_store_failure_fails_only_the_records_that_needed_that_read() {
    let (project, env) = (unique("proj"), unique("env"));
    let key = register(&project, &env, &[]).await;
    // A settings item that cannot be read: which flags this environment exports is
    // unknown, so reading it fails (and its records retry).
    let broken_env = unique("broken");
    stack()
        .put_raw_item(
            environment_pk(&project, &broken_env),
            "SETTINGS",
            vec![("flags".into(), AttributeValue::S("not a map".into()))],
        )
        .await;
    let healthy = envelope(&project, &env, custom_event("h1", "u"));
    let broken = envelope(&project, &broken_env, custom_event("b1", "u"));
    let batch = tests::sqs::sqs_event([("healthy", healthy.as_str()), ("broken", broken.as_str())]);
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert_eq!(failed_ids(&response), ["broken"]);
    assert_eq!(received(&key).len(), 1);
    // Only this test sends two records of which one fails for now.
    let transient = emf_lines()
        .into_iter()
        .find(|l| l["Records"] == 2 && l["EventsFailedTransient"] == 1)
        .expect("an EMF line counting the store failure as transient");
    assert_eq!(
        (&transient["EventsExported"], &transient["EventsFailedBad"]),
        (&json!(1), &json!(0))
    );
}

/// One destination item that cannot be read is left out of its environment, logged and
/// counted; the environment's other destinations still get every event.
#[tokio::test]
async fn a_malformed_destination_item_is_skipped_and_the_others_deliver() {
    let (project, env) = (unique("proj"), unique("env"));
    let key = register(&project, &env, &[]).await;
    // A destination item without a write key, beside the good one.
    stack()
        .put_raw_item(environment_pk(&project, &env), "DEST#unreadable", vec![])
        .await;
    let records: Vec<String> = (0..3)
        .map(|i| envelope(&project, &env, custom_event(&format!("m{i}"), "u")))
        .collect();
    let batch = tests::sqs::sqs_event([
        ("u0", records[0].as_str()),
        ("u1", records[1].as_str()),
        ("u2", records[2].as_str()),
    ]);
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");
    assert_eq!(received(&key).len(), 3);
    let line = emf_lines()
        .into_iter()
        .find(|l| l["Records"] == 3 && l["UnreadableDestinations"] == 1)
        .expect("an EMF line counting the unreadable item");
    assert_eq!(line["EventsExported"], 3);
    let log = std::fs::read_to_string(&stack().lambda().service.log).unwrap();
    assert!(
        log.contains("DEST#unreadable") && log.contains("malformed"),
        "the item's keys are logged"
    );
}
