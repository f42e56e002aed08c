//! Replays in the table: one item per replay under its destination's own partition
//! (`pk = REPLAY#<project>#<environment>#<destination id>`, `sk = <replay id>`), so that
//! `export`'s environment Query never reads them. The `replay` function and `export`
//! add to its counts with ADD, so that concurrent invocations never lose a count; the
//! item expires ([`KEPT`]) through the table's TTL.

use super::StoreError;
use super::delivery::TTL_ATTRIBUTE;
use super::dynamo::{DynamoStore, dynamo_error, is_condition_failure};
use super::item::{Item, item_key};
use crate::replay::{Replay, ReplayCounts, ReplayKey};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// How long a replay's item stays after it was started.
pub const KEPT: Duration = Duration::from_secs(90 * 86_400);

/// The most replays a listing answers: the newest.
pub const LISTED: usize = 50;

/// Replays: started by the API, advanced by `replay` and `export`.
pub trait ReplayStore: Send + Sync {
    /// Writes a new replay (its id is new: an existing one is a `VersionConflict`).
    fn create_replay(&self, replay: &Replay) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_replay(&self, key: &ReplayKey) -> impl Future<Output = Result<Option<Replay>, StoreError>> + Send;

    /// The destination's newest replays, newest first, at most [`LISTED`].
    fn list_replays(
        &self,
        project: &str,
        environment: &str,
        destination: &str,
    ) -> impl Future<Output = Result<Vec<Replay>, StoreError>> + Send;

    /// Adds `counts` to the replay's; `NotFound` when there is no such replay.
    fn count_replay(
        &self,
        key: &ReplayKey,
        counts: &ReplayCounts,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The archive was read to the end at `at` (epoch ms), or the replay stopped short
    /// with `error`.
    fn finish_replay_reading(
        &self,
        key: &ReplayKey,
        at: i64,
        error: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub fn replay_pk(project: &str, environment: &str, destination: &str) -> String {
    format!("REPLAY#{project}#{environment}#{destination}")
}

fn key_of(key: &ReplayKey) -> Item {
    item_key(
        replay_pk(&key.project, &key.environment, &key.destination),
        &key.id,
    )
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The count attributes, as the item names them.
fn counts(c: &ReplayCounts) -> [(&'static str, u64); 5] {
    [
        ("read", c.read),
        ("queued", c.queued),
        ("delivered", c.delivered),
        ("failed", c.failed),
        ("skipped", c.skipped),
    ]
}

fn to_item(r: &Replay) -> Item {
    let mut item = key_of(&r.key);
    item.insert("from".into(), number(r.from));
    item.insert("to".into(), number(r.to));
    item.insert("createdAt".into(), number(r.created_at));
    for (name, n) in counts(&r.counts) {
        item.insert(name.into(), number(n as i64));
    }
    let expires = r.created_at / 1000 + KEPT.as_secs() as i64;
    item.insert(TTL_ATTRIBUTE.into(), number(expires));
    item
}

fn from_item(item: &Item) -> Result<Replay, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let int = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
        _ => None,
    };
    let malformed = |reason: &str| StoreError::Malformed {
        pk: text("pk").unwrap_or_default(),
        sk: text("sk").unwrap_or_default(),
        reason: reason.to_owned(),
    };
    let pk = text("pk").ok_or_else(|| malformed("no pk"))?;
    // Keys never hold '#' (their pattern), so the partition key splits back.
    let mut parts = pk.splitn(4, '#').skip(1);
    let (Some(project), Some(environment), Some(destination)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("pk is not REPLAY#project#environment#destination"));
    };
    let count = |name: &str| int(name).unwrap_or(0).max(0) as u64;
    Ok(Replay {
        key: ReplayKey {
            project: project.to_owned(),
            environment: environment.to_owned(),
            destination: destination.to_owned(),
            id: text("sk").ok_or_else(|| malformed("no sk"))?,
        },
        from: int("from").ok_or_else(|| malformed("no from"))?,
        to: int("to").ok_or_else(|| malformed("no to"))?,
        created_at: int("createdAt").unwrap_or(0),
        counts: ReplayCounts {
            read: count("read"),
            queued: count("queued"),
            delivered: count("delivered"),
            failed: count("failed"),
            skipped: count("skipped"),
        },
        read_at: int("readAt"),
        error: text("error"),
    })
}

impl DynamoStore {
    /// One UpdateItem on an existing replay; `NotFound` when there is none.
    async fn update_replay(
        &self,
        key: &ReplayKey,
        expression: String,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<(), StoreError> {
        self.count();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(key)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(dynamo_error("UpdateItem", e)),
        }
    }
}

impl ReplayStore for DynamoStore {
    async fn create_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        self.put_conditional(to_item(replay), "attribute_not_exists(pk)", None)
            .await
    }

    async fn get_replay(&self, key: &ReplayKey) -> Result<Option<Replay>, StoreError> {
        self.get(key_of(key)).await?.as_ref().map(from_item).transpose()
    }

    async fn list_replays(
        &self,
        project: &str,
        environment: &str,
        destination: &str,
    ) -> Result<Vec<Replay>, StoreError> {
        let items = self
            .partition(replay_pk(project, environment, destination))
            .await?;
        let mut replays = items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        // Ids begin with their creation time, so the newest sort last.
        replays.sort_by(|a, b| b.key.id.cmp(&a.key.id));
        replays.truncate(LISTED);
        Ok(replays)
    }

    async fn count_replay(&self, key: &ReplayKey, counts: &ReplayCounts) -> Result<(), StoreError> {
        let mut adds = Vec::new();
        let mut names = HashMap::new();
        let mut values = Item::new();
        for (i, (name, n)) in self::counts(counts).into_iter().enumerate() {
            if n > 0 {
                adds.push(format!("#c{i} :c{i}"));
                names.insert(format!("#c{i}"), name.to_owned());
                values.insert(format!(":c{i}"), number(n as i64));
            }
        }
        if adds.is_empty() {
            return Ok(());
        }
        self.update_replay(key, format!("ADD {}", adds.join(", ")), names, values)
            .await
    }

    async fn finish_replay_reading(
        &self,
        key: &ReplayKey,
        at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut names = HashMap::from([("#r".to_owned(), "readAt".to_owned())]);
        let mut values = Item::from([(":at".to_owned(), number(at))]);
        let mut expression = "SET #r = :at".to_owned();
        if let Some(error) = error {
            names.insert("#e".into(), "error".into());
            values.insert(":e".into(), AttributeValue::S(error.chars().take(500).collect()));
            expression.push_str(", #e = :e");
        }
        self.update_replay(key, expression, names, values).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_round_trips() {
        let replay = Replay {
            key: ReplayKey {
                project: "p.1".into(),
                environment: "e-2".into(),
                destination: "d_3".into(),
                id: "0001780000000000-ab".into(),
            },
            from: 1,
            to: 2,
            created_at: 1_780_000_000_000,
            counts: ReplayCounts {
                read: 5,
                queued: 4,
                delivered: 3,
                failed: 0,
                skipped: 1,
            },
            read_at: None,
            error: None,
        };
        let item = to_item(&replay);
        assert_eq!(item["pk"], AttributeValue::S("REPLAY#p.1#e-2#d_3".into()));
        assert_eq!(from_item(&item).unwrap(), replay);
        assert_eq!(
            item[TTL_ATTRIBUTE],
            AttributeValue::N((1_780_000_000 + 90 * 86_400).to_string())
        );
    }
}
