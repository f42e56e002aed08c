//! Replays end to end (CONTRACT §4.4), through the real functions under
//! `cargo lambda watch`, moto's S3, DynamoDB and SQS, and the receiver: events exported
//! while a destination's write key was wrong (Segment answers 200 and drops them; the
//! receiver keeps them under that key), the key fixed and a flag enabled since, then a
//! replay of the hour delivers every event once to the fixed key, with its live
//! `messageId`, and nothing to the environment's other destination.

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tests::fixtures::{envelope, unique};
use tests::receiver::CdnKey;
use tests::replays::{api, api_as, drain_replays};
use tests::sqs::{failed_ids, sqs_event};
use tests::stack::{LOCAL_READ_ONLY_TOKEN, Stack, shared};

fn stack() -> &'static Stack {
    shared(true)
}

fn now() -> i64 {
    shared::timestamp::now_millis() as i64
}

/// The receiver's messages for `key`, by event id: each event's `messageId`s.
fn message_ids(key: &str) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for accepted in stack().receiver.messages(Some(key)) {
        let m = &accepted.message;
        let event = m["properties"]["eventId"].as_str().unwrap_or_default().to_owned();
        ids.entry(event)
            .or_default()
            .push(m["messageId"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn a_replay_after_a_wrong_key_delivers_every_missed_event_once_to_that_destination_only() {
    let (project, env) = (unique("replay"), unique("env"));
    let (wrong, right, other) = (unique("wk-wrong"), unique("wk-right"), unique("wk-other"));
    let base = format!("/api/v2/destinations/{project}/{env}");
    // Segment's CDN is down when the wrong key is registered: the write goes through, unchecked.
    stack().receiver.set_cdn_key(&wrong, CdnKey::Down);
    let (status, created) = api(
        stack(),
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "name": "typo", "config": {"writeKey": wrong}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["_writeKey"]["status"], "unchecked");
    let id = created["_id"].as_str().unwrap().to_owned();
    let (status, second) = api(
        stack(),
        Method::POST,
        &base,
        Some(json!({"kind": "segment", "config": {"writeKey": other}})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &second["_writeKey"]["status"]),
        (201, &json!("verified"))
    );

    // Live traffic half an hour ago: four custom events, an evaluation of a flag not
    // enabled for Data Export, and an index event (never exported).
    let at = now() - 30 * 60_000;
    let mut events: Vec<Value> = (1..=4)
        .map(|i| {
            json!({"kind": "custom", "id": format!("c{i}"), "creationDate": at + i, "key": "purchase",
                        "contextKeys": {"user": format!("u{i}")}})
        })
        .collect();
    events.push(
        json!({"kind": "feature", "id": "f1", "creationDate": at + 5, "key": "late-flag",
                       "contextKeys": {"user": "u1"}, "value": true, "variation": 0, "version": 3}),
    );
    events.push(json!({"kind": "index", "id": "i1", "creationDate": at + 6, "contextKeys": {"user": "u1"}}));
    let bodies: Vec<String> = events
        .iter()
        .map(|e| envelope(&project, &env, e.clone()))
        .collect();
    let records: Vec<(String, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (unique(&format!("live-{i}")), b.as_str()))
        .collect();
    let response = stack()
        .lambda()
        .invoke(
            "export",
            &sqs_event(records.iter().map(|(m, b)| (m.as_str(), *b))),
        )
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");
    let dropped = message_ids(&wrong);
    assert_eq!(dropped.keys().collect::<Vec<_>>(), ["c1", "c2", "c3", "c4"]);
    let others_before = stack().receiver.messages(Some(&other)).len();
    assert_eq!(others_before, 4);

    // The key fixed (Segment knows it) and the flag enabled.
    let (status, patched) = api(
        stack(),
        Method::PATCH,
        &format!("{base}/{id}"),
        Some(json!([{"op": "replace", "path": "/config/writeKey", "value": right}])),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &patched["_writeKey"]["status"]),
        (200, &json!("verified"))
    );
    let (status, _) = api(
        stack(),
        Method::PATCH,
        &format!("/api/v2/data-export/{project}/{env}"),
        Some(json!([{"op": "add", "path": "/flags/late-flag", "value": true}])),
    )
    .await;
    assert_eq!(status, 200);
    // export's cached read of the environment (DESTINATION_CACHE_TTL_SECONDS=1) lapses.
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // Refusals first: a read-only token, a range the archive does not keep, no such replay.
    let replays = format!("{base}/{id}/replays");
    let range = json!({"from": now() - 3_600_000, "to": now()});
    let (status, e) = api_as(
        stack(),
        LOCAL_READ_ONLY_TOKEN,
        Method::POST,
        &replays,
        Some(range.clone()),
    )
    .await;
    assert_eq!((status.as_u16(), &e["code"]), (403, &json!("forbidden")));
    let old = json!({"from": now() - 40 * 86_400_000, "to": now()});
    let (status, e) = api(stack(), Method::POST, &replays, Some(old)).await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().contains("kept 30 days"), "{e}");
    let (status, e) = api(
        stack(),
        Method::GET,
        &format!("{replays}/0000000000000-nothing"),
        None,
    )
    .await;
    assert_eq!((status.as_u16(), &e["code"]), (404, &json!("not_found")));

    let (status, started) = api(stack(), Method::POST, &replays, Some(range)).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["state"], "running");
    let replay = started["_links"]["self"]["href"].as_str().unwrap().to_owned();
    let drained = drain_replays(stack(), 20).await;
    assert_eq!((drained.tasks, drained.failed), (1, 0), "{drained:?}");
    assert!(drained.records >= 1, "{drained:?}");

    let (status, done) = api(stack(), Method::GET, &replay, None).await;
    assert_eq!(status, 200);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        done["events"],
        json!({"read": 6, "queued": 6, "delivered": 5, "failed": 0, "skipped": 1}),
        "{done}"
    );
    let (_, listed) = api(stack(), Method::GET, &replays, None).await;
    assert_eq!(listed["items"][0]["_id"], done["_id"]);

    // Every missed event exactly once, with the messageId it had live; the flag's
    // evaluation too, under today's settings.
    let got = message_ids(&right);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["c1", "c2", "c3", "c4", "f1"]);
    for (event, ids) in &got {
        assert_eq!(ids.len(), 1, "{event}: {ids:?}");
        if let Some(live) = dropped.get(event) {
            assert_eq!(ids, live, "{event} keeps its live messageId");
        }
    }
    assert_eq!(
        stack().receiver.messages(Some(&other)).len(),
        others_before,
        "the environment's other destination got nothing from the replay"
    );
}
