//! An SDK's events payload (schema version 4): a JSON array of analytics events, maybe
//! gzipped, turned into export envelopes whose ids come from the payload id and each
//! event's position, so that an SDK's retry of a payload yields the same `messageId`s.
//!
//! Without copies: a plain body is read where it lies (a gzip body is inflated once, into
//! one buffer), each event is kept as its raw text ([`scan`] checks it and finds its id
//! without building a `serde_json::Value`), and each envelope is written straight into its
//! SQS message body ([`super::queue::Packer`]).

use super::envelope::Envelopes;
use super::queue::Packer;
use super::scan::{self, Scan};
use flate2::read::GzDecoder;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::Read;
use uuid::Uuid;

/// Largest payload accepted, before and after gunzipping.
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Namespace of the event ids derived from payload ids.
const PAYLOAD_EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x9c41_7e2a_5b3d_4f60_8e1c_2a7b_6d9f_0c34);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the payload is over {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("the payload is not valid gzip")]
    BadGzip,
    #[error("the payload is not a JSON array of events: {0}")]
    NotEvents(String),
}

/// The body as JSON text: the body itself, or gunzipped when `Content-Encoding: gzip`.
pub fn decode(body: &[u8], gzipped: bool) -> Result<Cow<'_, [u8]>, PayloadError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge);
    }
    if !gzipped {
        return Ok(Cow::Borrowed(body));
    }
    // gzip's trailer tells the inflated size (mod 2^32, and a liar may lie): one buffer of
    // that size, bounded, grown only if the trailer lied.
    let trailer = body.len().checked_sub(4).map(|at| &body[at..]);
    let told = trailer.map_or(0, |t| u32::from_le_bytes(t.try_into().expect("4 bytes")) as usize);
    let mut out = Vec::with_capacity(told.min(MAX_PAYLOAD_BYTES + 1));
    GzDecoder::new(body)
        .take(MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| PayloadError::BadGzip)?;
    if out.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge);
    }
    Ok(Cow::Owned(out))
}

/// A payload's envelopes, packed into SQS message bodies.
pub struct Packed {
    pub messages: Vec<String>,
    pub events: usize,
}

/// The message bodies of a payload's envelopes, each event with an id derived from
/// `payload_id` and its position (an event's own non-empty `id` is kept).
pub fn messages(
    json: &[u8],
    project: &str,
    environment: &str,
    payload_id: &str,
) -> Result<Packed, PayloadError> {
    let events = events(json)?;
    let writer = Envelopes::new(project, environment, payload_id);
    let mut packer = Packer::new();
    for (i, (text, scan)) in events.iter().enumerate() {
        packer.push(|body| writer.write(body, i, text.get(), *scan));
    }
    Ok(Packed {
        messages: packer.finish(),
        events: events.len(),
    })
}

/// The envelopes of a payload one by one, unpacked (for comparisons: ingest packs them,
/// [`messages`]).
pub fn envelopes(
    json: &[u8],
    project: &str,
    environment: &str,
    payload_id: &str,
) -> Result<Vec<String>, PayloadError> {
    let writer = Envelopes::new(project, environment, payload_id);
    Ok(events(json)?
        .into_iter()
        .enumerate()
        .map(|(i, (text, scan))| {
            let mut envelope = String::new();
            writer.write(&mut envelope, i, text.get(), scan);
            envelope
        })
        .collect())
}

/// Each event's text in the payload, with its scan.
fn events(json: &[u8]) -> Result<Vec<(&RawValue, Scan)>, PayloadError> {
    let scans = scan::scan(json).map_err(|e| not_events(json, e))?;
    let texts: Vec<&RawValue> = serde_json::from_slice(json).map_err(|e| not_events(json, e))?;
    assert_eq!(texts.len(), scans.len(), "one scan per event");
    Ok(texts.into_iter().zip(scans).collect())
}

/// The error of a payload that is not an array of events, worded as parsing it into
/// `serde_json` maps words it (as ingest always did: the SDK, or its operator, reads it).
#[cold]
fn not_events(json: &[u8], scan_error: serde_json::Error) -> PayloadError {
    let error = serde_json::from_slice::<Vec<Map<String, Value>>>(json).err();
    PayloadError::NotEvents(error.unwrap_or(scan_error).to_string())
}

/// The id of the `index`-th event of a payload.
pub fn event_id(payload_id: &str, index: usize) -> String {
    derived_id(payload_id, index).simple().to_string()
}

pub(super) fn derived_id(payload_id: &str, index: usize) -> Uuid {
    let mut name = Vec::with_capacity(payload_id.len() + 8);
    name.extend_from_slice(payload_id.as_bytes());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    Uuid::new_v5(&PAYLOAD_EVENT_NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn ids_come_from_the_payload_id_and_the_position() {
        let json = br#"[{"kind":"custom","key":"a"},{"kind":"custom","key":"b","id":"own"}]"#;
        let first = envelopes(json, "p", "e", "payload-1").unwrap();
        let retry = envelopes(json, "p", "e", "payload-1").unwrap();
        assert_eq!(first, retry, "an SDK's retry yields the same envelopes");
        let other = envelopes(json, "p", "e", "payload-2").unwrap();
        assert_ne!(first[0], other[0], "another payload never collides");
        let e: Value = serde_json::from_str(&first[1]).unwrap();
        assert_eq!(e["event"]["id"], "own");
        assert_eq!(
            (e["project"].as_str(), e["environment"].as_str()),
            (Some("p"), Some("e"))
        );
    }

    #[test]
    fn gzip_bodies_and_bad_input() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"[]").unwrap();
        assert_eq!(decode(&gz.finish().unwrap(), true).unwrap().as_ref(), b"[]");
        assert_eq!(decode(b"not gzip", true), Err(PayloadError::BadGzip));
        assert!(matches!(
            envelopes(b"{}", "p", "e", "x"),
            Err(PayloadError::NotEvents(_))
        ));
        assert_eq!(
            decode(&vec![b' '; MAX_PAYLOAD_BYTES + 1], false),
            Err(PayloadError::TooLarge)
        );
    }
}
