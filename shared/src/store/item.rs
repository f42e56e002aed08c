//! How destinations and settings are laid out as DynamoDB items: derived item types,
//! converted by `serde_dynamo`. The attribute names are the table's public layout.

use super::StoreError;
use crate::destination::{Destination, ExportSettings, SegmentConfig};
use crate::segment::verify::{KeyCheck, KeyStatus};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub type Item = HashMap<String, AttributeValue>;

pub const SETTINGS_SK: &str = "SETTINGS";
pub const DESTINATION_SK_PREFIX: &str = "DEST#";

pub fn environment_pk(project: &str, environment: &str) -> String {
    format!("ENV#{project}#{environment}")
}

/// The primary key of an item.
pub fn item_key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

pub fn destination_sk(id: &str) -> String {
    format!("{DESTINATION_SK_PREFIX}{id}")
}

/// The sort key of an item, to tell destinations from settings.
pub fn sort_key(item: &Item) -> &str {
    match item.get("sk") {
        Some(AttributeValue::S(sk)) => sk,
        _ => "",
    }
}

/// A destination's item: its own fields, then its config's attributes beside them (the
/// table's layout predates the config type, so they are flattened, not nested).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DestinationItem {
    pk: String,
    sk: String,
    id: String,
    project: String,
    environment: String,
    #[serde(default)]
    name: String,
    kind: String,
    #[serde(default)]
    on: bool,
    version: u64,
    #[serde(default)]
    created_at: u64,
    #[serde(flatten)]
    config: SegmentConfig,
    /// `_writeKey`; items written before checks existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_key_status: Option<KeyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_key_checked_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_key_check_reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsItem {
    pk: String,
    sk: String,
    project: String,
    environment: String,
    #[serde(default)]
    all_flags: bool,
    #[serde(default)]
    flags: BTreeMap<String, bool>,
    #[serde(default)]
    version: u64,
}

/// Where an item is, for errors: its keys only, never its values (it may hold a write key).
fn keys_of(item: &Item) -> (String, String) {
    let key = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    (key("pk"), key("sk"))
}

fn malformed((pk, sk): (String, String), reason: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        pk,
        sk,
        reason: reason.into(),
    }
}

pub fn destination_from_item(item: Item) -> Result<Destination, StoreError> {
    // The keys, not the whole item, are kept aside for an error.
    let keys = keys_of(&item);
    let d: DestinationItem = serde_dynamo::from_item(item).map_err(|e| malformed(keys, e.to_string()))?;
    Ok(Destination {
        id: d.id,
        project: d.project,
        environment: d.environment,
        name: d.name,
        kind: d.kind,
        on: d.on,
        version: d.version,
        created_at: d.created_at,
        config: d.config,
        write_key_check: match d.write_key_status {
            Some(status) => KeyCheck {
                status,
                checked_at: d.write_key_checked_at,
                reason: d.write_key_check_reason,
            },
            None => KeyCheck::never(),
        },
    })
}

pub fn destination_to_item(d: &Destination) -> Item {
    let item = DestinationItem {
        pk: environment_pk(&d.project, &d.environment),
        sk: destination_sk(&d.id),
        id: d.id.clone(),
        project: d.project.clone(),
        environment: d.environment.clone(),
        name: d.name.clone(),
        kind: d.kind.clone(),
        on: d.on,
        version: d.version,
        created_at: d.created_at,
        config: d.config.clone(),
        write_key_status: Some(d.write_key_check.status),
        write_key_checked_at: d.write_key_check.checked_at,
        write_key_check_reason: d.write_key_check.reason.clone(),
    };
    let mut item: Item = serde_dynamo::to_item(item).expect("a destination always serializes");
    // The config serializes its key masked; the table is the one place it is kept whole.
    item.insert(
        "writeKey".to_owned(),
        AttributeValue::S(d.config.write_key.expose().to_owned()),
    );
    item
}

/// The update that keeps a key check on a destination's item, conditional on the key
/// checked (`:checkedKey`): the attributes are those of [`DestinationItem`].
pub fn key_check_update(check: &KeyCheck, checked_key: &str) -> (String, HashMap<String, AttributeValue>) {
    let mut values = HashMap::from([
        (
            ":checkedKey".to_owned(),
            AttributeValue::S(checked_key.to_owned()),
        ),
        (
            ":status".to_owned(),
            AttributeValue::S(
                serde_json::to_value(check.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
        ),
        (
            ":reason".to_owned(),
            AttributeValue::S(check.reason.clone().unwrap_or_default()),
        ),
    ]);
    let mut set = "SET writeKeyStatus = :status, writeKeyCheckReason = :reason".to_owned();
    if let Some(at) = check.checked_at {
        values.insert(":at".to_owned(), AttributeValue::N(at.to_string()));
        set.push_str(", writeKeyCheckedAt = :at");
    }
    (set, values)
}

pub fn settings_from_item(item: Item) -> Result<ExportSettings, StoreError> {
    let keys = keys_of(&item);
    let s: SettingsItem = serde_dynamo::from_item(item).map_err(|e| malformed(keys, e.to_string()))?;
    Ok(ExportSettings {
        all_flags: s.all_flags,
        flags: s.flags,
        version: s.version,
    })
}

pub fn settings_to_item(project: &str, environment: &str, s: &ExportSettings) -> Item {
    let item = SettingsItem {
        pk: environment_pk(project, environment),
        sk: SETTINGS_SK.to_owned(),
        project: project.to_owned(),
        environment: environment.to_owned(),
        all_flags: s.all_flags,
        flags: s.flags.clone(),
        version: s.version,
    };
    serde_dynamo::to_item(item).expect("settings always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{Region, WriteKey};
    use crate::endpoint::{Endpoint, OutboundPolicy};

    fn sample() -> Destination {
        Destination {
            id: "d1".into(),
            project: "p".into(),
            environment: "e".into(),
            name: "Segment".into(),
            kind: "segment".into(),
            on: true,
            version: 3,
            created_at: 1_700_000_000_000,
            write_key_check: crate::segment::verify::KeyCheck::never(),
            config: SegmentConfig {
                write_key: WriteKey::new("wk"),
                region: Region::Eu,
                user_id_context_kind: Some("account".into()),
                anonymous_id_context_kind: None,
                include_custom_data: true,
                experiment_viewed: true,
                endpoint: Some(
                    Endpoint::parse("https://rudder.example.com", OutboundPolicy::default()).unwrap(),
                ),
            },
        }
    }

    fn s(item: &Item, name: &str) -> Option<String> {
        item.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    #[test]
    fn destination_items_round_trip_with_the_table_layout() {
        let d = sample();
        let item = destination_to_item(&d);
        assert_eq!(s(&item, "pk").unwrap(), "ENV#p#e");
        assert_eq!(s(&item, "sk").unwrap(), "DEST#d1");
        assert_eq!(s(&item, "writeKey").unwrap(), "wk");
        assert_eq!(s(&item, "userIDContextKind").unwrap(), "account");
        assert!(!item.contains_key("anonymousIDContextKind"));
        assert_eq!(item["on"], AttributeValue::Bool(true));
        assert_eq!(item["includeCustomData"], AttributeValue::Bool(true));
        assert_eq!(item["experimentViewed"], AttributeValue::Bool(true));
        assert_eq!(s(&item, "endpoint").unwrap(), "https://rudder.example.com");
        assert_eq!(s(&item, "region").unwrap(), "eu");
        assert_eq!(item["version"], AttributeValue::N("3".into()));
        assert_eq!(item["createdAt"], AttributeValue::N("1700000000000".into()));
        assert_eq!(destination_from_item(item).unwrap(), d);
    }

    #[test]
    fn settings_items_round_trip_with_the_table_layout() {
        let settings = ExportSettings {
            all_flags: false,
            flags: BTreeMap::from([("a".into(), true), ("b".into(), false)]),
            version: 4,
        };
        let item = settings_to_item("p", "e", &settings);
        assert_eq!(s(&item, "sk").unwrap(), "SETTINGS");
        assert_eq!(item["allFlags"], AttributeValue::Bool(false));
        assert!(matches!(&item["flags"], AttributeValue::M(m) if m["a"] == AttributeValue::Bool(true)));
        assert_eq!(settings_from_item(item).unwrap(), settings);
    }

    #[test]
    fn items_written_before_optional_attributes_existed_still_read() {
        let mut item = destination_to_item(&sample());
        for optional in [
            "region",
            "name",
            "createdAt",
            "includeCustomData",
            "userIDContextKind",
            "experimentViewed",
            "endpoint",
        ] {
            item.remove(optional);
        }
        let d = destination_from_item(item).unwrap();
        assert_eq!(
            (d.config.region, d.name.as_str(), d.created_at),
            (Region::Us, "", 0)
        );
        assert!(!d.config.experiment_viewed && d.config.endpoint.is_none());
    }

    #[test]
    fn malformed_items_are_reported_without_secrets() {
        let mut item = destination_to_item(&sample());
        item.remove("version");
        item.insert("writeKey".into(), AttributeValue::S("wk-secret-value".into()));
        let err = destination_from_item(item).unwrap_err().to_string();
        assert!(err.contains("version") && err.contains("ENV#p#e"), "{err}");
        assert!(!err.contains("wk-secret-value"), "{err}");
        let mut item = destination_to_item(&sample());
        item.insert("region".into(), AttributeValue::S("ap".into()));
        let err = destination_from_item(item).unwrap_err().to_string();
        assert!(err.contains("ap") && err.contains("DEST#d1"), "{err}");
    }
}
