//! Destinations: their JSON representation, validation, and the CRUD handlers
//! (CONTRACT §4.1).

use super::error::ApiError;
use super::patch::{self, Attempt};
use super::{ApiResponse, empty_response, json_response, link};
use crate::destination::{Destination, Region, SEGMENT_KIND, SegmentConfig, WriteKey};
use crate::store::{DestinationRepository, StoreError};
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const FIELDS: &str = "name, kind, config, on";
const CONFIG_FIELDS: &str = "writeKey, region, userIDContextKind, anonymousIDContextKind, includeCustomData";

pub fn href(d: &Destination) -> String {
    format!("/api/v2/destinations/{}/{}/{}", d.project, d.environment, d.id)
}

/// A destination as the API shows it: the write key masked.
pub fn to_json(d: &Destination) -> Value {
    let mut config = Map::new();
    config.insert("writeKey".into(), d.config.write_key.masked().into());
    config.insert("region".into(), d.config.region.as_str().into());
    if let Some(kind) = &d.config.user_id_context_kind {
        config.insert("userIDContextKind".into(), kind.clone().into());
    }
    if let Some(kind) = &d.config.anonymous_id_context_kind {
        config.insert("anonymousIDContextKind".into(), kind.clone().into());
    }
    config.insert("includeCustomData".into(), d.config.include_custom_data.into());
    json!({
        "_id": d.id,
        "_links": {"self": link(&href(d)), "parent": link("/api/v2/destinations")},
        "name": d.name,
        "kind": d.kind,
        "version": d.version,
        "createdAt": d.created_at,
        "on": d.on,
        "config": config,
        "_access": {"allowed": [], "denied": []},
    })
}

/// The user-settable part of a destination.
#[derive(Debug, PartialEq)]
struct Fields {
    name: String,
    on: bool,
    config: SegmentConfig,
}

/// Paths a PATCH may not change: `_`-prefixed ones and those the service manages.
fn read_only(first_segment: &str) -> bool {
    first_segment.starts_with('_') || matches!(first_segment, "kind" | "version" | "createdAt")
}

/// Validates a POST body, or the result of a PATCH (`current` is then the stored
/// destination, whose masked key stands for the stored key).
fn validate(doc: &Value, current: Option<&Destination>) -> Result<Fields, ApiError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| ApiError::invalid("a destination must be a JSON object"))?;
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
            _ => WriteKey::new(k.trim()),
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

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn not_found(project: &str, environment: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no destination {id:?} in project {project:?}, environment {environment:?}"
    ))
}

pub async fn list(store: &impl DestinationRepository) -> Result<ApiResponse, ApiError> {
    let items: Vec<Value> = store.list_destinations().await?.iter().map(to_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"_links": {"self": link("/api/v2/destinations")}, "items": items}),
    ))
}

pub async fn create(
    store: &impl DestinationRepository,
    project: &str,
    environment: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let fields = validate(body, None)?;
    let destination = Destination {
        id: uuid::Uuid::new_v4().to_string(),
        project: project.to_owned(),
        environment: environment.to_owned(),
        name: fields.name,
        kind: SEGMENT_KIND.to_owned(),
        on: fields.on,
        version: 1,
        created_at: now_millis(),
        config: fields.config,
    };
    store.create_destination(&destination).await?;
    tracing::info!(project, environment, id = %destination.id, "destination created");
    Ok(json_response(StatusCode::CREATED, &to_json(&destination)))
}

pub async fn get(
    store: &impl DestinationRepository,
    project: &str,
    environment: &str,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let d = store
        .get_destination(project, environment, id)
        .await?
        .ok_or_else(|| not_found(project, environment, id))?;
    Ok(json_response(StatusCode::OK, &to_json(&d)))
}

pub async fn delete(
    store: &impl DestinationRepository,
    project: &str,
    environment: &str,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    match store.delete_destination(project, environment, id).await {
        Ok(()) => {
            tracing::info!(project, environment, id, "destination deleted");
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Err(StoreError::NotFound) => Err(not_found(project, environment, id)),
        Err(e) => Err(e.into()),
    }
}

/// Applies a JSON Patch to the destination as the API shows it, validates the result
/// like a POST and writes it conditionally on the version read. A lost race re-reads
/// and re-applies (its `test` operations are checked again against the new state).
pub async fn patch(
    store: &impl DestinationRepository,
    project: &str,
    environment: &str,
    id: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let ops = patch::operations(body)?;
    patch::check_read_only(&ops, read_only)?;
    let updated = patch::retry_lost_races("destination", || {
        patch_once(store, project, environment, id, &ops)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &to_json(&updated)))
}

async fn patch_once(
    store: &impl DestinationRepository,
    project: &str,
    environment: &str,
    id: &str,
    ops: &json_patch::Patch,
) -> Result<Attempt<Destination>, ApiError> {
    let current = store
        .get_destination(project, environment, id)
        .await?
        .ok_or_else(|| not_found(project, environment, id))?;
    let mut doc = to_json(&current);
    patch::apply(&mut doc, ops)?;
    let fields = validate(&doc, Some(&current))?;
    if fields.name == current.name && fields.on == current.on && fields.config == current.config {
        return Ok(Attempt::Done(current));
    }
    let next = Destination {
        name: fields.name,
        on: fields.on,
        config: fields.config,
        version: current.version + 1,
        ..current.clone()
    };
    let written = patch::written(store.replace_destination(&next, current.version).await, next)?;
    if let Attempt::Done(d) = &written {
        tracing::info!(
            project,
            environment,
            id,
            version = d.version,
            "destination updated"
        );
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Destination {
        Destination {
            id: "d1".into(),
            project: "p".into(),
            environment: "e".into(),
            name: "n".into(),
            kind: SEGMENT_KIND.into(),
            on: true,
            version: 2,
            created_at: 1,
            config: SegmentConfig {
                write_key: WriteKey::new("secret-key-f00d"),
                ..SegmentConfig::default()
            },
        }
    }

    fn message(doc: Value) -> String {
        validate(&doc, None).unwrap_err().message
    }

    #[test]
    fn the_representation_masks_the_write_key() {
        let v = to_json(&stored());
        assert_eq!(v["config"]["writeKey"], "***********f00d");
        assert!(!v.to_string().contains("secret"));
        assert_eq!(v["_links"]["self"]["href"], "/api/v2/destinations/p/e/d1");
        assert_eq!(v["_access"], json!({"allowed": [], "denied": []}));
    }

    #[test]
    fn post_validation_says_what_to_fix() {
        assert!(
            message(json!({"kind": "kinesis", "config": {"writeKey": "k"}}))
                .contains("\"kinesis\" is not supported")
        );
        assert!(message(json!({"config": {"writeKey": "k"}})).contains("kind is required"));
        assert!(message(json!({"kind": "segment"})).contains("config is required"));
        assert!(message(json!({"kind": "segment", "config": {}})).contains("writeKey is required"));
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": " "}})).contains("must not be empty")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "k", "region": "ap"}}))
                .contains("\"ap\" is not \"us\" or \"eu\"")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "k"}, "colour": 1}))
                .contains("unknown field \"colour\"")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "k", "batch": 1}}))
                .contains("config.batch is not a Segment setting")
        );
        assert!(
            message(json!({"kind": "segment", "config": {"writeKey": "k"}, "on": "yes"}))
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
            message(json!({"kind": "segment", "config": {"writeKey": "k", "userIDContextKind": "multi"}}))
                .contains("userIDContextKind")
        );
        assert!(message(json!([1])).contains("JSON object"));
    }

    #[test]
    fn underscore_fields_are_ignored_and_defaults_apply() {
        let f = validate(
            &json!({"kind": "segment", "config": {"writeKey": "k"}, "_id": "x", "_links": {}}),
            None,
        )
        .unwrap();
        assert_eq!((f.name.as_str(), f.on, f.config.region), ("", true, Region::Us));
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
