//! `export`'s per-process cache of environment reads: within the TTL, a warm function
//! reads DynamoDB at most once per environment. Writes go straight to the inner store.

use super::{DeliveryStore, DestinationKey, DestinationPage, ReplayStore, Store, StoreError};
use crate::delivery_status::{DeliveryReport, DeliveryStatus};
use crate::destination::{Destination, EnvironmentConfig, ExportSettings};
use crate::replay::{Replay, ReplayCounts, ReplayKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// Tokio's clock, so that tests with paused time can expire entries.
use tokio::time::Instant;

/// Default and upper bound of `DESTINATION_CACHE_TTL_SECONDS`.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(30);

/// (project, environment)
type EnvironmentKey = (String, String);

pub struct CachedStore<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<EnvironmentKey, (Instant, Arc<EnvironmentConfig>)>>,
}

impl<S> CachedStore<S> {
    /// Entries live `ttl`, at most [`MAX_CACHE_TTL`].
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl: ttl.min(MAX_CACHE_TTL),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn cached(&self, key: &EnvironmentKey) -> Option<Arc<EnvironmentConfig>> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, config)| config.clone())
    }

    fn remember(&self, key: EnvironmentKey, config: Arc<EnvironmentConfig>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock");
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(key, (Instant::now(), config));
    }
}

impl<S: Store> Store for CachedStore<S> {
    async fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<Arc<EnvironmentConfig>, StoreError> {
        let key = (project.to_owned(), environment.to_owned());
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let fresh = self.inner.environment(project, environment).await?;
        self.remember(key, fresh.clone());
        Ok(fresh)
    }

    async fn create_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        self.inner.create_destination(destination).await
    }

    async fn replace_destination(
        &self,
        destination: &Destination,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.inner
            .replace_destination(destination, expected_version)
            .await
    }

    async fn get_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        self.inner.get_destination(project, environment, id).await
    }

    async fn record_key_check(
        &self,
        destination: &Destination,
        check: &crate::segment::verify::KeyCheck,
    ) -> Result<(), StoreError> {
        self.inner.record_key_check(destination, check).await
    }

    async fn delete_destination(&self, project: &str, environment: &str, id: &str) -> Result<(), StoreError> {
        self.inner.delete_destination(project, environment, id).await
    }

    async fn list_destinations_page(
        &self,
        limit: usize,
        after: Option<&DestinationKey>,
    ) -> Result<DestinationPage, StoreError> {
        self.inner.list_destinations_page(limit, after).await
    }

    async fn environment_destinations_page(
        &self,
        project: &str,
        environment: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DestinationPage, StoreError> {
        self.inner
            .environment_destinations_page(project, environment, limit, after)
            .await
    }

    async fn get_settings(&self, project: &str, environment: &str) -> Result<ExportSettings, StoreError> {
        self.inner.get_settings(project, environment).await
    }

    async fn put_settings(
        &self,
        project: &str,
        environment: &str,
        settings: &ExportSettings,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.inner
            .put_settings(project, environment, settings, expected_version)
            .await
    }
}

/// Replays are read and written through: nothing of them is cached.
impl<S: ReplayStore> ReplayStore for CachedStore<S> {
    async fn create_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        self.inner.create_replay(replay).await
    }

    async fn get_replay(&self, key: &ReplayKey) -> Result<Option<Replay>, StoreError> {
        self.inner.get_replay(key).await
    }

    async fn list_replays(
        &self,
        project: &str,
        environment: &str,
        destination: &str,
    ) -> Result<Vec<Replay>, StoreError> {
        self.inner.list_replays(project, environment, destination).await
    }

    async fn count_replay(&self, key: &ReplayKey, counts: &ReplayCounts) -> Result<(), StoreError> {
        self.inner.count_replay(key, counts).await
    }

    async fn finish_replay_reading(
        &self,
        key: &ReplayKey,
        at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.finish_replay_reading(key, at, error).await
    }
}

/// Delivery status is written through: nothing of it is cached.
impl<S: DeliveryStore> DeliveryStore for CachedStore<S> {
    async fn record_delivery(
        &self,
        project: &str,
        environment: &str,
        id: &str,
        report: &DeliveryReport,
    ) -> Result<(), StoreError> {
        self.inner.record_delivery(project, environment, id, report).await
    }

    async fn delivery_statuses(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<HashMap<String, DeliveryStatus>, StoreError> {
        self.inner.delivery_statuses(project, environment).await
    }

    async fn forget_delivery(&self, project: &str, environment: &str, id: &str) {
        self.inner.forget_delivery(project, environment, id).await
    }
}
