//! Mapping a LaunchDarkly event to the Segment message a destination receives
//! (README, "How `export` handles a batch", step 4). The message's JSON shape is in
//! [`super::wire`]; who it is about and its id in [`super::identity`].

use super::identity::{experiment_viewed_id, identity, message_id};
use super::wire::{
    ContextKeys, Empty, ExperimentViewedProperties, LibraryContext, Message, MessageId, Properties,
};
use crate::destination::Destination;
use crate::event::{Contexts, Envelope, EventError, Kind};
use crate::timestamp::Timestamp;
use std::borrow::Cow;

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
        let contexts = envelope.event.contexts()?;
        if !contexts.has_identity() {
            return Err(EventError::NoIdentity);
        }
        Ok(Self {
            envelope,
            kind,
            event_id,
            contexts,
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

    /// Whether `destination` also gets an "Experiment Viewed" message for this event: it
    /// asked for them, and this is an evaluation in an experiment.
    pub fn has_experiment_viewed(&self, destination: &Destination) -> bool {
        destination.config.experiment_viewed
            && self.kind == Kind::Feature
            && self.envelope.event.reason.as_ref().and_then(|r| r.in_experiment) == Some(true)
    }

    /// Appends this event's "Experiment Viewed" message for `destination` to `out`
    /// (Segment's A/B-testing spec); only for events of [`Self::has_experiment_viewed`].
    pub fn write_experiment_viewed(&self, destination: &Destination, out: &mut Vec<u8>) {
        let (user_id, anonymous_id) = identity(&self.contexts, &destination.config);
        let e = &self.envelope.event;
        let flag = e.key.as_deref().unwrap_or_default();
        // The variation index, as the spec's string ids are; JSON text of a number as it came.
        let variation_id = e.variation.map_or_else(String::new, |v| unquoted(v.get()));
        let variation_name = match e.variation_name {
            Some(name) if name.get() != "null" => Cow::Owned(unquoted(name.get())),
            _ => Cow::Borrowed(variation_id.as_str()),
        };
        let message = Message {
            kind: "track",
            event: Some("Experiment Viewed"),
            user_id,
            anonymous_id,
            timestamp: self.timestamp,
            message_id: MessageId(experiment_viewed_id(&destination.id, self.event_id)),
            integrations: Empty {},
            context: LibraryContext::THIS,
            properties: ExperimentViewedProperties {
                experiment_id: flag,
                experiment_name: flag,
                variation_id: variation_id.clone(),
                variation_name,
                project: &self.envelope.project,
                environment: &self.envelope.environment,
                event_id: self.event_id,
                context_keys: ContextKeys(&self.contexts),
            },
        };
        serde_json::to_writer(out, &message).expect("writing JSON to a Vec cannot fail");
    }
}

/// A JSON value as text: a string's contents, or any other value's JSON.
fn unquoted(json: &str) -> String {
    match serde_json::from_str::<String>(json) {
        Ok(text) => text,
        Err(_) => json.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::SegmentConfig;
    use crate::segment::wire::{LIBRARY_NAME, LIBRARY_VERSION};
    use serde_json::{Value, json};

    fn destination(id: &str, config: SegmentConfig) -> Destination {
        crate::destination::test_destination(id, config)
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

    #[test]
    fn context_keys_and_message_id_of_the_mapped_message() {
        let m = map(&envelope(
            json!({"kind": "custom", "id": "ev1", "creationDate": 1, "key": "k",
            "context": {"kind": "multi", "user": {"key": "u1"}, "device": {"key": "dev-7"}}}),
        ));
        assert_eq!(
            m["properties"]["contextKeys"],
            json!({"device": "dev-7", "user": "u1"})
        );
        assert_eq!(
            m["messageId"],
            message_id("dest-1", "ev1").hyphenated().to_string()
        );
        let legacy = map(&envelope(json!({"kind": "custom", "creationDate": 1, "key": "k",
            "userKey": "legacy", "contextKind": "anonymousUser"})));
        assert_eq!(legacy["properties"]["contextKeys"], json!({"user": "legacy"}));
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

    /// Both messages of an event at a destination with `experimentViewed` on.
    fn map_both(envelope: &str, config: SegmentConfig) -> Option<(Value, Value)> {
        let env: Envelope = serde_json::from_str(envelope).unwrap();
        let id = env.event.id.as_deref().unwrap_or("derived").to_owned();
        let event = ExportEvent::new(&env, Kind::of(&env.event.kind), &id).unwrap();
        let d = destination("dest-1", config);
        if !event.has_experiment_viewed(&d) {
            return None;
        }
        let (mut first, mut second) = (Vec::new(), Vec::new());
        event.write(&d, &mut first);
        event.write_experiment_viewed(&d, &mut second);
        Some((
            serde_json::from_slice(&first).unwrap(),
            serde_json::from_slice(&second).unwrap(),
        ))
    }

    fn viewing() -> SegmentConfig {
        SegmentConfig {
            experiment_viewed: true,
            ..Default::default()
        }
    }

    #[test]
    fn experiment_viewed_follows_segments_ab_testing_spec() {
        let (first, viewed) = map_both(
            &envelope(json!({
                "kind": "feature", "id": "ev1", "creationDate": 1_568_409_618_153_i64, "key": "checkout-flow",
                "context": {"kind": "multi", "user": {"key": "u1"}, "device": {"key": "d1"}},
                "value": "new", "variation": 2, "variationName": "treatment", "version": 7,
                "reason": {"kind": "FALLTHROUGH", "inExperiment": true}
            })),
            viewing(),
        )
        .unwrap();
        assert_eq!(
            viewed,
            json!({
                "type": "track",
                "event": "Experiment Viewed",
                "userId": "u1",
                "timestamp": "2019-09-13T21:20:18.153Z",
                "messageId": experiment_viewed_id("dest-1", "ev1").hyphenated().to_string(),
                "integrations": {},
                "context": {"library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION}},
                "properties": {
                    "experiment_id": "checkout-flow", "experiment_name": "checkout-flow",
                    "variation_id": "2", "variation_name": "treatment",
                    "project": "p", "environment": "e", "eventId": "ev1",
                    "contextKeys": {"device": "d1", "user": "u1"}
                }
            })
        );
        assert_eq!(first["event"], "feature", "the feature message is sent as well");
        assert_ne!(first["messageId"], viewed["messageId"]);
        assert_eq!(
            first["messageId"],
            message_id("dest-1", "ev1").hyphenated().to_string()
        );
    }

    #[test]
    fn experiment_viewed_names_the_variation_by_index_without_a_name_and_keeps_the_anonymous_id() {
        let (first, viewed) = map_both(
            &envelope(json!({
                "kind": "feature", "id": "ev2", "creationDate": 1, "key": "f",
                "context": {"kind": "user", "key": "anon-1", "anonymous": true},
                "variation": 0, "reason": {"kind": "RULE_MATCH", "inExperiment": true}
            })),
            viewing(),
        )
        .unwrap();
        assert_eq!(viewed["properties"]["variation_id"], "0");
        assert_eq!(viewed["properties"]["variation_name"], "0");
        assert_eq!(viewed["anonymousId"], "anon-1");
        assert_eq!(
            (viewed.get("userId"), &viewed["anonymousId"]),
            (first.get("userId"), &first["anonymousId"])
        );
    }

    #[test]
    fn experiment_viewed_only_for_experiment_evaluations_at_destinations_that_ask() {
        let in_experiment = envelope(json!({"kind": "feature", "creationDate": 1, "key": "f",
            "contextKeys": {"user": "u"}, "variation": 1, "reason": {"kind": "OFF", "inExperiment": true}}));
        assert!(
            map_both(&in_experiment, SegmentConfig::default()).is_none(),
            "off by default"
        );
        assert!(map_both(&in_experiment, viewing()).is_some());
        for not_in_one in [
            json!({"kind": "feature", "creationDate": 1, "key": "f", "contextKeys": {"user": "u"},
                "variation": 1, "reason": {"kind": "OFF", "inExperiment": false}}),
            json!({"kind": "feature", "creationDate": 1, "key": "f", "contextKeys": {"user": "u"}, "variation": 1}),
            json!({"kind": "custom", "creationDate": 1, "key": "f", "contextKeys": {"user": "u"},
                "reason": {"inExperiment": true}}),
        ] {
            assert!(
                map_both(&envelope(not_in_one.clone()), viewing()).is_none(),
                "{not_in_one}"
            );
        }
    }
}
