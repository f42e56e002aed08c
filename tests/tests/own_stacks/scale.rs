//! Export at scale through the real binary (issue 19): `export` under `cargo lambda watch`
//! with Lambda's limit of 1,024 open files (`prlimit` on its process), fed one SQS batch
//! from moto's queue as Lambda's event source does (`tests/src/event_source.rs`).
//!
//! - 2,000 destinations in one environment, 25 events: 50,000 messages. The invocation
//!   answers (no crash), and every message is delivered or its record failed, to come back.
//! - 400 environments of 5 destinations, one SQS batch of 25 events for each (50,000
//!   messages), beside the same batch in one environment: every environment read in time is
//!   delivered in full, and only the records of the others fail.
//!
//! Each prints what it measured (time, delivered, the process's peak descriptors and peak
//! RSS), the figures of BENCHMARKS.md §4. The in-process twins are
//! `tests/tests/in_process/scale.rs`.

use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::event_source::EventSource;
use tests::fixtures::*;
use tests::lambda::{open_descriptors, peak_rss_kib};
use tests::stack::{Stack, StackOptions};

const PROJECT: &str = "scale";
const EVENTS_PER_RECORD: usize = 25;
/// Lambda's limit of open files.
const NOFILE: u32 = 1024;

fn start_stack(label: &'static str) -> Stack {
    let options = StackOptions {
        cache_ttl_seconds: 30,
        env: vec![
            ("RETRY_BASE_SECONDS".into(), "1".into()),
            ("RETRY_CAP_SECONDS".into(), "2".into()),
        ],
        ..StackOptions::tests(label, true)
    };
    std::thread::spawn(move || Stack::start(options))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("starting the {label} stack: {e}"))
}

/// The export process, held to Lambda's 1,024 open files.
fn limited_export(stack: &Stack) -> u32 {
    let pid = stack
        .lambda()
        .function_pid("export")
        .expect("export ran in the warm-up");
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={NOFILE}:{NOFILE}"))
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit on export");
    pid
}

/// Puts `n` destinations in an environment, 16 at once; answers their ids.
async fn put_destinations(stack: &Stack, environment: &str, n: usize) -> Vec<String> {
    let store = stack.store().await;
    let destinations: Vec<_> = (0..n)
        .map(|_| destination(PROJECT, environment, &unique("wk")))
        .collect();
    let ids = destinations.iter().map(|d| d.id.clone()).collect();
    futures::stream::iter(&destinations)
        .map(|d| put_destination(&store, d))
        .buffer_unordered(16)
        .collect::<()>()
        .await;
    ids
}

/// One record of 25 custom events for an environment; answers (body, event ids).
fn record(environment: &str, tag: &str) -> (String, Vec<String>) {
    let ids: Vec<String> = (0..EVENTS_PER_RECORD)
        .map(|i| format!("{tag}-{environment}-{i}"))
        .collect();
    let envelopes: Vec<String> = ids
        .iter()
        .map(|id| envelope(PROJECT, environment, custom_event(id, "u")))
        .collect();
    (format!("[{}]", envelopes.join(",")), ids)
}

/// What one invocation came to.
struct Outcome {
    elapsed: Duration,
    failed: BTreeSet<String>,
    peak_descriptors: usize,
}

/// Hands every record on the queue to `export` in one invocation, counting its open
/// descriptors meanwhile; the invocation must answer.
async fn one_batch(stack: &Stack, pid: u32, records: usize) -> (Outcome, Vec<tests::event_source::Received>) {
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: stack.queues.as_ref().unwrap().queue.clone(),
        batch_size: records,
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(open_descriptors(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let started = Instant::now();
    let poll = source.poll(stack.lambda(), "export").await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let poll = poll.unwrap_or_else(|e| panic!("export did not answer its batch: {e}"));
    assert_eq!(
        stack.lambda().function_pid("export"),
        Some(pid),
        "the export process is still the one that took the batch"
    );
    let failed = poll.failed.iter().cloned().collect();
    let outcome = Outcome {
        elapsed,
        failed,
        peak_descriptors: peak.load(Ordering::Relaxed),
    };
    (outcome, poll.received)
}

/// Event ids each write key got, from the receiver.
fn delivered_by_key(stack: &Stack) -> HashMap<String, BTreeSet<String>> {
    let mut by_key: HashMap<String, BTreeSet<String>> = HashMap::new();
    for accepted in stack.receiver.messages(None) {
        let id = accepted.message["properties"]["eventId"]
            .as_str()
            .unwrap()
            .to_owned();
        by_key.entry(accepted.write_key.clone()).or_default().insert(id);
    }
    by_key
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_destinations_under_1024_open_files_deliver_or_fail_every_message() {
    let _heavy = crate::HEAVY.lock().await;
    // 20 environments of 100 (moto's Query of one 2,000-item environment outlasts the
    // store's 5 s bound on this machine), one record of 25 events each.
    const ENVIRONMENTS: usize = 20;
    const DESTINATIONS: usize = 2_000;
    const RECORDS: usize = ENVIRONMENTS;
    let stack = start_stack("scale-destinations");
    let pid = limited_export(&stack);
    let mut bodies = Vec::new();
    let mut ids = Vec::new();
    let mut keys_of: Vec<Vec<String>> = Vec::new();
    let store = stack.store().await;
    for e in 0..ENVIRONMENTS {
        let environment = format!("crowded-{e:02}");
        put_destinations(&stack, &environment, DESTINATIONS / ENVIRONMENTS).await;
        let keys = shared::store::Store::environment(&store, PROJECT, &environment)
            .await
            .unwrap()
            .destinations
            .iter()
            .map(|d| d.config.write_key.expose().to_owned())
            .collect();
        keys_of.push(keys);
        let (body, events) = record(&environment, "r");
        bodies.push(body);
        ids.push(events);
    }
    stack.send_all(&bodies).await;

    let (first, received) = one_batch(&stack, pid, RECORDS).await;
    assert_eq!(received.len(), RECORDS, "one batch of every record");
    let first_delivered = stack.receiver.messages(None).len();
    let first_peak_rss = peak_rss_kib(pid);
    // Failed records come back (1 s retry base): receive them until the queue is empty,
    // every invocation answering under the limit.
    let queue = stack.queues.as_ref().unwrap().queue.clone();
    let mut invocations = 1;
    let mut peak_descriptors = first.peak_descriptors;
    while tests::event_source::queue_depth(&stack.sqs().await, &queue)
        .await
        .unwrap()
        > 0
    {
        assert!(invocations < 30, "the failed records were never delivered");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (retry, received) = one_batch(&stack, pid, RECORDS).await;
        if !received.is_empty() {
            invocations += 1;
            peak_descriptors = peak_descriptors.max(retry.peak_descriptors);
        }
    }
    // Every event reached every destination of its environment, each once.
    let by_key = delivered_by_key(&stack);
    for (events, keys) in ids.iter().zip(&keys_of) {
        for key in keys {
            let got = by_key
                .get(key)
                .map_or(0, |ids| events.iter().filter(|e| ids.contains(*e)).count());
            assert_eq!(got, events.len(), "a destination missed events");
        }
    }
    let delivered: usize = by_key.values().map(BTreeSet::len).sum();
    assert_eq!(delivered, DESTINATIONS * EVENTS_PER_RECORD);
    let report = || {
        println!(
            "scale: {DESTINATIONS} destinations, {} messages: first invocation {:?}, {first_delivered} delivered, {} of {RECORDS} \
         records failed (to come back), {first_peak_rss} KiB peak RSS; all delivered after {invocations} invocations; \
         export's peak: {peak_descriptors} open descriptors (limit {NOFILE}), {:.1} MiB RSS; receiver's peak: {} connections open",
            DESTINATIONS * EVENTS_PER_RECORD,
            first.elapsed,
            first.failed.len(),
            peak_rss_kib(pid) as f64 / 1024.0,
            stack.receiver.peak_open_connections(),
        )
    };
    report();
    // Far from the limit: a few connections per bound (Segment, DynamoDB, SQS) and the
    // runtime's, not one per destination (before the cap: all 1,024, and 432 "Too many
    // open files" errors).
    assert!(
        peak_descriptors < 128,
        "{peak_descriptors} open descriptors at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn four_hundred_environments_deliver_what_was_read_in_time_and_fail_only_the_rest() {
    let _heavy = crate::HEAVY.lock().await;
    const ENVIRONMENTS: usize = 400;
    const PER_ENVIRONMENT: usize = 5;
    let stack = start_stack("scale-environments");
    let pid = limited_export(&stack);

    // First the same events in one environment of 5 destinations, for comparison.
    put_destinations(&stack, "single", PER_ENVIRONMENT).await;
    let bodies: Vec<String> = (0..ENVIRONMENTS)
        .map(|r| record("single", &format!("one{r}")).0)
        .collect();
    stack.send_all(&bodies).await;
    let (single, received) = one_batch(&stack, pid, ENVIRONMENTS).await;
    assert_eq!(received.len(), ENVIRONMENTS, "one batch of every record");
    let single_delivered = stack.receiver.messages(None).len();
    stack.receiver.reset();

    let mut environment_of: BTreeMap<String, String> = BTreeMap::new();
    let mut bodies = Vec::new();
    for e in 0..ENVIRONMENTS {
        let environment = format!("env-{e:03}");
        put_destinations(&stack, &environment, PER_ENVIRONMENT).await;
        let (body, _) = record(&environment, "many");
        environment_of.insert(body.clone(), environment);
        bodies.push(body);
    }
    stack.send_all(&bodies).await;
    let (many, received) = one_batch(&stack, pid, ENVIRONMENTS).await;
    assert_eq!(received.len(), ENVIRONMENTS, "one batch of every record");
    let by_key = delivered_by_key(&stack);
    let delivered: usize = by_key.values().map(BTreeSet::len).sum();

    // Each environment's record: delivered in full to its 5 destinations, or failed with
    // none of it delivered (its environment was not read in time).
    let store = stack.store().await;
    let mut keys_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = shared::store::Store::list_destinations_page(&store, 50, after.as_ref())
            .await
            .unwrap();
        all.extend(page.destinations);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for d in all {
        keys_of
            .entry(d.environment.clone())
            .or_default()
            .push(d.config.write_key.expose().to_owned());
    }
    let mut read = 0;
    for record in &received {
        let environment = &environment_of[&record.body];
        let got: usize = keys_of[environment]
            .iter()
            .map(|k| by_key.get(k).map_or(0, BTreeSet::len))
            .sum();
        if many.failed.contains(&record.message_id) {
            assert_eq!(got, 0, "{environment}: failed, yet some of it was delivered");
        } else {
            read += 1;
            assert_eq!(
                got,
                PER_ENVIRONMENT * EVENTS_PER_RECORD,
                "{environment}: read, yet not all delivered"
            );
        }
    }
    println!(
        "scale: one environment of {PER_ENVIRONMENT} destinations, {} messages: {:?}, {single_delivered} delivered, {} records failed",
        ENVIRONMENTS * PER_ENVIRONMENT * EVENTS_PER_RECORD,
        single.elapsed,
        single.failed.len(),
    );
    println!(
        "scale: {ENVIRONMENTS} environments of {PER_ENVIRONMENT} destinations, {} messages: {:?}, {delivered} delivered, \
         {read} environments delivered, {} records failed; export's peak: {} open descriptors, {:.1} MiB RSS",
        ENVIRONMENTS * PER_ENVIRONMENT * EVENTS_PER_RECORD,
        many.elapsed,
        many.failed.len(),
        many.peak_descriptors.max(single.peak_descriptors),
        peak_rss_kib(pid) as f64 / 1024.0,
    );
    assert!(
        delivered > 0,
        "a slow store degrades the batch, it does not zero it"
    );
    assert_eq!(delivered, read * PER_ENVIRONMENT * EVENTS_PER_RECORD);
}
