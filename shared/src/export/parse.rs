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
    derived_id: Option<String>,
}

impl RecordEvent<'_> {
    pub fn event_id(&self) -> &str {
        self.derived_id
            .as_deref()
            .or(self.envelope.event.id.as_deref())
            .unwrap_or_default()
    }
}

/// Parses the body of record `record`, appending its events to `events`.
pub fn parse_record<'a>(
    ledger: &mut Ledger,
    record: usize,
    message_id: Option<&str>,
    body: Option<&'a str>,
    events: &mut Vec<RecordEvent<'a>>,
) {
    let body = body.unwrap_or_default();
    if !body.trim_start().starts_with('[') {
        parse_envelope(ledger, record, message_id, body, 0, events);
        return;
    }
    match serde_json::from_str::<Vec<&RawValue>>(body) {
        Ok(items) => {
            for (index, item) in items.into_iter().enumerate() {
                parse_envelope(ledger, record, message_id, item.get(), index, events);
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
    events: &mut Vec<RecordEvent<'a>>,
) {
    let event = ledger.new_event();
    match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => {
            // An empty id is no id: Segment would take every such event for one message.
            let has_id = envelope.event.id.as_deref().is_some_and(|id| !id.is_empty());
            let derived_id = (!has_id).then(|| derive_event_id(text, index));
            events.push(RecordEvent {
                envelope,
                record,
                event,
                derived_id,
            });
        }
        Err(e) => {
            tracing::warn!(message_id, index, error = %e, "bad envelope");
            ledger.fail_event(record, event, Cause::Bad);
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
