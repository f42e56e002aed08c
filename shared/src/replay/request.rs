//! A caller's replay range, `{"from": <epoch ms>, "to": <epoch ms>}`, checked against
//! what the archive keeps (CONTRACT §4.4): a range the archive cannot serve is refused
//! with what it does keep, rather than accepted and found empty.

use serde_json::Value;
use std::time::Duration;

/// How far past now `to` may reach: clocks differ by a little, and a caller who asks
/// for "until now" should not be refused for it.
pub const CLOCK_SLACK: Duration = Duration::from_secs(5 * 60);

/// `[from, to)` in epoch milliseconds of `creationDate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRange {
    pub from: i64,
    pub to: i64,
}

/// Why a range is refused: the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RangeError(pub String);

/// The range of a request body, at `now` (epoch ms), for an archive that keeps
/// `retention`. Fields whose names start with `_` are ignored, as everywhere in the API.
pub fn parse_range(body: &Value, now: i64, retention: Duration) -> Result<ReplayRange, RangeError> {
    let Some(fields) = body.as_object() else {
        return Err(RangeError(
            "the body must be a JSON object {\"from\": <epoch ms>, \"to\": <epoch ms>}".into(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !k.starts_with('_') && *k != "from" && *k != "to")
    {
        return Err(RangeError(format!(
            "unknown field {unknown:?}: a replay takes only \"from\" and \"to\" (epoch milliseconds)"
        )));
    }
    let millis = |name: &str| -> Result<i64, RangeError> {
        match fields.get(name) {
            None | Some(Value::Null) => Err(RangeError(format!(
                "\"{name}\" is required: the {} of the range, in epoch milliseconds of the events' creationDate",
                if name == "from" {
                    "start (inclusive)"
                } else {
                    "end (exclusive)"
                }
            ))),
            Some(v) => v.as_i64().filter(|&ms| ms >= 0).ok_or_else(|| {
                RangeError(format!(
                    "\"{name}\" must be a whole number of epoch milliseconds, such as 1764547200000"
                ))
            }),
        }
    };
    let (from, to) = (millis("from")?, millis("to")?);
    if from >= to {
        return Err(RangeError(format!(
            "\"from\" ({from}) must be before \"to\" ({to}): the range is [from, to)"
        )));
    }
    let days = retention.as_secs() / 86_400;
    let oldest = now - retention.as_millis() as i64;
    if from < oldest {
        return Err(RangeError(format!(
            "\"from\" ({from}) is older than the archive keeps: events are kept {days} days (ArchiveRetentionDays), so the oldest replayable is {oldest}"
        )));
    }
    let latest = now + CLOCK_SLACK.as_millis() as i64;
    if to > latest {
        return Err(RangeError(format!(
            "\"to\" ({to}) is in the future: the archive holds events up to now ({now})"
        )));
    }
    Ok(ReplayRange { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_780_000_000_000;
    const DAY: i64 = 86_400_000;

    fn parse(body: Value) -> Result<ReplayRange, RangeError> {
        parse_range(&body, NOW, Duration::from_secs(30 * 86_400))
    }

    #[test]
    fn a_range_within_the_archive_is_taken() {
        let range = parse(json!({"from": NOW - DAY, "to": NOW, "_links": {}})).unwrap();
        assert_eq!(
            range,
            ReplayRange {
                from: NOW - DAY,
                to: NOW
            }
        );
        assert!(parse(json!({"from": NOW - 30 * DAY, "to": NOW + 60_000})).is_ok());
    }

    #[test]
    fn every_refusal_says_what_to_send() {
        let refused = |body: Value, says: &str| {
            let e = parse(body.clone()).unwrap_err();
            assert!(e.0.contains(says), "{body}: {e}");
        };
        refused(json!([]), "JSON object");
        refused(json!({"from": NOW - DAY}), "\"to\" is required");
        refused(
            json!({"from": "yesterday", "to": NOW}),
            "whole number of epoch milliseconds",
        );
        refused(json!({"from": NOW, "to": NOW}), "must be before");
        refused(json!({"from": NOW - 31 * DAY, "to": NOW}), "kept 30 days");
        refused(json!({"from": NOW - DAY, "to": NOW + DAY}), "in the future");
        refused(
            json!({"from": NOW - DAY, "to": NOW, "destination": "x"}),
            "unknown field",
        );
    }
}
