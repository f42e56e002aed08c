//! LaunchDarkly export envelopes as they arrive on the queue (README, "How `export` handles a
//! batch").
//!
//! Everything borrows from the SQS record body: strings without escapes and every
//! pass-through JSON value (`value`, `default`, `data`, …) are never copied.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

mod context;

pub use context::{Context, ContextObject, ContextPart, Contexts};

/// One export envelope: the environment it belongs to and the analytics event.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub project: Cow<'a, str>,
    #[serde(borrow)]
    pub environment: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Event<'a>,
    /// When present, the only destinations of the environment that get the event: the
    /// retry of a partial failure and a replay carry the ones still to serve (CONTRACT §2).
    #[serde(borrow, default)]
    pub destinations: Option<Vec<Cow<'a, str>>>,
    /// The replay (CONTRACT §4.4) that put the envelope on the replay queue: `export`
    /// adds what became of it to that replay's counts.
    #[serde(borrow, default)]
    pub replay: Option<Cow<'a, str>>,
}

impl Envelope<'_> {
    /// Whether the destination `id` is one this envelope is for.
    pub fn is_for(&self, id: &str) -> bool {
        self.destinations
            .as_ref()
            .is_none_or(|only| only.iter().any(|d| d == id))
    }
}

/// A LaunchDarkly analytics event. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub creation_date: Option<i64>,
    #[serde(borrow, default)]
    pub key: Option<Cow<'a, str>>,

    // feature and debug
    #[serde(borrow, default, deserialize_with = "present")]
    pub value: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub default: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub variation: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub variation_name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub version: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub prereq_of: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub reason: Option<Reason<'a>>,

    // click and pageview
    #[serde(borrow, default, deserialize_with = "present")]
    pub url: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub selector: Option<&'a RawValue>,

    // custom
    #[serde(borrow, default, deserialize_with = "present")]
    pub metric_value: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub data: Option<&'a RawValue>,

    // contexts, newest form first
    #[serde(borrow, default)]
    pub context: Option<ContextObject<'a>>,
    #[serde(borrow, default, deserialize_with = "context_keys")]
    pub context_keys: Option<ContextKeyPairs<'a>>,
    #[serde(borrow, default)]
    pub user_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user: Option<ContextPart<'a>>,
    #[serde(borrow, default)]
    pub context_kind: Option<Cow<'a, str>>,
}

/// `reason` of a feature event: only what the export needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    pub kind: Option<&'a RawValue>,
    #[serde(default)]
    pub in_experiment: Option<bool>,
}

/// Keeps a field that is present as JSON `null` (plain `Option` would read it as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// (context kind, key) pairs, as `contextKeys` lists them.
pub type ContextKeyPairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// `contextKeys` as (kind, key) pairs: one allocation, where a map would make one per entry.
fn context_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContextKeyPairs<'de>>, D::Error> {
    struct PairsVisitor;
    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = Option<ContextKeyPairs<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of context kind to key")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(1));
            while let Some(entry) = map.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
                pairs.push(entry);
            }
            Ok(Some(pairs))
        }
    }
    d.deserialize_any(PairsVisitor)
}

/// What the export does with an event of a given kind (README, "How `export` handles a batch",
/// step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Feature,
    Click,
    Custom,
    Pageview,
    /// debug, identify, index, summary, alias and kinds this service does not know.
    Skipped,
}

impl Kind {
    pub fn of(kind: &str) -> Self {
        match kind {
            "feature" => Self::Feature,
            "click" => Self::Click,
            "custom" => Self::Custom,
            "pageview" => Self::Pageview,
            _ => Self::Skipped,
        }
    }
}

/// Why an event cannot be exported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("event has no context: expected `context`, `contextKeys`, `userKey` or `user`")]
    NoContext,
    #[error("event.context of kind {0:?} has no string `key`")]
    ContextWithoutKey(String),
    #[error("every context key of the event is empty: Segment would drop it for lack of an identity")]
    NoIdentity,
    #[error("event.creationDate is missing")]
    NoCreationDate,
    #[error("event.creationDate {0} is not a time between years 0000 and 9999")]
    CreationDateOutOfRange(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn null_fields_are_kept_as_null() {
        let e = event(r#"{"kind":"feature","value":null,"prereqOf":null}"#);
        assert_eq!(e.value.map(RawValue::get), Some("null"));
        assert_eq!(e.prereq_of.map(RawValue::get), Some("null"));
        assert!(e.default.is_none());
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of("feature"), Kind::Feature);
        assert_eq!(Kind::of("pageview"), Kind::Pageview);
        for skipped in ["debug", "identify", "index", "summary", "alias", "migration_op"] {
            assert_eq!(Kind::of(skipped), Kind::Skipped);
        }
    }
}
