//! Validation of destination bodies: a POST body, or the document a PATCH produced
//! (README, "The API"). Each refusal says what to fix.

use super::error::ApiError;
use crate::destination::{Destination, Region, SEGMENT_KIND, SegmentConfig, WriteKey};
use serde_json::{Map, Value};

const FIELDS: &str = "name, kind, config, on";
const CONFIG_FIELDS: &str = "writeKey, region, userIDContextKind, anonymousIDContextKind, includeCustomData";

/// Fields that a POST may leave out (they then take a default) but a PATCH may not remove
/// or null: defaults apply at creation only, or removing `on` would turn a destination
/// back on and removing `region` would move an EU destination's data to the US.
const DEFAULTED: [(&str, Option<&str>, &str); 4] = [
    ("on", None, "true or false"),
    ("name", None, "a name, or \"\""),
    ("config", Some("region"), "\"us\" or \"eu\""),
    ("config", Some("includeCustomData"), "true or false"),
];

fn keeps_defaulted_fields(obj: &Map<String, Value>) -> Result<(), ApiError> {
    for (field, nested, expected) in DEFAULTED {
        let value = match nested {
            None => obj.get(field),
            Some(inner) => obj.get(field).and_then(|c| c.get(inner)),
        };
        if value.is_none_or(Value::is_null) {
            let path = nested.map_or(format!("/{field}"), |inner| format!("/{field}/{inner}"));
            return Err(ApiError::invalid(format!(
                "this PATCH removes or nulls {path}: defaults apply at creation only, so replace it with {expected} instead"
            )));
        }
    }
    Ok(())
}

/// The user-settable part of a destination.
#[derive(Debug, PartialEq)]
pub struct Fields {
    pub name: String,
    pub on: bool,
    pub config: SegmentConfig,
}

/// Paths a PATCH may not change: `_`-prefixed ones and those the service manages.
pub fn read_only(first_segment: &str) -> bool {
    first_segment.starts_with('_') || matches!(first_segment, "kind" | "version" | "createdAt")
}

/// Validates a POST body, or the result of a PATCH (`current` is then the stored
/// destination, whose masked key stands for the stored key).
pub fn validate(doc: &Value, current: Option<&Destination>) -> Result<Fields, ApiError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| ApiError::invalid("a destination must be a JSON object"))?;
    if current.is_some() {
        keeps_defaulted_fields(obj)?;
    }
    for key in obj.keys() {
        let known = matches!(key.as_str(), "name" | "kind" | "config" | "on")
            || key.starts_with('_')
            || (current.is_some() && matches!(key.as_str(), "version" | "createdAt"));
        if !known {
            return Err(ApiError::invalid(format!(
                "unknown field {key:?}; a destination has {FIELDS}"
            )));
        }
    }
    match obj.get("kind") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "kind is required: \"segment\" is the supported kind",
            ));
        }
        Some(Value::String(k)) if k == SEGMENT_KIND => {}
        Some(Value::String(k)) => {
            return Err(ApiError::invalid(format!(
                "kind {k:?} is not supported: this service exports to \"segment\" only"
            )));
        }
        Some(_) => return Err(ApiError::invalid("kind must be a string: \"segment\"")),
    }
    let name = match obj.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) if n.chars().count() <= 256 => n.clone(),
        Some(Value::String(_)) => return Err(ApiError::invalid("name is longer than 256 characters")),
        Some(_) => return Err(ApiError::invalid("name must be a string")),
    };
    let on = match obj.get("on") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("on must be true or false")),
    };
    let config = match obj.get("config") {
        Some(Value::Object(c)) => config(c, current)?,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "config is required: {\"writeKey\": \"<your Segment write key>\"}",
            ));
        }
        Some(_) => return Err(ApiError::invalid("config must be an object with writeKey")),
    };
    Ok(Fields { name, on, config })
}

fn config(c: &Map<String, Value>, current: Option<&Destination>) -> Result<SegmentConfig, ApiError> {
    for key in c.keys() {
        if !CONFIG_FIELDS.split(", ").any(|f| f == key) {
            return Err(ApiError::invalid(format!(
                "config.{key} is not a Segment setting; config has {CONFIG_FIELDS}"
            )));
        }
    }
    let write_key = match c.get("writeKey") {
        Some(Value::String(k)) if !k.trim().is_empty() => match current.map(|d| &d.config.write_key) {
            Some(stored) if stored.is_masked_form(k) => stored.clone(),
            _ if k.contains('*') => {
                return Err(ApiError::invalid(
                    "config.writeKey looks masked (it contains '*'): send the full write key from Segment",
                ));
            }
            _ => WriteKey::parse(k).map_err(ApiError::invalid)?,
        },
        Some(Value::String(_)) => return Err(ApiError::invalid("config.writeKey must not be empty")),
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "config.writeKey is required: copy it from your LaunchDarkly source in Segment (Settings → API Keys)",
            ));
        }
        Some(_) => return Err(ApiError::invalid("config.writeKey must be a string")),
    };
    let region = match c.get("region") {
        None | Some(Value::Null) => Region::Us,
        Some(Value::String(r)) => Region::parse(r)
            .ok_or_else(|| ApiError::invalid(format!("config.region {r:?} is not \"us\" or \"eu\"")))?,
        Some(_) => return Err(ApiError::invalid("config.region must be \"us\" or \"eu\"")),
    };
    let include_custom_data = match c.get("includeCustomData") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "config.includeCustomData must be true or false",
            ));
        }
    };
    Ok(SegmentConfig {
        write_key,
        region,
        user_id_context_kind: context_kind(c, "userIDContextKind")?,
        anonymous_id_context_kind: context_kind(c, "anonymousIDContextKind")?,
        include_custom_data,
    })
}

fn context_kind(c: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match c.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k))
            if !k.is_empty()
                && k != "kind"
                && k != "multi"
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            Ok(Some(k.clone()))
        }
        Some(_) => Err(ApiError::invalid(format!(
            "config.{field} must be a context kind: letters, digits, '.', '_' or '-', not \"kind\" or \"multi\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::destinations::to_json;
    use serde_json::json;

    fn stored() -> Destination {
        crate::destination::stored_test_destination()
    }

    fn message(doc: Value) -> String {
        validate(&doc, None).unwrap_err().message
    }

    #[test]
    fn post_validation_says_what_to_fix() {
        assert!(
            message(json!({"kind": "kinesis", "config": {"writeKey": "wk-0123456789ab"}}))
                .contains("\"kinesis\" is not supported")
        );
        assert!(message(json!({"config": {"writeKey": "wk-0123456789ab"}})).contains("kind is required"));
        assert!(message(json!({"kind": "segment"})).contains("config is required"));
        assert!(message(json!({"kind": "segment", "config": {}})).contains("writeKey is required"));
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": " "}})).contains("must not be empty")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "region": "ap"}}))
                .contains("\"ap\" is not \"us\" or \"eu\"")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "colour": 1}))
                .contains("unknown field \"colour\"")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "batch": 1}}))
                .contains("config.batch is not a Segment setting")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "on": "yes"}))
                .contains("on must be true or false")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": 5}}))
                .contains("writeKey must be a string")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "****f00d"}})).contains("looks masked")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab", "userIDContextKind": "multi"}}))
                .contains("userIDContextKind")
        );
        assert!(message(json!([1])).contains("JSON object"));
    }

    #[test]
    fn underscore_fields_are_ignored_and_defaults_apply() {
        let f = validate(
            &json!({"kind": "segment", "config": {"writeKey": "wk-0123456789ab"}, "_id": "x", "_links": {}}),
            None,
        )
        .unwrap();
        assert_eq!((f.name.as_str(), f.on, f.config.region), ("", true, Region::Us));
    }

    #[test]
    fn a_patch_may_not_remove_or_null_a_field_with_a_post_default() {
        let mut current = stored();
        current.on = false;
        current.config.region = Region::Eu;
        for (pointer, field) in [
            ("/on", "/on"),
            ("/name", "/name"),
            ("/config/region", "/config/region"),
            ("/config/includeCustomData", "/config/includeCustomData"),
        ] {
            for how in ["remove", "null"] {
                let mut doc = to_json(&current);
                let target = doc.pointer_mut(pointer).unwrap();
                if how == "null" {
                    *target = Value::Null;
                } else {
                    let (parent, leaf) = pointer.rsplit_once('/').unwrap();
                    let parent = if parent.is_empty() {
                        &mut doc
                    } else {
                        doc.pointer_mut(parent).unwrap()
                    };
                    parent.as_object_mut().unwrap().remove(leaf);
                }
                let err = validate(&doc, Some(&current)).unwrap_err().message;
                assert!(
                    err.contains(field) && err.contains("creation only"),
                    "{how} {pointer}: {err}"
                );
            }
        }
        // A POST may still leave them out.
        assert!(
            validate(
                &json!({"kind": "segment", "config": {"writeKey": "wk-0123456789"}}),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn the_optional_context_kinds_may_be_removed() {
        let mut current = stored();
        current.config.anonymous_id_context_kind = Some("device".into());
        let mut doc = to_json(&current);
        doc["config"]
            .as_object_mut()
            .unwrap()
            .remove("anonymousIDContextKind");
        assert_eq!(
            validate(&doc, Some(&current))
                .unwrap()
                .config
                .anonymous_id_context_kind,
            None
        );
    }

    #[test]
    fn sending_back_the_masked_key_keeps_the_stored_one() {
        let current = stored();
        let mut doc = to_json(&current);
        doc["name"] = json!("renamed");
        let f = validate(&doc, Some(&current)).unwrap();
        assert_eq!(f.config.write_key.expose(), "secret-key-f00d");
        doc["config"]["writeKey"] = json!("new-key-1234");
        assert_eq!(
            validate(&doc, Some(&current)).unwrap().config.write_key.expose(),
            "new-key-1234"
        );
    }
}
