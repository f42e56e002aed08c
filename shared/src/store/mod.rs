//! The DynamoDB table of destinations and Data Export settings, behind one trait.
//!
//! One item per destination and one settings item per environment, all under the
//! environment's partition key, so that `export` reads an environment in one Query.
//! - [`Store`]: what the functions read and write;
//! - [`DynamoStore`]: the table, through the AWS SDK;
//! - [`CachedStore`]: `export`'s per-process cache of environment reads;
//! - `item`: how destinations and settings are laid out as items;
//! - [`DeliveryStore`]: delivery status per destination, kept by `export`;
//! - [`ReplayStore`]: replays and their progress (`replays`).

mod cache;
mod delivery;
mod dynamo;
mod item;
mod replays;
mod sources;

pub use cache::{CachedStore, MAX_CACHE_TTL};
pub use delivery::{DeliveryStore, TTL_ATTRIBUTE, delivery_pk};
pub use dynamo::DynamoStore;
pub use item::environment_pk;
pub use replays::{ReplayStore, replay_pk};
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

/// Where a listing resumes: after the destination with these keys (which need not exist
/// any more).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DestinationKey {
    pub project: String,
    pub environment: String,
    pub id: String,
}

impl DestinationKey {
    pub fn of(d: &Destination) -> Self {
        Self {
            project: d.project.clone(),
            environment: d.environment.clone(),
            id: d.id.clone(),
        }
    }
}

/// One page of a listing, and where the next starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DestinationPage {
    pub destinations: Vec<Destination>,
    pub next: Option<DestinationKey>,
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

    /// A page of every environment's destinations: at most `limit` (at least 1), the first
    /// after `after` (none: from the start). Stable: an environment's destinations come
    /// together, sorted by id, environments in the table's order (DynamoDB's Scan order),
    /// the same on every call, so that following `next` lists each destination once.
    /// Settings and other items are never listed.
    fn list_destinations_page(
        &self,
        limit: usize,
        after: Option<&DestinationKey>,
    ) -> impl Future<Output = Result<DestinationPage, StoreError>> + Send;

    /// A page of one environment's destinations, sorted by id: at most `limit` (at least
    /// 1), the first with an id after `after` (none: from the first).
    fn environment_destinations_page(
        &self,
        project: &str,
        environment: &str,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<DestinationPage, StoreError>> + Send;

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
