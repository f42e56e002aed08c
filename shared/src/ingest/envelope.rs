//! One export envelope (CONTRACT §2) written straight into a message body: the event's own
//! text as the SDK sent it, with a derived id put in front when it has no `id`. The rare
//! event whose text cannot go as it is (an `id` of `""` or `null` to replace, a duplicate
//! key) is rewritten through `serde_json` as ingest always did.

use super::payload::{derived_id, event_id};
use super::scan::Scan;
use serde_json::{Map, Value};

/// Writes the envelopes of one payload.
pub struct Envelopes<'a> {
    /// `{"project":…,"environment":…,"version":1,"event":`
    head: String,
    payload_id: &'a str,
}

impl<'a> Envelopes<'a> {
    pub fn new(project: &str, environment: &str, payload_id: &'a str) -> Self {
        let quoted = |s: &str| Value::from(s).to_string();
        Self {
            head: format!(
                r#"{{"project":{},"environment":{},"version":1,"event":"#,
                quoted(project),
                quoted(environment)
            ),
            payload_id,
        }
    }

    /// Appends the envelope of the payload's `index`-th event, of text `event` (a JSON
    /// object, as [`super::scan`] checked it).
    pub fn write(&self, out: &mut String, index: usize, event: &str, scan: Scan) {
        out.push_str(&self.head);
        if !scan.verbatim() {
            out.push_str(&rewritten(event, || event_id(self.payload_id, index)));
        } else if scan.own_id {
            out.push_str(event);
        } else {
            let members = event
                .trim_start()
                .strip_prefix('{')
                .expect("an object")
                .trim_start();
            out.push_str(r#"{"id":""#);
            let id = derived_id(self.payload_id, index);
            out.push_str(id.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
            out.push('"');
            // `{}` has no member to put a comma before.
            if !members.starts_with('}') {
                out.push(',');
            }
            out.push_str(members);
        }
        out.push('}');
    }
}

/// The event through a `serde_json::Map`: the last of duplicate keys wins, and an `id` that
/// is not a non-empty string is replaced.
fn rewritten(event: &str, id: impl FnOnce() -> String) -> String {
    let mut event: Map<String, Value> = serde_json::from_str(event).expect("scanned: an object");
    let has_id = event
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    if !has_id {
        event.insert("id".into(), Value::from(id()));
    }
    Value::Object(event).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(event: &str) -> Value {
        let scans = super::super::scan::scan(format!("[{event}]").as_bytes()).unwrap();
        let mut out = String::new();
        Envelopes::new("p\"1", "e", "payload").write(&mut out, 3, event, scans[0]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"))
    }

    #[test]
    fn the_raw_text_with_an_id_in_front() {
        let id = event_id("payload", 3);
        let e = envelope(r#"{"kind":"custom"}"#);
        assert_eq!(
            e,
            serde_json::json!({"project": "p\"1", "environment": "e", "version": 1,
                               "event": {"id": id, "kind": "custom"}})
        );
        assert_eq!(envelope("{}")["event"], serde_json::json!({"id": id}));
        assert_eq!(envelope(" { \n } ")["event"], serde_json::json!({"id": id}));
        assert_eq!(envelope(r#"{"id":"own","k":1}"#)["event"]["id"], "own");
        for replaced in [r#"{"id":"","k":1}"#, r#"{"k":1,"id":null}"#, r#"{"id":5}"#] {
            assert_eq!(envelope(replaced)["event"]["id"], id.as_str(), "{replaced}");
        }
        // serde_json's rule for duplicates: the last one.
        assert_eq!(envelope(r#"{"id":"a","id":"b"}"#)["event"]["id"], "b");
        assert_eq!(envelope(r#"{"id":"a","id":""}"#)["event"]["id"], id.as_str());
    }
}
