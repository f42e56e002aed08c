//! JSON Patch (RFC 6902) request bodies, applied with the `json-patch` crate, with
//! read-only paths enforced before anything changes.

use crate::retry::Backoff;
use crate::store::StoreError;
use crate::web::ApiError;
use backon::Retryable;
use json_patch::{Patch, PatchErrorKind, PatchOperation};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// Attempts of a PATCH that loses races before it answers 409.
pub const MAX_ATTEMPTS: u32 = 20;

/// Short pauses between attempts, so that concurrent writers spread.
const RACE_BACKOFF: Backoff = Backoff {
    max_attempts: MAX_ATTEMPTS,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(80),
};

/// Why one read-apply-write attempt did not finish.
#[derive(Debug)]
pub enum WriteAttemptError {
    /// A concurrent writer changed the item between our read and our write.
    LostRace,
    Api(ApiError),
}

impl From<ApiError> for WriteAttemptError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for WriteAttemptError {
    fn from(e: StoreError) -> Self {
        Self::Api(e.into())
    }
}

/// What a conditional write means for the attempt that made it.
pub fn written<T>(write: Result<(), StoreError>, value: T) -> Result<T, WriteAttemptError> {
    match write {
        Ok(()) => Ok(value),
        Err(StoreError::VersionConflict) => Err(WriteAttemptError::LostRace),
        Err(e) => Err(WriteAttemptError::Api(e.into())),
    }
}

/// Repeats `attempt` (read, apply, write conditionally on the version read) while it
/// loses races, on the service's retry policy; 409 after [`MAX_ATTEMPTS`].
pub async fn retry_lost_races<T, F, Fut>(what: &str, attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WriteAttemptError>>,
{
    let result = attempt
        .retry(RACE_BACKOFF.schedule())
        .sleep(tokio::time::sleep)
        .when(|e| matches!(e, WriteAttemptError::LostRace))
        .await;
    result.map_err(|e| match e {
        WriteAttemptError::Api(e) => e,
        WriteAttemptError::LostRace => ApiError::conflict(format!(
            "the {what} kept changing under {MAX_ATTEMPTS} attempts; read it again and retry"
        )),
    })
}

/// The operations of a PATCH body: a JSON Patch array, or `{"comment": …, "patch": [...]}`.
pub fn operations(body: &Value) -> Result<Patch, ApiError> {
    let ops = match body {
        Value::Array(_) => body.clone(),
        Value::Object(wrapper) => {
            for key in wrapper.keys() {
                if key != "patch" && key != "comment" {
                    return Err(ApiError::invalid(format!(
                        "unknown field {key:?} in the PATCH body: send a JSON Patch array or {{\"comment\": \"…\", \"patch\": [...]}}"
                    )));
                }
            }
            if wrapper.get("comment").is_some_and(|c| !c.is_string()) {
                return Err(ApiError::invalid("comment must be a string"));
            }
            wrapper
                .get("patch")
                .cloned()
                .ok_or_else(|| ApiError::invalid("the PATCH body has no \"patch\" array"))?
        }
        _ => {
            return Err(ApiError::invalid(
                "the PATCH body must be a JSON Patch array or {\"comment\": \"…\", \"patch\": [...]}",
            ));
        }
    };
    serde_json::from_value(ops).map_err(|e| ApiError::invalid(format!("invalid JSON Patch: {e}")))
}

/// Whether the patch contains a `test` operation.
pub fn has_test(patch: &Patch) -> bool {
    patch.iter().any(|op| matches!(op, PatchOperation::Test(_)))
}

/// Refuses operations that would change a path whose first segment is read-only.
pub fn check_read_only(patch: &Patch, read_only: impl Fn(&str) -> bool) -> Result<(), ApiError> {
    for (i, op) in patch.iter().enumerate() {
        // A test writes nothing; a copy writes only its `path`; a move also removes `from`.
        let changed: Vec<&str> = match op {
            PatchOperation::Test(_) => vec![],
            PatchOperation::Move(m) => vec![m.from.as_str(), m.path.as_str()],
            _ => vec![op.path().as_str()],
        };
        for path in changed {
            let first = first_segment(path);
            if path.is_empty() || read_only(&first) {
                let shown = if path.is_empty() {
                    "the whole document"
                } else {
                    path
                };
                return Err(ApiError::invalid(format!(
                    "operation {i} changes {shown}, which is read-only"
                )));
            }
        }
    }
    Ok(())
}

/// The first reference token of a JSON Pointer, unescaped (`~1` → `/`, `~0` → `~`).
fn first_segment(pointer: &str) -> String {
    pointer
        .strip_prefix('/')
        .unwrap_or(pointer)
        .split('/')
        .next()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

/// Applies the patch atomically; a failed `test` is a 409.
pub fn apply(doc: &mut Value, patch: &Patch) -> Result<(), ApiError> {
    json_patch::patch(doc, patch).map_err(|e| match e.kind {
        PatchErrorKind::TestFailed => ApiError::conflict(format!(
            "test operation {} failed: the value at {} has changed; read the resource again",
            e.operation, e.path
        )),
        kind => ApiError::invalid(format!(
            "operation {} on {:?}: {kind}",
            e.operation,
            e.path.as_str()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_only(first: &str) -> bool {
        first.starts_with('_') || first == "kind" || first == "version"
    }

    #[test]
    fn accepts_the_array_and_the_comment_wrapper() {
        let ops = json!([{"op": "replace", "path": "/name", "value": "x"}]);
        assert_eq!(operations(&ops).unwrap().len(), 1);
        let wrapped = json!({"comment": "rename", "patch": ops});
        assert_eq!(operations(&wrapped).unwrap().len(), 1);
        assert!(operations(&json!({"patch": ops, "extra": 1})).is_err());
        assert!(
            operations(&json!([{"op": "frobnicate", "path": "/a"}]))
                .unwrap_err()
                .message
                .contains("invalid JSON Patch")
        );
    }

    #[test]
    fn all_six_operations_with_pointer_escaping() {
        let mut doc = json!({"a/b": 1, "m~n": 2, "list": [1, 2], "obj": {}});
        let p = operations(&json!([
            {"op": "add", "path": "/obj/x", "value": 1},
            {"op": "remove", "path": "/list/0"},
            {"op": "replace", "path": "/a~1b", "value": 10},
            {"op": "move", "from": "/m~0n", "path": "/moved"},
            {"op": "copy", "from": "/moved", "path": "/copied"},
            {"op": "test", "path": "/copied", "value": 2}
        ]))
        .unwrap();
        apply(&mut doc, &p).unwrap();
        assert_eq!(
            doc,
            json!({"a/b": 10, "list": [2], "obj": {"x": 1}, "moved": 2, "copied": 2})
        );
    }

    #[test]
    fn a_failed_test_is_a_conflict_and_changes_nothing() {
        let mut doc = json!({"version": 3, "name": "a"});
        let p = operations(&json!([
            {"op": "replace", "path": "/name", "value": "b"},
            {"op": "test", "path": "/version", "value": 2}
        ]))
        .unwrap();
        let err = apply(&mut doc, &p).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (409, "optimistic_locking_error"));
        assert_eq!(doc, json!({"version": 3, "name": "a"}));
    }

    #[test]
    fn read_only_paths_are_refused_but_may_be_tested() {
        let ok = operations(&json!([{"op": "test", "path": "/version", "value": 1}, {"op": "copy", "from": "/_id", "path": "/name"}])).unwrap();
        assert!(check_read_only(&ok, read_only).is_ok());
        for bad in [
            json!([{"op": "replace", "path": "/_id", "value": "x"}]),
            json!([{"op": "replace", "path": "/kind", "value": "kinesis"}]),
            json!([{"op": "remove", "path": "/version"}]),
            json!([{"op": "move", "from": "/_links", "path": "/name"}]),
            json!([{"op": "replace", "path": "", "value": {}}]),
        ] {
            let err = check_read_only(&operations(&bad).unwrap(), read_only).unwrap_err();
            assert!(err.message.contains("read-only"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn escaped_first_segments_are_compared_unescaped() {
        assert_eq!(first_segment("/a~1b/c"), "a/b");
        assert_eq!(first_segment("/~0x"), "~x");
    }
}
