//! The export pipeline in-process, over the in-memory store and Segment sender: the
//! golden examples and every routing and failure rule (README, "How `export`
//! handles a batch"). The same paths run end to end through the
//! `export` binary, moto and the receiver in `lambda_e2e.rs`.

use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::destination::Region;
use shared::export::Exporter;
use shared::requeue::RetrySchedule;
use shared::segment::DeliveryError;
use shared::store::{CachedStore, Store};
use std::collections::HashSet;
use std::time::Duration;
use tests::fixtures::*;
use tests::golden::{assert_seed_messages, seed_environments};
use tests::memory::{Answer, MemoryRequeue, MemorySegment, MemoryStore};

const TTL: Duration = Duration::from_secs(30);

type MemoryExporter = Exporter<CachedStore<MemoryStore>, MemorySegment>;

fn exporter(cache_ttl: Duration) -> MemoryExporter {
    Exporter::new(
        CachedStore::new(MemoryStore::new(), cache_ttl),
        MemorySegment::new(),
    )
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(25))
}

fn messages_for(exporter: &MemoryExporter, write_key: &str) -> Vec<Value> {
    exporter.segment().messages(Some(write_key))
}

/// The distinct `messageId`s of messages.
fn message_ids(messages: &[Value]) -> HashSet<&str> {
    messages
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect()
}

fn event_ids(messages: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| m["properties"]["eventId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// A fresh environment with one destination that is on; returns (project, env, write key).
fn environment_with_destination(exporter: &MemoryExporter, flags: &[&str]) -> (String, String, String) {
    let store = exporter.store().inner();
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    store.put_destination(destination(&project, &env, &key));
    store.put_export_settings(&project, &env, false, flags);
    (project, env, key)
}

#[tokio::test]
async fn golden_seed_envelopes_become_the_seed_examples() {
    let exporter = exporter(TTL);
    let store = exporter.store().inner();
    let mut keys = Vec::new();
    let mut environments = seed_environments();
    environments.dedup();
    environments.sort();
    environments.dedup();
    for (project, environment) in &environments {
        let key = unique("golden");
        store.put_destination(destination(project, environment, &key));
        store.put_export_settings(project, environment, false, &["EXAMPLE-FLAG-KEY"]);
        keys.push(key);
    }
    let seed = read_event_file("sqs-seed-examples.json");
    let (response, stats) = exporter
        .export(&serde_json::from_value(seed).unwrap(), deadline())
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(
        (
            stats.exported,
            stats.failed_bad,
            stats.failed_transient,
            stats.skipped
        ),
        (4, 0, 0, 0)
    );

    let received: Vec<Value> = keys.iter().flat_map(|k| messages_for(&exporter, k)).collect();
    assert_seed_messages(&received);
    for request in exporter.segment().requests(None) {
        assert!(
            request.sent_at.as_ref().is_some_and(|s| s.len() == 24),
            "millisecond RFC 3339 sentAt"
        );
    }
}

#[tokio::test]
async fn feature_events_need_their_flag_the_environment_or_an_experiment() {
    let exporter = exporter(Duration::ZERO);
    let (project, env, key) = environment_with_destination(&exporter, &["enabled-flag"]);
    let feature = |id: &str, flag: &str, in_experiment: bool| {
        envelope(
            &project,
            &env,
            json!({"kind": "feature", "id": id, "creationDate": 1, "key": flag,
            "contextKeys": {"user": "u"}, "value": true,
            "reason": {"kind": "FALLTHROUGH", "inExperiment": in_experiment}}),
        )
    };
    let records = [
        ("enabled", feature("f-enabled", "enabled-flag", false)),
        ("disabled", feature("f-disabled", "disabled-flag", false)),
        ("experiment", feature("f-experiment", "disabled-flag", true)),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!((stats.exported, stats.skipped), (2, 1));
    assert_eq!(
        event_ids(&messages_for(&exporter, &key)),
        ["f-enabled", "f-experiment"]
    );
    assert_eq!(
        messages_for(&exporter, &key)
            .iter()
            .find(|m| m["properties"]["eventId"] == "f-experiment")
            .unwrap()["properties"]["inExperiment"],
        true
    );

    // All flags of the environment.
    exporter
        .store()
        .inner()
        .put_export_settings(&project, &env, true, &[]);
    let records = [("all", feature("f-all", "any-flag", false))];
    exporter.export(&batch(&records), deadline()).await;
    assert!(event_ids(&messages_for(&exporter, &key)).contains(&"f-all".to_owned()));
}

#[tokio::test]
async fn skipped_kinds_are_not_sent_and_not_failed() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let records: Vec<(String, String)> = ["debug", "identify", "index", "summary", "alias", "migration_op"]
        .iter()
        .map(|kind| {
            let event = json!({"kind": kind, "id": kind, "creationDate": 1, "key": "k", "contextKeys": {"user": "u"}});
            (kind.to_string(), envelope(&project, &env, event))
        })
        .collect();
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        (
            stats.events,
            stats.skipped,
            stats.exported,
            stats.segment_requests
        ),
        (6, 6, 0, 0)
    );
    assert!(messages_for(&exporter, &key).is_empty());
}

#[tokio::test]
async fn only_destinations_that_are_on_and_of_kind_segment_receive_events() {
    let exporter = exporter(TTL);
    let store = exporter.store().inner();
    let (project, env) = (unique("proj"), unique("env"));
    let on = destination(&project, &env, &unique("wk-on"));
    let mut off = destination(&project, &env, &unique("wk-off"));
    off.on = false;
    let mut other_kind = destination(&project, &env, &unique("wk-kinesis"));
    other_kind.kind = "kinesis".into();
    for d in [&on, &off, &other_kind] {
        store.put_destination(d.clone());
    }
    let records = [("r1", envelope(&project, &env, custom_event("c1", "u1")))];
    let (response, _) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(messages_for(&exporter, on.config.write_key.expose()).len(), 1);
    assert!(messages_for(&exporter, off.config.write_key.expose()).is_empty());
    assert!(messages_for(&exporter, other_kind.config.write_key.expose()).is_empty());
}

#[tokio::test]
async fn environments_without_destinations_succeed_with_nothing_sent() {
    let exporter = exporter(TTL);
    let records = [(
        "r1",
        envelope(&unique("nobody"), "here", custom_event("c1", "u1")),
    )];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!((stats.skipped, stats.segment_requests), (1, 0));
}

#[tokio::test]
async fn each_destination_gets_its_own_message_ids_and_identity_rules() {
    let exporter = exporter(TTL);
    let store = exporter.store().inner();
    let (project, env) = (unique("proj"), unique("env"));
    let plain = destination(&project, &env, &unique("wk-plain"));
    let mut by_account = destination(&project, &env, &unique("wk-account"));
    by_account.config.user_id_context_kind = Some("account".into());
    by_account.config.include_custom_data = true;
    by_account.config.region = Region::Eu;
    store.put_destination(plain.clone());
    store.put_destination(by_account.clone());
    let event = json!({"kind": "custom", "id": "multi-1", "creationDate": 1, "key": "k", "data": {"x": 1},
        "context": {"kind": "multi", "user": {"key": "u1"}, "account": {"key": "acc-1"}}});
    exporter
        .export(&batch(&[("r1", envelope(&project, &env, event))]), deadline())
        .await;
    let a = &messages_for(&exporter, plain.config.write_key.expose())[0];
    let b = &messages_for(&exporter, by_account.config.write_key.expose())[0];
    assert_eq!(
        (a["userId"].as_str(), b["userId"].as_str()),
        (Some("u1"), Some("acc-1"))
    );
    assert!(a["properties"].get("data").is_none());
    assert_eq!(b["properties"]["data"], json!({"x": 1}));
    assert_ne!(a["messageId"], b["messageId"]);
}

#[tokio::test]
async fn a_redelivered_record_keeps_its_message_ids_even_without_event_ids() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let no_id = json!({"kind": "custom", "creationDate": 5, "key": "k", "contextKeys": {"user": "u"}});
    let body = format!(
        "[{},{}]",
        envelope(&project, &env, no_id.clone()),
        envelope(&project, &env, no_id)
    );
    let records = [("r1", body)];
    exporter.export(&batch(&records), deadline()).await;
    exporter.export(&batch(&records), deadline()).await;
    let messages = messages_for(&exporter, &key);
    assert_eq!(messages.len(), 4);
    let ids = message_ids(&messages);
    assert_eq!(
        ids.len(),
        2,
        "two distinct events, each with one messageId across deliveries"
    );
    let event_ids: HashSet<&str> = messages
        .iter()
        .map(|m| m["properties"]["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(event_ids.len(), 2);
}

#[tokio::test]
async fn bad_records_fail_alone_and_good_envelopes_beside_them_are_delivered() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let good = envelope(&project, &env, custom_event("good-1", "u"));
    let records = [
        ("ok", good.clone()),
        ("not-json", "{nope".to_owned()),
        (
            "no-env",
            json!({"project": project, "event": custom_event("x", "u")}).to_string(),
        ),
        (
            "no-kind",
            envelope(&project, &env, json!({"id": "y", "creationDate": 1})),
        ),
        (
            "no-context",
            envelope(
                &project,
                &env,
                json!({"kind": "custom", "id": "z", "creationDate": 1, "key": "k"}),
            ),
        ),
        (
            "array-one-bad",
            format!(
                "[{},{{\"project\":1}}]",
                envelope(&project, &env, custom_event("good-2", "u"))
            ),
        ),
        ("empty-body", String::new()),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(
        failed(&response),
        [
            "array-one-bad",
            "empty-body",
            "no-context",
            "no-env",
            "no-kind",
            "not-json"
        ]
    );
    assert_eq!(event_ids(&messages_for(&exporter, &key)), ["good-1", "good-2"]);
    assert_eq!(stats.exported, 2);
}

#[tokio::test]
async fn a_store_failure_fails_only_the_records_that_needed_that_read() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let broken_env = unique("broken");
    exporter.store().inner().fail_reads_of(&project, &broken_env);
    let records = [
        ("healthy", envelope(&project, &env, custom_event("h1", "u"))),
        ("broken", envelope(&project, &broken_env, custom_event("b1", "u"))),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["broken"]);
    assert_eq!(event_ids(&messages_for(&exporter, &key)), ["h1"]);
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (1, 0, 1),
        "a store failure is transient"
    );
}

/// A read that does not answer before the deadline fails only its environment's records,
/// for now; what was read is delivered (paused time: the slow read takes a minute).
#[tokio::test(start_paused = true)]
async fn an_environment_not_read_before_the_deadline_fails_only_its_records() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let (slow_project, slow_env, slow_key) = environment_with_destination(&exporter, &[]);
    exporter
        .store()
        .inner()
        .slow_reads_of(&slow_project, &slow_env, Duration::from_secs(60));
    let records = [
        ("read", envelope(&project, &env, custom_event("r1", "u"))),
        (
            "slow",
            envelope(&slow_project, &slow_env, custom_event("s1", "u")),
        ),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["slow"]);
    assert_eq!(event_ids(&messages_for(&exporter, &key)), ["r1"]);
    assert!(messages_for(&exporter, &slow_key).is_empty());
    assert_eq!(
        (stats.exported, stats.failed_transient),
        (1, 1),
        "not read in time: transient"
    );
}

#[tokio::test]
async fn one_query_per_environment_per_invocation_and_none_while_cached() {
    let exporter = exporter(TTL);
    let (p1, e1, _) = environment_with_destination(&exporter, &[]);
    let (p2, e2, _) = environment_with_destination(&exporter, &[]);
    let records: Vec<(String, String)> = (0..100)
        .map(|i| {
            let (p, e) = if i % 2 == 0 { (&p1, &e1) } else { (&p2, &e2) };
            (
                format!("r{i}"),
                envelope(p, e, custom_event(&format!("q{i}"), "u")),
            )
        })
        .collect();
    let before = exporter.store().inner().environment_reads();
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(stats.exported, 100);
    assert_eq!(
        exporter.store().inner().environment_reads() - before,
        2,
        "one read per environment"
    );
    exporter.export(&batch(&records), deadline()).await;
    assert_eq!(
        exporter.store().inner().environment_reads() - before,
        2,
        "no read while cached"
    );
}

/// How many destinations the exporter's (cached) store sees in an environment.
async fn destinations_seen(exporter: &MemoryExporter, project: &str, env: &str) -> usize {
    exporter
        .store()
        .environment(project, env)
        .await
        .unwrap()
        .destinations
        .len()
}

#[tokio::test(start_paused = true)]
async fn the_cache_expires_after_its_ttl() {
    let exporter = exporter(Duration::from_secs(30));
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    assert_eq!(destinations_seen(&exporter, &project, &env).await, 1);
    let second = destination(&project, &env, &unique("wk-second"));
    exporter.store().inner().put_destination(second.clone());
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(destinations_seen(&exporter, &project, &env).await, 1, "cached");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(destinations_seen(&exporter, &project, &env).await, 2, "expired");
    exporter
        .export(
            &batch(&[("r", envelope(&project, &env, custom_event("t1", "u")))]),
            deadline(),
        )
        .await;
    assert_eq!(messages_for(&exporter, &key).len(), 1);
    assert_eq!(messages_for(&exporter, second.config.write_key.expose()).len(), 1);
}

#[tokio::test]
async fn a_bad_event_fails_its_record_even_where_nobody_would_receive_it() {
    let exporter = exporter(TTL);
    let no_context = json!({"kind": "custom", "id": "lost", "creationDate": 1, "key": "k"});
    let records = [("bad", envelope(&unique("nobody"), "here", no_context))];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["bad"]);
    assert_eq!(
        (stats.failed_bad, stats.failed_transient, stats.skipped),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn skipped_kinds_never_fail_even_when_their_environment_cannot_be_read() {
    let exporter = exporter(TTL);
    let (project, env, _) = environment_with_destination(&exporter, &[]);
    exporter.store().inner().fail_reads_of(&project, &env);
    let summary = json!({"kind": "summary", "startDate": 1, "endDate": 2, "features": {}});
    let records = [("s", envelope(&project, &env, summary))];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(
        failed(&response).is_empty(),
        "nothing to send, so nothing to retry"
    );
    assert_eq!(stats.skipped, 1);
}

/// Why events were not exported, per destination and hour (README, "Why an event was
/// not exported"): a flag not enabled (with its key), a kind never exported, a destination
/// that is off.
#[tokio::test]
async fn each_destinations_status_counts_what_it_did_not_get_and_why() {
    let exporter = exporter(TTL).with_status_interval(Duration::ZERO);
    let (project, env, key) = environment_with_destination(&exporter, &["enabled-flag"]);
    let mut off = destination(&project, &env, &unique("wk-off"));
    off.on = false;
    let off_id = off.id.clone();
    exporter.store().inner().put_destination(off);
    let feature = |id: &str, flag: &str| {
        json!({"kind": "feature", "id": id, "creationDate": 1, "key": flag, "value": true,
               "contextKeys": {"user": "u"}})
    };
    let mut records: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                format!("c{i}"),
                envelope(&project, &env, feature(&format!("c{i}"), "checkout-flow")),
            )
        })
        .collect();
    records.push(("n".into(), envelope(&project, &env, feature("n", "new-banner"))));
    records.push((
        "on".into(),
        envelope(&project, &env, feature("on", "enabled-flag")),
    ));
    records.push((
        "s".into(),
        envelope(
            &project,
            &env,
            json!({"kind": "summary", "startDate": 1, "endDate": 2}),
        ),
    ));
    let (response, _) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        messages_for(&exporter, &key).len(),
        1,
        "only the enabled flag's evaluation"
    );

    let statuses = shared::store::DeliveryStore::delivery_statuses(exporter.store().inner(), &project, &env)
        .await
        .unwrap();
    let on_id = statuses.keys().find(|id| **id != off_id).unwrap().clone();
    let hour = |id: &str| statuses[id].to_json(shared::timestamp::now_millis())["hours"][0].clone();
    let on = hour(&on_id);
    assert_eq!(on["delivered"], 1);
    assert_eq!(on["skipped"]["flagNotEnabled"], 4);
    assert_eq!(on["skipped"]["kindNotExported"], 1);
    assert_eq!(on["skipped"]["destinationOff"], 0);
    assert_eq!(
        on["skipped"]["topFlags"],
        json!([{"key": "checkout-flow", "count": 3}, {"key": "new-banner", "count": 1}])
    );
    let off = hour(&off_id);
    assert_eq!(off["skipped"]["destinationOff"], 6, "every event, had it been on");
    assert_eq!(off["delivered"], 0);
    assert_eq!(statuses[&off_id].state(), "idle", "skips change no state");
}

#[tokio::test]
async fn events_with_an_empty_id_get_distinct_derived_ids() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let event = |user: &str| json!({"kind": "custom", "id": "", "creationDate": 1, "key": "k", "contextKeys": {"user": user}});
    let records = [
        ("a", envelope(&project, &env, event("u1"))),
        ("b", envelope(&project, &env, event("u2"))),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(stats.exported, 2);
    let messages = messages_for(&exporter, &key);
    let ids = message_ids(&messages);
    assert_eq!(
        ids.len(),
        2,
        "Segment would keep one of two messages sharing a messageId"
    );
    assert!(
        messages
            .iter()
            .all(|m| m["properties"]["eventId"].as_str().unwrap().len() == 32)
    );
}

#[tokio::test]
async fn empty_context_keys_never_become_an_identity() {
    let exporter = exporter(TTL);
    let (project, env, key) = environment_with_destination(&exporter, &[]);
    let event = |id: &str, contexts: Value| {
        let mut e = json!({"kind": "custom", "id": id, "creationDate": 1, "key": "k"});
        e.as_object_mut()
            .unwrap()
            .extend(contexts.as_object().unwrap().clone());
        e
    };
    let records = [
        (
            "empty-user-and-org",
            envelope(
                &project,
                &env,
                event("e1", json!({"contextKeys": {"user": "", "org": "o1"}})),
            ),
        ),
        (
            "only-empty",
            envelope(&project, &env, event("e2", json!({"contextKeys": {"user": ""}}))),
        ),
        (
            "empty-user-key",
            envelope(&project, &env, event("e3", json!({"userKey": ""}))),
        ),
        (
            "empty-context-key",
            envelope(
                &project,
                &env,
                event("e4", json!({"context": {"kind": "user", "key": ""}})),
            ),
        ),
        (
            "empty-multi",
            envelope(
                &project,
                &env,
                event(
                    "e5",
                    json!({"context": {"kind": "multi", "user": {"key": ""}, "org": {"key": ""}}}),
                ),
            ),
        ),
    ];
    let (response, _) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(
        failed(&response),
        ["empty-context-key", "empty-multi", "empty-user-key", "only-empty"]
    );
    let messages = messages_for(&exporter, &key);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["userId"], Value::Null, "an empty key is no userId");
    assert_eq!(messages[0]["anonymousId"], "org:o1");
}

/// Visibility changes that never answer (a hung SQS) end at the invocation's deadline,
/// counted as failed: the records then come back after the queue's own timeout.
#[tokio::test(start_paused = true)]
async fn visibility_changes_that_never_answer_end_at_the_deadline() {
    struct Hanging;
    impl shared::requeue::Requeue for Hanging {
        async fn set_visibility(&self, _: Vec<shared::requeue::Visibility>) -> u64 {
            std::future::pending().await
        }
    }
    let exporter = exporter(TTL).with_requeue(Hanging, RetrySchedule::default());
    let records = [("bad-1", "not json".to_owned()), ("bad-2", "[1".to_owned())];
    let answered = tokio::time::timeout(
        Duration::from_secs(120),
        exporter.export(&batch(&records), deadline()),
    )
    .await;
    let (response, stats) = answered.expect("the invocation waited on SQS past its deadline");
    assert_eq!(failed(&response), ["bad-1", "bad-2"]);
    assert_eq!(stats.visibility_failures, 2);
}

#[tokio::test]
async fn failed_records_come_back_on_the_schedule_and_bad_ones_at_once() {
    let requeue = MemoryRequeue::new();
    let schedule = RetrySchedule {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(100),
    };
    let exporter = exporter(TTL).with_requeue(requeue.clone(), schedule);
    let (project, env) = (unique("proj"), unique("env"));
    let (ok, down) = (unique("wk-ok"), unique("wk-down"));
    let down_env = unique("env-down");
    exporter
        .store()
        .inner()
        .put_destination(destination(&project, &env, &ok));
    exporter
        .store()
        .inner()
        .put_destination(destination(&project, &down_env, &down));
    exporter.segment().script(
        &down,
        vec![],
        Some(Answer::Fail(
            Duration::ZERO,
            DeliveryError::GaveUp {
                attempts: 8,
                last: "HTTP 503".into(),
            },
        )),
    );
    let records = [
        ("fine", envelope(&project, &env, custom_event("f", "u"))),
        ("not-json", "{nope".to_owned()),
        (
            "undeliverable",
            envelope(&project, &down_env, custom_event("d", "u")),
        ),
    ];
    let mut sqs = batch(&records);
    // Its fourth receipt: the schedule's fourth step, 10 s doubled three times.
    sqs.records[2]
        .attributes
        .insert("ApproximateReceiveCount".into(), "4".into());
    let (response, _) = exporter.export(&sqs, deadline()).await;
    assert_eq!(failed(&response), ["not-json", "undeliverable"]);
    let set = requeue.visibilities();
    assert_eq!(set.len(), 2, "only failed records: {set:?}");
    assert_eq!(
        set["handle-not-json"],
        Duration::ZERO,
        "bad in itself: to the DLQ fast"
    );
    let wait = set["handle-undeliverable"];
    assert!(
        wait >= Duration::from_secs(80) && wait <= Duration::from_secs(100),
        "{wait:?}"
    );
}
