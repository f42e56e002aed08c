//! Delivery under Segment faults, injected by the receiver per write key, through the
//! real `SegmentClient` over HTTP (README, "How `export` handles a batch", step 6).

use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::export::Exporter;
use shared::retry::Backoff;
use shared::segment::SegmentClient;
use shared::segment::SendPolicy;
use shared::segment::batch::{MAX_MESSAGE_BYTES, lower_bound};
use shared::segment::client::http_client;
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tests::fixtures::*;
use tests::memory::MemoryStore;
use tests::receiver::{self, ReceiverHandle};
use tests::receiver::{Fault, FaultPlan};

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(25))
}

/// A fresh environment with one destination; returns (project, env, write key).
/// One receiver for the whole binary: the real Segment stand-in over HTTP.
fn receiver() -> &'static ReceiverHandle {
    static RECEIVER: OnceLock<ReceiverHandle> = OnceLock::new();
    RECEIVER.get_or_init(|| receiver::start_in_background(0))
}

/// Destinations live in memory: these tests are about the Segment client.
fn store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(MemoryStore::new)
}

fn exporter(policy: SendPolicy) -> Exporter<MemoryStore, SegmentClient> {
    let segment = SegmentClient::new(http_client(), Some(receiver().base_url())).with_policy(policy);
    Exporter::new(store().clone(), segment)
}

async fn environment() -> (String, String, String) {
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    store().put_destination(destination(&project, &env, &key));
    (project, env, key)
}

fn plan(key: &str, faults: Vec<Fault>, always: Option<Fault>) {
    receiver().set_faults(FaultPlan {
        write_key: key.to_owned(),
        faults: faults.into(),
        always,
        ..FaultPlan::default()
    });
}

fn records(project: &str, env: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            (id.clone(), envelope(project, env, custom_event(&id, "u")))
        })
        .collect()
}

fn accepted(key: &str) -> Vec<Value> {
    receiver()
        .messages(Some(key))
        .into_iter()
        .map(|a| a.message)
        .collect()
}

fn statuses(key: &str) -> Vec<u16> {
    receiver().requests(Some(key)).iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn server_errors_then_success_deliver_each_event_once() {
    let (project, env, key) = environment().await;
    plan(&key, vec![Fault::status(500), Fault::status(502)], None);
    let exporter = exporter(fast_retries());
    let (response, stats) = exporter
        .export(&batch(&records(&project, &env, "e", 20)), deadline())
        .await;
    assert!(failed(&response).is_empty());
    assert_eq!(statuses(&key), [500, 502, 200]);
    assert_eq!(stats.segment_requests, 3);
    let messages = accepted(&key);
    assert_eq!(messages.len(), 20);
    let ids: HashSet<&Value> = messages.iter().map(|m| &m["messageId"]).collect();
    assert_eq!(ids.len(), 20, "delivered once each");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (project, env, key) = environment().await;
    plan(&key, vec![Fault::retry_after(429, 1)], None);
    let exporter = exporter(fast_retries());
    let first_sent_at = shared::timestamp::Timestamp::now();
    let (response, _) = exporter
        .export(&batch(&records(&project, &env, "ra", 3)), deadline())
        .await;
    assert!(failed(&response).is_empty());
    // The retry says when it was sent: a second or more after the first attempt.
    let sent_at = receiver().messages(Some(&key))[0].sent_at.clone().unwrap();
    let just_before_the_end = shared::timestamp::Timestamp::from_epoch_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 200,
    )
    .unwrap();
    assert!(
        sent_at.as_str() > first_sent_at.as_str() && sent_at.as_str() >= just_before_the_end.as_str(),
        "sentAt {sent_at} was not refreshed on the retry (first attempt at {})",
        first_sent_at.as_str()
    );
    let requests = receiver().requests(Some(&key));
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    let waited = requests[1].at_ms - requests[0].at_ms;
    assert!(
        waited >= 1000,
        "retried after {waited} ms, before Retry-After's 1 s"
    );
    assert_eq!(accepted(&key).len(), 3);
}

#[tokio::test]
async fn persistent_server_errors_fail_only_the_records_of_that_destination() {
    let (p_down, e_down, key_down) = environment().await;
    let (p_up, e_up, key_up) = environment().await;
    plan(&key_down, vec![], Some(Fault::status(503)));
    let exporter = exporter(fast_retries());
    let mut all = records(&p_down, &e_down, "down", 3);
    all.extend(records(&p_up, &e_up, "up", 3));
    let (response, stats) = exporter.export(&batch(&all), deadline()).await;
    assert_eq!(failed(&response), ["down-0", "down-1", "down-2"]);
    assert_eq!(accepted(&key_up).len(), 3);
    assert_eq!(
        statuses(&key_down).len(),
        fast_retries().backoff.max_attempts as usize,
        "retried up to the limit"
    );
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (3, 0, 3),
        "delivery failed after retries: transient"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (project, env, key) = environment().await;
    plan(&key, vec![], Some(Fault::status(400)));
    let exporter = exporter(fast_retries());
    let (response, _) = exporter
        .export(&batch(&records(&project, &env, "bad", 2)), deadline())
        .await;
    assert_eq!(failed(&response), ["bad-0", "bad-1"]);
    // Never retried as it was: split once into its two messages, each refused alone.
    assert_eq!(statuses(&key), [400, 400, 400]);
    let bytes: Vec<usize> = receiver().requests(Some(&key)).iter().map(|r| r.bytes).collect();
    assert!(bytes[1] < bytes[0] && bytes[2] < bytes[0], "halves: {bytes:?}");
    assert!(accepted(&key).is_empty());
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let (project, env, key) = environment().await;
    plan(&key, vec![Fault::drop_connection()], None);
    let exporter = exporter(fast_retries());
    let (response, _) = exporter
        .export(&batch(&records(&project, &env, "drop", 4)), deadline())
        .await;
    assert!(failed(&response).is_empty());
    assert_eq!(statuses(&key), [0, 200]);
    assert_eq!(accepted(&key).len(), 4);
}

#[tokio::test]
async fn a_reply_slower_than_the_request_timeout_is_retried_with_the_same_message_ids() {
    let (project, env, key) = environment().await;
    plan(&key, vec![Fault::delay(1500)], None);
    let policy = SendPolicy {
        request_timeout: Duration::from_millis(400),
        ..fast_retries()
    };
    let exporter = exporter(policy);
    let (response, _) = exporter
        .export(&batch(&records(&project, &env, "slow", 5)), deadline())
        .await;
    assert!(failed(&response).is_empty());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The slow request lands too: Segment sees every event twice under one messageId.
    let messages = accepted(&key);
    let ids: HashSet<&Value> = messages.iter().map(|m| &m["messageId"]).collect();
    assert_eq!((messages.len(), ids.len()), (10, 5));
}

#[tokio::test]
async fn a_message_over_32000_bytes_fails_its_record_and_the_rest_are_delivered() {
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    let mut d = destination(&project, &env, &key);
    d.config.include_custom_data = true;
    store().put_destination(d.clone());
    let big = json!({"kind": "custom", "id": "big", "creationDate": 1, "key": "k",
        "contextKeys": {"user": "u"}, "data": {"blob": "x".repeat(40_000)}});
    let mut all = records(&project, &env, "small", 3);
    all.push(("big".into(), envelope(&project, &env, big)));
    let exporter = exporter(fast_retries());
    let (response, stats) = exporter.export(&batch(&all), deadline()).await;
    assert_eq!(failed(&response), ["big"]);
    assert_eq!(accepted(&key).len(), 3);
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (3, 1, 0),
        "an oversized message is bad in itself"
    );
    assert!(
        statuses(&key).iter().all(|&s| s == 200),
        "nothing over the limit was sent"
    );
}

#[tokio::test]
async fn a_record_fails_when_one_of_its_destinations_fails_and_the_other_still_gets_it() {
    let (project, env) = (unique("proj"), unique("env"));
    let (healthy, broken) = (unique("wk-healthy"), unique("wk-broken"));
    store().put_destination(destination(&project, &env, &healthy));
    store().put_destination(destination(&project, &env, &broken));
    plan(&broken, vec![], Some(Fault::status(500)));
    let exporter = exporter(fast_retries());
    let all = records(&project, &env, "both", 2);
    let (response, _) = exporter.export(&batch(&all), deadline()).await;
    assert_eq!(failed(&response), ["both-0", "both-1"]);
    // SQS redelivers the records: the healthy destination sees the same messageIds again.
    exporter.export(&batch(&all), deadline()).await;
    let messages = accepted(&healthy);
    let ids: HashSet<&Value> = messages.iter().map(|m| &m["messageId"]).collect();
    assert_eq!((messages.len(), ids.len()), (4, 2));
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let (project, env, key) = environment().await;
    plan(&key, vec![], Some(Fault::status(500)));
    let policy = SendPolicy {
        backoff: Backoff {
            max_attempts: 1000,
            base_delay: Duration::from_millis(100),
            ..fast_retries().backoff
        },
        reserve: Duration::from_millis(200),
        ..fast_retries()
    };
    let exporter = exporter(policy);
    let started = Instant::now();
    let (response, _) = exporter
        .export(
            &batch(&records(&project, &env, "late", 1)),
            Deadline::after(Duration::from_millis(1500)),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(failed(&response), ["late-0"]);
    assert!(
        took < Duration::from_millis(1500),
        "ran past the deadline: {took:?}"
    );
    assert!(
        statuses(&key).len() > 2,
        "kept retrying until the deadline drew near"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_gives_up_at_once() {
    let (project, env, key) = environment().await;
    plan(&key, vec![], Some(Fault::retry_after(429, 60)));
    let exporter = exporter(fast_retries());
    let started = Instant::now();
    let (response, _) = exporter
        .export(
            &batch(&records(&project, &env, "wait", 1)),
            Deadline::after(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(failed(&response), ["wait-0"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(statuses(&key), [429]);
}

#[tokio::test]
async fn many_events_fill_few_requests_that_segment_accepts() {
    let (project, env, key) = (unique("proj"), unique("env"), unique("wk"));
    let mut d = destination(&project, &env, &key);
    d.config.include_custom_data = true;
    store().put_destination(d.clone());
    // 6,000 events of assorted sizes: both the count and the byte limits come into play.
    let all: Vec<(String, String)> = (0..6000)
        .map(|i| {
            let id = format!("many-{i}");
            let filler = "y".repeat((i * 7919) % 3000);
            let event = json!({"kind": "custom", "id": id, "creationDate": 1, "key": "k",
                "contextKeys": {"user": "u"}, "data": {"f": filler}});
            (id, envelope(&project, &env, event))
        })
        .collect();
    let exporter = exporter(fast_retries());
    let (response, stats) = exporter.export(&batch(&all), deadline()).await;
    assert!(failed(&response).is_empty());
    let messages = accepted(&key);
    assert_eq!(messages.len(), 6000);
    let sizes: Vec<usize> = messages.iter().map(|m| m.to_string().len()).collect();
    assert!(sizes.iter().all(|&s| s <= MAX_MESSAGE_BYTES));
    let requests = receiver().requests(Some(&key));
    assert!(requests.iter().all(|r| r.status == 200));
    for r in &requests {
        assert_eq!(r.user_agent.as_deref(), Some(shared::segment::client::USER_AGENT));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
    }
    assert!(
        requests.len() <= lower_bound(&sizes) + 1,
        "{} requests for a lower bound of {}",
        requests.len(),
        lower_bound(&sizes)
    );
    assert_eq!(stats.segment_requests as usize, requests.len());
}

#[tokio::test]
async fn a_black_holed_destination_beside_a_healthy_one() {
    let (project, env) = (unique("proj"), unique("env"));
    let (healthy, hole) = (unique("wk-healthy"), unique("wk-hole"));
    let hole_env = unique("env-hole");
    store().put_destination(destination(&project, &env, &healthy));
    let mut black_hole = destination(&project, &hole_env, &hole);
    black_hole.config.include_custom_data = true;
    store().put_destination(black_hole);
    // Connects, takes the request, never answers (within the test's lifetime).
    let never = Fault {
        status: Some(500),
        delay_ms: Some(600_000),
        ..Fault::default()
    };
    plan(&hole, vec![], Some(never));
    let policy = SendPolicy {
        request_timeout: Duration::from_secs(1),
        ..fast_retries()
    };
    let exporter = exporter(policy);
    // The black hole's records come first and fill more requests than there are slots
    // in all (~16 messages of 30 KB to a request).
    let mut all = Vec::new();
    for i in 0..160 {
        let id = format!("hole-{i}");
        let event = json!({"kind": "custom", "id": id, "creationDate": 1, "key": "k",
            "contextKeys": {"user": "u"}, "data": {"f": "z".repeat(30_000)}});
        all.push((id, envelope(&project, &hole_env, event)));
    }
    all.extend(records(&project, &env, "ok", 5));
    let budget = Duration::from_secs(4);
    let sqs = batch(&all);
    let (started, deadline) = (Instant::now(), Deadline::after(budget));
    let (response, _) = exporter.export(&sqs, deadline).await;
    let took = started.elapsed();
    let failed = failed(&response);
    assert_eq!(failed.len(), 160);
    assert!(failed.iter().all(|id| id.starts_with("hole-")), "{failed:?}");
    assert_eq!(
        accepted(&healthy).len(),
        5,
        "the healthy destination's records succeed"
    );
    assert!(
        took < budget,
        "the invocation ended before its deadline: {took:?}"
    );
}

#[tokio::test]
async fn a_400_on_a_packed_request_of_1000_messages_with_one_poison_delivers_999() {
    let (project, env, key) = environment().await;
    receiver().set_faults(FaultPlan {
        write_key: key.clone(),
        refuse_event_ids: vec!["poison-421".into()],
        ..FaultPlan::default()
    });
    let exporter = exporter(fast_retries());
    let (response, stats) = exporter
        .export(&batch(&records(&project, &env, "poison", 1000)), deadline())
        .await;
    assert_eq!(failed(&response), ["poison-421"]);
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (999, 1, 0)
    );
    let delivered = accepted(&key);
    assert_eq!(delivered.len(), 999);
    let ids: HashSet<&Value> = delivered.iter().map(|m| &m["messageId"]).collect();
    assert_eq!(ids.len(), 999, "each delivered once");
    let requests = statuses(&key);
    assert_eq!(requests[0], 400, "the packed request of 1,000 was refused first");
    assert!(
        requests.len() <= 21,
        "{} requests to isolate one message",
        requests.len()
    );
}
