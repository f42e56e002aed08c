//! In-memory stand-ins for the store, the Segment sender and the event archive, for fast in-process tests
//! of the logic above them (routing, packing, failure accounting, scheduling). The
//! real `DynamoStore` and `SegmentClient` are tested against moto and the receiver.
//!
//! `MemoryStore` implements the whole store trait family (`Store`, `SourceStore`,
//! `DeliveryStore`) with `DynamoStore`'s rules; `tests/tests/in_process/store_contract.rs` runs the
//! same behaviours (`tests/src/store_contract.rs`) against both.

use bytes::Bytes;
use serde_json::Value;
use shared::archive::{Archive, ArchiveError, ArchiveReader};
use shared::deadline::Deadline;
use shared::delivery_status::{DeliveryReport, DeliveryStatus, HourCount};
use shared::destination::{Destination, EnvironmentConfig, ExportSettings};
use shared::replay::{Replay, ReplayCounts, ReplayKey};
use shared::requeue::{Replacement, Requeue, Visibility};
use shared::segment::{Accepted, DeliveryError, SegmentApi};
use shared::sources::{EventSources, Resolved, SourceKind};
use shared::store::{
    DeliveryStore, DestinationKey, DestinationPage, ReplayStore, SourceStore, Store, StoreError,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type EnvironmentKey = (String, String);

#[derive(Default)]
struct Environment {
    destinations: BTreeMap<String, Destination>,
    /// `None` until written: like the table's settings item, whose absence is what a
    /// write expecting version 0 requires.
    settings: Option<ExportSettings>,
}

/// A destination's delivery status as the table keeps it: a ring of 24 hourly slots
/// (`DeliveryReport::slot`), each holding one hour's counts until a later hour reuses it.
#[derive(Default)]
struct DeliveryItem {
    /// Every field but `hours`.
    status: DeliveryStatus,
    slots: BTreeMap<u64, HourCount>,
}

/// Event sources, and the lookup of every registered credential, changed together.
#[derive(Default)]
struct Sources {
    by_environment: BTreeMap<EnvironmentKey, EventSources>,
    /// (kind, lookup id) to the environment it belongs to and its allowed origins.
    lookups: HashMap<(&'static str, String), Resolved>,
}

/// A table in memory with the same conditional-write rules as `DynamoStore`. Clones
/// share the table, so a test can keep one while an exporter owns another. Listings page
/// like `DynamoStore`'s, from one sorted map (there are no Scan requests to size:
/// `DynamoStore::with_scan_page_size`).
#[derive(Default, Clone)]
pub struct MemoryStore {
    table: Arc<Table>,
}

#[derive(Default)]
struct Table {
    environments: Mutex<BTreeMap<EnvironmentKey, Environment>>,
    /// Delivery status by (project, environment, destination id).
    deliveries: Mutex<BTreeMap<(String, String, String), DeliveryItem>>,
    sources: Mutex<Sources>,
    failing: Mutex<HashSet<EnvironmentKey>>,
    /// Destinations whose status was forgotten: no report writes it again.
    forgotten: Mutex<HashSet<(String, String, String)>>,
    /// Environments whose reads take this long (Tokio's clock: paused in the tests).
    slow: Mutex<HashMap<EnvironmentKey, Duration>>,
    environment_reads: AtomicU64,
    /// Environments whose reads were answered (not given up on), in order.
    answered: Mutex<Vec<EnvironmentKey>>,
    /// How long each delivery-status write takes (Tokio's clock), and the most in flight.
    status_write_delay: Mutex<Duration>,
    status_writes: InFlight,
    /// Replays by (project, environment, destination, replay id).
    replays: Mutex<BTreeMap<(String, String, String, String), Replay>>,
}

/// Counts calls in flight and the most there ever were at once.
#[derive(Default)]
pub struct InFlight {
    now: AtomicU64,
    peak: AtomicU64,
}

impl InFlight {
    /// Counts one call until the guard drops.
    pub fn enter(&self) -> InFlightGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        InFlightGuard(self)
    }

    /// The most calls in flight at once so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

pub struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn key(project: &str, environment: &str) -> EnvironmentKey {
    (project.to_owned(), environment.to_owned())
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes reads of this environment fail, as an unreachable DynamoDB would.
    pub fn fail_reads_of(&self, project: &str, environment: &str) {
        self.table
            .failing
            .lock()
            .unwrap()
            .insert(key(project, environment));
    }

    /// Makes reads of this environment take `delay`, as a throttled or overloaded table would.
    pub fn slow_reads_of(&self, project: &str, environment: &str, delay: Duration) {
        self.table
            .slow
            .lock()
            .unwrap()
            .insert(key(project, environment), delay);
    }

    /// `environment` reads answered so far.
    pub fn environment_reads(&self) -> u64 {
        self.table.environment_reads.load(Ordering::Relaxed)
    }

    /// The environments whose reads were answered (a read given up on is not).
    pub fn answered_reads(&self) -> Vec<(String, String)> {
        self.table.answered.lock().unwrap().clone()
    }

    /// Makes every delivery-status write take `delay`.
    pub fn slow_status_writes(&self, delay: Duration) {
        *self.table.status_write_delay.lock().unwrap() = delay;
    }

    /// The most delivery-status writes in flight at once so far.
    pub fn peak_status_writes(&self) -> u64 {
        self.table.status_writes.peak()
    }

    /// Puts a destination, replacing any with its id.
    pub fn put_destination(&self, d: Destination) {
        let mut envs = self.table.environments.lock().unwrap();
        let env = envs.entry(key(&d.project, &d.environment)).or_default();
        env.destinations.insert(d.id.clone(), d);
    }

    /// Replaces the settings of an environment.
    pub fn put_export_settings(&self, project: &str, environment: &str, all_flags: bool, flags: &[&str]) {
        let mut envs = self.table.environments.lock().unwrap();
        let env = envs.entry(key(project, environment)).or_default();
        let version = env.settings.as_ref().map_or(0, |s| s.version) + 1;
        env.settings = Some(ExportSettings {
            all_flags,
            flags: flags.iter().map(|f| (f.to_string(), true)).collect(),
            version,
        });
    }
}

impl DeliveryItem {
    /// The table's update (`shared/src/store/delivery.rs`): counts add to the slot when it
    /// holds the report's hour, a later hour resets the slot; a slot already past the
    /// report's hour fails every condition, and the report is refused.
    fn record(&mut self, report: &DeliveryReport) -> Result<(), StoreError> {
        let hour = report.hour();
        match self.slots.get_mut(&report.slot()) {
            Some(bucket) if bucket.hour == hour => {
                bucket.delivered += report.delivered;
                bucket.failed += report.failed;
                bucket.skipped.add(&report.skipped);
            }
            Some(bucket) if bucket.hour > hour => return Err(StoreError::VersionConflict),
            _ => {
                self.slots.insert(
                    report.slot(),
                    HourCount {
                        hour,
                        delivered: report.delivered,
                        failed: report.failed,
                        skipped: report.skipped.clone(),
                    },
                );
            }
        }
        // The other fields as the model has them (its buckets are the slots').
        self.status.apply(report);
        self.status.hours.clear();
        Ok(())
    }

    fn status(&self) -> DeliveryStatus {
        DeliveryStatus {
            hours: self.slots.values().cloned().collect(),
            ..self.status.clone()
        }
    }
}

impl DeliveryStore for MemoryStore {
    async fn record_delivery(
        &self,
        project: &str,
        environment: &str,
        id: &str,
        report: &DeliveryReport,
    ) -> Result<(), StoreError> {
        let _in_flight = self.table.status_writes.enter();
        let delay = *self.table.status_write_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut deliveries = self.table.deliveries.lock().unwrap();
        let key = (project.to_owned(), environment.to_owned(), id.to_owned());
        if self.table.forgotten.lock().unwrap().contains(&key) {
            return Err(StoreError::NotFound);
        }
        match deliveries.get_mut(&key) {
            Some(delivery) => delivery.record(report),
            None => {
                let mut delivery = DeliveryItem::default();
                delivery.record(report)?;
                deliveries.insert(key, delivery);
                Ok(())
            }
        }
    }

    async fn delivery_statuses(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<HashMap<String, DeliveryStatus>, StoreError> {
        let deliveries = self.table.deliveries.lock().unwrap();
        Ok(deliveries
            .iter()
            .filter(|((p, e, _), _)| p == project && e == environment)
            .map(|((_, _, id), d)| (id.clone(), d.status()))
            .collect())
    }

    async fn forget_delivery(&self, project: &str, environment: &str, id: &str) {
        let key = (project.to_owned(), environment.to_owned(), id.to_owned());
        self.table.deliveries.lock().unwrap().remove(&key);
        self.table.forgotten.lock().unwrap().insert(key);
    }
}

impl Store for MemoryStore {
    async fn environment(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<Arc<EnvironmentConfig>, StoreError> {
        self.table.environment_reads.fetch_add(1, Ordering::Relaxed);
        let delay = self
            .table
            .slow
            .lock()
            .unwrap()
            .get(&key(project, environment))
            .copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if self
            .table
            .failing
            .lock()
            .unwrap()
            .contains(&key(project, environment))
        {
            return Err(StoreError::Dynamo {
                operation: "Query",
                source: "injected failure".into(),
            });
        }
        self.table
            .answered
            .lock()
            .unwrap()
            .push(key(project, environment));
        let envs = self.table.environments.lock().unwrap();
        Ok(Arc::new(envs.get(&key(project, environment)).map_or_else(
            EnvironmentConfig::default,
            |env| EnvironmentConfig {
                destinations: env.destinations.values().cloned().collect(),
                settings: env.settings.clone().unwrap_or_default(),
                // Items here are always readable; DynamoStore's malformed ones are
                // tested on moto (tests/tests/end_to_end/lambda_e2e.rs).
                unreadable_destinations: 0,
            },
        )))
    }

    async fn create_destination(&self, d: &Destination) -> Result<(), StoreError> {
        let mut envs = self.table.environments.lock().unwrap();
        let env = envs.entry(key(&d.project, &d.environment)).or_default();
        if env.destinations.contains_key(&d.id) {
            return Err(StoreError::VersionConflict);
        }
        env.destinations.insert(d.id.clone(), d.clone());
        Ok(())
    }

    async fn replace_destination(&self, d: &Destination, expected_version: u64) -> Result<(), StoreError> {
        let mut envs = self.table.environments.lock().unwrap();
        let env = envs.entry(key(&d.project, &d.environment)).or_default();
        match env.destinations.get(&d.id) {
            Some(stored) if stored.version == expected_version => {
                env.destinations.insert(d.id.clone(), d.clone());
                Ok(())
            }
            _ => Err(StoreError::VersionConflict),
        }
    }

    async fn get_destination(
        &self,
        project: &str,
        environment: &str,
        id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        let envs = self.table.environments.lock().unwrap();
        Ok(envs
            .get(&key(project, environment))
            .and_then(|env| env.destinations.get(id).cloned()))
    }

    async fn record_key_check(
        &self,
        destination: &Destination,
        check: &shared::segment::verify::KeyCheck,
    ) -> Result<(), StoreError> {
        let mut envs = self.table.environments.lock().unwrap();
        let stored = envs
            .get_mut(&key(&destination.project, &destination.environment))
            .and_then(|env| env.destinations.get_mut(&destination.id))
            .ok_or(StoreError::NotFound)?;
        if stored.config.write_key.expose() != destination.config.write_key.expose() {
            return Err(StoreError::VersionConflict);
        }
        stored.write_key_check = check.clone();
        Ok(())
    }

    async fn delete_destination(&self, project: &str, environment: &str, id: &str) -> Result<(), StoreError> {
        let mut envs = self.table.environments.lock().unwrap();
        envs.get_mut(&key(project, environment))
            .and_then(|env| env.destinations.remove(id))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    /// Sorted by project, environment and id: a stable order in which each environment's
    /// destinations come together, as DynamoDB's Scan has them.
    async fn list_destinations_page(
        &self,
        limit: usize,
        after: Option<&DestinationKey>,
    ) -> Result<DestinationPage, StoreError> {
        let envs = self.table.environments.lock().unwrap();
        let from = after.map_or_else(Default::default, |k| key(&k.project, &k.environment));
        let listed = envs
            .range(from..)
            .flat_map(|(env, e)| e.destinations.values().map(move |d| (env, d)))
            .filter(|(env, d)| {
                after
                    .is_none_or(|k| **env != key(&k.project, &k.environment) || d.id.as_str() > k.id.as_str())
            })
            .map(|(_, d)| d.clone());
        Ok(memory_page(listed, limit))
    }

    async fn environment_destinations_page(
        &self,
        project: &str,
        environment: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DestinationPage, StoreError> {
        let envs = self.table.environments.lock().unwrap();
        let listed = envs
            .get(&key(project, environment))
            .into_iter()
            .flat_map(|env| env.destinations.values())
            .filter(|d| after.is_none_or(|after| d.id.as_str() > after))
            .cloned();
        Ok(memory_page(listed, limit))
    }

    async fn get_settings(&self, project: &str, environment: &str) -> Result<ExportSettings, StoreError> {
        let envs = self.table.environments.lock().unwrap();
        Ok(envs
            .get(&key(project, environment))
            .and_then(|env| env.settings.clone())
            .unwrap_or_default())
    }

    async fn put_settings(
        &self,
        project: &str,
        environment: &str,
        settings: &ExportSettings,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let mut envs = self.table.environments.lock().unwrap();
        let env = envs.entry(key(project, environment)).or_default();
        if !written_at(env.settings.as_ref().map(|s| s.version), expected_version) {
            return Err(StoreError::VersionConflict);
        }
        env.settings = Some(settings.clone());
        Ok(())
    }
}

/// The first `limit` (at least 1) of `listed`, and where to resume when there are more.
fn memory_page(listed: impl Iterator<Item = Destination>, limit: usize) -> DestinationPage {
    let limit = limit.max(1);
    let mut destinations: Vec<Destination> = listed.take(limit + 1).collect();
    let more = destinations.len() > limit;
    destinations.truncate(limit);
    DestinationPage {
        next: destinations.last().filter(|_| more).map(DestinationKey::of),
        destinations,
    }
}

/// The table's condition on a write expecting `expected` (0: no item yet) when the item
/// is `stored` (its version, if any).
fn written_at(stored: Option<u64>, expected: u64) -> bool {
    match stored {
        None => expected == 0,
        Some(version) => expected != 0 && version == expected,
    }
}

impl SourceStore for MemoryStore {
    async fn get_sources(&self, project: &str, environment: &str) -> Result<EventSources, StoreError> {
        let sources = self.table.sources.lock().unwrap();
        Ok(sources
            .by_environment
            .get(&key(project, environment))
            .cloned()
            .unwrap_or_default())
    }

    /// As the table's transaction: all or nothing; a stale `previous` is a
    /// `VersionConflict` (checked first, as the transaction's first item), a credential
    /// added that any environment already has is `Taken`, a credential listed twice is
    /// `Refused` (two operations on one item).
    async fn put_sources(
        &self,
        project: &str,
        environment: &str,
        sources: &EventSources,
        previous: &EventSources,
    ) -> Result<(), StoreError> {
        let env = key(project, environment);
        let mut table = self.table.sources.lock().unwrap();
        let stored = table.by_environment.get(&env).map(|s| s.version);
        if !written_at(stored, previous.version) {
            return Err(StoreError::VersionConflict);
        }
        let now = sources.lookups();
        let before = previous.lookups();
        let lookup_key = |l: &shared::sources::Lookup| (l.kind.as_str(), l.id.clone());
        let added: Vec<_> = now
            .iter()
            .filter(|l| !before.iter().any(|b| b.same_credential(l)))
            .collect();
        // A client-side ID whose origins changed: its item rewritten, unless it is another
        // environment's by now.
        let changed: Vec<_> = now
            .iter()
            .filter(|l| before.iter().any(|b| b.same_credential(l) && b != *l))
            .collect();
        let removed: Vec<_> = before
            .iter()
            .filter(|b| !now.iter().any(|l| l.same_credential(b)))
            .map(lookup_key)
            .collect();
        let added_keys: Vec<_> = added.iter().map(|l| lookup_key(l)).collect();
        let distinct: HashSet<_> = added_keys.iter().chain(&removed).collect();
        if distinct.len() != added_keys.len() + removed.len() {
            return Err(StoreError::Refused {
                message: "Transaction request cannot include multiple operations on one item".into(),
            });
        }
        if added_keys.iter().any(|l| table.lookups.contains_key(l)) {
            return Err(StoreError::Taken);
        }
        let elsewhere = |r: &Resolved| (r.project.as_str(), r.environment.as_str()) != (project, environment);
        if changed
            .iter()
            .any(|l| table.lookups.get(&lookup_key(l)).is_some_and(elsewhere))
        {
            return Err(StoreError::Taken);
        }
        for l in removed {
            table.lookups.remove(&l);
        }
        for l in added.into_iter().chain(changed) {
            let resolved = Resolved {
                project: project.to_owned(),
                environment: environment.to_owned(),
                allowed_origins: l.allowed_origins.clone(),
            };
            table.lookups.insert(lookup_key(l), resolved);
        }
        table.by_environment.insert(env, sources.clone());
        Ok(())
    }

    async fn resolve(&self, kind: SourceKind, lookup_id: &str) -> Result<Option<Resolved>, StoreError> {
        let table = self.table.sources.lock().unwrap();
        Ok(table.lookups.get(&(kind.as_str(), lookup_id.to_owned())).cloned())
    }
}

/// What the in-memory Segment answers to one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Take the messages and answer 200 after this long.
    Accept(Duration),
    /// Refuse after this long, taking nothing.
    Fail(Duration, DeliveryError),
}

/// One request the in-memory Segment received.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub write_key: String,
    pub messages: Vec<Value>,
    pub sent_at: Option<String>,
    /// Tokio time when it arrived, since the sender was made.
    pub at: Duration,
    pub accepted: bool,
}

/// A Segment sender that records every request and answers from a script per write key
/// (default: accept at once). Time is Tokio's, so tests can pause it.
pub struct MemorySegment {
    started: tokio::time::Instant,
    requests: Mutex<Vec<SentRequest>>,
    scripts: Mutex<HashMap<String, Script>>,
    /// Event ids whose messages make a request invalid (400), as a poison message would.
    poison: Mutex<HashSet<String>>,
    in_flight: InFlight,
    /// The invocation's deadline on Tokio's clock: no answer comes later.
    deadline: Mutex<Option<tokio::time::Instant>>,
}

/// Answers queued for the next requests of a write key, then one for all the rest.
#[derive(Default)]
struct Script {
    next: VecDeque<Answer>,
    always: Option<Answer>,
}

impl Default for MemorySegment {
    fn default() -> Self {
        Self {
            started: tokio::time::Instant::now(),
            requests: Mutex::default(),
            scripts: Mutex::default(),
            poison: Mutex::default(),
            in_flight: InFlight::default(),
            deadline: Mutex::default(),
        }
    }
}

impl MemorySegment {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers for the next requests of a write key, then `always` for the rest.
    pub fn script(&self, write_key: &str, next: Vec<Answer>, always: Option<Answer>) {
        self.scripts.lock().unwrap().insert(
            write_key.to_owned(),
            Script {
                next: next.into(),
                always,
            },
        );
    }

    /// No request answers later than `after` from now (Tokio's clock): one that would
    /// fails at that time, out of time, as the real client does at the deadline.
    pub fn answer_within(&self, after: Duration) {
        *self.deadline.lock().unwrap() = Some(tokio::time::Instant::now() + after);
    }

    /// The most requests in flight at once so far.
    pub fn peak_in_flight(&self) -> u64 {
        self.in_flight.peak()
    }

    /// Any request holding a message of this event is refused with 400.
    pub fn refuse_event(&self, event_id: &str) {
        self.poison.lock().unwrap().insert(event_id.to_owned());
    }

    pub fn requests(&self, write_key: Option<&str>) -> Vec<SentRequest> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| write_key.is_none_or(|k| r.write_key == k))
            .cloned()
            .collect()
    }

    /// Messages of accepted requests.
    pub fn messages(&self, write_key: Option<&str>) -> Vec<Value> {
        self.requests(write_key)
            .into_iter()
            .filter(|r| r.accepted)
            .flat_map(|r| r.messages)
            .collect()
    }

    fn next_answer(&self, write_key: &str) -> Answer {
        let mut scripts = self.scripts.lock().unwrap();
        scripts
            .get_mut(write_key)
            .and_then(|s| s.next.pop_front().or_else(|| s.always.clone()))
            .unwrap_or(Answer::Accept(Duration::ZERO))
    }
}

impl SegmentApi for MemorySegment {
    async fn send_batch(
        &self,
        destination: &Destination,
        body: Bytes,
        _deadline: Deadline,
    ) -> Result<Accepted, DeliveryError> {
        let _in_flight = self.in_flight.enter();
        let write_key = destination.config.write_key.expose().to_owned();
        let at = self.started.elapsed();
        let answer = self.next_answer(&write_key);
        let body: Value = serde_json::from_slice(&body).expect("a /v1/batch body is JSON");
        let messages = body["batch"].as_array().cloned().unwrap_or_default();
        let sent_at = body["sentAt"].as_str().map(str::to_owned);
        let poisoned = {
            let poison = self.poison.lock().unwrap();
            messages.iter().any(|m| {
                m["properties"]["eventId"]
                    .as_str()
                    .is_some_and(|id| poison.contains(id))
            })
        };
        let answer = match answer {
            Answer::Accept(wait) if poisoned => Answer::Fail(
                wait,
                DeliveryError::Rejected {
                    attempts: 1,
                    status: 400,
                    message: "a message in the batch is invalid".into(),
                },
            ),
            answer => answer,
        };
        let (wait, result) = match answer {
            Answer::Accept(wait) => (
                wait,
                Ok(Accepted {
                    status: 200,
                    attempts: 1,
                }),
            ),
            Answer::Fail(wait, e) => (wait, Err(e)),
        };
        // Like the real client, never past the invocation's deadline (on Tokio's clock,
        // when a test set one: `Deadline` is on the system's, which paused time stops not).
        let left = self
            .deadline
            .lock()
            .unwrap()
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let (wait, result) = match left {
            Some(left) if wait > left => {
                let out_of_time = DeliveryError::OutOfTime {
                    attempts: 1,
                    last: "no answer before the deadline".into(),
                };
                (left, Err(out_of_time))
            }
            _ => (wait, result),
        };
        tokio::time::sleep(wait).await;
        self.requests.lock().unwrap().push(SentRequest {
            write_key,
            messages,
            sent_at,
            at,
            accepted: result.is_ok(),
        });
        result
    }
}

/// Records the visibilities the exporter sets and the records it replaces, instead of
/// calling SQS.
#[derive(Default, Clone)]
pub struct MemoryRequeue {
    set: Arc<Mutex<Vec<Visibility>>>,
    replaced: Arc<Mutex<Vec<Replacement>>>,
}

impl MemoryRequeue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every visibility set so far, by receipt handle.
    pub fn visibilities(&self) -> HashMap<String, Duration> {
        self.set
            .lock()
            .unwrap()
            .iter()
            .map(|v| (v.receipt_handle.clone(), v.timeout))
            .collect()
    }
}

impl MemoryRequeue {
    /// The replacements made since the last call.
    pub fn take_replacements(&self) -> Vec<Replacement> {
        std::mem::take(&mut *self.replaced.lock().unwrap())
    }
}

impl Requeue for MemoryRequeue {
    async fn set_visibility(&self, records: Vec<Visibility>) -> u64 {
        self.set.lock().unwrap().extend(records);
        0
    }

    async fn replace(&self, replacements: Vec<Replacement>) -> Vec<bool> {
        let done = vec![true; replacements.len()];
        self.replaced.lock().unwrap().extend(replacements);
        done
    }
}

/// An event archive in memory: objects by key, each gunzipped on reading. Clones share
/// the objects. Writing a key twice is a test failure (keys are never reused).
#[derive(Default, Clone)]
pub struct MemoryArchive {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// Writes refused while failing.
    refused: Arc<AtomicU64>,
}

impl MemoryArchive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write fail (`true`), as an S3 outage would, or succeed again.
    pub fn fail_writes(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The keys written, in order.
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// Every object's lines, parsed, with the key of its object.
    pub fn lines(&self) -> Vec<(String, Value)> {
        let objects = self.objects.lock().unwrap();
        objects
            .iter()
            .flat_map(|(key, body)| {
                gunzip_lines(body)
                    .into_iter()
                    .map(move |line| (key.clone(), line))
            })
            .collect()
    }
}

/// The JSON Lines of a gzipped object, each parsed.
pub fn gunzip_lines(body: &[u8]) -> Vec<Value> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .expect("an archive object is gzipped UTF-8");
    assert!(text.ends_with('\n'), "every line ends in a newline");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON value"))
        .collect()
}

impl ArchiveReader for MemoryArchive {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Bytes, ArchiveError> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| ArchiveError {
                key: key.to_owned(),
                message: "no such object".into(),
            })
    }
}

impl Archive for MemoryArchive {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ArchiveError> {
        if self.failing.load(Ordering::Relaxed) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ArchiveError {
                key: key.to_owned(),
                message: "service unavailable (memory archive set to fail)".into(),
            });
        }
        let previous = self.objects.lock().unwrap().insert(key.to_owned(), body);
        assert!(previous.is_none(), "the archive key {key} was written twice");
        Ok(())
    }
}

fn replay_key(key: &ReplayKey) -> (String, String, String, String) {
    (
        key.project.clone(),
        key.environment.clone(),
        key.destination.clone(),
        key.id.clone(),
    )
}

/// Replays as `DynamoStore` keeps them: counts only added to, never on a missing replay.
impl ReplayStore for MemoryStore {
    async fn create_replay(&self, replay: &Replay) -> Result<(), StoreError> {
        let mut replays = self.table.replays.lock().unwrap();
        let key = replay_key(&replay.key);
        if replays.contains_key(&key) {
            return Err(StoreError::VersionConflict);
        }
        replays.insert(key, replay.clone());
        Ok(())
    }

    async fn get_replay(&self, key: &ReplayKey) -> Result<Option<Replay>, StoreError> {
        Ok(self.table.replays.lock().unwrap().get(&replay_key(key)).cloned())
    }

    async fn list_replays(
        &self,
        project: &str,
        environment: &str,
        destination: &str,
    ) -> Result<Vec<Replay>, StoreError> {
        let replays = self.table.replays.lock().unwrap();
        let mut listed: Vec<Replay> = replays
            .values()
            .filter(|r| {
                r.key.project == project
                    && r.key.environment == environment
                    && r.key.destination == destination
            })
            .cloned()
            .collect();
        listed.sort_by(|a, b| b.key.id.cmp(&a.key.id));
        listed.truncate(50);
        Ok(listed)
    }

    async fn count_replay(&self, key: &ReplayKey, counts: &ReplayCounts) -> Result<(), StoreError> {
        let mut replays = self.table.replays.lock().unwrap();
        let replay = replays.get_mut(&replay_key(key)).ok_or(StoreError::NotFound)?;
        let c = &mut replay.counts;
        c.read += counts.read;
        c.queued += counts.queued;
        c.delivered += counts.delivered;
        c.failed += counts.failed;
        c.skipped += counts.skipped;
        Ok(())
    }

    async fn finish_replay_reading(
        &self,
        key: &ReplayKey,
        at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut replays = self.table.replays.lock().unwrap();
        let replay = replays.get_mut(&replay_key(key)).ok_or(StoreError::NotFound)?;
        replay.read_at = Some(at);
        if let Some(error) = error {
            replay.error = Some(error.to_owned());
        }
        Ok(())
    }
}

/// A queue in memory: keeps what is sent; fails every send while `fail` is set. Clones
/// share it.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    pub sent: Arc<Mutex<Vec<String>>>,
    pub fail: Arc<Mutex<bool>>,
}

impl MemoryQueue {
    /// The messages sent so far, taken off the queue.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl shared::ingest::queue::EventQueue for MemoryQueue {
    async fn send(&self, messages: Vec<String>) -> Result<(), shared::ingest::queue::QueueError> {
        if *self.fail.lock().unwrap() {
            return Err(shared::ingest::queue::QueueError::Refused {
                count: messages.len(),
                code: "ServiceUnavailable".into(),
            });
        }
        self.sent.lock().unwrap().extend(messages);
        Ok(())
    }
}
