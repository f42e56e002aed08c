//! Which message an event is at a destination (`messageId`) and whom it is about
//! (`userId`, `anonymousId`), by the destination's context-kind settings.

use crate::destination::SegmentConfig;
use crate::event::Contexts;
use std::borrow::Cow;
use uuid::Uuid;

/// Namespace of the name-based UUIDs used as Segment `messageId`s.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_4c1e_9a52_4b7e_8d0c_2f4e_51a3_b7c9);

/// Namespace of the "Experiment Viewed" messages' ids: another namespace, so that the
/// second message of an event never shares the first one's id.
const EXPERIMENT_VIEWED_NAMESPACE: Uuid = Uuid::from_u128(0x3b8e_07d2_5c41_4f96_a1e7_90d4_c2b6_58f3);

/// The `messageId` of an event at a destination: the same on every retry, and never
/// shared by two destinations.
pub fn message_id(destination_id: &str, event_id: &str) -> Uuid {
    name_based_id(&MESSAGE_ID_NAMESPACE, destination_id, event_id)
}

/// The `messageId` of the "Experiment Viewed" message of an event at a destination: from
/// (destination, event, "experiment-viewed"), as retry-safe as [`message_id`].
pub fn experiment_viewed_id(destination_id: &str, event_id: &str) -> Uuid {
    name_based_id(&EXPERIMENT_VIEWED_NAMESPACE, destination_id, event_id)
}

fn name_based_id(namespace: &Uuid, destination_id: &str, event_id: &str) -> Uuid {
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
    Uuid::new_v5(namespace, name)
}

/// `userId` and `anonymousId` for a destination's context-kind settings. Contexts with an
/// empty key count as absent: Segment answers 200 to a message with `userId: ""` and drops
/// it. [`super::ExportEvent::new`] refuses events without any non-empty key, so the
/// fully-qualified-key fallback is never empty.
pub fn identity<'c>(
    contexts: &'c Contexts<'_>,
    config: &SegmentConfig,
) -> (Option<&'c str>, Option<Cow<'c, str>>) {
    let non_empty = |kind: &str| contexts.get(kind).filter(|c| !c.key.is_empty());
    let user_context = non_empty(config.user_id_context_kind());
    let user_id = user_context.filter(|c| !c.anonymous).map(|c| &*c.key);
    let anonymous_id = config
        .anonymous_id_context_kind
        .as_deref()
        .and_then(non_empty)
        .or(user_context.filter(|c| c.anonymous))
        .map(|c| Cow::Borrowed(&*c.key));
    match (user_id, anonymous_id) {
        (None, None) => (None, Some(contexts.fully_qualified_key())),
        found => found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::{Value, json};

    /// (userId, anonymousId) of an event for a destination with `config`.
    fn ids_with(event: Value, config: SegmentConfig) -> (Option<String>, Option<String>) {
        let text = event.to_string();
        let e: Event = serde_json::from_str(&text).unwrap();
        let contexts = e.contexts().unwrap();
        let (user_id, anonymous_id) = identity(&contexts, &config);
        (user_id.map(str::to_owned), anonymous_id.map(|a| a.into_owned()))
    }

    fn ids(event: Value) -> (Option<String>, Option<String>) {
        ids_with(event, SegmentConfig::default())
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn anonymous_user_context_becomes_anonymous_id() {
        let e = json!({"kind": "custom", "context": {"kind": "user", "key": "anon-1", "anonymous": true}});
        assert_eq!(ids(e), (None, some("anon-1")));
    }

    #[test]
    fn user_id_context_kind_picks_the_user_id() {
        let config = SegmentConfig {
            user_id_context_kind: Some("account".into()),
            ..Default::default()
        };
        let e = json!({"kind": "custom", "contextKeys": {"user": "u1", "account": "acc-9"}});
        assert_eq!(ids_with(e, config), (some("acc-9"), None));
    }

    #[test]
    fn anonymous_id_context_kind_sends_both_ids() {
        let config = SegmentConfig {
            anonymous_id_context_kind: Some("device".into()),
            ..Default::default()
        };
        let e = json!({"kind": "custom",
            "context": {"kind": "multi", "user": {"key": "u1"}, "device": {"key": "dev-7"}}});
        assert_eq!(ids_with(e, config), (some("u1"), some("dev-7")));
    }

    #[test]
    fn anonymous_id_context_kind_wins_over_anonymous_user() {
        let config = SegmentConfig {
            anonymous_id_context_kind: Some("device".into()),
            ..Default::default()
        };
        let e = json!({"kind": "custom",
            "context": {"kind": "multi", "user": {"key": "u1", "anonymous": true}, "device": {"key": "dev-7"}}});
        assert_eq!(ids_with(e, config), (None, some("dev-7")));
    }

    #[test]
    fn no_identity_falls_back_to_the_fully_qualified_key() {
        let e = json!({"kind": "custom",
            "context": {"kind": "multi", "org": {"key": "o:1"}, "device": {"key": "d%2"}}});
        assert_eq!(ids(e), (None, some("device:d%252:org:o%3A1")));
    }

    #[test]
    fn empty_keys_are_no_identity() {
        let e = json!({"kind": "custom", "contextKeys": {"user": "", "org": "o1"}});
        assert_eq!(ids(e), (None, some("org:o1")));
        let config = SegmentConfig {
            anonymous_id_context_kind: Some("device".into()),
            ..Default::default()
        };
        let e = json!({"kind": "custom", "contextKeys": {"user": "u1", "device": ""}});
        assert_eq!(ids_with(e, config), (some("u1"), None));
    }

    #[test]
    fn legacy_anonymous_user() {
        let e = json!({"kind": "custom", "userKey": "legacy", "contextKind": "anonymousUser"});
        assert_eq!(ids(e), (None, some("legacy")));
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
    }
}
