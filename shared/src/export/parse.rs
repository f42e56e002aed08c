//! SQS records to events: a body is one envelope or a JSON array of them (README, "How `export`
//! handles a batch", step 1). A bad envelope fails its record but not the good envelopes beside
//! it.

use super::ledger::{Cause, Ledger};
use crate::event::Envelope;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Namespace of event ids derived for events that arrive without one.
const DERIVED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x3b8e_61a2_0f47_4d1c_a9e5_7c20_d4b8_1f06);

/// One envelope of a record, parsed, with where it came from and its event id.
pub struct RecordEvent<'a> {
    pub envelope: Envelope<'a>,
    /// Index of its record in the batch.
    pub record: usize,
    /// Index among all events of the invocation.
    pub event: usize,
    /// The envelope's text in the record, for the retry of a partial failure.
    pub text: &'a str,
    derived_id: Option<String>,
}

impl RecordEvent<'_> {
    /// Whether the event's id was derived here: a retry must then carry it.
    pub fn has_derived_id(&self) -> bool {
        self.derived_id.is_some()
    }

    pub fn event_id(&self) -> &str {
        self.derived_id
            .as_deref()
            .or(self.envelope.event.id.as_deref())
            .unwrap_or_default()
    }
}

/// The events of a batch: those that parsed, and the text of those that did not.
#[derive(Default)]
pub struct Parsed<'a> {
    /// In the order of their event numbers.
    pub events: Vec<RecordEvent<'a>>,
    /// Envelopes that did not parse, by event number.
    bad: Vec<(usize, &'a str)>,
}

impl<'a> Parsed<'a> {
    /// The parsed event numbered `event`, unless it did not parse.
    pub fn event(&self, event: usize) -> Option<&RecordEvent<'a>> {
        let at = self.events.binary_search_by_key(&event, |e| e.event).ok()?;
        Some(&self.events[at])
    }

    /// The text of the envelope numbered `event`, when it did not parse.
    pub fn bad_text(&self, event: usize) -> Option<&'a str> {
        let at = self.bad.binary_search_by_key(&event, |(e, _)| *e).ok()?;
        Some(self.bad[at].1)
    }
}

/// Parses the body of record `record`, appending its events to `parsed`.
pub fn parse_record<'a>(
    ledger: &mut Ledger,
    record: usize,
    message_id: Option<&str>,
    body: Option<&'a str>,
    parsed: &mut Parsed<'a>,
) {
    let body = body.unwrap_or_default();
    if !body.trim_start().starts_with('[') {
        parse_envelope(ledger, record, message_id, body, 0, parsed);
        return;
    }
    match serde_json::from_str::<Vec<&RawValue>>(body) {
        Ok(items) => {
            for (index, item) in items.into_iter().enumerate() {
                parse_envelope(ledger, record, message_id, item.get(), index, parsed);
            }
        }
        Err(e) => {
            tracing::warn!(message_id, error = %e, "record is not an envelope or an array of envelopes");
            ledger.fail_record(record, Cause::Bad);
        }
    }
}

fn parse_envelope<'a>(
    ledger: &mut Ledger,
    record: usize,
    message_id: Option<&str>,
    text: &'a str,
    index: usize,
    parsed: &mut Parsed<'a>,
) {
    let event = ledger.new_event(record);
    match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => {
            // An empty id is no id: Segment would take every such event for one message.
            let has_id = envelope.event.id.as_deref().is_some_and(|id| !id.is_empty());
            let derived_id = (!has_id).then(|| derive_event_id(text, index));
            parsed.events.push(RecordEvent {
                envelope,
                record,
                event,
                text,
                derived_id,
            });
        }
        Err(e) => {
            tracing::warn!(message_id, index, error = %e, "bad envelope");
            ledger.fail_event(record, event, Cause::Bad);
            parsed.bad.push((event, text));
        }
    }
}

/// A stable id for an event that has none: the same record always yields the same id.
pub fn derive_event_id(envelope_text: &str, index: usize) -> String {
    let mut name = Vec::with_capacity(8 + envelope_text.len());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    name.extend_from_slice(envelope_text.as_bytes());
    Uuid::new_v5(&DERIVED_ID_NAMESPACE, &name).simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derive_event_id(r#"{"x":1}"#, 0);
        assert_eq!(a, derive_event_id(r#"{"x":1}"#, 0));
        assert_ne!(a, derive_event_id(r#"{"x":1}"#, 1));
        assert_ne!(a, derive_event_id(r#"{"x":2}"#, 0));
        assert_eq!(a.len(), 32);
    }
}
