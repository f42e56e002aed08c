//! The previous ingest pipeline, kept verbatim as the reference the new one is checked
//! against (the equivalence tests) and measured beside (the `ingest` bench): the body
//! copied, every event parsed into a `serde_json::Map`, re-serialized into an envelope of
//! its own, then the envelopes copied into message bodies.

use super::payload::{MAX_PAYLOAD_BYTES, PayloadError, event_id};
use super::queue;
use flate2::read::GzDecoder;
use serde_json::{Map, Value};
use std::io::Read;

/// The body as JSON text, copied (gunzipped when `gzipped`).
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

/// One envelope per event, each event through a `Map`.
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

/// The whole of it: the message bodies of a body.
pub fn messages(
    body: &[u8],
    gzipped: bool,
    project: &str,
    environment: &str,
    payload_id: &str,
) -> Result<Vec<String>, PayloadError> {
    let json = decode(body, gzipped)?;
    Ok(queue::pack(&envelopes(&json, project, environment, payload_id)?))
}
