//! Validation of destination bodies: a POST body, or the document a PATCH produced
//! (README, "The API"). The config's fields, types and defaults come from its type
//! ([`SegmentConfig`], through its JSON Schema); only the destination's own few fields are
//! checked here by hand. Each refusal says what to fix.

use crate::destination::{Destination, SEGMENT_KIND, SegmentConfig};
use crate::endpoint::OutboundPolicy;
use crate::web::ApiError;
use serde_json::{Map, Value};
use std::sync::LazyLock;

const FIELDS: &str = "name, kind, config, on";

/// The destination's own fields that a POST may leave out (they then take a default) but
/// a PATCH may not remove or null; the config's are those its schema gives a default.
const DEFAULTED: [(&str, &str); 2] = [("on", "true or false"), ("name", "a name, or \"\"")];

/// What the API needs of the config's JSON Schema, worked out once.
pub struct ConfigSchema {
    /// The generated schema (also compared with the OpenAPI description in the tests).
    pub schema: Value,
    /// Every field, by name.
    pub fields: Vec<String>,
    /// Fields without a default.
    pub required: Vec<String>,
    /// Fields with a (non-null) default, and that default.
    pub defaults: Vec<(String, Value)>,
}

pub static CONFIG_SCHEMA: LazyLock<ConfigSchema> = LazyLock::new(|| {
    let schema = serde_json::to_value(schemars::schema_for!(SegmentConfig)).expect("a schema is JSON");
    let properties = schema["properties"].as_object().expect("a struct has properties");
    let fields: Vec<String> = properties.keys().cloned().collect();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let defaults = properties
        .iter()
        .filter_map(|(name, p)| {
            p.get("default")
                .filter(|d| !d.is_null())
                .map(|d| (name.clone(), d.clone()))
        })
        .collect();
    ConfigSchema {
        schema,
        fields,
        required,
        defaults,
    }
});

/// A field's default, as a client would write it.
fn shown(value: &Value) -> String {
    match value {
        Value::Bool(_) => "true or false".to_owned(),
        other => format!("a value such as {other}"),
    }
}

fn keeps_defaulted_fields(obj: &Map<String, Value>) -> Result<(), ApiError> {
    let config = obj.get("config").and_then(Value::as_object);
    let own = DEFAULTED
        .iter()
        .map(|&(field, expected)| (format!("/{field}"), obj.get(field), expected.to_owned()));
    let nested = CONFIG_SCHEMA.defaults.iter().map(|(field, default)| {
        (
            format!("/config/{field}"),
            config.and_then(|c| c.get(field)),
            shown(default),
        )
    });
    for (path, value, expected) in own.chain(nested) {
        if value.is_none_or(Value::is_null) {
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
pub fn validate(
    doc: &Value,
    current: Option<&Destination>,
    policy: OutboundPolicy,
) -> Result<Fields, ApiError> {
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
        Some(Value::Object(c)) => config(c, current.map(|d| &d.config), policy)?,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "config is required: {\"writeKey\": \"<your Segment write key>\"}",
            ));
        }
        Some(_) => return Err(ApiError::invalid("config must be an object with writeKey")),
    };
    Ok(Fields { name, on, config })
}

/// The config of a body: its fields by the schema, its types by `serde`, its rules by
/// [`SegmentConfig::validate`]. A `null` is a field left out.
fn config(
    c: &Map<String, Value>,
    current: Option<&SegmentConfig>,
    policy: OutboundPolicy,
) -> Result<SegmentConfig, ApiError> {
    let schema = &*CONFIG_SCHEMA;
    for key in c.keys() {
        if !schema.fields.contains(key) {
            return Err(ApiError::invalid(format!(
                "config.{key} is not a Segment setting; config has {}",
                schema.fields.join(", ")
            )));
        }
    }
    let present: Map<String, Value> = c
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for field in &schema.required {
        if !present.contains_key(field) {
            let about = schema.schema["properties"][field]["description"]
                .as_str()
                .unwrap_or("see the OpenAPI description");
            return Err(ApiError::invalid(format!("config.{field} is required: {about}")));
        }
    }
    let parsed: SegmentConfig = serde_path_to_error::deserialize(Value::Object(present)).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(format!("config.{path}: {}", e.into_inner()))
    })?;
    parsed.validate(current, policy).map_err(ApiError::invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::destinations::to_json;
    use crate::destination::Region;
    use serde_json::json;

    const STRICT: OutboundPolicy = OutboundPolicy {
        allow_loopback: false,
    };

    fn stored() -> Destination {
        crate::destination::stored_test_destination()
    }

    fn message(doc: Value) -> String {
        validate(&doc, None, STRICT).unwrap_err().message
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
                .contains("config.region: unknown variant `ap`, expected `us` or `eu`")
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
                .contains("config.writeKey: invalid type: integer `5`, expected a string")
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
            STRICT,
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
            ("/config/experimentViewed", "/config/experimentViewed"),
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
                let err = validate(&doc, Some(&current), STRICT).unwrap_err().message;
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
                None,
                STRICT
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
            validate(&doc, Some(&current), STRICT)
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
        let f = validate(&doc, Some(&current), STRICT).unwrap();
        assert_eq!(f.config.write_key.expose(), "secret-key-f00d");
        doc["config"]["writeKey"] = json!("new-key-1234");
        assert_eq!(
            validate(&doc, Some(&current), STRICT)
                .unwrap()
                .config
                .write_key
                .expose(),
            "new-key-1234"
        );
    }

    fn post(config: Value) -> Result<Fields, String> {
        validate(&json!({"kind": "segment", "config": config}), None, STRICT).map_err(|e| e.message)
    }

    #[test]
    fn experiment_viewed_is_a_boolean_defaulting_to_false() {
        assert!(
            !post(json!({"writeKey": "wk-0123456789ab"}))
                .unwrap()
                .config
                .experiment_viewed
        );
        assert!(
            post(json!({"writeKey": "wk-0123456789ab", "experimentViewed": true}))
                .unwrap()
                .config
                .experiment_viewed
        );
        let err = post(json!({"writeKey": "wk-0123456789ab", "experimentViewed": "yes"})).unwrap_err();
        assert!(
            err.starts_with("config.experimentViewed:") && err.contains("boolean"),
            "{err}"
        );
    }

    #[test]
    fn an_endpoint_is_checked_by_the_outbound_rules() {
        let with = |endpoint: &str| post(json!({"writeKey": "wk-0123456789ab", "endpoint": endpoint}));
        let ok = with("https://hosted.rudderlabs.com").unwrap();
        assert_eq!(
            ok.config.endpoint.unwrap().as_str(),
            "https://hosted.rudderlabs.com"
        );
        for (bad, says) in [
            ("http://rudder.example.com", "https://"),
            ("https://127.0.0.1", "IP address"),
            ("https://[::1]:8080", "IP address"),
            ("https://u:p@rudder.example.com", "credentials"),
            ("https://rudder.example.com?k=1", "query"),
        ] {
            let err = with(bad).unwrap_err();
            assert!(
                err.starts_with("config.endpoint") && err.contains(says),
                "{bad}: {err}"
            );
        }
        let err = post(json!({"writeKey": "wk-0123456789ab", "endpoint": 5})).unwrap_err();
        assert!(err.starts_with("config.endpoint:"), "{err}");
        assert!(
            post(json!({"writeKey": "wk-0123456789ab", "endpoint": null}))
                .unwrap()
                .config
                .endpoint
                .is_none()
        );
    }

    #[test]
    fn the_schema_gives_the_fields_and_their_defaults() {
        let schema = &*CONFIG_SCHEMA;
        assert_eq!(
            schema.fields,
            [
                "anonymousIDContextKind",
                "endpoint",
                "experimentViewed",
                "includeCustomData",
                "region",
                "userIDContextKind",
                "writeKey",
            ]
        );
        assert_eq!(schema.required, ["writeKey"]);
        let defaulted: Vec<&str> = schema.defaults.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(defaulted, ["experimentViewed", "includeCustomData", "region"]);
    }

    /// The OpenAPI description's two config schemas (the response's and the POST body's)
    /// agree with the type's generated schema, field by field: names, JSON types and enum
    /// values, and which are required.
    #[test]
    fn the_openapi_description_agrees_with_the_config_type_field_by_field() {
        let openapi: Value = serde_json::from_str(crate::api::OPENAPI).unwrap();
        let generated = &CONFIG_SCHEMA.schema;
        let response = &openapi["components"]["schemas"]["DestinationConfig"];
        let post_body = &openapi["components"]["schemas"]["DestinationPost"]["properties"]["config"];
        for (name, described) in [("response", response), ("POST body", post_body)] {
            let props = described["properties"].as_object().unwrap();
            let names: Vec<&String> = props.keys().collect();
            assert_eq!(
                names,
                CONFIG_SCHEMA.fields.iter().collect::<Vec<_>>(),
                "{name}: field names"
            );
            for field in &CONFIG_SCHEMA.fields {
                assert_eq!(
                    shape(&props[field], &openapi, "#/components/schemas/"),
                    shape(&generated["properties"][field], generated, "#/$defs/"),
                    "{name}: config.{field}"
                );
            }
        }
        let required = |s: &Value| -> Vec<String> {
            let mut r: Vec<String> = serde_json::from_value(s["required"].clone()).unwrap_or_default();
            r.sort();
            r
        };
        assert_eq!(
            required(post_body),
            required(generated),
            "a POST requires what the type does"
        );
        let mut shown: Vec<String> = CONFIG_SCHEMA.required.clone();
        shown.extend(CONFIG_SCHEMA.defaults.iter().map(|(f, _)| f.clone()));
        shown.sort();
        assert_eq!(
            required(response),
            shown,
            "a response always has the defaulted fields"
        );
    }

    /// A property's JSON type and enum values, with `$ref`s followed and `null` left out.
    fn shape(schema: &Value, root: &Value, prefix: &str) -> (Vec<String>, Value) {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.strip_prefix(prefix).expect("a local $ref");
            let defs = if prefix.contains("$defs") {
                &root["$defs"]
            } else {
                &root["components"]["schemas"]
            };
            return shape(&defs[name], root, prefix);
        }
        if let Some(any) = schema["anyOf"].as_array() {
            let not_null: Vec<&Value> = any.iter().filter(|s| s["type"] != "null").collect();
            assert_eq!(not_null.len(), 1, "{schema}");
            return shape(not_null[0], root, prefix);
        }
        let types = match &schema["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(|t| t.as_str())
                .filter(|t| *t != "null")
                .map(str::to_owned)
                .collect(),
            _ => vec![],
        };
        (types, schema["enum"].clone())
    }
}
