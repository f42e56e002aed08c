//! The DynamoDB table of destinations and Data Export settings.
//!
//! One item per destination and one settings item per environment, all under the
//! environment's partition key, so that `export` reads an environment in one Query.

use crate::destination::{Destination, EnvironmentConfig, ExportSettings, Region, SegmentConfig, WriteKey};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Item = HashMap<String, AttributeValue>;

const SETTINGS_SK: &str = "SETTINGS";
const DESTINATION_SK_PREFIX: &str = "DEST#";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
    },
    #[error("stored item {pk} / {sk} is malformed: {reason}")]
    Malformed { pk: String, sk: String, reason: String },
    #[error("the item was changed by another writer")]
    VersionConflict,
    #[error("no such item")]
    NotFound,
}

impl StoreError {
    fn dynamo<E, R>(operation: &'static str, e: SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self::Dynamo {
            operation,
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

/// What `export` reads: the destinations and settings of one environment.
pub trait EnvironmentStore: Send + Sync {
    fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Arc<EnvironmentConfig>, StoreError>> + Send;
}

/// The table, through the AWS SDK.
pub struct DynamoStore {
    client: Client,
    table: String,
    requests: AtomicU64,
    /// `Limit` of each Scan page; `None` lets DynamoDB fill 1 MB pages.
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

    /// The store of a function: the table named by `TABLE_NAME`.
    pub fn from_env(client: Client) -> Result<Self, String> {
        let table = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or("TABLE_NAME must name the destinations table")?;
        Ok(Self::new(client, table))
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

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Every item of an environment, following Query pagination.
    async fn environment_items(&self, project: &str, environment: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.count();
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(environment_pk(project, environment)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

impl EnvironmentStore for DynamoStore {
    async fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<Arc<EnvironmentConfig>, StoreError> {
        let mut config = EnvironmentConfig::default();
        for item in self.environment_items(project, environment).await? {
            let sk = string(&item, "sk").unwrap_or_default();
            if sk == SETTINGS_SK {
                config.settings = settings_from_item(&item)?;
            } else if sk.starts_with(DESTINATION_SK_PREFIX) {
                config.destinations.push(destination_from_item(&item)?);
            }
        }
        Ok(Arc::new(config))
    }
}

/// (project, environment)
type EnvironmentKey = (String, String);

/// A per-process cache in front of a store: `export` reuses a lookup for `ttl`.
pub struct CachedStore<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<EnvironmentKey, (Instant, Arc<EnvironmentConfig>)>>,
}

/// Default and upper bound of `DESTINATION_CACHE_TTL_SECONDS`.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(30);

impl<S> CachedStore<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl: ttl.min(MAX_CACHE_TTL),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// TTL from `DESTINATION_CACHE_TTL_SECONDS` (default and at most 30 seconds).
    pub fn from_env(inner: S) -> Self {
        let ttl = std::env::var("DESTINATION_CACHE_TTL_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(MAX_CACHE_TTL, Duration::from_secs);
        Self::new(inner, ttl)
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
}

impl<S: EnvironmentStore> EnvironmentStore for CachedStore<S> {
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
        if !self.ttl.is_zero() {
            let mut entries = self.entries.lock().expect("cache lock");
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            entries.insert(key, (Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }
}

impl<S: EnvironmentStore> EnvironmentStore for Arc<S> {
    fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Arc<EnvironmentConfig>, StoreError>> + Send {
        (**self).environment(project, environment)
    }
}

pub fn environment_pk(project: &str, environment: &str) -> String {
    format!("ENV#{project}#{environment}")
}

fn destination_sk(id: &str) -> String {
    format!("{DESTINATION_SK_PREFIX}{id}")
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn boolean(item: &Item, name: &str) -> Option<bool> {
    match item.get(name) {
        Some(AttributeValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn malformed(item: &Item, reason: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        pk: string(item, "pk").unwrap_or_default(),
        sk: string(item, "sk").unwrap_or_default(),
        reason: reason.into(),
    }
}

fn destination_from_item(item: &Item) -> Result<Destination, StoreError> {
    let required =
        |name: &str| string(item, name).ok_or_else(|| malformed(item, format!("no string `{name}`")));
    let region = string(item, "region").unwrap_or_else(|| "us".into());
    Ok(Destination {
        id: required("id")?,
        project: required("project")?,
        environment: required("environment")?,
        name: string(item, "name").unwrap_or_default(),
        kind: required("kind")?,
        on: boolean(item, "on").unwrap_or(false),
        version: number(item, "version").ok_or_else(|| malformed(item, "no numeric `version`"))?,
        created_at: number(item, "createdAt").unwrap_or(0),
        config: SegmentConfig {
            write_key: WriteKey::new(required("writeKey")?),
            region: Region::parse(&region).ok_or_else(|| malformed(item, "unknown `region`"))?,
            user_id_context_kind: string(item, "userIDContextKind"),
            anonymous_id_context_kind: string(item, "anonymousIDContextKind"),
            include_custom_data: boolean(item, "includeCustomData").unwrap_or(false),
        },
    })
}

fn destination_to_item(d: &Destination) -> Item {
    let mut item = Item::new();
    let mut put_s = |name: &str, value: &str| {
        item.insert(name.into(), AttributeValue::S(value.into()));
    };
    put_s("pk", &environment_pk(&d.project, &d.environment));
    put_s("sk", &destination_sk(&d.id));
    put_s("id", &d.id);
    put_s("project", &d.project);
    put_s("environment", &d.environment);
    put_s("name", &d.name);
    put_s("kind", &d.kind);
    put_s("writeKey", d.config.write_key.expose());
    put_s("region", d.config.region.as_str());
    if let Some(kind) = &d.config.user_id_context_kind {
        put_s("userIDContextKind", kind);
    }
    if let Some(kind) = &d.config.anonymous_id_context_kind {
        put_s("anonymousIDContextKind", kind);
    }
    item.insert("on".into(), AttributeValue::Bool(d.on));
    item.insert(
        "includeCustomData".into(),
        AttributeValue::Bool(d.config.include_custom_data),
    );
    item.insert("version".into(), AttributeValue::N(d.version.to_string()));
    item.insert("createdAt".into(), AttributeValue::N(d.created_at.to_string()));
    item
}

fn settings_from_item(item: &Item) -> Result<ExportSettings, StoreError> {
    let flags = match item.get("flags") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| match v {
                AttributeValue::Bool(b) => Ok((k.clone(), *b)),
                _ => Err(malformed(item, format!("flag `{k}` is not a boolean"))),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?,
        None => BTreeMap::new(),
        Some(_) => return Err(malformed(item, "`flags` is not a map")),
    };
    Ok(ExportSettings {
        all_flags: boolean(item, "allFlags").unwrap_or(false),
        flags,
        version: number(item, "version").unwrap_or(0),
    })
}

fn settings_to_item(project: &str, environment: &str, s: &ExportSettings) -> Item {
    let flags = s
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), AttributeValue::Bool(*v)))
        .collect();
    Item::from([
        (
            "pk".into(),
            AttributeValue::S(environment_pk(project, environment)),
        ),
        ("sk".into(), AttributeValue::S(SETTINGS_SK.into())),
        ("project".into(), AttributeValue::S(project.into())),
        ("environment".into(), AttributeValue::S(environment.into())),
        ("allFlags".into(), AttributeValue::Bool(s.all_flags)),
        ("flags".into(), AttributeValue::M(flags)),
        ("version".into(), AttributeValue::N(s.version.to_string())),
    ])
}

/// What the management API reads and writes. Every write is conditional: on the
/// item not existing (create) or on its stored `version` (replace).
pub trait DestinationRepository: Send + Sync {
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

    /// Every destination of every environment.
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

impl DestinationRepository for DynamoStore {
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
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(environment_pk(project, environment)))
            .key("sk", AttributeValue::S(destination_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.as_ref().map(destination_from_item).transpose()
    }

    async fn delete_destination(&self, project: &str, environment: &str, id: &str) -> Result<(), StoreError> {
        self.count();
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(environment_pk(project, environment)))
            .key("sk", AttributeValue::S(destination_sk(id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(StoreError::dynamo("DeleteItem", e)),
        }
    }

    /// Follows Scan pagination, so the list is complete.
    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let mut destinations = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.count();
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(DESTINATION_SK_PREFIX.into()))
                .set_limit(self.scan_page_size)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Scan", e))?;
            for item in page.items.unwrap_or_default() {
                destinations.push(destination_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        destinations
            .sort_by(|a, b| (&a.project, &a.environment, &a.id).cmp(&(&b.project, &b.environment, &b.id)));
        Ok(destinations)
    }

    async fn get_settings(&self, project: &str, environment: &str) -> Result<ExportSettings, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(environment_pk(project, environment)))
            .key("sk", AttributeValue::S(SETTINGS_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item
            .as_ref()
            .map(settings_from_item)
            .transpose()
            .map(Option::unwrap_or_default)
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

impl DynamoStore {
    async fn put_conditional(
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
            Err(e) => Err(StoreError::dynamo("PutItem", e)),
        }
    }
}

fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            config: SegmentConfig {
                write_key: WriteKey::new("wk"),
                region: Region::Eu,
                user_id_context_kind: Some("account".into()),
                anonymous_id_context_kind: None,
                include_custom_data: true,
            },
        }
    }

    #[test]
    fn destination_items_round_trip() {
        let d = sample();
        let item = destination_to_item(&d);
        assert_eq!(string(&item, "pk").unwrap(), "ENV#p#e");
        assert_eq!(string(&item, "sk").unwrap(), "DEST#d1");
        assert_eq!(destination_from_item(&item).unwrap(), d);
    }

    #[test]
    fn settings_items_round_trip() {
        let s = ExportSettings {
            all_flags: false,
            flags: BTreeMap::from([("a".into(), true), ("b".into(), false)]),
            version: 4,
        };
        assert_eq!(settings_from_item(&settings_to_item("p", "e", &s)).unwrap(), s);
    }

    #[test]
    fn malformed_items_are_reported_without_secrets() {
        let mut item = destination_to_item(&sample());
        item.remove("version");
        let err = destination_from_item(&item).unwrap_err().to_string();
        assert!(err.contains("version") && !err.contains("wk\""), "{err}");
    }
}
