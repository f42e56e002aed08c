//! The seed examples of `../shared/reference/segment-example-events.json` and a
//! field-by-field comparison of what a destination received against them.

use crate::process::workspace_root;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Fields Segment stamps itself (`receivedAt`, `originalTimestamp`) or that the sender
/// stamps at send time (`sentAt`, checked on the batch instead).
const STAMPED: [&str; 3] = ["receivedAt", "originalTimestamp", "sentAt"];

/// The fields the contract adds to the seed examples' shape (README, "How `export` handles a
/// batch", step 4).
const ADDED_TOP_LEVEL: [&str; 1] = ["context"];
const ADDED_PROPERTIES: [&str; 1] = ["contextKeys"];

/// The reference document: `../shared/reference/` when present, else the copy kept in
/// `tests/reference/` (a test checks the two are identical).
pub fn reference_path() -> PathBuf {
    let original = workspace_root().join("../shared/reference/segment-example-events.json");
    if original.exists() {
        original
    } else {
        vendored_reference_path()
    }
}

pub fn vendored_reference_path() -> PathBuf {
    workspace_root().join("tests/reference/segment-example-events.json")
}

pub fn reference() -> Vec<Value> {
    let text = std::fs::read_to_string(reference_path()).expect("reference examples");
    serde_json::from_str(&text).expect("reference examples are JSON")
}

/// (project, environment) of each seed example, in the reference's order.
pub fn seed_environments() -> Vec<(String, String)> {
    reference()
        .iter()
        .map(|m| {
            let p = &m["properties"];
            (
                p["project"].as_str().unwrap().to_owned(),
                p["environment"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Compares one received message with one reference example, field by field; returns
/// every difference.
pub fn differences(received: &Value, expected: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let (Some(got), Some(want)) = (received.as_object(), expected.as_object()) else {
        return vec!["not an object".into()];
    };
    for (field, want_value) in want {
        if STAMPED.contains(&field.as_str()) {
            continue;
        }
        match (field.as_str(), got.get(field)) {
            (_, None) => diffs.push(format!("{field}: missing")),
            ("messageId", Some(v)) if v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()).is_none() => {
                diffs.push(format!("messageId {v} is not a UUID"))
            }
            ("messageId", Some(_)) => {}
            ("properties", Some(v)) => {
                diffs.extend(object_differences("properties", v, want_value, &ADDED_PROPERTIES))
            }
            (_, Some(v)) if v != want_value => diffs.push(format!("{field}: got {v}, want {want_value}")),
            _ => {}
        }
    }
    for field in got.keys() {
        if !want.contains_key(field) && !ADDED_TOP_LEVEL.contains(&field.as_str()) {
            diffs.push(format!("{field}: not in the reference"));
        }
    }
    diffs
}

fn object_differences(name: &str, got: &Value, want: &Value, added: &[&str]) -> Vec<String> {
    let empty = Map::new();
    let got = got.as_object().unwrap_or(&empty);
    let want = want.as_object().unwrap_or(&empty);
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            None => diffs.push(format!("{name}.{k}: missing")),
            Some(g) if g != w => diffs.push(format!("{name}.{k}: got {g}, want {w}")),
            _ => {}
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) && !added.contains(&k.as_str()) {
            diffs.push(format!("{name}.{k}: not in the reference"));
        }
    }
    diffs
}

/// Asserts that `received` holds exactly the four seed examples (matched by
/// `properties.eventId`), each equal to its reference in every field.
pub fn assert_seed_messages(received: &[Value]) {
    let reference = reference();
    assert_eq!(received.len(), reference.len(), "received {received:#?}");
    for want in &reference {
        let id = &want["properties"]["eventId"];
        let got = received
            .iter()
            .find(|m| &m["properties"]["eventId"] == id)
            .unwrap_or_else(|| panic!("no message for event {id}"));
        let diffs = differences(got, want);
        assert!(
            diffs.is_empty(),
            "event {id} differs from the reference:\n{}",
            diffs.join("\n")
        );
        assert_eq!(
            got["context"]["library"]["name"],
            shared::segment::LIBRARY_NAME,
            "context.library names this project"
        );
        assert_eq!(
            got["properties"]["contextKeys"],
            serde_json::json!({"user": "EXAMPLE-USER-ID"})
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_comparison_catches_every_kind_of_difference() {
        let want = reference()[0].clone();
        let mut got = want.clone();
        got["messageId"] = json!(uuid::Uuid::new_v4().to_string());
        got["sentAt"] = json!("whenever");
        got["context"] = json!({"library": {}});
        got["properties"]["contextKeys"] = json!({"user": "EXAMPLE-USER-ID"});
        assert!(differences(&got, &want).is_empty());

        let mut changed = got.clone();
        changed["properties"]["flagVersion"] = json!(43);
        changed["userId"] = json!("other");
        changed["messageId"] = json!("not-a-uuid");
        changed["extra"] = json!(1);
        changed["properties"]["extra"] = json!(1);
        changed["properties"].as_object_mut().unwrap().remove("prereqOf");
        assert_eq!(
            differences(&changed, &want).len(),
            6,
            "{:?}",
            differences(&changed, &want)
        );
    }

    #[test]
    fn the_vendored_reference_is_the_shared_one() {
        let original = workspace_root().join("../shared/reference/segment-example-events.json");
        if original.exists() {
            assert_eq!(
                std::fs::read(original).unwrap(),
                std::fs::read(vendored_reference_path()).unwrap()
            );
        }
    }
}
