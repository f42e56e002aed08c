//! A fleet of LaunchDarkly's real SDKs posting through `ingest` at once while a destination
//! flaps: server-SDK clients of Python (`launchdarkly-server-sdk`) and Node.js
//! (`@launchdarkly/node-server-sdk`), several per process (`tests/python/fleet_clients.py`,
//! `tests/node/fleet_clients.js`), each with its own contexts (and SDK key, up to the ten an
//! environment may have), and the browser
//! SDK in headless Chromium (`tests/browser/fleet-page.js`), all through a proxy that notes
//! every answer an SDK got. Meanwhile an event source feeds the real `export` binary from
//! moto's queue as Lambda does (`tests/src/event_source.rs`, as in `chaos.rs`), and one of
//! the environment's two destinations flaps: 503 with a long `Retry-After` (down for the
//! invocation: its records fail and come back on the 1 s retry schedule), then well, then
//! 500s that in-invocation retries ride out, then well, over and over until the SDKs are done.
//!
//! Then what reached the receiver is compared with what the SDKs did: at each destination
//! every event, nothing else, each event under one `messageId` taken in exactly one
//! accepted request; no SDK ever got a 429; nothing in the DLQ.
//!
//! Size: `FLEET_CLIENTS` server clients (default 20, half Python, half Node.js),
//! `FLEET_CLIENTS_PER_PROCESS` (default 5), `FLEET_EVENTS` contexts per client (default 25;
//! each gives one feature and one custom event) and as many custom events from the browser.
//! `make fleet` runs a bigger one.

use serde_json::{Value, json};
use shared::api::sources::MAX_PER_KIND;
use shared::ingest::payload::event_id;
use shared::segment::identity::message_id;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::browser::Browser;
use tests::event_source::{EventSource, queue_depth};
use tests::fixtures::*;
use tests::process::{command, workspace_root};
use tests::receiver::{Fault, FaultPlan};
use tests::recording_proxy::RecordingProxy;
use tests::stack::{Stack, StackOptions};

const PROJECT: &str = "fleet";
const ENVIRONMENT: &str = "production";

struct Size {
    clients: usize,
    per_process: usize,
    events: usize,
}

impl Size {
    fn from_env() -> Self {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v:?}: a whole number"))
                })
                .unwrap_or(default)
        };
        Self {
            clients: var("FLEET_CLIENTS", 20).max(2),
            per_process: var("FLEET_CLIENTS_PER_PROCESS", 5).max(1),
            events: var("FLEET_EVENTS", 25).max(1),
        }
    }
}

fn start_stack() -> Stack {
    let options = StackOptions {
        env: vec![
            ("RETRY_BASE_SECONDS".into(), "1".into()),
            ("RETRY_CAP_SECONDS".into(), "4".into()),
        ],
        ..StackOptions::tests("fleet", true)
    };
    std::thread::spawn(move || Stack::start(options))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("starting the fleet stack: {e}"))
}

/// One event as both sides name it: (type, event, key, userId, data.n).
type Logical = (String, String, String, String, Option<u64>);

fn logical(kind: &str, event: &str, key: &str, user: &str, n: Option<u64>) -> Logical {
    (kind.into(), event.into(), key.into(), user.into(), n)
}

/// What a message at the receiver stands for.
fn logical_of(message: &Value) -> Logical {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let p = &message["properties"];
    (
        text(&message["type"]),
        text(&message["event"]),
        text(&p["key"]),
        text(&message["userId"]),
        p["data"]["n"].as_u64(),
    )
}

/// What an SDK's event would be at Segment, for the kinds that are exported.
fn logical_of_sdk_event(event: &Value) -> Option<Logical> {
    let context = event["context"]["key"]
        .as_str()
        .or(event["contextKeys"]["user"].as_str())
        .unwrap_or_default();
    let key = event["key"].as_str().unwrap_or_default();
    match event["kind"].as_str()? {
        "feature" => Some(logical("track", "feature", key, context, None)),
        "custom" => Some(logical(
            "track",
            "custom",
            key,
            context,
            event["data"]["n"].as_u64(),
        )),
        "pageview" => Some(logical("page", "", key, context, None)),
        _ => None,
    }
}

/// One SDK process: its clients as `name=sdkKey`, run to the end; its report. What the
/// SDKs logged goes to the stack's log folder.
async fn run_server_sdks(
    stack: &Stack,
    program: &'static str,
    script: &'static str,
    base: String,
    events: usize,
    clients: Vec<String>,
) -> Value {
    let flags = std::env::temp_dir().join(format!("{}-flags.json", unique("fleet")));
    let log = stack.log_dir.join(format!("{}.log", unique(program)));
    let out = tokio::task::spawn_blocking(move || {
        let tools = std::env::var("DATA_EXPORT_TOOLS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/data-export-segment/tools",
                std::env::var("HOME").unwrap()
            )
        });
        command(program)
            .arg(workspace_root().join(script))
            .arg(base)
            .arg(&flags)
            .arg(events.to_string())
            .args(clients)
            .env("NODE_PATH", format!("{tools}/node/node_modules"))
            .output()
            .expect("the SDK script runs")
    })
    .await
    .unwrap();
    std::fs::write(&log, &out.stderr).unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script's report")
}

/// The browser SDK on the fleet page, until the page says how it went.
async fn run_browser(
    stack: &Stack,
    events_uri: String,
    client_side_id: String,
    name: String,
    events: usize,
) -> Value {
    let origin = tests::sdk_page::serve();
    let browser = Browser::start(&stack.log_dir).expect("chromedriver");
    let client = browser.session().await.unwrap();
    client
        .goto(&format!(
            "{origin}/fleet-page.html?clientSideId={client_side_id}&eventsUri={events_uri}&name={name}&events={events}"
        ))
        .await
        .unwrap();
    let mut outcome = String::new();
    for _ in 0..1200 {
        outcome = client
            .find(fantoccini::Locator::Id("result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if outcome != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.close().await.unwrap();
    serde_json::from_str(&outcome).unwrap_or_else(|_| panic!("the fleet page: {outcome}"))
}

/// Flaps `write_key` until `done` is set, for two full cycles at least, and until export
/// reported a record failed (at most a minute more), then leaves it well; how many windows
/// it was down.
async fn flap(stack: &Stack, write_key: &str, done: &AtomicBool, failed: &AtomicUsize) -> usize {
    let plan = |always: Option<Fault>| FaultPlan {
        write_key: write_key.to_owned(),
        always,
        ..FaultPlan::default()
    };
    // Down for the invocation (the Retry-After is past its deadline), well, 500s that the
    // in-invocation retries outlast, well.
    let cycle = [
        (Some(Fault::retry_after(503, 30)), 1_500),
        (None, 1_500),
        (Some(Fault::status(500)), 1_000),
        (None, 1_500),
    ];
    let mut downs = 0;
    let mut cycles = 0;
    let started = Instant::now();
    while cycles < 2
        || !done.load(Ordering::SeqCst)
        || (failed.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(60))
    {
        for (fault, ms) in &cycle {
            downs += usize::from(fault.is_some());
            stack.receiver.set_faults(plan(fault.clone()));
            tokio::time::sleep(Duration::from_millis(*ms)).await;
        }
        cycles += 1;
    }
    stack.receiver.set_faults(plan(None));
    downs
}

#[derive(Debug, Default)]
struct Feed {
    invocations: usize,
    receipts: usize,
    /// Receipts after the first of their record.
    again: usize,
    failed: usize,
    drained_after: Option<Duration>,
}

/// Lambda's event source for `export`, until `done` is set and the queue is empty; counts
/// the records export reported failed in `failed` as it goes.
async fn feed(
    stack: &Stack,
    done: &AtomicBool,
    failed: &AtomicUsize,
    started: Instant,
    limit: Duration,
) -> Feed {
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: stack.queues.as_ref().unwrap().queue.clone(),
        batch_size: 50,
    };
    let mut feed = Feed::default();
    while started.elapsed() < limit {
        let poll = source.poll(stack.lambda(), "export").await.unwrap();
        if poll.received.is_empty() {
            if done.load(Ordering::SeqCst) && source.depth().await.unwrap() == 0 {
                feed.drained_after = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        feed.invocations += 1;
        feed.receipts += poll.received.len();
        feed.again += poll.received.iter().filter(|r| r.receive_count > 1).count();
        feed.failed += poll.failed.len();
        failed.fetch_add(poll.failed.len(), Ordering::SeqCst);
    }
    feed
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_of_real_sdks_through_ingest_while_a_destination_flaps_loses_and_duplicates_nothing() {
    let _heavy = crate::HEAVY.lock().await;
    let size = Size::from_env();
    let started = Instant::now();
    let stack = start_stack();
    let store = stack.store().await;
    let healthy_key = unique("wk-fleet-healthy");
    let flapping_key = unique("wk-fleet-flapping");
    let mut destination_ids = Vec::new();
    for key in [&healthy_key, &flapping_key] {
        let mut d = destination(PROJECT, ENVIRONMENT, key);
        d.config.include_custom_data = true;
        put_destination(&store, &d).await;
        destination_ids.push(d.id);
    }
    put_settings(&store, PROJECT, ENVIRONMENT, false, &["checkout-flow"]).await;

    // Clients `python-0`, `node-1`, … sharing the SDK keys an environment may have, as the
    // servers of one service share theirs; and the browser.
    let sdk_keys: Vec<String> = (0..size.clients.min(MAX_PER_KIND))
        .map(|_| unique("sdk-key-fleet"))
        .collect();
    let clients: Vec<(String, String)> = (0..size.clients)
        .map(|c| {
            let sdk = if c % 2 == 0 { "python" } else { "node" };
            (format!("{sdk}-{c}"), sdk_keys[c % sdk_keys.len()].clone())
        })
        .collect();
    let client_side_id = format!("{:024x}", fastrand::u128(..) >> 32);
    register_event_sources(
        &stack,
        PROJECT,
        ENVIRONMENT,
        json!({"sdkKeys": sdk_keys, "clientSideIds": [client_side_id]}),
    )
    .await;
    let proxy = RecordingProxy::start(&stack.lambda().function_url("ingest"), 8);
    let setup = started.elapsed();

    let sdks_done = AtomicBool::new(false);
    let flapping_done = AtomicBool::new(false);
    let sdks = async {
        let mut processes = Vec::new();
        for (program, script, parity) in [
            ("python3", "tests/python/fleet_clients.py", 0),
            ("node", "tests/node/fleet_clients.js", 1),
        ] {
            let mine: Vec<String> = clients
                .iter()
                .enumerate()
                .filter(|(c, _)| c % 2 == parity)
                .map(|(_, (name, key))| format!("{name}={key}"))
                .collect();
            for group in mine.chunks(size.per_process) {
                processes.push(run_server_sdks(
                    &stack,
                    program,
                    script,
                    proxy.base_url(),
                    size.events,
                    group.to_vec(),
                ));
            }
        }
        let browser = run_browser(
            &stack,
            proxy.base_url(),
            client_side_id.clone(),
            "browser-0".to_owned(),
            size.events,
        );
        let (reports, browser) = tokio::join!(futures::future::join_all(processes), browser);
        let took = started.elapsed();
        sdks_done.store(true, Ordering::SeqCst);
        (reports, browser, took)
    };
    let failed_records = AtomicUsize::new(0);
    let flapper = async {
        let downs = flap(&stack, &flapping_key, &sdks_done, &failed_records).await;
        flapping_done.store(true, Ordering::SeqCst);
        downs
    };
    let fed = feed(
        &stack,
        &flapping_done,
        &failed_records,
        started,
        Duration::from_secs(300),
    );
    let ((reports, browser, sdks_took), downs, fed) = tokio::join!(sdks, flapper, fed);

    // What the SDKs did.
    let mut want: BTreeSet<Logical> = BTreeSet::new();
    let mut reported = 0;
    for report in &reports {
        for client in report["clients"].as_array().unwrap() {
            reported += 1;
            let contexts = client["contexts"].as_array().unwrap();
            assert_eq!(contexts.len(), size.events, "{client}");
            assert!(
                client["values"].as_array().unwrap().iter().all(|v| v == true),
                "every evaluation from the flag file: {client}"
            );
            for (n, context) in contexts.iter().enumerate() {
                let context = context.as_str().unwrap();
                want.insert(logical("track", "feature", "checkout-flow", context, None));
                want.insert(logical("track", "custom", "purchase", context, Some(n as u64)));
            }
        }
    }
    assert_eq!(reported, size.clients, "every server client reported");
    assert_eq!(
        browser["value"],
        json!(true),
        "the flag from the stand-in: {browser}"
    );
    assert!(
        browser["flushes"].as_array().unwrap().iter().all(|f| f == true),
        "every flush of the browser SDK went through: {browser}"
    );
    want.insert(logical("track", "feature", "checkout-flow", "browser-0", None));
    want.insert(logical("page", "", "checkout-page", "browser-0", None));
    for n in 0..size.events {
        want.insert(logical(
            "track",
            "custom",
            "purchase",
            "browser-0",
            Some(n as u64),
        ));
    }

    // What the SDKs got back: never a 429.
    let exchanges = proxy.exchanges();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for e in &exchanges {
        *statuses.entry(e.status).or_default() += 1;
    }
    let posts: Vec<_> = exchanges
        .iter()
        .filter(|e| e.method == "POST" && e.path.contains("bulk"))
        .collect();
    // Each payload as posted (an SDK posts a payload again, with its id, when it got no
    // answer in time) and how many times; the events in them.
    let mut payloads: BTreeMap<&str, (Vec<Value>, usize)> = BTreeMap::new();
    for post in &posts {
        let id = post.payload_id.as_deref().expect("every SDK sends a payload id");
        let events: Vec<Value> = serde_json::from_slice(&post.body).expect("a JSON array");
        let entry = payloads.entry(id).or_insert_with(|| (events.clone(), 0));
        assert_eq!(entry.0, events, "payload {id} posted again with other events");
        entry.1 += 1;
    }
    let posted: BTreeSet<Logical> = payloads
        .values()
        .flat_map(|(events, _)| events.iter().filter_map(logical_of_sdk_event))
        .collect();
    // The events of payloads that ingest answered 2xx at least once: the service took them.
    let accepted: BTreeSet<Logical> = posts
        .iter()
        .filter(|post| (200..300).contains(&post.status))
        .flat_map(|post| payloads[post.payload_id.as_deref().unwrap()].0.iter())
        .filter_map(logical_of_sdk_event)
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let unposted = want.difference(&posted).count();
    if unposted > 0 || posted.len() != want.len() {
        problems.push(format!(
            "the SDKs posted {} of their {} events ({unposted} never posted): see their logs in {}",
            posted.len(),
            want.len(),
            stack.log_dir.display()
        ));
    }
    if let Some(n) = statuses.get(&429) {
        problems.push(format!("{n} answers to the SDKs were 429: {statuses:?}"));
    }

    // What reached each destination.
    let mut delivered = 0;
    for ((name, key), destination_id) in [("healthy", &healthy_key), ("flapping", &flapping_key)]
        .into_iter()
        .zip(&destination_ids)
    {
        // The messageId of each exported event (from its payload's id and its position), and
        // how many times the SDKs handed its payload to ingest.
        let mut posts_of: BTreeMap<String, usize> = BTreeMap::new();
        for (payload_id, (events, times)) in &payloads {
            for (i, event) in events.iter().enumerate() {
                if logical_of_sdk_event(event).is_some() {
                    let id = message_id(destination_id, &event_id(payload_id, i)).to_string();
                    posts_of.insert(id, *times);
                }
            }
        }
        let mut copies: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for accepted in stack.receiver.messages(Some(key)) {
            let id = accepted.message["messageId"].as_str().unwrap().to_owned();
            copies.entry(id).or_default().push(accepted.message);
        }
        delivered += copies.len();
        let mut ids_of: BTreeMap<Logical, BTreeSet<&str>> = BTreeMap::new();
        for (id, messages) in &copies {
            ids_of.entry(logical_of(&messages[0])).or_default().insert(id);
            if messages.iter().any(|m| m != &messages[0]) {
                problems.push(format!("{name}: {id} came with different content"));
            }
        }
        let got: BTreeSet<Logical> = ids_of.keys().cloned().collect();
        let lost: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        if !lost.is_empty() {
            problems.push(format!(
                "{name}: {} of {} events lost ({} of them in payloads ingest answered 2xx), e.g. {:?}",
                lost.len(),
                want.len(),
                lost.iter().filter(|l| accepted.contains(l)).count(),
                &lost[..lost.len().min(5)]
            ));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{name}: {} events no SDK sent, e.g. {:?}",
                extra.len(),
                &extra[..extra.len().min(5)]
            ));
        }
        let split: Vec<_> = ids_of.iter().filter(|(_, ids)| ids.len() > 1).collect();
        if !split.is_empty() {
            problems.push(format!(
                "{name}: {} events under more than one messageId (Segment cannot dedupe them), e.g. {:?}",
                split.len(),
                &split[..split.len().min(3)]
            ));
        }
        let unknown = copies.keys().filter(|id| !posts_of.contains_key(*id)).count();
        if unknown > 0 {
            problems.push(format!(
                "{name}: {unknown} messageIds that no payload id and position give"
            ));
        }
        // Each accepted request holds a message once: more copies, more accepted requests.
        // An event reaches a destination in one accepted request per time its payload was
        // posted (an SDK's own retry is a second post, which Segment dedupes by messageId).
        let repeated: Vec<(Logical, usize, usize)> = copies
            .iter()
            .map(|(id, m)| (logical_of(&m[0]), m.len(), posts_of.get(id).copied().unwrap_or(1)))
            .filter(|(_, accepted, posted)| accepted > posted)
            .collect();
        if !repeated.is_empty() {
            problems.push(format!(
                "{name}: {} of {} events accepted in more requests than their payload was posted \
                 (up to {} times), e.g. (event, accepted, posted) {:?}",
                repeated.len(),
                copies.len(),
                repeated.iter().map(|(_, n, _)| *n).max().unwrap(),
                &repeated[..repeated.len().min(3)]
            ));
        }
    }

    let queues = stack.queues.as_ref().unwrap();
    let sqs = stack.sqs().await;
    let dead = queue_depth(&sqs, &queues.dead_letter).await.unwrap();
    if dead != 0 {
        problems.push(format!("{dead} records in the DLQ"));
    }
    let left = queue_depth(&sqs, &queues.queue).await.unwrap();
    if fed.drained_after.is_none() || left != 0 {
        problems.push(format!("the queue did not drain in time: {left} records left"));
    }
    let refused = stack
        .receiver
        .requests(Some(&flapping_key))
        .iter()
        .filter(|r| r.status >= 500)
        .count();
    // A failed record comes back whole (a receipt after the first) or, when the healthy
    // destination took its events, as its remainder: either way export reported it failed.
    if refused == 0 || fed.failed == 0 {
        problems.push(format!(
            "the flapping destination never made export fail a record ({refused} requests answered 5xx, \
             {} reported failed): the test did not test the flapping",
            fed.failed
        ));
    }

    println!(
        "fleet: {} server SDK clients ({} per process) + the browser, {} contexts each: {} events, \
         {} payloads in {} posts to ingest (answers {statuses:?}, 0: the SDK hung up first), {} messages at 2 destinations; \
         setup {setup:?}, SDKs done at {sdks_took:?}, queue drained at {:?}; {downs} down windows, \
         {refused} requests refused by the flapping destination; {} invocations, {} receipts \
         ({} again, {} reported failed); {:?} in all",
        size.clients,
        size.per_process,
        size.events,
        want.len(),
        payloads.len(),
        posts.len(),
        delivered,
        fed.drained_after,
        fed.invocations,
        fed.receipts,
        fed.again,
        fed.failed,
        started.elapsed(),
    );
    assert!(problems.is_empty(), "fleet:\n- {}", problems.join("\n- "));
}
