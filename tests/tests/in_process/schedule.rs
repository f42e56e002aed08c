//! Fair delivery across destinations, in-process with paused Tokio time over the
//! in-memory store and sender (README, "How `export` handles a batch", step 5): a sick
//! destination never delays a healthy one, a down destination gets no more requests, and a
//! refused request is split until only the poison fails. The same behaviour through the
//! real client and the receiver is in `faults.rs`.

use serde_json::json;
use shared::deadline::Deadline;
use shared::export::{Exporter, MAX_CONCURRENT_REQUESTS};
use shared::requeue::RetrySchedule;
use shared::segment::DeliveryError;
use shared::store::CachedStore;
use std::time::Duration;
use tests::fixtures::*;
use tests::memory::{Answer, MemoryRequeue, MemorySegment, MemoryStore};

type MemoryExporter = Exporter<CachedStore<MemoryStore>, MemorySegment>;

const DEADLINE: Duration = Duration::from_secs(25);

fn exporter() -> MemoryExporter {
    Exporter::new(
        CachedStore::new(MemoryStore::new(), Duration::from_secs(30)),
        MemorySegment::new(),
    )
}

/// Adds a destination that exports custom data (big messages, so few fill a request).
fn add_destination(exporter: &MemoryExporter, project: &str, env: &str) -> String {
    let key = unique("wk");
    let mut d = destination(project, env, &key);
    d.config.include_custom_data = true;
    exporter.store().inner().put_destination(d);
    key
}

/// `n` records of ~5 KB custom events: about 100 fill one request.
fn big_records(project: &str, env: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let event = json!({"kind": "custom", "id": id, "creationDate": 1, "key": "k",
                "contextKeys": {"user": "u"}, "data": {"filler": "x".repeat(5000)}});
            (id, envelope(project, env, event))
        })
        .collect()
}

/// What a black-holed host costs: every attempt times out until the deadline.
fn black_hole() -> Answer {
    Answer::Fail(
        Duration::from_secs(24),
        DeliveryError::OutOfTime {
            attempts: 3,
            last: "timeout".into(),
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_black_holed_destination_never_delays_a_healthy_one() {
    let exporter = exporter();
    let (sick_env, healthy_env) = (unique("sick"), unique("healthy"));
    let sick = add_destination(&exporter, "p", &sick_env);
    let healthy = add_destination(&exporter, "p", &healthy_env);
    exporter.segment().script(&sick, vec![], Some(black_hole()));
    exporter
        .segment()
        .script(&healthy, vec![], Some(Answer::Accept(Duration::from_millis(50))));
    // The sick destination's records come first in the batch, and outnumber its slots.
    let mut records = big_records("p", &sick_env, "sick", 1000);
    records.extend(big_records("p", &healthy_env, "healthy", 1000));
    let started = tokio::time::Instant::now();
    let (response, _) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;

    let healthy_requests = exporter.segment().requests(Some(&healthy));
    assert!(healthy_requests.len() >= 8, "{} requests", healthy_requests.len());
    assert!(healthy_requests.iter().all(|r| r.accepted));
    assert_eq!(exporter.segment().messages(Some(&healthy)).len(), 1000);
    let slowest = healthy_requests.iter().map(|r| r.at).max().unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "the healthy destination finished as if alone, its last request started at {slowest:?}"
    );
    let failed = failed(&response);
    assert_eq!(failed.len(), 1000);
    assert!(failed.iter().all(|id| id.starts_with("sick-")));
    // Once the first answers said "down", the rest were not even tried.
    let sick_requests = exporter.segment().requests(Some(&sick));
    assert_eq!(
        sick_requests.len(),
        MAX_CONCURRENT_REQUESTS / 2,
        "only the first lane-full was tried"
    );
    assert!(
        started.elapsed() < DEADLINE,
        "ended before the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn up_to_the_slots_every_destination_first_request_starts_at_once() {
    let exporter = exporter();
    let mut records = Vec::new();
    let mut keys = Vec::new();
    // As many destinations as request slots, each with several requests' worth (more
    // destinations take turns: `scale.rs`).
    for d in 0..MAX_CONCURRENT_REQUESTS {
        let env = unique("env");
        let key = add_destination(&exporter, "p", &env);
        exporter
            .segment()
            .script(&key, vec![], Some(Answer::Accept(Duration::from_secs(1))));
        records.extend(big_records("p", &env, &format!("d{d}"), 250));
        keys.push(key);
    }
    let (response, _) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;
    assert!(failed(&response).is_empty());
    for key in &keys {
        let first = exporter
            .segment()
            .requests(Some(key))
            .iter()
            .map(|r| r.at)
            .min()
            .unwrap();
        assert_eq!(
            first,
            Duration::ZERO,
            "a destination waited {first:?} for its first request"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_retry_after_takes_the_destination_down_for_this_invocation() {
    let exporter = exporter();
    let (slow_env, ok_env) = (unique("throttled"), unique("ok"));
    let throttled = add_destination(&exporter, "p", &slow_env);
    let ok = add_destination(&exporter, "p", &ok_env);
    let wait_too_long = DeliveryError::OutOfTime {
        attempts: 1,
        last: "HTTP 429, Retry-After 600 s".into(),
    };
    exporter.segment().script(
        &throttled,
        vec![],
        Some(Answer::Fail(Duration::from_millis(20), wait_too_long)),
    );
    let mut records = big_records("p", &slow_env, "slow", 1000);
    records.extend(big_records("p", &ok_env, "ok", 300));
    let (response, _) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;
    assert_eq!(failed(&response).len(), 1000);
    assert_eq!(
        exporter.segment().requests(Some(&throttled)).len(),
        MAX_CONCURRENT_REQUESTS / 2
    );
    assert_eq!(exporter.segment().messages(Some(&ok)).len(), 300);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_of_1000_messages_is_split_until_only_the_poison_fails() {
    let exporter = exporter();
    let env = unique("env");
    let key = unique("wk");
    exporter
        .store()
        .inner()
        .put_destination(destination("p", &env, &key));
    let records: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let id = format!("m-{i}");
            (id.clone(), envelope("p", &env, custom_event(&id, "u")))
        })
        .collect();
    exporter.segment().refuse_event("m-637");
    let (response, stats) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;
    assert_eq!(failed(&response), ["m-637"]);
    assert_eq!(
        (stats.exported, stats.failed_bad, stats.failed_transient),
        (999, 1, 0)
    );
    let delivered = exporter.segment().messages(Some(&key));
    assert_eq!(delivered.len(), 999);
    let requests = exporter.segment().requests(Some(&key)).len();
    assert!(
        requests <= 2 * 10 + 1,
        "bisection takes about 2 log2(1000) requests, took {requests}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_refuses_everything_is_not_split_message_by_message() {
    let requeue = MemoryRequeue::new();
    let exporter = exporter().with_requeue(requeue.clone(), RetrySchedule::default());
    let env = unique("env");
    let key = unique("wk");
    exporter
        .store()
        .inner()
        .put_destination(destination("p", &env, &key));
    let refused = DeliveryError::Rejected {
        attempts: 1,
        status: 400,
        message: "every request is refused".into(),
    };
    exporter
        .segment()
        .script(&key, vec![], Some(Answer::Fail(Duration::ZERO, refused)));
    let records: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let id = format!("r-{i}");
            (id.clone(), envelope("p", &env, custom_event(&id, "u")))
        })
        .collect();
    let (response, _) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;
    assert_eq!(failed(&response).len(), 1000);
    let requests = exporter.segment().requests(Some(&key)).len();
    assert!(
        requests <= 80,
        "{requests} requests: splitting stopped once it was clearly not poison"
    );
    // Nothing is taken for bad in itself: every record comes back on the schedule.
    let visibilities = requeue.visibilities();
    assert_eq!(visibilities.len(), 1000);
    assert!(
        visibilities.values().all(|v| !v.is_zero()),
        "no record sent to the DLQ at once"
    );
}
