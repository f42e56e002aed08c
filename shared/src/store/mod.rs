//! The DynamoDB table of destinations and Data Export settings, behind one trait.
//!
//! One item per destination and one settings item per environment, all under the
//! environment's partition key, so that `export` reads an environment in one Query.
//! - [`Store`]: what the functions read and write;
//! - [`DynamoStore`]: the table, through the AWS SDK;
//! - [`CachedStore`]: `export`'s per-process cache of environment reads;
//! - `item`: how destinations and settings are laid out as items;
//! - [`DeliveryStore`]: delivery status per destination, kept by `export`.

mod cache;
mod delivery;
mod dynamo;
mod item;
mod sources;

pub use cache::{CachedStore, MAX_CACHE_TTL};
pub use delivery::{DeliveryStore, TTL_ATTRIBUTE, delivery_pk};
pub use dynamo::DynamoStore;
pub use item::environment_pk;
pub use sources::SourceStore;

use crate::destination::{Destination, EnvironmentConfig, ExportSettings};
use crate::segment::verify::KeyCheck;
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The table could not be read or written now (an outage, throttling, a timeout).
    #[error("DynamoDB {operation} failed: {}", crate::errors::chain(.source.as_ref()))]
    Dynamo {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// DynamoDB refused the request itself (`ValidationException`: an item or key too
    /// large, say): the caller's input, not an outage.
    #[error("DynamoDB refused the request: {message}")]
    Refused { message: String },
    #[error("stored item {pk} / {sk} is malformed: {reason}")]
    Malformed { pk: String, sk: String, reason: String },
    #[error("the item was changed by another writer")]
    VersionConflict,
    /// A unique item (an event source's credential) belongs to another environment.
    #[error("already registered elsewhere")]
    Taken,
    #[error("no such item")]
    NotFound,
}

/// The table's items as the functions see them. Every write is conditional: on the
/// item not existing (create) or on its stored `version` (replace).
pub trait Store: Send + Sync {
    /// The destinations and settings of one environment (what `export` reads).
    fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Arc<EnvironmentConfig>, StoreError>> + Send;

    /// Writes `destination` if no destination with its id exists in its environment.
    fn create_destination(
        &self,
        destination: &Destination,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a destination whose stored version is `expected_version`.
    fn replace_destination(
        &self,
        destination: &Destination,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<Destination>, StoreError>> + Send;

    /// Deletes a destination; `NotFound` when there was none.
    fn delete_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps what Segment said of `destination`'s write key, unless the key changed or
    /// the destination is gone meanwhile (`VersionConflict`, `NotFound`). Not a change of
    /// the destination: its `version` stays.
    fn record_key_check(
        &self,
        destination: &Destination,
        check: &KeyCheck,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every destination of every environment, sorted by project, environment and id.
    fn list_destinations(&self) -> impl Future<Output = Result<Vec<Destination>, StoreError>> + Send;

    /// The settings of an environment; all off (version 0) when never set.
    fn get_settings(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<ExportSettings, StoreError>> + Send;

    /// Writes settings whose stored version is `expected_version` (0: never written).
    fn put_settings(
        &self,
        project: &str,
        environment: &str,
        settings: &ExportSettings,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
