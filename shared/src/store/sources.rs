//! Event sources in the table: one item per environment (`sk = SOURCES`) listing them,
//! and one lookup item per credential (`pk = SOURCE#<kind>#<digest or id>`), so that
//! resolving an SDK's credential is one GetItem. Both change in one transaction. A
//! client-side ID's lookup also holds its allowed origins (none: any, as in the items
//! written before there were any), so that `ingest` has them from the same read.

use super::StoreError;
use super::dynamo::{DynamoStore, dynamo_error};
use super::item::{Item, environment_pk, item_key};
use crate::sources::{AllowedOrigins, ClientSideId, EventSources, Resolved, SourceKind};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use std::future::Future;

pub const SOURCES_SK: &str = "SOURCES";
const LOOKUP_SK: &str = "SOURCE";

/// Event sources: registered through the API, resolved by `ingest`.
pub trait SourceStore: Send + Sync {
    /// The sources of an environment; none (version 0) when never set.
    fn get_sources(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<EventSources, StoreError>> + Send;

    /// Replaces the sources whose stored version is `expected_version`, credentials'
    /// lookups included. `Taken` when a credential belongs to another environment,
    /// `VersionConflict` when the sources changed meanwhile.
    fn put_sources(
        &self,
        project: &str,
        environment: &str,
        sources: &EventSources,
        previous: &EventSources,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The environment a credential belongs to, with its allowed origins.
    fn resolve(
        &self,
        kind: SourceKind,
        lookup_id: &str,
    ) -> impl Future<Output = Result<Option<Resolved>, StoreError>> + Send;
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourcesItem {
    pk: String,
    sk: String,
    project: String,
    environment: String,
    #[serde(default)]
    sdk_keys: Vec<String>,
    #[serde(default)]
    mobile_keys: Vec<String>,
    /// Each an ID, or `{"id", "allowedOrigins"}` (`ClientSideId`'s forms).
    #[serde(default)]
    client_side_ids: Vec<ClientSideId>,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct LookupItem {
    pk: String,
    sk: String,
    project: String,
    environment: String,
    #[serde(
        rename = "allowedOrigins",
        default,
        skip_serializing_if = "AllowedOrigins::is_any"
    )]
    allowed_origins: AllowedOrigins,
}

fn lookup_pk(kind: SourceKind, id: &str) -> String {
    format!("SOURCE#{}#{id}", kind.as_str())
}

impl SourceStore for DynamoStore {
    async fn get_sources(&self, project: &str, environment: &str) -> Result<EventSources, StoreError> {
        let item = self
            .get(item_key(environment_pk(project, environment), SOURCES_SK))
            .await?;
        let Some(item) = item else {
            return Ok(EventSources::default());
        };
        let s: SourcesItem = serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
            pk: environment_pk(project, environment),
            sk: SOURCES_SK.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(EventSources {
            sdk_keys: s.sdk_keys,
            mobile_keys: s.mobile_keys,
            client_side_ids: s.client_side_ids,
            version: s.version,
        })
    }

    async fn put_sources(
        &self,
        project: &str,
        environment: &str,
        sources: &EventSources,
        previous: &EventSources,
    ) -> Result<(), StoreError> {
        let item: Item = serde_dynamo::to_item(SourcesItem {
            pk: environment_pk(project, environment),
            sk: SOURCES_SK.to_owned(),
            project: project.to_owned(),
            environment: environment.to_owned(),
            sdk_keys: sources.sdk_keys.clone(),
            mobile_keys: sources.mobile_keys.clone(),
            client_side_ids: sources.client_side_ids.clone(),
            version: sources.version,
        })
        .expect("sources serialize");
        let mut writes = vec![self.conditional_put(item, previous.version)];
        let now = sources.lookups();
        let before = previous.lookups();
        for l in &now {
            let put = match before.iter().find(|b| b.same_credential(l)) {
                // Unchanged: its item stays.
                Some(b) if b == l => continue,
                // Its origins changed: rewritten, while it is still this environment's.
                Some(_) => Put::builder()
                    .condition_expression(
                        "attribute_not_exists(pk) OR (#project = :project AND #environment = :environment)",
                    )
                    .expression_attribute_names("#project", "project")
                    .expression_attribute_names("#environment", "environment")
                    .expression_attribute_values(":project", AttributeValue::S(project.to_owned()))
                    .expression_attribute_values(":environment", AttributeValue::S(environment.to_owned())),
                // New: unless some environment has it.
                None => Put::builder().condition_expression("attribute_not_exists(pk)"),
            };
            let lookup: Item = serde_dynamo::to_item(LookupItem {
                pk: lookup_pk(l.kind, &l.id),
                sk: LOOKUP_SK.to_owned(),
                project: project.to_owned(),
                environment: environment.to_owned(),
                allowed_origins: l.allowed_origins.clone(),
            })
            .expect("a lookup serializes");
            let put = put
                .table_name(self.table())
                .set_item(Some(lookup))
                .build()
                .expect("table and item are set");
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        for l in before
            .iter()
            .filter(|b| !now.iter().any(|n| n.same_credential(b)))
        {
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(item_key(lookup_pk(l.kind, &l.id), LOOKUP_SK)))
                .build()
                .expect("table and key are set");
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.count();
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("TransactionCanceledException") => {
                let reasons: Vec<Option<String>> = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                match cancellation(&reasons) {
                    Cancelled::Race => Err(StoreError::VersionConflict),
                    Cancelled::Taken => Err(StoreError::Taken),
                    Cancelled::ForNow => Err(dynamo_error("TransactWriteItems", e)),
                }
            }
            Err(e) => Err(dynamo_error("TransactWriteItems", e)),
        }
    }

    async fn resolve(&self, kind: SourceKind, lookup_id: &str) -> Result<Option<Resolved>, StoreError> {
        let Some(item) = self.get(item_key(lookup_pk(kind, lookup_id), LOOKUP_SK)).await? else {
            return Ok(None);
        };
        let l: LookupItem = serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
            pk: lookup_pk(kind, "…"),
            sk: LOOKUP_SK.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Some(Resolved {
            project: l.project,
            environment: l.environment,
            allowed_origins: l.allowed_origins,
        }))
    }
}

/// What a cancelled transaction of [`SourceStore::put_sources`] means, by the reasons
/// DynamoDB gives per item (the first item is the sources' own, the others lookups).
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The sources' own condition failed: another writer changed them.
    Race,
    /// A lookup's condition failed: a credential some environment already has.
    Taken,
    /// Nothing was refused: a conflicting transaction, throttling, a capacity limit. Worth
    /// retrying: an outage for now, never "registered elsewhere".
    ForNow,
}

fn cancellation(reasons: &[Option<String>]) -> Cancelled {
    let failed_check = |r: &Option<String>| r.as_deref() == Some("ConditionalCheckFailed");
    match reasons.split_first() {
        Some((own, _)) if failed_check(own) => Cancelled::Race,
        Some((_, lookups)) if lookups.iter().any(failed_check) => Cancelled::Taken,
        _ => Cancelled::ForNow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_transaction_is_taken_only_for_a_lookups_failed_check() {
        let r =
            |codes: &[&str]| -> Vec<Option<String>> { codes.iter().map(|c| Some((*c).to_owned())).collect() };
        assert_eq!(
            cancellation(&r(&["ConditionalCheckFailed", "None"])),
            Cancelled::Race
        );
        assert_eq!(
            cancellation(&r(&["None", "None", "ConditionalCheckFailed"])),
            Cancelled::Taken
        );
        assert_eq!(
            cancellation(&r(&["None", "TransactionConflict"])),
            Cancelled::ForNow
        );
        assert_eq!(
            cancellation(&r(&["TransactionConflict", "None"])),
            Cancelled::ForNow
        );
        assert_eq!(cancellation(&r(&["ThrottlingError", "None"])), Cancelled::ForNow);
        assert_eq!(
            cancellation(&r(&["None", "ProvisionedThroughputExceeded"])),
            Cancelled::ForNow
        );
        assert_eq!(cancellation(&[]), Cancelled::ForNow);
    }
}
