//! Segment's documented rules for the HTTP Tracking API, as pure functions:
//! Basic auth with the write key as user name; a message ≤ 32,000 bytes; a body
//! ≤ 500,000 bytes; ≤ 2,500 messages per batch; `userId` or `anonymousId` on every
//! message; `event` on every track.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

pub const MAX_MESSAGE_BYTES: usize = 32_000;
pub const MAX_BODY_BYTES: usize = 500_000;
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// The write key of a `Basic base64(key:)` header.
pub(super) fn write_key_of(authorization: &str) -> Option<String> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, _password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<String>,
}

/// Segment's rules for one request to `path`; the accepted messages and the batch's `sentAt`.
pub(super) fn validate(path: &str, body: &[u8]) -> Result<(Vec<Value>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let (raws, sent_at, implied_type) = if path == "/v1/batch" {
        let b: BatchBody = serde_json::from_str(text).map_err(|e| format!("invalid batch JSON: {e}"))?;
        (b.batch, b.sent_at, None)
    } else {
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        (vec![raw], None, Some(path.trim_start_matches("/v1/")))
    };
    check_count(raws.len())?;
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let size = raw.get().len();
            if size > MAX_MESSAGE_BYTES {
                return Err(format!("message {i} is {size} bytes; the limit is 32,000"));
            }
            let mut message: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
            if let Some(t) = implied_type {
                message["type"] = Value::from(t);
            }
            check_message(&message).map_err(|e| format!("message {i}: {e}"))?;
            Ok(message)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|messages| (messages, sent_at))
}

/// The sink's cheap check of a batch body: JSON, message sizes and count; the count.
pub(super) fn check_limits(body: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let b: BatchBody = serde_json::from_str(text).map_err(|e| format!("invalid batch JSON: {e}"))?;
    check_count(b.batch.len())?;
    if let Some(big) = b.batch.iter().find(|m| m.get().len() > MAX_MESSAGE_BYTES) {
        return Err(format!(
            "a message of {} bytes; the limit is 32,000",
            big.get().len()
        ));
    }
    Ok(b.batch.len())
}

fn check_count(messages: usize) -> Result<(), String> {
    if messages > MAX_BATCH_MESSAGES {
        return Err(format!("{messages} messages in one batch; the limit is 2,500"));
    }
    Ok(())
}

fn check_message(m: &Value) -> Result<(), String> {
    let obj = m.as_object().ok_or("not a JSON object")?;
    let non_empty = |k: &str| obj.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let kind = obj.get("type").and_then(Value::as_str).ok_or("no `type`")?;
    if !["track", "page", "screen", "identify", "group", "alias"].contains(&kind) {
        return Err(format!("unknown type {kind:?}"));
    }
    if !non_empty("userId") && !non_empty("anonymousId") {
        return Err("neither `userId` nor `anonymousId`".into());
    }
    if kind == "track" && !non_empty("event") {
        return Err("a track needs `event`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(messages: &[&str]) -> String {
        format!(
            r#"{{"batch":[{}],"sentAt":"2024-01-01T00:00:00Z"}}"#,
            messages.join(",")
        )
    }

    #[test]
    fn reads_the_write_key_from_basic_auth() {
        assert_eq!(write_key_of("Basic YWJjOg=="), Some("abc".into()));
        assert_eq!(
            write_key_of("Basic YWJjOnB3"),
            Some("abc".into()),
            "a password is ignored"
        );
        assert_eq!(write_key_of("Bearer abc"), None);
        assert_eq!(write_key_of("Basic Og=="), None, "an empty key");
        assert_eq!(write_key_of("Basic YWJj"), None, "no colon");
        assert_eq!(write_key_of("Basic !!!"), None, "not base64");
    }

    #[test]
    fn enforces_segment_message_rules() {
        let ok = batch_of(&[
            r#"{"type":"track","event":"e","userId":"u"}"#,
            r#"{"type":"page","anonymousId":"a"}"#,
        ]);
        let (messages, sent_at) = validate("/v1/batch", ok.as_bytes()).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(sent_at.as_deref(), Some("2024-01-01T00:00:00Z"));
        let rejected = |body: &str| validate("/v1/batch", body.as_bytes()).unwrap_err();
        assert!(rejected(&batch_of(&[r#"{"type":"track","event":"e"}"#])).contains("anonymousId"));
        assert!(rejected(&batch_of(&[r#"{"type":"track","userId":"u"}"#])).contains("event"));
        assert!(rejected(&batch_of(&[r#"{"type":"track","event":"e","userId":""}"#])).contains("userId"));
        assert!(rejected(&batch_of(&[r#"{"type":"other","userId":"u"}"#])).contains("unknown type"));
        assert!(rejected(&batch_of(&[r#"{"userId":"u"}"#])).contains("no `type`"));
        assert!(rejected(&batch_of(&["[]"])).contains("not a JSON object"));
        assert!(rejected("not json").contains("invalid batch JSON"));
    }

    #[test]
    fn enforces_segment_size_and_count_limits() {
        let padded = |n: usize| format!(r#"{{"type":"page","userId":"u","p":"{}"}}"#, "x".repeat(n));
        let overhead = padded(0).len();
        let just_right = batch_of(&[&padded(MAX_MESSAGE_BYTES - overhead)]);
        assert!(validate("/v1/batch", just_right.as_bytes()).is_ok());
        assert_eq!(check_limits(just_right.as_bytes()), Ok(1));
        let big = batch_of(&[&padded(MAX_MESSAGE_BYTES - overhead + 1)]);
        assert!(
            validate("/v1/batch", big.as_bytes())
                .unwrap_err()
                .contains("32,000")
        );
        assert!(check_limits(big.as_bytes()).unwrap_err().contains("32,000"));

        let page = r#"{"type":"page","userId":"u"}"#;
        let full = batch_of(&[page; MAX_BATCH_MESSAGES]);
        assert_eq!(validate("/v1/batch", full.as_bytes()).unwrap().0.len(), 2500);
        assert_eq!(check_limits(full.as_bytes()), Ok(2500));
        let many = batch_of(&[page; MAX_BATCH_MESSAGES + 1]);
        assert!(
            validate("/v1/batch", many.as_bytes())
                .unwrap_err()
                .contains("2,500")
        );
        assert!(check_limits(many.as_bytes()).unwrap_err().contains("2,500"));
    }

    #[test]
    fn a_single_message_takes_its_type_from_the_path() {
        let single = r#"{"event":"e","userId":"u"}"#;
        let (messages, sent_at) = validate("/v1/track", single.as_bytes()).unwrap();
        assert_eq!(messages[0]["type"], "track");
        assert_eq!(sent_at, None);
        assert!(
            validate("/v1/track", br#"{"userId":"u"}"#)
                .unwrap_err()
                .contains("event")
        );
        assert_eq!(
            validate("/v1/page", br#"{"userId":"u"}"#).unwrap().0[0]["type"],
            "page"
        );
    }
}
