//! The table through the AWS SDK: conditional writes; strongly consistent GetItems (what
//! a read-modify-write reads, under its conditional write); eventually consistent Query
//! and Scan (`export`'s environment reads, cached for seconds anyway, and the API's lists,
//! one page per request with `ExclusiveStartKey`, which may trail a write by a moment).

use super::item::{
    DESTINATION_SK_PREFIX, Item, SETTINGS_SK, destination_from_item, destination_sk, destination_to_item,
    environment_pk, item_key, key_check_update, settings_from_item, settings_to_item, sort_key,
};
use super::{DestinationKey, DestinationPage, Store, StoreError};
use crate::destination::{Destination, EnvironmentConfig, ExportSettings};
use crate::segment::verify::KeyCheck;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct DynamoStore {
    client: Client,
    table: String,
    requests: AtomicU64,
    /// `Limit` of each Scan or Query request of a listing; `None`: about what one page of
    /// the API needs.
    scan_page_size: Option<i32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            requests: AtomicU64::new(0),
            scan_page_size: None,
        }
    }

    /// Smaller Scan pages (tests use it to exercise pagination).
    pub fn with_scan_page_size(mut self, items: i32) -> Self {
        self.scan_page_size = Some(items);
        self
    }

    /// DynamoDB requests made so far by this process.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(super) fn table(&self) -> &str {
        &self.table
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// A transaction's put of `item`, conditional on its stored `version` (0: none yet).
    pub(super) fn conditional_put(&self, item: Item, expected_version: u64) -> TransactWriteItem {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if expected_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()))
        };
        TransactWriteItem::builder()
            .put(put.build().expect("table and item are set"))
            .build()
    }

    pub(super) fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) async fn get(&self, key: HashMap<String, AttributeValue>) -> Result<Option<Item>, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        Ok(out.item)
    }

    pub(super) async fn put_conditional(
        &self,
        item: Item,
        condition: &str,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.count();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(
                expected.map(|v| HashMap::from([(":expected".to_owned(), AttributeValue::N(v.to_string()))])),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::VersionConflict),
            Err(e) => Err(dynamo_error("PutItem", e)),
        }
    }
}

impl DynamoStore {
    /// Every item of a partition, page after page.
    pub(super) async fn partition(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            self.count();
            items.extend(
                page.map_err(|e| dynamo_error("Query", e))?
                    .items
                    .unwrap_or_default(),
            );
        }
        Ok(items)
    }
}

impl Store for DynamoStore {
    async fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<Arc<EnvironmentConfig>, StoreError> {
        let mut config = EnvironmentConfig::default();
        for item in self.partition(environment_pk(project, environment)).await? {
            let sk = sort_key(&item);
            let (settings, destination) = (sk == SETTINGS_SK, sk.starts_with(DESTINATION_SK_PREFIX));
            if settings {
                config.settings = settings_from_item(item)?;
            } else if destination {
                // One bad item must not fail every record of the environment until they
                // reach the DLQ: the others still deliver. Its keys are logged, never its values.
                match destination_from_item(item) {
                    Ok(d) => config.destinations.push(d),
                    Err(e) => {
                        tracing::error!(error = %e, "a destination item is malformed; its environment exports without it");
                        config.unreadable_destinations += 1;
                    }
                }
            }
        }
        Ok(Arc::new(config))
    }

    async fn create_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        self.put_conditional(destination_to_item(destination), "attribute_not_exists(pk)", None)
            .await
    }

    async fn replace_destination(
        &self,
        destination: &Destination,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.put_conditional(
            destination_to_item(destination),
            "version = :expected",
            Some(expected_version),
        )
        .await
    }

    async fn get_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        let item = self
            .get(item_key(
                environment_pk(project, environment),
                &destination_sk(id),
            ))
            .await?;
        item.map(destination_from_item).transpose()
    }

    async fn record_key_check(&self, destination: &Destination, check: &KeyCheck) -> Result<(), StoreError> {
        self.count();
        let (set, values) = key_check_update(check, destination.config.write_key.expose());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(
                environment_pk(&destination.project, &destination.environment),
                &destination_sk(&destination.id),
            )))
            .update_expression(set)
            .condition_expression("attribute_exists(pk) AND writeKey = :checkedKey")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone, or its key changed since it was read: this check is of no key it has.
            Err(e) if is_condition_failure(&e) => Err(StoreError::VersionConflict),
            Err(e) => Err(dynamo_error("UpdateItem", e)),
        }
    }

    async fn delete_destination(&self, project: &str, environment: &str, id: &str) -> Result<(), StoreError> {
        self.count();
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item_key(
                environment_pk(project, environment),
                &destination_sk(id),
            )))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(dynamo_error("DeleteItem", e)),
        }
    }

    async fn list_destinations_page(
        &self,
        limit: usize,
        after: Option<&DestinationKey>,
    ) -> Result<DestinationPage, StoreError> {
        let limit = limit.max(1);
        let mut start = after.map(destination_key);
        let mut found = Vec::new();
        loop {
            self.count();
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(DESTINATION_SK_PREFIX.into()))
                // Items read, before the filter: other items (settings, delivery status,
                // event sources) are about as many again as the destinations.
                .limit(self.scan_page_size.unwrap_or_else(|| reads(limit * 2)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Scan", e))?;
            if fill(&mut found, limit, out.items.unwrap_or_default()) {
                break;
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(page(found, limit))
    }

    async fn environment_destinations_page(
        &self,
        project: &str,
        environment: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DestinationPage, StoreError> {
        let limit = limit.max(1);
        let pk = environment_pk(project, environment);
        let mut start = after.map(|id| item_key(pk.clone(), &destination_sk(id)));
        let mut found = Vec::new();
        loop {
            self.count();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":prefix", AttributeValue::S(DESTINATION_SK_PREFIX.into()))
                .limit(self.scan_page_size.unwrap_or_else(|| reads(limit)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Query", e))?;
            if fill(&mut found, limit, out.items.unwrap_or_default()) {
                break;
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(page(found, limit))
    }

    async fn get_settings(&self, project: &str, environment: &str) -> Result<ExportSettings, StoreError> {
        let item = self
            .get(item_key(environment_pk(project, environment), SETTINGS_SK))
            .await?;
        Ok(item.map(settings_from_item).transpose()?.unwrap_or_default())
    }

    async fn put_settings(
        &self,
        project: &str,
        environment: &str,
        settings: &ExportSettings,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let item = settings_to_item(project, environment, settings);
        if expected_version == 0 {
            self.put_conditional(item, "attribute_not_exists(pk)", None).await
        } else {
            self.put_conditional(item, "version = :expected", Some(expected_version))
                .await
        }
    }
}

/// A request's `Limit` for `items` wanted: one more, to know whether a next page exists.
fn reads(items: usize) -> i32 {
    i32::try_from(items + 1).unwrap_or(i32::MAX).min(1_000)
}

/// The table key of the destination a listing resumes after.
fn destination_key(k: &DestinationKey) -> Item {
    item_key(environment_pk(&k.project, &k.environment), &destination_sk(&k.id))
}

/// Adds the readable destinations of `items` to `found`; true once it holds one more than
/// `limit` (that one only tells that a next page exists). One item that cannot be read must
/// not hide every other destination: it is logged (by its keys only) and left out.
fn fill(found: &mut Vec<Destination>, limit: usize, items: Vec<Item>) -> bool {
    for item in items {
        match destination_from_item(item) {
            Ok(d) => {
                found.push(d);
                if found.len() > limit {
                    return true;
                }
            }
            Err(e) => tracing::error!(error = %e, "a destination item is malformed; left out of the list"),
        }
    }
    false
}

/// The first `limit` of `found`, and the key to resume after when there are more.
fn page(mut found: Vec<Destination>, limit: usize) -> DestinationPage {
    let more = found.len() > limit;
    found.truncate(limit);
    DestinationPage {
        next: found.last().filter(|_| more).map(DestinationKey::of),
        destinations: found,
    }
}

pub(super) fn dynamo_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(service) = e.as_service_error()
        && service.code() == Some("ValidationException")
    {
        return StoreError::Refused {
            message: service.message().unwrap_or("ValidationException").to_owned(),
        };
    }
    StoreError::Dynamo {
        operation,
        source: Box::new(e),
    }
}

pub(super) fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}
