//! Delivery status in the table: one item per destination under its own partition per
//! environment (`pk = DELIVERY#<project>#<environment>`, `sk = <destination id>`), so that
//! `export`'s environment Query never reads it and the API reads an environment's in one
//! Query. Hourly counts live in a ring of 24 slots (`d<n>`, `f<n>`, `h<n>`: delivered,
//! failed, and the hour the slot holds; `sf<n>`, `sk<n>`, `so<n>`: skipped because the flag
//! is not enabled, the kind is never exported, the destination is off; `tf<n>`: a map of
//! the skipped flags, [`TOP_FLAGS_KEPT`] added per report), so the item stays small.
//!
//! `export` writes one UpdateItem per destination per invocation: counts are added when
//! the slot already holds this hour (the condition), else the slot is reset to this hour;
//! only at the first report of an hour does that take a second call.

use super::StoreError;
use super::dynamo::{DynamoStore, dynamo_error, is_condition_failure};
use super::item::{Item, item_key};
use crate::delivery_status::{
    DeliveryReport, DeliveryStatus, HOURS_KEPT, HourCount, Skipped, TOP_FLAGS_KEPT, bounded_reason,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The attribute of a deleted destination's marker.
const GONE: &str = "gone";
/// The table's time-to-live attribute (`TimeToLiveSpecification` in the template).
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// How long the marker stays (the table's TTL removes it after).
const GONE_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// Delivery status: written by `export`, read by the API.
pub trait DeliveryStore: Send + Sync {
    /// Adds one invocation's report for a destination. `StoreError::NotFound` when the
    /// destination was deleted (its status forgotten): nothing is written.
    fn record_delivery(
        &self,
        project: &str,
        environment: &str,
        id: &str,
        report: &DeliveryReport,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The status of every destination of an environment that has one, by id.
    fn delivery_statuses(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<HashMap<String, DeliveryStatus>, StoreError>> + Send;

    /// Forgets a deleted destination's status, and keeps a later report (from an `export`
    /// that still holds the destination in its cache) from writing it again.
    fn forget_delivery(&self, project: &str, environment: &str, id: &str) -> impl Future<Output = ()> + Send;
}

pub fn delivery_pk(project: &str, environment: &str) -> String {
    format!("DELIVERY#{project}#{environment}")
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The update of one report: the SET and REMOVE clauses that every update carries (when
/// delivered, when failed and why), into which the counts go.
struct Update {
    sets: Vec<String>,
    removes: Vec<&'static str>,
    values: Item,
    names: HashMap<String, String>,
}

impl Update {
    fn of(report: &DeliveryReport) -> Self {
        let mut u = Update {
            sets: Vec::new(),
            removes: Vec::new(),
            values: HashMap::from([
                (":d".to_owned(), number(report.delivered)),
                (":f".to_owned(), number(report.failed)),
                (":hour".to_owned(), number(report.hour())),
                (":sf".to_owned(), number(report.skipped.flag_not_enabled)),
                (":sk".to_owned(), number(report.skipped.kind_not_exported)),
                (":so".to_owned(), number(report.skipped.destination_off)),
            ]),
            names: HashMap::new(),
        };
        if report.delivered + report.failed > 0 {
            // A report of skips only changes no time (DynamoDB refuses unused values).
            u.values.insert(":now".to_owned(), number(report.at));
        }
        if report.delivered > 0 {
            u.sets.push("lastDeliveredAt = :now".into());
            u.removes.push("failingSince");
        }
        if report.failed > 0 {
            u.sets.push("lastFailedAt = :now".into());
            u.sets.push("lastFailure = :reason".into());
            let reason = report.failure.as_deref().unwrap_or("delivery failed");
            u.values
                .insert(":reason".into(), AttributeValue::S(bounded_reason(reason)));
            if report.delivered == 0 {
                u.sets
                    .push("failingSince = if_not_exists(failingSince, :now)".into());
            }
        }
        u
    }

    fn expression(&self, adds: Option<String>) -> String {
        let mut clauses = Vec::new();
        if let Some(adds) = adds {
            clauses.push(format!("ADD {adds}"));
        }
        if !self.sets.is_empty() {
            clauses.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            clauses.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        clauses.join(" ")
    }
}

impl DynamoStore {
    /// One UpdateItem: `same_hour` adds to the slot that holds this hour, else resets the
    /// slot to this hour. False when the condition did not hold.
    async fn update_delivery(
        &self,
        key: Item,
        report: &DeliveryReport,
        same_hour: bool,
    ) -> Result<bool, StoreError> {
        let slot = report.slot();
        let mut update = Update::of(report);
        let flags: Vec<(&str, u64)> = report.skipped.top_flags(TOP_FLAGS_KEPT);
        let (expression, slot_condition) = if same_hour {
            // Each flag's count in the slot's map, which the hour's first report made.
            for (i, (key, count)) in flags.iter().enumerate() {
                update.names.insert(format!("#f{i}"), (*key).to_owned());
                update.values.insert(format!(":fc{i}"), number(*count));
                update.sets.push(format!(
                    "tf{slot}.#f{i} = if_not_exists(tf{slot}.#f{i}, :zero) + :fc{i}"
                ));
            }
            if !flags.is_empty() {
                update.values.insert(":zero".to_owned(), number(0));
            }
            (
                update.expression(Some(format!(
                    "d{slot} :d, f{slot} :f, sf{slot} :sf, sk{slot} :sk, so{slot} :so"
                ))),
                format!("h{slot} = :hour"),
            )
        } else {
            let map = flags
                .iter()
                .map(|(key, count)| ((*key).to_owned(), number(*count)))
                .collect();
            update.values.insert(":tf".to_owned(), AttributeValue::M(map));
            update.sets.extend([
                format!("d{slot} = :d"),
                format!("f{slot} = :f"),
                format!("h{slot} = :hour"),
                format!("sf{slot} = :sf"),
                format!("sk{slot} = :sk"),
                format!("so{slot} = :so"),
                format!("tf{slot} = :tf"),
            ]);
            (
                update.expression(None),
                format!("attribute_not_exists(h{slot}) OR h{slot} < :hour"),
            )
        };
        // Never on a deleted destination's marker (`forget_delivery`).
        let condition = format!("attribute_not_exists({GONE}) AND ({slot_condition})");
        self.count();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(update.values))
            .set_expression_attribute_names((!update.names.is_empty()).then_some(update.names))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(dynamo_error("UpdateItem", e)),
        }
    }
}

impl DeliveryStore for DynamoStore {
    async fn record_delivery(
        &self,
        project: &str,
        environment: &str,
        id: &str,
        report: &DeliveryReport,
    ) -> Result<(), StoreError> {
        let key = || item_key(delivery_pk(project, environment), id);
        // This hour's slot; else a new hour's; else another invocation just began the
        // hour: add to it.
        for same_hour in [true, false, true] {
            if self.update_delivery(key(), report, same_hour).await? {
                return Ok(());
            }
        }
        // Refused thrice: the destination is gone, or writers keep racing.
        match self.get(key()).await? {
            Some(item) if item.contains_key(GONE) => Err(StoreError::NotFound),
            _ => Err(StoreError::VersionConflict),
        }
    }

    async fn delivery_statuses(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<HashMap<String, DeliveryStatus>, StoreError> {
        let mut statuses = HashMap::new();
        for item in self.partition(delivery_pk(project, environment)).await? {
            if let Some(AttributeValue::S(id)) = item.get("sk")
                && !item.contains_key(GONE)
            {
                statuses.insert(id.clone(), status_of(&item));
            }
        }
        Ok(statuses)
    }

    async fn forget_delivery(&self, project: &str, environment: &str, id: &str) {
        self.count();
        // The status replaced by a marker that expires (the table's TTL): long enough for
        // every cached config of the destination to expire first.
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + GONE_KEPT.as_secs();
        let mut marker = item_key(delivery_pk(project, environment), id);
        marker.insert(GONE.to_owned(), AttributeValue::Bool(true));
        marker.insert(TTL_ATTRIBUTE.to_owned(), number(expires));
        let deleted = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(marker))
            .send()
            .await;
        if let Err(e) = deleted {
            tracing::warn!(error = %dynamo_error("DeleteItem", e), "a deleted destination's delivery status stays");
        }
    }
}

fn status_of(item: &Item) -> DeliveryStatus {
    let num = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    let hours = (0..HOURS_KEPT)
        .filter_map(|slot| {
            Some(HourCount {
                hour: num(&format!("h{slot}"))?,
                delivered: num(&format!("d{slot}")).unwrap_or(0),
                failed: num(&format!("f{slot}")).unwrap_or(0),
                skipped: Skipped {
                    flag_not_enabled: num(&format!("sf{slot}")).unwrap_or(0),
                    kind_not_exported: num(&format!("sk{slot}")).unwrap_or(0),
                    destination_off: num(&format!("so{slot}")).unwrap_or(0),
                    flags: match item.get(&format!("tf{slot}")) {
                        Some(AttributeValue::M(m)) => m
                            .iter()
                            .filter_map(|(k, v)| match v {
                                AttributeValue::N(n) => Some((k.clone(), n.parse().ok()?)),
                                _ => None,
                            })
                            .collect(),
                        _ => Default::default(),
                    },
                },
            })
        })
        .collect();
    DeliveryStatus {
        last_delivered_at: num("lastDeliveredAt"),
        last_failed_at: num("lastFailedAt"),
        failing_since: num("failingSince"),
        last_failure: match item.get("lastFailure") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        },
        hours,
    }
}
