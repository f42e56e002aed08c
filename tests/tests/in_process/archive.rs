//! The event archive in-process (CONTRACT §6; README, "The event archive"), over the
//! in-memory archive: every envelope received is kept, whatever its kind, before its
//! record succeeds; retries and replays (`destinations`) are not kept again; a failed
//! write fails its record for now, and nothing is lost. The same path runs through the
//! `export` binary and moto's S3 in `end_to_end::archive`.

use serde_json::{Value, json};
use shared::deadline::Deadline;
use shared::export::Exporter;
use shared::requeue::RetrySchedule;
use shared::segment::DeliveryError;
use shared::store::CachedStore;
use std::collections::BTreeMap;
use std::time::Duration;
use tests::fixtures::*;
use tests::memory::{Answer, MemoryArchive, MemoryRequeue, MemorySegment, MemoryStore};

type ArchivingExporter = Exporter<CachedStore<MemoryStore>, MemorySegment, MemoryRequeue, MemoryArchive>;

const SCHEDULE: RetrySchedule = RetrySchedule {
    base: Duration::from_secs(60),
    cap: Duration::from_secs(3600),
};

/// 2025-11-25T18:00:00Z, `custom_event`'s `creationDate`.
const CREATED: i64 = 1_764_093_600_000;

fn exporter() -> (ArchivingExporter, MemoryRequeue, MemoryArchive) {
    let (requeue, archive) = (MemoryRequeue::new(), MemoryArchive::new());
    let exporter = Exporter::new(
        CachedStore::new(MemoryStore::new(), Duration::ZERO),
        MemorySegment::new(),
    )
    .with_requeue(requeue.clone(), SCHEDULE)
    .with_archive(archive.clone());
    (exporter, requeue, archive)
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(25))
}

/// A fresh environment with destinations of these write keys: (project, env, ids).
fn environment(exporter: &ArchivingExporter, keys: &[&str]) -> (String, String, Vec<String>) {
    let (project, env) = (unique("proj"), unique("env"));
    let ids = keys
        .iter()
        .map(|key| {
            let d = destination(&project, &env, key);
            exporter.store().inner().put_destination(d.clone());
            d.id
        })
        .collect();
    (project, env, ids)
}

fn down() -> Option<Answer> {
    Some(Answer::Fail(
        Duration::ZERO,
        DeliveryError::GaveUp {
            attempts: 8,
            last: "HTTP 503".into(),
        },
    ))
}

/// The archived event ids, by the folder of their object.
fn archived_ids(archive: &MemoryArchive) -> BTreeMap<String, Vec<String>> {
    let mut by_folder: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, line) in archive.lines() {
        let folder = key.rsplit_once('/').unwrap().0.to_owned();
        let id = line["event"]["id"]
            .as_str()
            .expect("every line has an id")
            .to_owned();
        by_folder.entry(folder).or_default().push(id);
    }
    by_folder
}

#[tokio::test]
async fn every_envelope_is_kept_by_environment_and_hour_whatever_its_kind() {
    let (exporter, _, archive) = exporter();
    let key = unique("wk");
    let (project, env, ids) = environment(&exporter, &[&key]);
    let other_env = unique("env");
    let summary = json!({"kind": "summary", "startDate": CREATED, "endDate": CREATED + 1, "features": {}});
    let mut no_id = custom_event("", "u3");
    no_id.as_object_mut().unwrap().remove("id");
    let mut next_hour = custom_event("c-2", "u2");
    next_hour["creationDate"] = json!(CREATED + 3_600_000);
    let flag_off = json!({"kind": "feature", "id": "f-1", "creationDate": CREATED + 59_999, "key": "not-exported",
                          "contextKeys": {"user": "u1"}, "value": true});
    let mut retry: Value =
        serde_json::from_str(&envelope(&project, &env, custom_event("r-1", "u1"))).unwrap();
    retry["destinations"] = json!([ids[0]]);
    let records = [
        (
            "m-1".to_owned(),
            format!(
                "[{},{}]",
                envelope(&project, &env, custom_event("c-1", "u1")),
                envelope(&project, &env, flag_off)
            ),
        ),
        ("m-2".to_owned(), envelope(&project, &env, next_hour)),
        (
            "m-3".to_owned(),
            envelope(
                &project,
                &other_env,
                json!({"kind": "index", "id": "i-1", "creationDate": CREATED, "contextKeys": {"user": "u1"}}),
            ),
        ),
        ("m-4".to_owned(), envelope(&project, &env, summary)),
        ("m-5".to_owned(), envelope(&project, &env, no_id)),
        ("m-6".to_owned(), retry.to_string()),
    ];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    let exported = exporter.segment().messages(Some(&key));
    assert_eq!(
        exported.len(),
        4,
        "c-1, c-2, the one without an id and the retry r-1"
    );
    let derived = exported
        .iter()
        .map(|m| m["properties"]["eventId"].as_str().unwrap().to_owned())
        .find(|id| !["c-1", "c-2", "r-1"].contains(&id.as_str()))
        .expect("the derived id");

    let archived = archived_ids(&archive);
    let folder = |env: &str, hour: &str| format!("{project}/{env}/2025/11/25/{hour}");
    let now = shared::timestamp::Timestamp::now();
    let today = now.as_str();
    // A summary event has no creationDate: it is kept under the hour it was received.
    let received = format!(
        "{project}/{env}/{}/{}/{}/{}",
        &today[0..4],
        &today[5..7],
        &today[8..10],
        &today[11..13]
    );
    let mut expected = BTreeMap::from([
        (
            folder(&env, "18"),
            vec!["c-1".to_owned(), "f-1".to_owned(), derived.clone()],
        ),
        (folder(&env, "19"), vec!["c-2".to_owned()]),
        (folder(&other_env, "18"), vec!["i-1".to_owned()]),
    ]);
    let summary_id = archive
        .lines()
        .into_iter()
        .find(|(_, l)| l["event"]["kind"] == "summary")
        .map(|(_, l)| l["event"]["id"].as_str().unwrap().to_owned())
        .expect("the summary event is kept");
    expected.entry(received).or_default().push(summary_id);
    assert_eq!(
        archived, expected,
        "r-1 carries destinations: kept when it first came"
    );
    assert_eq!(archive.keys().len(), 4, "one object per environment and hour");
    assert_eq!(stats.archived, 6);
    assert_eq!(stats.archive_objects, 4);
    assert!(stats.archive_bytes > 0);
    assert_eq!(stats.archive_write_failures, 0);
    // The archive holds envelopes as they came: a replay reads them as the queue would.
    let c1 = archive
        .lines()
        .into_iter()
        .find(|(_, l)| l["event"]["id"] == "c-1")
        .unwrap()
        .1;
    assert_eq!(
        c1,
        serde_json::from_str::<Value>(&envelope(&project, &env, custom_event("c-1", "u1"))).unwrap()
    );
}

#[tokio::test]
async fn a_failed_archive_write_fails_its_record_for_now_and_loses_nothing() {
    let (exporter, requeue, archive) = exporter();
    let key = unique("wk");
    let (project, env, _) = environment(&exporter, &[&key]);
    let records = [
        ("m-1", envelope(&project, &env, custom_event("e-1", "u1"))),
        (
            "m-2",
            envelope(&project, &env, json!({"kind": "summary", "startDate": CREATED})),
        ),
    ];
    archive.fail_writes(true);
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["m-1", "m-2"]);
    assert_eq!(stats.archive_write_failures, 2);
    assert_eq!(stats.failed_transient, 0, "the events themselves did not fail");
    let visibilities = requeue.visibilities();
    for handle in ["handle-m-1", "handle-m-2"] {
        assert!(
            visibilities[handle] >= SCHEDULE.floor(1),
            "{handle} comes back on the retry schedule, not at once: {visibilities:?}"
        );
    }
    assert!(
        requeue.take_replacements().is_empty(),
        "delivered, but not replaced: a remainder would never be archived"
    );
    assert!(archive.keys().is_empty());

    // The whole records come back; the archive is up again.
    archive.fail_writes(false);
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!(stats.archived, 2);
    let kinds: Vec<Value> = archive
        .lines()
        .into_iter()
        .map(|(_, l)| l["event"]["kind"].clone())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&json!("custom")) && kinds.contains(&json!("summary")));
    // Sent twice, with one messageId: Segment keeps the first and drops the repeat.
    let sent = exporter.segment().messages(Some(&key));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["messageId"], sent[1]["messageId"]);
}

#[tokio::test]
async fn a_partly_delivered_record_is_replaced_only_once_archived() {
    let (exporter, requeue, archive) = exporter();
    let (a, b) = (unique("wk-a"), unique("wk-b"));
    let (project, env, ids) = environment(&exporter, &[&a, &b]);
    exporter.segment().script(&b, vec![], down());
    let records = [("m-1", envelope(&project, &env, custom_event("e-1", "u1")))];

    // Archived: replaced by its remainder, for B alone, which is not archived again.
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["m-1"]);
    assert_eq!(stats.replaced_records, 1);
    let remainder = requeue.take_replacements().pop().unwrap().retry.concat();
    let remainder_envelope: Value = serde_json::from_str(&remainder).unwrap();
    assert_eq!(remainder_envelope["destinations"], json!([ids[1]]));
    exporter.segment().script(&b, vec![], None);
    let (response, stats) = exporter
        .export(&batch(&[("r-1", remainder.as_str())]), deadline())
        .await;
    assert!(failed(&response).is_empty());
    assert_eq!(stats.archived, 0, "a retry is not kept again");
    assert_eq!(archive.lines().len(), 1);

    // Not archived: the record is left whole (not replaced), to be archived when it is
    // received again.
    exporter.segment().script(&b, vec![], down());
    archive.fail_writes(true);
    let records = [("m-2", envelope(&project, &env, custom_event("e-2", "u1")))];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert_eq!(failed(&response), ["m-2"]);
    assert_eq!(stats.replaced_records, 0);
    assert!(requeue.take_replacements().is_empty());
    assert!(requeue.visibilities()["handle-m-2"] >= SCHEDULE.floor(1));
    archive.fail_writes(false);
    exporter.segment().script(&b, vec![], None);
    let (response, _) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    let mut ids: Vec<String> = archive
        .lines()
        .into_iter()
        .map(|(_, l)| l["event"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["e-1", "e-2"]);
}

#[tokio::test]
async fn without_an_archive_nothing_is_kept_and_nothing_fails() {
    let exporter = Exporter::new(
        CachedStore::new(MemoryStore::new(), Duration::ZERO),
        MemorySegment::new(),
    );
    let (project, env) = (unique("proj"), unique("env"));
    let records = [("m-1", envelope(&project, &env, custom_event("e-1", "u1")))];
    let (response, stats) = exporter.export(&batch(&records), deadline()).await;
    assert!(failed(&response).is_empty());
    assert_eq!((stats.archived, stats.archive_objects), (0, 0));
}
