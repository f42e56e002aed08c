//! A store that keeps no delivery status, for the export benchmark's A/B measure of what
//! keeping it costs (BENCHMARKS.md §2).

use shared::delivery_status::{DeliveryReport, DeliveryStatus};
use shared::destination::{Destination, EnvironmentConfig, ExportSettings};
use shared::replay::{Replay, ReplayCounts, ReplayKey};
use shared::store::{DeliveryStore, DestinationKey, DestinationPage, ReplayStore, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

pub struct StatusOff<S>(pub S);

impl<S: Store> Store for StatusOff<S> {
    async fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<Arc<EnvironmentConfig>, StoreError> {
        self.0.environment(project, environment).await
    }
    async fn create_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        self.0.create_destination(destination).await
    }
    async fn replace_destination(
        &self,
        destination: &Destination,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.0.replace_destination(destination, expected_version).await
    }
    async fn get_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        self.0.get_destination(project, environment, id).await
    }
    async fn record_key_check(
        &self,
        destination: &Destination,
        check: &shared::segment::verify::KeyCheck,
    ) -> Result<(), StoreError> {
        self.0.record_key_check(destination, check).await
    }
    async fn delete_destination(&self, project: &str, environment: &str, id: &str) -> Result<(), StoreError> {
        self.0.delete_destination(project, environment, id).await
    }
    async fn list_destinations_page(
        &self,
        limit: usize,
        after: Option<&DestinationKey>,
    ) -> Result<DestinationPage, StoreError> {
        self.0.list_destinations_page(limit, after).await
    }
    async fn environment_destinations_page(
        &self,
        project: &str,
        environment: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DestinationPage, StoreError> {
        self.0
            .environment_destinations_page(project, environment, limit, after)
            .await
    }
    async fn get_settings(&self, project: &str, environment: &str) -> Result<ExportSettings, StoreError> {
        self.0.get_settings(project, environment).await
    }
    async fn put_settings(
        &self,
        project: &str,
        environment: &str,
        settings: &ExportSettings,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.0
            .put_settings(project, environment, settings, expected_version)
            .await
    }
}

impl<S: Send + Sync> DeliveryStore for StatusOff<S> {
    async fn record_delivery(&self, _: &str, _: &str, _: &str, _: &DeliveryReport) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delivery_statuses(
        &self,
        _: &str,
        _: &str,
    ) -> Result<HashMap<String, DeliveryStatus>, StoreError> {
        Ok(HashMap::new())
    }
    async fn forget_delivery(&self, _: &str, _: &str, _: &str) {}
}

impl<S: ReplayStore> ReplayStore for StatusOff<S> {
    async fn create_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        self.0.create_replay(replay).await
    }
    async fn get_replay(&self, key: &ReplayKey) -> Result<Option<Replay>, StoreError> {
        self.0.get_replay(key).await
    }
    async fn list_replays(
        &self,
        project: &str,
        environment: &str,
        destination: &str,
    ) -> Result<Vec<Replay>, StoreError> {
        self.0.list_replays(project, environment, destination).await
    }
    async fn count_replay(&self, key: &ReplayKey, counts: &ReplayCounts) -> Result<(), StoreError> {
        self.0.count_replay(key, counts).await
    }
    async fn finish_replay_reading(
        &self,
        key: &ReplayKey,
        at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.0.finish_replay_reading(key, at, error).await
    }
}
