//! Data Export settings of an environment: which flags' evaluations are exported
//! (README, "The API").

use super::link;
use super::patch::{self, WriteAttemptError};
use super::routes::{KEY_RULE, is_valid_key};
use crate::destination::ExportSettings;
use crate::store::Store;
use crate::web::{ApiError, ApiResponse, json_response};
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Flags exported one by one in one environment: well under DynamoDB's 400 KB item
/// (1,000 keys of at most 256 characters are under 270 KB).
pub const MAX_FLAGS: usize = 1000;

pub fn to_json(project: &str, environment: &str, s: &ExportSettings) -> Value {
    json!({
        "allFlags": s.all_flags,
        "flags": s.flags,
        "version": s.version,
        "_links": {"self": link(&format!("/api/v2/data-export/{project}/{environment}"))},
    })
}

fn read_only(first_segment: &str) -> bool {
    first_segment.starts_with('_') || first_segment == "version"
}

fn validate(doc: &Value) -> Result<(bool, BTreeMap<String, bool>), ApiError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| ApiError::invalid("settings must be a JSON object"))?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "allFlags" | "flags" | "version") && !key.starts_with('_') {
            return Err(ApiError::invalid(format!(
                "unknown field {key:?}; Data Export settings have allFlags and flags"
            )));
        }
    }
    let all_flags = match obj.get("allFlags") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("allFlags must be true or false")),
    };
    let empty = Map::new();
    let flags = match obj.get("flags") {
        None => &empty,
        Some(Value::Object(f)) => f,
        Some(_) => {
            return Err(ApiError::invalid(
                "flags must be an object of flag key to true or false",
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (key, value) in flags {
        if !is_valid_key(key) {
            return Err(ApiError::invalid(format!("flag key {key:?} {KEY_RULE}")));
        }
        let on = value
            .as_bool()
            .ok_or_else(|| ApiError::invalid(format!("flags.{key} must be true or false")))?;
        // A flag set to false is a flag not exported: it leaves the list, which stays small.
        if on {
            out.insert(key.clone(), on);
        }
    }
    if out.len() > MAX_FLAGS {
        return Err(ApiError::invalid(format!(
            "{} flags are exported one by one; the limit is {MAX_FLAGS}: export all flags of the environment with allFlags instead",
            out.len()
        )));
    }
    Ok((all_flags, out))
}

pub async fn get(store: &impl Store, project: &str, environment: &str) -> Result<ApiResponse, ApiError> {
    let settings = store.get_settings(project, environment).await?;
    Ok(json_response(
        StatusCode::OK,
        &to_json(project, environment, &settings),
    ))
}

pub async fn patch(
    store: &impl Store,
    project: &str,
    environment: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let ops = patch::operations(body)?;
    patch::check_read_only(&ops, read_only)?;
    let updated =
        patch::retry_lost_races("settings", || patch_once(store, project, environment, &ops)).await?;
    Ok(json_response(
        StatusCode::OK,
        &to_json(project, environment, &updated),
    ))
}

async fn patch_once(
    store: &impl Store,
    project: &str,
    environment: &str,
    ops: &json_patch::Patch,
) -> Result<ExportSettings, WriteAttemptError> {
    let current = store.get_settings(project, environment).await?;
    let mut doc = to_json(project, environment, &current);
    patch::apply(&mut doc, ops)?;
    let (all_flags, flags) = validate(&doc)?;
    if all_flags == current.all_flags && flags == current.flags && current.version > 0 {
        return Ok(current);
    }
    let next = ExportSettings {
        all_flags,
        flags,
        version: current.version + 1,
    };
    let written = patch::written(
        store
            .put_settings(project, environment, &next, current.version)
            .await,
        next,
    )?;
    tracing::info!(
        project,
        environment,
        version = written.version,
        "Data Export settings updated"
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(
            validate(&json!({"allFlags": true, "flags": {"a": true}, "_links": {}})).unwrap(),
            (true, BTreeMap::from([("a".to_owned(), true)]))
        );
        assert!(
            validate(&json!({"allFlags": "yes"}))
                .unwrap_err()
                .message
                .contains("allFlags")
        );
        assert!(
            validate(&json!({"flags": {"bad key": true}}))
                .unwrap_err()
                .message
                .contains("\"bad key\"")
        );
        assert!(
            validate(&json!({"flags": {"a": 1}}))
                .unwrap_err()
                .message
                .contains("flags.a")
        );
        assert!(
            validate(&json!({"other": 1}))
                .unwrap_err()
                .message
                .contains("unknown field")
        );
    }

    #[test]
    fn a_flag_set_to_false_leaves_the_list_and_the_list_is_capped() {
        let (_, flags) = validate(&json!({"flags": {"on": true, "off": false}})).unwrap();
        assert_eq!(flags, BTreeMap::from([("on".to_owned(), true)]));
        let many: Map<String, Value> = (0..=MAX_FLAGS)
            .map(|i| (format!("flag-{i}"), json!(true)))
            .collect();
        let err = validate(&json!({"flags": many})).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(
            err.message.contains("1000") && err.message.contains("allFlags"),
            "{}",
            err.message
        );
        let at_the_cap: Map<String, Value> = (0..MAX_FLAGS)
            .map(|i| (format!("flag-{i}"), json!(true)))
            .collect();
        assert!(validate(&json!({"flags": at_the_cap})).is_ok());
    }
}
