//! The event archive end to end (CONTRACT §6): the real `export` binary under
//! `cargo lambda watch` writes to moto's S3 (`ARCHIVE_BUCKET`, `AWS_ENDPOINT_URL_S3`), and
//! the objects read back from moto are gzipped JSON Lines under
//! `{project}/{environment}/{yyyy}/{mm}/{dd}/{hh}/`.

use serde_json::{Value, json};
use tests::fixtures::*;
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

#[tokio::test]
async fn the_export_binary_keeps_every_envelope_in_s3() {
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    let store = stack().store().await;
    let d = destination(&project, &env, &key);
    put_destination(&store, &d).await;
    let mut no_id = custom_event("", "u2");
    no_id.as_object_mut().unwrap().remove("id");
    let mut retry: Value =
        serde_json::from_str(&envelope(&project, &env, custom_event("r-1", "u1"))).unwrap();
    retry["destinations"] = json!([d.id]);
    let bodies = [
        envelope(&project, &env, custom_event("e-1", "u1")),
        envelope(&project, &env, no_id),
        envelope(
            &project,
            &env,
            json!({"kind": "index", "id": "i-1", "creationDate": 1_764_093_600_000_i64,
                                        "contextKeys": {"user": "u1"}}),
        ),
        retry.to_string(),
    ];
    let records: Vec<(String, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (unique(&format!("m-{i}")), b.as_str()))
        .collect();
    let batch = sqs_event(records.iter().map(|(id, b)| (id.as_str(), *b)));
    let response = stack().lambda().invoke("export", &batch).await.unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");

    let derived: Vec<String> = stack()
        .receiver
        .messages(Some(&key))
        .into_iter()
        .map(|a| a.message["properties"]["eventId"].as_str().unwrap().to_owned())
        .filter(|id| !["e-1", "r-1"].contains(&id.as_str()))
        .collect();
    assert_eq!(derived.len(), 1, "{derived:?}");

    let lines = stack().archived(&format!("{project}/")).await;
    let folder = format!("{project}/{env}/2025/11/25/18/");
    let mut ids: Vec<String> = lines
        .iter()
        .map(|(object, line)| {
            assert!(
                object.starts_with(&folder) && object.ends_with(".jsonl.gz"),
                "{object}"
            );
            line["event"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    let mut expected = vec!["e-1".to_owned(), "i-1".to_owned(), derived[0].clone()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "every envelope but the retry, the derived id written in"
    );
    let objects: std::collections::BTreeSet<&String> = lines.iter().map(|(o, _)| o).collect();
    assert_eq!(objects.len(), 1, "one object for the environment's hour");
    let e1 = lines.iter().find(|(_, l)| l["event"]["id"] == "e-1").unwrap();
    assert_eq!(
        e1.1,
        serde_json::from_str::<Value>(&bodies[0]).unwrap(),
        "kept as it came"
    );
}
