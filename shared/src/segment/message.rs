//! Mapping a LaunchDarkly event to the Segment message a destination receives
//! (README, "How `export` handles a batch", step 4).

use crate::destination::{Destination, SegmentConfig};
use crate::event::{Contexts, Envelope, EventError, Kind};
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

/// Namespace of the name-based UUIDs used as Segment `messageId`s.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_4c1e_9a52_4b7e_8d0c_2f4e_51a3_b7c9);

/// The `messageId` of an event at a destination: the same on every retry, and never
/// shared by two destinations.
pub fn message_id(destination_id: &str, event_id: &str) -> Uuid {
    // Length-prefixed so that no two (destination, event) pairs give the same name.
    let (d, e) = (destination_id.as_bytes(), event_id.as_bytes());
    let len = 8 + d.len() + e.len();
    let mut stack = [0u8; 160];
    let mut heap = Vec::new();
    let name: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    name[..8].copy_from_slice(&(d.len() as u64).to_be_bytes());
    name[8..8 + d.len()].copy_from_slice(d);
    name[8 + d.len()..].copy_from_slice(e);
    Uuid::new_v5(&MESSAGE_ID_NAMESPACE, name)
}

/// An event ready to be written for any number of destinations: what does not depend
/// on the destination is worked out once.
pub struct ExportEvent<'e, 'a> {
    envelope: &'e Envelope<'a>,
    kind: Kind,
    event_id: &'e str,
    contexts: Contexts<'a>,
    timestamp: Timestamp,
}

impl<'e, 'a> ExportEvent<'e, 'a> {
    /// `event_id` is the event's own `id`, or one derived from its record.
    pub fn new(envelope: &'e Envelope<'a>, kind: Kind, event_id: &'e str) -> Result<Self, EventError> {
        let ms = envelope.event.creation_date.ok_or(EventError::NoCreationDate)?;
        let timestamp = Timestamp::from_epoch_millis(ms).ok_or(EventError::CreationDateOutOfRange(ms))?;
        Ok(Self {
            envelope,
            kind,
            event_id,
            contexts: envelope.event.contexts()?,
            timestamp,
        })
    }

    /// Appends this event's Segment message for `destination` to `out`.
    pub fn write(&self, destination: &Destination, out: &mut Vec<u8>) {
        let config = &destination.config;
        let (user_id, anonymous_id) = identity(&self.contexts, config);
        let e = &self.envelope.event;
        let is_feature = self.kind == Kind::Feature;
        let is_custom = self.kind == Kind::Custom;
        let reason = e.reason.as_ref();
        let message = Message {
            kind: if self.kind == Kind::Pageview {
                "page"
            } else {
                "track"
            },
            event: match self.kind {
                Kind::Feature => Some("feature"),
                Kind::Click => Some("click"),
                Kind::Custom => Some("custom"),
                Kind::Pageview | Kind::Skipped => None,
            },
            user_id,
            anonymous_id,
            timestamp: self.timestamp,
            message_id: MessageId(message_id(&destination.id, self.event_id)),
            integrations: Empty {},
            context: LibraryContext::THIS,
            properties: Properties {
                context_keys: ContextKeys(&self.contexts),
                project: &self.envelope.project,
                environment: &self.envelope.environment,
                event_id: self.event_id,
                key: e.key.as_deref(),
                version: 1,
                value: e.value.filter(|_| is_feature),
                default: e.default.filter(|_| is_feature),
                variation: e.variation.filter(|_| is_feature),
                variation_name: e.variation_name.filter(|_| is_feature),
                flag_version: e.version.filter(|_| is_feature),
                reason_kind: reason.and_then(|r| r.kind).filter(|_| is_feature),
                in_experiment: reason
                    .and_then(|r| r.in_experiment)
                    .filter(|&yes| yes && is_feature),
                prereq_of: e.prereq_of.filter(|_| is_feature),
                url: e
                    .url
                    .filter(|_| matches!(self.kind, Kind::Click | Kind::Pageview)),
                selector: e.selector.filter(|_| self.kind == Kind::Click),
                metric_value: e.metric_value.filter(|_| is_custom),
                data: e.data.filter(|_| is_custom && config.include_custom_data),
            },
        };
        serde_json::to_writer(out, &message).expect("writing JSON to a Vec cannot fail");
    }
}

/// `userId` and `anonymousId` for a destination's context-kind settings.
fn identity<'c>(
    contexts: &'c Contexts<'_>,
    config: &SegmentConfig,
) -> (Option<&'c str>, Option<Cow<'c, str>>) {
    let user_context = contexts.get(config.user_id_context_kind());
    let user_id = user_context.filter(|c| !c.anonymous).map(|c| &*c.key);
    let anonymous_id = config
        .anonymous_id_context_kind
        .as_deref()
        .and_then(|kind| contexts.get(kind))
        .or(user_context.filter(|c| c.anonymous))
        .map(|c| Cow::Borrowed(&*c.key));
    match (user_id, anonymous_id) {
        (None, None) => (None, Some(contexts.fully_qualified_key())),
        found => found,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<Cow<'a, str>>,
    timestamp: Timestamp,
    message_id: MessageId,
    integrations: Empty,
    context: LibraryContext,
    properties: Properties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Properties<'a> {
    context_keys: ContextKeys<'a>,
    project: &'a str,
    environment: &'a str,
    event_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variation: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variation_name: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_version: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_kind: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_experiment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prereq_of: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize, Clone, Copy)]
struct LibraryContext {
    library: Library,
}

#[derive(Serialize, Clone, Copy)]
struct Library {
    name: &'static str,
    version: &'static str,
}

impl LibraryContext {
    const THIS: Self = Self {
        library: Library {
            name: LIBRARY_NAME,
            version: LIBRARY_VERSION,
        },
    };
}

struct MessageId(Uuid);

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

/// `properties.contextKeys`: context kind → key.
struct ContextKeys<'a>(&'a Contexts<'a>);

impl Serialize for ContextKeys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for c in self.0.iter() {
            map.serialize_entry(&*c.kind, &*c.key)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{SEGMENT_KIND, SegmentConfig};
    use serde_json::{Value, json};

    fn destination(id: &str, config: SegmentConfig) -> Destination {
        Destination {
            id: id.into(),
            project: "p".into(),
            environment: "e".into(),
            name: "n".into(),
            kind: SEGMENT_KIND.into(),
            on: true,
            version: 1,
            created_at: 0,
            config,
        }
    }

    fn map_with(envelope: &str, config: SegmentConfig) -> Value {
        let env: Envelope = serde_json::from_str(envelope).unwrap();
        let id = env.event.id.as_deref().unwrap_or("derived").to_owned();
        let event = ExportEvent::new(&env, Kind::of(&env.event.kind), &id).unwrap();
        let mut out = Vec::new();
        event.write(&destination("dest-1", config), &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    fn map(envelope: &str) -> Value {
        map_with(envelope, SegmentConfig::default())
    }

    fn envelope(event: Value) -> String {
        json!({"project": "p", "environment": "e", "event": event}).to_string()
    }

    #[test]
    fn feature_event_carries_every_flag_field_and_passes_values_through() {
        let m = map(&envelope(json!({
            "kind": "feature", "id": "ev1", "creationDate": 1_568_409_618_153_i64, "key": "flag",
            "contextKeys": {"user": "u1"}, "value": {"nested": [1, 2.5, null]}, "default": false,
            "variation": 1, "variationName": "treatment", "version": 42, "prereqOf": "parent",
            "reason": {"kind": "RULE_MATCH", "ruleIndex": 0, "inExperiment": true}
        })));
        assert_eq!(m["type"], "track");
        assert_eq!(m["event"], "feature");
        assert_eq!(m["userId"], "u1");
        assert!(m.get("anonymousId").is_none());
        assert_eq!(m["timestamp"], "2019-09-13T21:20:18.153Z");
        assert_eq!(m["integrations"], json!({}));
        assert_eq!(
            m["context"],
            json!({"library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION}})
        );
        assert_eq!(
            m["properties"],
            json!({
                "contextKeys": {"user": "u1"}, "project": "p", "environment": "e", "eventId": "ev1",
                "key": "flag", "version": 1, "value": {"nested": [1, 2.5, null]}, "default": false,
                "variation": 1, "variationName": "treatment", "flagVersion": 42,
                "reasonKind": "RULE_MATCH", "inExperiment": true, "prereqOf": "parent"
            })
        );
    }

    #[test]
    fn feature_fields_appear_only_when_present_and_null_stays_null() {
        let m = map(&envelope(json!({
            "kind": "feature", "creationDate": 1, "key": "flag", "contextKeys": {"user": "u"},
            "value": null, "reason": {"kind": "OFF", "inExperiment": false}
        })));
        let p = m["properties"].as_object().unwrap();
        assert_eq!(p["value"], Value::Null);
        assert_eq!(p["reasonKind"], "OFF");
        for absent in [
            "default",
            "variation",
            "variationName",
            "flagVersion",
            "prereqOf",
            "inExperiment",
        ] {
            assert!(!p.contains_key(absent), "{absent} should be absent");
        }
    }

    #[test]
    fn click_pageview_and_custom_fields() {
        let click = map(&envelope(
            json!({"kind": "click", "creationDate": 1, "key": "exp",
            "contextKeys": {"user": "u"}, "url": "http://x", "selector": "btn", "value": 3}),
        ));
        assert_eq!(
            (&click["type"], &click["event"]),
            (&json!("track"), &json!("click"))
        );
        assert_eq!(click["properties"]["url"], "http://x");
        assert_eq!(click["properties"]["selector"], "btn");
        assert!(click["properties"].get("value").is_none());

        let page = map(&envelope(
            json!({"kind": "pageview", "creationDate": 1, "key": "exp",
            "contextKeys": {"user": "u"}, "url": "http://x", "selector": "ignored"}),
        ));
        assert_eq!(page["type"], "page");
        assert!(page.get("event").is_none());
        assert_eq!(page["properties"]["url"], "http://x");
        assert!(page["properties"].get("selector").is_none());

        let custom = map(&envelope(
            json!({"kind": "custom", "creationDate": 1, "key": "checkout",
            "contextKeys": {"user": "u"}, "metricValue": 9.5, "data": {"cart": 3}}),
        ));
        assert_eq!(custom["event"], "custom");
        assert_eq!(custom["properties"]["metricValue"], 9.5);
        assert!(
            custom["properties"].get("data").is_none(),
            "data needs includeCustomData"
        );
    }

    #[test]
    fn custom_data_only_when_the_destination_includes_it() {
        let config = SegmentConfig {
            include_custom_data: true,
            ..Default::default()
        };
        let m = map_with(
            &envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
                "contextKeys": {"user": "u"}, "data": {"cart": [1, "two"]}})),
            config,
        );
        assert_eq!(m["properties"]["data"], json!({"cart": [1, "two"]}));
    }

    fn ids(m: &Value) -> (Option<&str>, Option<&str>) {
        (m["userId"].as_str(), m["anonymousId"].as_str())
    }

    #[test]
    fn anonymous_user_context_becomes_anonymous_id() {
        let m = map(&envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
            "context": {"kind": "user", "key": "anon-1", "anonymous": true}})));
        assert_eq!(ids(&m), (None, Some("anon-1")));
    }

    #[test]
    fn user_id_context_kind_picks_the_user_id() {
        let config = SegmentConfig {
            user_id_context_kind: Some("account".into()),
            ..Default::default()
        };
        let m = map_with(
            &envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
                "contextKeys": {"user": "u1", "account": "acc-9"}})),
            config,
        );
        assert_eq!(ids(&m), (Some("acc-9"), None));
    }

    #[test]
    fn anonymous_id_context_kind_sends_both_ids() {
        let config = SegmentConfig {
            anonymous_id_context_kind: Some("device".into()),
            ..Default::default()
        };
        let m = map_with(
            &envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
                "context": {"kind": "multi", "user": {"key": "u1"}, "device": {"key": "dev-7"}}})),
            config,
        );
        assert_eq!(ids(&m), (Some("u1"), Some("dev-7")));
        assert_eq!(
            m["properties"]["contextKeys"],
            json!({"device": "dev-7", "user": "u1"})
        );
    }

    #[test]
    fn anonymous_id_context_kind_wins_over_anonymous_user() {
        let config = SegmentConfig {
            anonymous_id_context_kind: Some("device".into()),
            ..Default::default()
        };
        let m = map_with(
            &envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
                "context": {"kind": "multi", "user": {"key": "u1", "anonymous": true}, "device": {"key": "dev-7"}}})),
            config,
        );
        assert_eq!(ids(&m), (None, Some("dev-7")));
    }

    #[test]
    fn no_identity_falls_back_to_the_fully_qualified_key() {
        let m = map(&envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
            "context": {"kind": "multi", "org": {"key": "o:1"}, "device": {"key": "d%2"}}})));
        assert_eq!(ids(&m), (None, Some("device:d%252:org:o%3A1")));
    }

    #[test]
    fn legacy_anonymous_user() {
        let m = map(&envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
            "userKey": "legacy", "contextKind": "anonymousUser"})));
        assert_eq!(ids(&m), (None, Some("legacy")));
        assert_eq!(m["properties"]["contextKeys"], json!({"user": "legacy"}));
    }

    #[test]
    fn message_id_is_a_deterministic_uuid_per_destination_and_event() {
        let a = message_id("dest-1", "ev1");
        assert_eq!(a, message_id("dest-1", "ev1"));
        assert_ne!(a, message_id("dest-2", "ev1"));
        assert_ne!(a, message_id("dest-1", "ev2"));
        // The boundary between the two parts matters.
        assert_ne!(message_id("ab", "c"), message_id("a", "bc"));
        assert_eq!(a.get_version_num(), 5);
        let m = map(&envelope(
            json!({"kind": "custom", "id": "ev1", "creationDate": 1, "key": "k",
            "contextKeys": {"user": "u"}}),
        ));
        assert_eq!(m["messageId"], a.hyphenated().to_string());
    }

    #[test]
    fn events_without_context_or_time_cannot_be_mapped() {
        let bad = |event: Value| {
            let s = envelope(event);
            let env: Envelope = serde_json::from_str(&s).unwrap();
            ExportEvent::new(&env, Kind::Custom, "id").err()
        };
        assert_eq!(
            bad(json!({"kind": "custom", "creationDate": 1})),
            Some(EventError::NoContext)
        );
        assert_eq!(
            bad(json!({"kind": "custom", "userKey": "u"})),
            Some(EventError::NoCreationDate)
        );
        assert_eq!(
            bad(json!({"kind": "custom", "userKey": "u", "creationDate": i64::MAX})),
            Some(EventError::CreationDateOutOfRange(i64::MAX))
        );
    }
}
