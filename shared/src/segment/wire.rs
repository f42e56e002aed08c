//! The JSON shape of a Segment message as this service writes it: field names, which
//! fields are left out when absent, and the library context.

use crate::event::Contexts;
use crate::timestamp::Timestamp;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use uuid::Uuid;

/// This project's name and version, as Segment shows them in `context.library`.
/// The name Segment shows as `context.library.name`: the project, not the crate.
pub const LIBRARY_NAME: &str = "data-export-segment";
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A message, with the properties of its kind.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message<'a, P = Properties<'a>> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<Cow<'a, str>>,
    pub timestamp: Timestamp,
    pub message_id: MessageId,
    pub integrations: Empty,
    pub context: LibraryContext,
    pub properties: P,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties<'a> {
    pub context_keys: ContextKeys<'a>,
    pub project: &'a str,
    pub environment: &'a str,
    pub event_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    pub version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation_name: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_version: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_kind: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_experiment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prereq_of: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
}

/// `properties` of an "Experiment Viewed" message: Segment's A/B-testing spec, plus where
/// the evaluation came from (README, "Experiment Viewed").
#[derive(Serialize)]
pub struct ExperimentViewedProperties<'a> {
    pub experiment_id: &'a str,
    pub experiment_name: &'a str,
    pub variation_id: String,
    pub variation_name: Cow<'a, str>,
    pub project: &'a str,
    pub environment: &'a str,
    #[serde(rename = "eventId")]
    pub event_id: &'a str,
    #[serde(rename = "contextKeys")]
    pub context_keys: ContextKeys<'a>,
}

#[derive(Serialize)]
pub struct Empty {}

#[derive(Serialize, Clone, Copy)]
pub struct LibraryContext {
    pub library: Library,
}

#[derive(Serialize, Clone, Copy)]
pub struct Library {
    pub name: &'static str,
    pub version: &'static str,
}

impl LibraryContext {
    pub const THIS: Self = Self {
        library: Library {
            name: LIBRARY_NAME,
            version: LIBRARY_VERSION,
        },
    };
}

pub struct MessageId(pub Uuid);

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

/// `properties.contextKeys`: context kind → key.
pub struct ContextKeys<'a>(pub &'a Contexts<'a>);

impl Serialize for ContextKeys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for c in self.0.iter() {
            map.serialize_entry(&*c.kind, &*c.key)?;
        }
        map.end()
    }
}
