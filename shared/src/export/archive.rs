//! The event archive (CONTRACT §6; README, "The event archive"): every envelope of the
//! invocation that parsed, whatever its kind, goes into gzipped JSON Lines objects, one per
//! (project, environment, hour of `creationDate`, UTC), written side by side with the
//! deliveries. Envelopes that carry `destinations` are left out: they are the retries of
//! partial failures and replays, of envelopes kept when they first came.
//!
//! A record is received again whole when it failed (its environment not read, Segment down,
//! its own archive write failed), so an envelope can be kept more than once, in objects of
//! different invocations. A replay from the archive must therefore keep one line per event
//! id (`event.id`, always present in the archive: an id `export` derived is written in).

use super::parse::{Parsed, RecordEvent};
use super::remainder::rewrite;
use crate::archive::{Archive, prefix};
use crate::deadline::Deadline;
use crate::timestamp::Timestamp;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::stream::{self, StreamExt};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// Objects written at once.
const MAX_CONCURRENT_PUTS: usize = 8;

/// Time kept free of archive writes before the deadline: for answering SQS.
const ARCHIVE_RESERVE: Duration = Duration::from_secs(1);

/// The envelopes of one object, before compression.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// `{project}/{environment}/{yyyy}/{mm}/{dd}/{hh}/`.
    pub prefix: String,
    /// One envelope a line, each line ending in `\n`.
    pub lines: Vec<u8>,
    pub events: u64,
    /// The records whose envelopes are in it, in order, each once.
    pub records: Vec<usize>,
}

/// What the archive writes of one invocation came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Records with envelopes in an object that was not written: failed for now.
    pub unarchived: Vec<usize>,
    pub events: u64,
    pub objects: u64,
    /// Compressed bytes written.
    pub bytes: u64,
    /// Objects that could not be written (an error, or not done before the deadline).
    pub failures: u64,
}

/// The name of this invocation's objects under each prefix: when they were written, and
/// a random part, so that no two invocations ever write the same key.
pub fn object_name(now: &Timestamp) -> String {
    let compact: String = now.as_str()[..19]
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{compact}Z-{}.jsonl.gz", uuid::Uuid::new_v4().simple())
}

/// The archive line of an event: its envelope as it came, with its event id written in
/// when `export` derived it, on one line.
pub fn line<'a>(event: &RecordEvent<'a>) -> Cow<'a, str> {
    let text: Cow<'a, str> = if event.has_derived_id() {
        Cow::Owned(rewrite(event.text, Some(event.event_id()), None))
    } else {
        Cow::Borrowed(event.text)
    };
    // Raw line breaks in JSON are whitespace between tokens (a string holds them
    // escaped), so a space keeps the envelope's meaning.
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        text
    }
}

/// The objects of the invocation's envelopes, in the order their first envelope came.
/// An event without a usable `creationDate` (a summary event has none) goes under the
/// hour `export` received it, `received`.
pub fn groups(parsed: &Parsed<'_>, received: &Timestamp) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(&str, &str, [u8; 13]), usize> = HashMap::new();
    for event in &parsed.events {
        let envelope = &event.envelope;
        if envelope.destinations.is_some() {
            continue;
        }
        let at = envelope
            .event
            .creation_date
            .and_then(Timestamp::from_epoch_millis)
            .unwrap_or(*received);
        let hour: [u8; 13] = at.as_str().as_bytes()[..13].try_into().expect("13 bytes");
        let key = (&*envelope.project, &*envelope.environment, hour);
        let at_group = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                prefix: prefix(&envelope.project, &envelope.environment, &at),
                ..Group::default()
            });
            groups.len() - 1
        });
        let group = &mut groups[at_group];
        group.lines.extend_from_slice(line(event).as_bytes());
        group.lines.push(b'\n');
        group.events += 1;
        if group.records.last() != Some(&event.record) {
            group.records.push(event.record);
        }
    }
    groups
}

/// Gzip at the fastest level: archive objects are written once and read rarely.
pub fn gzip(lines: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(lines.len() / 4), Compression::fast());
    encoder.write_all(lines).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Writes the invocation's objects, compressed off the runtime's threads, until the
/// deadline less [`ARCHIVE_RESERVE`]; answers which records' envelopes were not kept.
pub async fn keep<A: Archive>(archive: &A, parsed: &Parsed<'_>, deadline: Deadline) -> Outcome {
    if !archive.is_on() {
        return Outcome::default();
    }
    let now = Timestamp::now();
    let name = object_name(&now);
    let groups = groups(parsed, &now);
    let mut records = Vec::with_capacity(groups.len());
    let mut events = Vec::with_capacity(groups.len());
    let mut puts = Vec::with_capacity(groups.len());
    for (number, group) in groups.into_iter().enumerate() {
        records.push(group.records);
        events.push(group.events);
        let key = format!("{}{name}", group.prefix);
        let lines = group.lines;
        puts.push(async move {
            let body = tokio::task::spawn_blocking(move || gzip(&lines))
                .await
                .map_err(|e| e.to_string());
            let written = match body {
                Ok(body) => {
                    let size = body.len() as u64;
                    archive
                        .put(&key, Bytes::from(body))
                        .await
                        .map(|()| size)
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = &written {
                tracing::error!(key, error = %e, "archive write failed: its records are retried");
            }
            (number, written.ok())
        });
    }
    let mut written: Vec<Option<u64>> = vec![None; puts.len()];
    let mut running = stream::iter(puts).buffer_unordered(MAX_CONCURRENT_PUTS);
    let cutoff = tokio::time::sleep(deadline.remaining().saturating_sub(ARCHIVE_RESERVE));
    tokio::pin!(cutoff);
    loop {
        tokio::select! {
            put = running.next() => match put {
                Some((number, size)) => written[number] = size,
                None => break,
            },
            () = &mut cutoff => {
                tracing::error!("archive writes not done before the deadline: their records are retried");
                break;
            }
        }
    }
    let mut outcome = Outcome::default();
    for (number, size) in written.into_iter().enumerate() {
        match size {
            Some(size) => {
                outcome.objects += 1;
                outcome.bytes += size;
                outcome.events += events[number];
            }
            None => {
                outcome.failures += 1;
                outcome.unarchived.extend_from_slice(&records[number]);
            }
        }
    }
    outcome.unarchived.sort_unstable();
    outcome.unarchived.dedup();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ledger::Ledger;
    use crate::export::parse::parse_record;
    use flate2::read::GzDecoder;
    use serde_json::Value;
    use std::io::Read;

    /// 2026-03-04T05:06:07.089Z
    const AT: i64 = 1_772_600_767_089;

    fn parsed<'a>(bodies: &[&'a str]) -> Parsed<'a> {
        let mut ledger = Ledger::new(bodies.len());
        let mut parsed = Parsed::default();
        for (record, body) in bodies.iter().enumerate() {
            parse_record(&mut ledger, record, Some("m"), Some(body), &mut parsed);
        }
        parsed
    }

    fn lines(group: &Group) -> Vec<Value> {
        std::str::from_utf8(&group.lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn received() -> Timestamp {
        Timestamp::from_epoch_millis(AT + 3 * 3_600_000).unwrap()
    }

    #[test]
    fn the_prefix_is_project_environment_and_the_utc_hour() {
        let at = Timestamp::from_epoch_millis(AT).unwrap();
        assert_eq!(
            prefix("my-proj", "production", &at),
            "my-proj/production/2026/03/04/05/"
        );
        assert_eq!(
            prefix("a/b", "é v", &at),
            "a%2Fb/%C3%A9%20v/2026/03/04/05/",
            "a key never adds a level"
        );
        let name = object_name(&at);
        assert!(
            name.starts_with("20260304T050607Z-") && name.ends_with(".jsonl.gz"),
            "{name}"
        );
        assert_ne!(name, object_name(&at), "no two invocations share a name");
    }

    #[test]
    fn envelopes_group_by_environment_and_hour_of_their_creation_date() {
        let e = |env: &str, id: &str, at: i64| {
            format!(
                r#"{{"project":"p","environment":"{env}","event":{{"kind":"custom","id":"{id}","creationDate":{at}}}}}"#
            )
        };
        let (a, b, c) = (
            e("prod", "a", AT),
            e("prod", "b", AT + 3_600_000),
            e("dev", "c", AT),
        );
        let d = e("prod", "d", AT + 60_000);
        let batch = format!("[{a},{b}]");
        let bodies = [batch.as_str(), c.as_str(), d.as_str()];
        let groups = groups(&parsed(&bodies), &received());
        let summary: Vec<(&str, u64, &[usize])> = groups
            .iter()
            .map(|g| (g.prefix.as_str(), g.events, g.records.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                ("p/prod/2026/03/04/05/", 2, &[0, 2][..]),
                ("p/prod/2026/03/04/06/", 1, &[0][..]),
                ("p/dev/2026/03/04/05/", 1, &[1][..]),
            ]
        );
        let ids: Vec<Value> = lines(&groups[0])
            .iter()
            .map(|l| l["event"]["id"].clone())
            .collect();
        assert_eq!(ids, ["a", "d"]);
        assert_eq!(
            std::str::from_utf8(&groups[1].lines).unwrap(),
            format!("{b}\n"),
            "kept as it came"
        );
    }

    #[test]
    fn every_kind_is_kept_but_retries_and_replays_are_not() {
        let bodies = [
            r#"{"project":"p","environment":"e","event":{"kind":"summary","startDate":1,"endDate":2}}"#,
            r#"{"project":"p","environment":"e","event":{"kind":"index","id":"i","creationDate":1772600767089}}"#,
            r#"{"project":"p","environment":"e","event":{"kind":"custom","id":"r","creationDate":1772600767089},"destinations":["d1"]}"#,
            r#"{"project":"p","environment":"e","event":{"kind":"custom","id":"x","creationDate":1772600767089},"destinations":[]}"#,
            r#"{"project":"p"}"#,
        ];
        let groups = groups(&parsed(&bodies), &received());
        let kept: Vec<(String, Value)> = groups
            .iter()
            .flat_map(|g| {
                lines(g)
                    .into_iter()
                    .map(|l| (g.prefix.clone(), l["event"]["kind"].clone()))
            })
            .collect();
        assert_eq!(
            kept,
            [
                // No creationDate: the hour it was received.
                ("p/e/2026/03/04/08/".to_owned(), Value::from("summary")),
                ("p/e/2026/03/04/05/".to_owned(), Value::from("index")),
            ]
        );
    }

    #[test]
    fn a_derived_id_is_written_in_and_every_envelope_is_one_line() {
        let body = "[{\"project\":\"p\",\"environment\":\"e\",\n \"event\":{\"kind\":\"custom\",\"data\":\"a\\nb\",\"creationDate\":1772600767089}}]";
        let parsed = parsed(&[body]);
        let derived = parsed.events[0].event_id().to_owned();
        let groups = groups(&parsed, &received());
        let text = std::str::from_utf8(&groups[0].lines).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let line: Value = serde_json::from_str(text).unwrap();
        assert_eq!(line["event"]["id"], derived.as_str());
        assert_eq!(line["event"]["data"], "a\nb");
        assert_eq!(
            derived,
            crate::export::derive_event_id(body[1..body.len() - 1].trim(), 0)
        );

        // With an id of its own, the envelope is kept as it came, but for its line breaks.
        let body = "{\"project\":\"p\",\"environment\":\"e\",\"event\":{\"kind\":\"custom\",\r\n\"id\":\"x\",\"creationDate\":1772600767089}}";
        let kept = super::groups(&self::parsed(&[body]), &received());
        assert_eq!(
            std::str::from_utf8(&kept[0].lines).unwrap(),
            format!("{}\n", body.replace("\r\n", "  "))
        );
    }

    #[test]
    fn gzip_round_trips() {
        let lines = b"{\"a\":1}\n{\"b\":2}\n".repeat(100);
        let mut out = Vec::new();
        GzDecoder::new(&gzip(&lines)[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, lines);
    }
}
