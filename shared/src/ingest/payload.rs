//! An SDK's events payload (schema version 4): a JSON array of analytics events, maybe
//! gzipped, turned into export envelopes whose ids come from the payload id and each
//! event's position, so that an SDK's retry of a payload yields the same `messageId`s.

use flate2::read::GzDecoder;
use serde_json::{Map, Value};
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

/// The body as JSON text: gunzipped when `Content-Encoding: gzip`.
pub fn decode(body: &[u8], gzipped: bool) -> Result<Vec<u8>, PayloadError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge);
    }
    if !gzipped {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    GzDecoder::new(body)
        .take(MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| PayloadError::BadGzip)?;
    if out.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge);
    }
    Ok(out)
}

/// The export envelopes of a payload's events, each with an id derived from `payload_id`
/// and its position (an event's own non-empty `id` is kept).
pub fn envelopes(
    json: &[u8],
    project: &str,
    environment: &str,
    payload_id: &str,
) -> Result<Vec<String>, PayloadError> {
    let events: Vec<Map<String, Value>> =
        serde_json::from_slice(json).map_err(|e| PayloadError::NotEvents(e.to_string()))?;
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            let has_id = event
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| !id.is_empty());
            if !has_id {
                event.insert("id".into(), Value::from(event_id(payload_id, i)));
            }
            serde_json::json!({"project": project, "environment": environment, "version": 1, "event": event})
                .to_string()
        })
        .collect())
}

/// The id of the `index`-th event of a payload.
pub fn event_id(payload_id: &str, index: usize) -> String {
    let mut name = payload_id.as_bytes().to_vec();
    name.extend_from_slice(&(index as u64).to_be_bytes());
    Uuid::new_v5(&PAYLOAD_EVENT_NAMESPACE, &name).simple().to_string()
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
        assert_eq!(decode(&gz.finish().unwrap(), true).unwrap(), b"[]");
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
