//! Export at scale, in-process (issue 19): requests and status writes in flight stay under
//! their caps whatever the number of destinations, with every destination served in
//! turn; and a store that answers slowly degrades a batch without zeroing it (environment
//! reads stop early enough to leave time for sending what was read). Paused Tokio time over
//! the in-memory store and sender, and once through the real client to the receiver,
//! counting the connections it holds open. The same through the `export` binary under
//! Lambda's 1,024 open files, with moto: `tests/tests/own_stacks/scale.rs`.

use serde_json::json;
use shared::deadline::Deadline;
use shared::export::{Exporter, MAX_CONCURRENT_REQUESTS, MAX_CONCURRENT_STATUS_WRITES};
use shared::segment::SegmentClient;
use shared::segment::client::http_client;
use shared::store::CachedStore;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tests::fixtures::*;
use tests::memory::{Answer, MemorySegment, MemoryStore};

const DEADLINE: Duration = Duration::from_secs(25);
/// The deadline of the suites about the caps, not about the deadline: a wall-clock 25 s
/// ran out on a machine busy with the other suites (the deadline is `Instant`'s, which
/// paused Tokio time does not stop), failing the status writes and the records for the
/// load rather than for anything the tests are about.
const CAPS_DEADLINE: Duration = Duration::from_secs(300);
const DESTINATIONS: usize = 2_000;
const EVENTS: usize = 25;

/// One environment with `n` destinations; answers their write keys.
fn environment_with(store: &MemoryStore, project: &str, env: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let key = unique("wk");
            store.put_destination(destination(project, env, &key));
            key
        })
        .collect()
}

/// One record of `events` custom events for an environment.
fn record(project: &str, env: &str, events: usize) -> (String, String) {
    let envelopes: Vec<String> = (0..events)
        .map(|i| envelope(project, env, custom_event(&format!("{env}-{i}"), "u")))
        .collect();
    (format!("r-{env}"), format!("[{}]", envelopes.join(",")))
}

#[tokio::test(start_paused = true)]
async fn two_thousand_destinations_never_have_more_requests_or_status_writes_in_flight_than_the_caps() {
    let store = MemoryStore::new();
    let keys = environment_with(&store, "p", "crowded", DESTINATIONS);
    store.slow_status_writes(Duration::from_millis(1));
    let segment = MemorySegment::new();
    for key in &keys {
        segment.script(key, vec![], Some(Answer::Accept(Duration::from_millis(20))));
    }
    let exporter = Exporter::new(CachedStore::new(store.clone(), Duration::from_secs(30)), segment)
        .with_status_interval(Duration::ZERO);
    let (response, stats) = exporter
        .export(
            &batch(&[record("p", "crowded", EVENTS)]),
            Deadline::after(CAPS_DEADLINE),
        )
        .await;

    assert!(failed(&response).is_empty());
    let segment = exporter.segment();
    assert_eq!(segment.messages(None).len(), DESTINATIONS * EVENTS);
    assert!(
        segment.peak_in_flight() <= MAX_CONCURRENT_REQUESTS as u64,
        "{} requests in flight at once, for {DESTINATIONS} destinations",
        segment.peak_in_flight()
    );
    assert_eq!(stats.status_write_failures, 0, "every status written");
    assert!(
        store.peak_status_writes() <= MAX_CONCURRENT_STATUS_WRITES as u64,
        "{} status writes in flight at once",
        store.peak_status_writes()
    );
    // Every destination got its turn: one request each, all its messages.
    for key in &keys {
        assert_eq!(segment.requests(Some(key)).len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn with_more_destinations_than_slots_every_destination_gets_its_turn_before_any_gets_a_second() {
    let store = MemoryStore::new();
    let segment = MemorySegment::new();
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for d in 0..(3 * MAX_CONCURRENT_REQUESTS + 1) {
        let env = format!("env-{d}");
        let key = unique("wk");
        let mut dest = destination("p", &env, &key);
        dest.config.include_custom_data = true;
        store.put_destination(dest);
        segment.script(&key, vec![], Some(Answer::Accept(Duration::from_secs(1))));
        // ~5 KB events: 250 make three requests.
        for i in 0..250 {
            let id = format!("{env}-{i}");
            let event = json!({"kind": "custom", "id": id, "creationDate": 1, "key": "k",
                "contextKeys": {"user": "u"}, "data": {"filler": "x".repeat(5000)}});
            records.push((id, envelope("p", &env, event)));
        }
        keys.push(key);
    }
    let exporter = Exporter::new(CachedStore::new(store, Duration::from_secs(30)), segment);
    let (response, _) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;
    assert!(failed(&response).is_empty());
    let segment = exporter.segment();
    assert!(segment.peak_in_flight() <= MAX_CONCURRENT_REQUESTS as u64);
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for key in &keys {
        let mut at: Vec<Duration> = segment.requests(Some(key)).iter().map(|r| r.at).collect();
        at.sort();
        assert!(at.len() >= 2, "several requests per destination");
        firsts.push(at[0]);
        seconds.push(at[1]);
    }
    let last_first = firsts.iter().max().unwrap();
    let first_second = seconds.iter().min().unwrap();
    assert!(
        last_first <= first_second,
        "round-robin: a destination's first request ({last_first:?}) waited past another's second ({first_second:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_real_client_two_thousand_destinations_hold_no_more_connections_than_the_cap() {
    let receiver = tests::receiver::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let store = MemoryStore::new();
    let keys = environment_with(&store, "p", "crowded", DESTINATIONS);
    let segment = SegmentClient::new(http_client(), Some(receiver.base_url())).with_policy(fast_retries());
    let exporter = Exporter::new(CachedStore::new(store, Duration::from_secs(30)), segment);
    let (response, _) = exporter
        .export(
            &batch(&[record("p", "crowded", EVENTS)]),
            Deadline::after(CAPS_DEADLINE),
        )
        .await;
    assert!(failed(&response).is_empty());
    assert_eq!(receiver.messages(None).len(), DESTINATIONS * EVENTS);
    let per_key: BTreeSet<String> = receiver
        .requests(None)
        .into_iter()
        .filter_map(|r| r.write_key)
        .collect();
    assert_eq!(per_key.len(), keys.len());
    // In use: one per request in flight. Beside them, the client keeps at most as many
    // idle (a connection goes back to the pool a moment after its answer, so a new request
    // can open another meanwhile); the receiver counts a connection until it sees it close.
    let peak = receiver.peak_open_connections();
    println!("{peak} connections open at once at most, for {DESTINATIONS} destinations");
    assert!(
        peak <= 2 * MAX_CONCURRENT_REQUESTS as u64,
        "{peak} connections open at once"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_reads_of_400_environments_deliver_what_was_read_and_fail_only_the_rest() {
    const ENVIRONMENTS: usize = 400;
    let store = MemoryStore::new();
    let segment = MemorySegment::new();
    // No answer later than the invocation's deadline, as the real client.
    segment.answer_within(DEADLINE);
    let mut records = Vec::new();
    let mut keys_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in 0..ENVIRONMENTS {
        let env = format!("env-{e:03}");
        let keys = environment_with(&store, "p", &env, 5);
        for key in &keys {
            segment.script(key, vec![], Some(Answer::Accept(Duration::from_millis(50))));
        }
        // Every read takes a second: reading them all, 16 at once, would take the whole budget.
        store.slow_reads_of("p", &env, Duration::from_secs(1));
        records.push(record("p", &env, 5));
        keys_of.insert(env, keys);
    }
    let exporter = Exporter::new(CachedStore::new(store.clone(), Duration::from_secs(30)), segment);
    let (response, stats) = exporter.export(&batch(&records), Deadline::after(DEADLINE)).await;

    let read: BTreeSet<String> = store.answered_reads().into_iter().map(|(_, e)| e).collect();
    let failed: BTreeSet<String> = failed(&response)
        .into_iter()
        .map(|id| id.trim_start_matches("r-").to_owned())
        .collect();
    println!(
        "{} of {ENVIRONMENTS} environments read, {} records failed, {} messages delivered",
        read.len(),
        failed.len(),
        stats.exported
    );
    assert!(!read.is_empty(), "some environments were read");
    assert!(
        read.len() < ENVIRONMENTS,
        "the reads were cut short (else the test shows nothing)"
    );
    // Every environment read was delivered in full; only the others' records failed.
    for (env, keys) in &keys_of {
        if read.contains(env) {
            assert!(!failed.contains(env), "{env} was read, yet its record failed");
            for key in keys {
                assert_eq!(exporter.segment().messages(Some(key)).len(), 5, "{env}");
            }
        } else {
            assert!(
                failed.contains(env),
                "{env} was never read, yet its record succeeded"
            );
        }
    }
    assert_eq!(failed.len() + read.len(), ENVIRONMENTS);
}
