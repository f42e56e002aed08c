//! What is left of a record that was partly delivered (CONTRACT §3.4). A destination that
//! accepted an event must never get it again, yet SQS can only bring back the record as it
//! was. So such a record is replaced by its remainder: each envelope still owed to
//! someone, carrying `destinations` (CONTRACT §2) for the destinations that miss it, and
//! its event id when it was derived, since the id of an envelope moved to another record
//! would derive differently.

use super::ledger::{Cause, Ledger};
use super::outbox::Outbox;
use super::parse::Parsed;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The envelopes of a record still owed to some destination.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remainder {
    /// Envelopes that may still be delivered: they come back on the retry schedule.
    pub retry: Vec<String>,
    /// Envelopes no retry can help (bad in themselves, or refused as invalid): for the
    /// dead-letter queue at once.
    pub dead: Vec<String>,
}

/// The remainder of record `record`, once delivery is over (after `Ledger::index_misses`).
pub fn of_record(record: usize, ledger: &Ledger, parsed: &Parsed<'_>, outboxes: &[Outbox]) -> Remainder {
    let mut remainder = Remainder::default();
    for event in ledger.events_of(record) {
        let Some(parsed_event) = parsed.event(event) else {
            // Not an envelope at all: kept as it came, for a person to read.
            if let Some(text) = parsed.bad_text(event) {
                remainder.dead.push(text.to_owned());
            }
            continue;
        };
        let keep_id = parsed_event.has_derived_id().then(|| parsed_event.event_id());
        if let Some(cause) = ledger.failed_everywhere(event) {
            // Nobody was tried (its environment was not read, or the event is bad): it
            // keeps whatever destinations it already named.
            let text = rewrite(parsed_event.text, keep_id, None);
            remainder.part(cause).push(text);
            continue;
        }
        for cause in [Cause::Transient, Cause::Bad] {
            let missing: Vec<&str> = ledger
                .misses_of(event)
                .iter()
                .filter(|m| m.cause == cause)
                .map(|m| outboxes[m.outbox as usize].destination().id.as_str())
                .collect();
            if !missing.is_empty() {
                let text = rewrite(parsed_event.text, keep_id, Some(&missing));
                remainder.part(cause).push(text);
            }
        }
    }
    remainder
}

impl Remainder {
    fn part(&mut self, cause: Cause) -> &mut Vec<String> {
        match cause {
            Cause::Transient => &mut self.retry,
            Cause::Bad => &mut self.dead,
        }
    }
}

/// Record bodies of `envelopes`, each under `max_bytes` where the envelopes allow: one
/// envelope is a body of its own, several a JSON array.
pub fn bodies(envelopes: &[String], max_bytes: usize) -> Vec<String> {
    let mut bodies: Vec<Vec<&str>> = Vec::new();
    let mut size = 0;
    for envelope in envelopes {
        let grows = envelope.len() + 1;
        match bodies.last_mut() {
            Some(body) if size + grows <= max_bytes => {
                body.push(envelope);
                size += grows;
            }
            _ => {
                bodies.push(vec![envelope]);
                size = 1 + grows;
            }
        }
    }
    bodies
        .into_iter()
        .map(|body| match body.as_slice() {
            [one] => (*one).to_owned(),
            many => format!("[{}]", many.join(",")),
        })
        .collect()
}

/// The envelope's text with `event.id` set to `id` (when given) and `destinations`
/// replaced by `destinations` (when given). Every other value keeps its exact text.
pub(super) fn rewrite(text: &str, id: Option<&str>, destinations: Option<&[&str]>) -> String {
    let Ok(mut fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) else {
        // Parsed as an envelope before, so an object: never here.
        return text.to_owned();
    };
    let mut extra: Vec<(&str, String)> = Vec::new();
    if let Some(id) = id {
        let event = fields.remove("event").map(RawValue::get).unwrap_or("{}");
        let mut event_fields = serde_json::from_str::<BTreeMap<String, &RawValue>>(event).unwrap_or_default();
        event_fields.remove("id");
        let event = object(
            event_fields.iter().map(|(k, v)| (k.as_str(), v.get())),
            &[("id", json_string(id))],
        );
        extra.push(("event", event));
    }
    if let Some(destinations) = destinations {
        fields.remove("destinations");
        extra.push((
            "destinations",
            serde_json::to_string(destinations).expect("strings serialize"),
        ));
    }
    object(fields.iter().map(|(k, v)| (k.as_str(), v.get())), &extra)
}

/// A JSON object of raw member texts.
fn object<'a>(members: impl Iterator<Item = (&'a str, &'a str)>, extra: &'a [(&'a str, String)]) -> String {
    let mut out = String::from("{");
    let extra = extra.iter().map(|(k, v)| (*k, v.as_str()));
    for (i, (key, value)) in members.chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(key));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_rewrite_sets_the_id_and_destinations_and_keeps_every_other_text() {
        let text =
            r#"{"project":"p","environment":"e","event":{"kind":"feature","value":1.50,"id":""},"x":[1e2]}"#;
        let out = rewrite(text, Some("derived-1"), Some(&["d1", "d\"2"]));
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["event"]["id"], "derived-1");
        assert_eq!(value["destinations"], json!(["d1", "d\"2"]));
        assert!(out.contains(r#""value":1.50"#), "{out}");
        assert!(out.contains(r#""x":[1e2]"#), "{out}");
    }

    #[test]
    fn a_rewrite_replaces_the_destinations_an_envelope_named() {
        let text = r#"{"project":"p","environment":"e","event":{"kind":"custom","id":"a"},"destinations":["d1","d2"]}"#;
        let out: Value = serde_json::from_str(&rewrite(text, None, Some(&["d2"]))).unwrap();
        assert_eq!(out["destinations"], json!(["d2"]));
        assert_eq!(out["event"]["id"], "a");
        let kept: Value = serde_json::from_str(&rewrite(text, None, None)).unwrap();
        assert_eq!(kept["destinations"], json!(["d1", "d2"]));
    }

    #[test]
    fn bodies_pack_envelopes_under_the_limit() {
        let envelopes: Vec<String> = (0..5).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(bodies(&envelopes[..1], 100), ["{\"n\":0}"]);
        let packed = bodies(&envelopes, 18);
        assert_eq!(
            packed,
            ["[{\"n\":0},{\"n\":1}]", "[{\"n\":2},{\"n\":3}]", "{\"n\":4}"]
        );
        assert!(packed.iter().all(|b| b.len() <= 18));
    }
}
