//! Destinations and settings put straight into the table, and unique names.

use crate::process::workspace_root;
use crate::sqs::sqs_event;
use crate::stack::Stack;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::destination::{Destination, ExportSettings, SEGMENT_KIND, SegmentConfig, WriteKey};
use shared::export::Exporter;
use shared::retry::Backoff;
use shared::segment::SegmentClient;
use shared::segment::SendPolicy;
use shared::segment::client::http_client;
use shared::sources::EventSources;
use shared::store::{CachedStore, DynamoStore, SourceStore, Store};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A destination that is on, with the default config and the given write key.
pub fn destination(project: &str, environment: &str, write_key: &str) -> Destination {
    Destination {
        id: uuid::Uuid::new_v4().to_string(),
        project: project.into(),
        environment: environment.into(),
        name: format!("Segment ({environment})"),
        kind: SEGMENT_KIND.into(),
        on: true,
        version: 1,
        created_at: 0,
        write_key_check: shared::segment::verify::KeyCheck::never(),
        config: SegmentConfig {
            write_key: WriteKey::new(write_key),
            ..SegmentConfig::default()
        },
    }
}

pub async fn put_destination(store: &impl Store, destination: &Destination) {
    store
        .create_destination(destination)
        .await
        .expect("put destination");
}

/// Replaces the environment's settings, whatever was there.
pub async fn put_settings(
    store: &impl Store,
    project: &str,
    environment: &str,
    all_flags: bool,
    flags: &[&str],
) {
    let current = store
        .get_settings(project, environment)
        .await
        .expect("read settings");
    let next = ExportSettings {
        all_flags,
        flags: flags.iter().map(|f| (f.to_string(), true)).collect(),
        version: current.version + 1,
    };
    store
        .put_settings(project, environment, &next, current.version)
        .await
        .expect("put settings");
}

/// The pipeline in-process, over the stack's real table and the receiver.
pub type TestExporter = Exporter<CachedStore<DynamoStore>, SegmentClient>;

pub async fn exporter(stack: &Stack, cache_ttl: Duration, policy: SendPolicy) -> TestExporter {
    let store = CachedStore::new(stack.store().await, cache_ttl);
    let segment = SegmentClient::new(http_client(), Some(stack.receiver.base_url())).with_policy(policy);
    Exporter::new(store, segment)
}

/// The deadline a real `export` invocation has: the template's `Timeout` for it. Tests that
/// are not about the deadline use it, so that moto answering slowly on a busy machine (four
/// test threads beside a build) is not mistaken for a store too slow to read in time.
pub fn export_deadline() -> Deadline {
    let seconds = crate::template::template()["Resources"]["ExportFunction"]["Properties"]["Timeout"]
        .as_u64()
        .expect("ExportFunction's Timeout in template.yaml");
    Deadline::after(Duration::from_secs(seconds))
}

/// Retries quick enough for tests, with the same rules as production.
pub fn fast_retries() -> SendPolicy {
    SendPolicy {
        backoff: Backoff {
            max_attempts: 8,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
        },
        request_timeout: Duration::from_secs(5),
        reserve: Duration::from_millis(100),
    }
}

/// An envelope body for `event` in an environment.
pub fn envelope(project: &str, environment: &str, event: Value) -> String {
    json!({"project": project, "environment": environment, "version": 1, "event": event}).to_string()
}

/// An `SqsEvent` of `(messageId, body)` records.
pub fn batch<I: AsRef<str>, B: AsRef<str>>(records: &[(I, B)]) -> SqsEvent {
    let value = sqs_event(records.iter().map(|(id, body)| (id.as_ref(), body.as_ref())));
    serde_json::from_value(value).expect("an SqsEvent")
}

/// The failed `messageId`s of a response, sorted.
pub fn failed(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// A custom event with a user context.
pub fn custom_event(id: &str, user: &str) -> Value {
    json!({"kind": "custom", "id": id, "creationDate": 1_764_093_600_000_i64, "key": "purchase",
           "contextKeys": {"user": user}})
}

pub fn read_event_file(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event files are JSON")
}

/// The destination the API files of `events/` refer to.
pub const EVENTS_DESTINATION_ID: &str = "0f8f6d3e-5c4b-4a29-9e1d-2b7c8a6f4e10";

/// Registers an environment's event sources (`{"sdkKeys": [...]}`, …) through the API
/// of `stack`, as a user does.
pub async fn register_event_sources(stack: &Stack, project: &str, environment: &str, sources: Value) {
    let r = reqwest::Client::new()
        .put(format!(
            "{}/api/v2/event-sources/{project}/{environment}",
            stack.api_base()
        ))
        .header("authorization", crate::stack::LOCAL_API_TOKEN)
        .json(&sources)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(r.status(), 200, "registering event sources");
}

/// The event sources of the `events/ingest-*.json` samples, registered for demo/production.
pub const SAMPLE_SDK_KEY: &str = "sdk-0000-local-sample-key";
pub const SAMPLE_MOBILE_KEY: &str = "mob-0000-local-sample-key";
pub const SAMPLE_CLIENT_SIDE_ID: &str = "5f0a1b2c3d4e5f6a7b8c9d0e";

/// Registers the samples' keys for demo/production (once: later calls find them there).
pub async fn put_sample_sources(store: &impl SourceStore) {
    let previous = store
        .get_sources("demo", "production")
        .await
        .expect("read sources");
    let sources = EventSources {
        sdk_keys: vec![shared::sources::key_digest(SAMPLE_SDK_KEY)],
        mobile_keys: vec![shared::sources::key_digest(SAMPLE_MOBILE_KEY)],
        client_side_ids: vec![shared::sources::ClientSideId::any_origin(SAMPLE_CLIENT_SIDE_ID)],
        version: previous.version + 1,
    };
    if previous.lookups() == sources.lookups() {
        return;
    }
    store
        .put_sources("demo", "production", &sources, &previous)
        .await
        .expect("register the samples' keys");
}

/// Puts the `events/` files' destination (`demo/staging`) in place, replacing any.
pub async fn put_events_destination(store: &impl Store) {
    let _ = store
        .delete_destination("demo", "staging", EVENTS_DESTINATION_ID)
        .await;
    let mut d = destination("demo", "staging", "events-write-key-0005");
    d.id = EVENTS_DESTINATION_ID.to_owned();
    d.name = "Segment (staging)".to_owned();
    put_destination(store, &d).await;
}

/// Runs one of `tests/python`'s scripts (LaunchDarkly's clients, driven unchanged) with
/// `args`, off the async runtime; its standard output, once it exited successfully.
pub async fn python_script(script: &str, args: Vec<String>) -> String {
    let path = crate::process::workspace_root().join("tests/python").join(script);
    let out = tokio::task::spawn_blocking(move || {
        crate::process::command("python3")
            .arg(path)
            .args(args)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
