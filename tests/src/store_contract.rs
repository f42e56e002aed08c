//! One suite of store behaviours, generic over the store: what the traits of
//! `shared::store` (`Store`, `SourceStore`, `DeliveryStore`) promise, asserted the same
//! way for every implementation. `tests/tests/in_process/store_contract.rs` runs each behaviour
//! against `MemoryStore` and against `DynamoStore` on moto; where the two ever disagree,
//! DynamoDB's behaviour is the reference.
//!
//! Every behaviour works in projects of its own (`unique`), so that they can share one
//! table with each other and with the rest of a test binary.

use crate::fixtures::{destination, unique};
use futures::future::join_all;
use shared::delivery_status::{DeliveryReport, DeliveryStatus, HourCount};
use shared::destination::{Destination, ExportSettings};
use shared::sources::{
    AllowedOrigins, ClientSideId, EventSources, Origin, Resolved, SourceKind, key_digest, lookup_id,
};
use shared::store::{DeliveryStore, SourceStore, Store, StoreError};
use std::collections::BTreeMap;

/// Concurrent writers in the race behaviours.
pub const RACERS: usize = 8;
/// Destinations `pages_list_every_destination_once` writes, listed [`PAGE`] a page.
pub const LISTED: usize = 7;
pub const PAGE: usize = 3;

const HOUR: u64 = 3_600_000;
/// An hour's start, well in the past (the tables' slot ring does not care).
const START: u64 = 1_795_629_600_000 - 1_795_629_600_000 % HOUR;

fn project() -> String {
    unique("contract")
}

fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::VersionConflict)),
        "{what}: expected VersionConflict, got {result:?}"
    );
}

/// First settings of an environment that exports every flag.
fn all_flags() -> ExportSettings {
    ExportSettings {
        all_flags: true,
        flags: BTreeMap::new(),
        version: 1,
    }
}

fn renamed(d: &Destination, name: &str, version: u64) -> Destination {
    Destination {
        name: name.to_owned(),
        version,
        ..d.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Destinations: conditional writes.

/// `create_destination` writes a destination once: the same id again is refused
/// (`VersionConflict`) and the first stays; the same id in another environment is
/// another destination.
pub async fn create_is_refused_for_an_existing_id<S: Store>(store: &S) {
    let p = project();
    let d = destination(&p, "production", "wk-create-0001");
    store.create_destination(&d).await.unwrap();
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(d.clone())
    );

    let again = renamed(&d, "a second one", 1);
    conflict(store.create_destination(&again).await, "creating an existing id");
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(d.clone()),
        "a refused create changes nothing"
    );

    let elsewhere = Destination {
        environment: "staging".into(),
        ..d.clone()
    };
    store.create_destination(&elsewhere).await.unwrap();
    assert_eq!(
        store.get_destination(&p, "staging", &d.id).await.unwrap(),
        Some(elsewhere)
    );
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(d)
    );
}

/// `replace_destination` writes only over the stored version: the right one succeeds, a
/// stale one (or one of a destination that is not there) is `VersionConflict` and changes
/// nothing.
pub async fn replace_is_conditional_on_the_stored_version<S: Store>(store: &S) {
    let p = project();
    let d = destination(&p, "production", "wk-replace-0001");
    store.create_destination(&d).await.unwrap();

    let v2 = renamed(&d, "second", 2);
    store.replace_destination(&v2, 1).await.unwrap();
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(v2.clone())
    );

    let stale = renamed(&d, "from a stale read", 2);
    conflict(
        store.replace_destination(&stale, 1).await,
        "replacing over a stale version",
    );
    conflict(
        store.replace_destination(&stale, 3).await,
        "replacing over a version never written",
    );
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(v2.clone()),
        "a refused replace changes nothing"
    );

    let v3 = renamed(&d, "third", 3);
    store.replace_destination(&v3, 2).await.unwrap();
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(v3)
    );

    let missing = destination(&p, "production", "wk-replace-0002");
    conflict(
        store.replace_destination(&missing, 1).await,
        "replacing a destination that is not there",
    );
    assert_eq!(
        store
            .get_destination(&p, "production", &missing.id)
            .await
            .unwrap(),
        None,
        "a replace never creates"
    );
}

/// `delete_destination` removes a destination; deleting one that is not there (never
/// was, or already deleted) is `NotFound`; the same id elsewhere stays.
pub async fn delete_of_a_missing_destination_is_not_found<S: Store>(store: &S) {
    let p = project();
    let d = destination(&p, "production", "wk-delete-0001");
    let twin = Destination {
        environment: "staging".into(),
        ..d.clone()
    };
    store.create_destination(&d).await.unwrap();
    store.create_destination(&twin).await.unwrap();

    store.delete_destination(&p, "production", &d.id).await.unwrap();
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        None
    );
    assert!(matches!(
        store.delete_destination(&p, "production", &d.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_destination(&p, "production", "never-was").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_destination(&unique("nowhere"), "e", &d.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get_destination(&p, "staging", &d.id).await.unwrap(),
        Some(twin)
    );

    // Deleted, the id is free again.
    store.create_destination(&d).await.unwrap();
}

/// [`RACERS`] replaces from the same read, at once: exactly one wins, every other is
/// `VersionConflict`, and the stored destination is the winner's.
pub async fn concurrent_replaces_have_one_winner<S: Store>(store: &S) {
    let p = project();
    let d = destination(&p, "production", "wk-race-0001");
    store.create_destination(&d).await.unwrap();
    let read = store
        .get_destination(&p, "production", &d.id)
        .await
        .unwrap()
        .unwrap();

    let writes: Vec<Destination> = (0..RACERS)
        .map(|i| renamed(&read, &format!("writer {i}"), read.version + 1))
        .collect();
    let results = join_all(writes.iter().map(|w| store.replace_destination(w, read.version))).await;

    let winners: Vec<usize> = (0..RACERS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert!(matches!(r, Err(StoreError::VersionConflict)), "writer {i}: {r:?}");
        }
    }
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        Some(writes[winners[0]].clone())
    );
}

// ---------------------------------------------------------------------------------------
// Environments and settings.

/// `environment` reads one environment's destinations (by id) and settings, nothing of
/// another environment, and none of its other items (event sources, delivery status).
pub async fn an_environment_reads_its_destinations_and_settings<S>(store: &S)
where
    S: Store + SourceStore + DeliveryStore,
{
    let p = project();
    let mut ours: Vec<Destination> = (0..3)
        .map(|i| destination(&p, "production", &format!("wk-env-000{i}")))
        .collect();
    let theirs = destination(&p, "staging", "wk-env-0009");
    let other_project = destination(&project(), "production", "wk-env-0010");
    for d in ours.iter().chain([&theirs, &other_project]) {
        store.create_destination(d).await.unwrap();
    }
    let settings = ExportSettings {
        all_flags: false,
        flags: BTreeMap::from([("new-checkout".to_owned(), true)]),
        version: 1,
    };
    store.put_settings(&p, "production", &settings, 0).await.unwrap();
    let staging = all_flags();
    store.put_settings(&p, "staging", &staging, 0).await.unwrap();
    // Other items of the environment.
    let sources = EventSources {
        client_side_ids: vec![ClientSideId::any_origin(unique("client"))],
        version: 1,
        ..EventSources::default()
    };
    store
        .put_sources(&p, "production", &sources, &EventSources::default())
        .await
        .unwrap();
    store
        .record_delivery(&p, "production", &ours[0].id, &report(0, 1, 0))
        .await
        .unwrap();

    let config = store.environment(&p, "production").await.unwrap();
    ours.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(config.destinations, ours, "its destinations, by id");
    assert_eq!(config.settings, settings);

    let config = store.environment(&p, "staging").await.unwrap();
    assert_eq!(config.destinations, [theirs]);
    assert_eq!(config.settings, staging);
    assert_eq!(store.get_settings(&p, "staging").await.unwrap(), staging);

    // Deleted, a destination is no longer read.
    store
        .delete_destination(&p, "production", &ours[1].id)
        .await
        .unwrap();
    ours.remove(1);
    let config = store.environment(&p, "production").await.unwrap();
    assert_eq!(config.destinations, ours);
}

/// An environment nothing was written for reads as defaults: no destinations, settings
/// all off at version 0, no event sources, no delivery status.
pub async fn an_environment_never_set_reads_as_defaults<S>(store: &S)
where
    S: Store + SourceStore + DeliveryStore,
{
    let p = project();
    // Its neighbour has everything.
    let d = destination(&p, "staging", "wk-defaults-0001");
    store.create_destination(&d).await.unwrap();
    store.put_settings(&p, "staging", &all_flags(), 0).await.unwrap();

    let config = store.environment(&p, "production").await.unwrap();
    assert!(config.destinations.is_empty());
    assert_eq!(config.settings, ExportSettings::default());
    assert_eq!(config.settings.version, 0);
    assert_eq!(
        store.get_settings(&p, "production").await.unwrap(),
        ExportSettings::default()
    );
    assert_eq!(
        store.get_destination(&p, "production", &d.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_sources(&p, "production").await.unwrap(),
        EventSources::default()
    );
    assert!(
        store
            .delivery_statuses(&p, "production")
            .await
            .unwrap()
            .is_empty()
    );
}

/// `put_settings` writes over the stored version only: 0 when never written, then each
/// write's own; a stale one is `VersionConflict` and changes nothing; of [`RACERS`]
/// writes from the same read, one wins.
pub async fn settings_writes_are_conditional_on_their_version<S: Store>(store: &S) {
    let p = project();
    let settings = |all_flags: bool, flag: &str, version: u64| ExportSettings {
        all_flags,
        flags: BTreeMap::from([(flag.to_owned(), true)]),
        version,
    };
    conflict(
        store
            .put_settings(&p, "production", &settings(true, "a", 2), 1)
            .await,
        "settings expecting a version never written",
    );
    let v1 = settings(false, "a", 1);
    store.put_settings(&p, "production", &v1, 0).await.unwrap();
    assert_eq!(store.get_settings(&p, "production").await.unwrap(), v1);
    conflict(
        store
            .put_settings(&p, "production", &settings(true, "b", 1), 0)
            .await,
        "settings expecting none when there are",
    );
    let v2 = settings(true, "b", 2);
    store.put_settings(&p, "production", &v2, 1).await.unwrap();
    conflict(
        store
            .put_settings(&p, "production", &settings(false, "c", 2), 1)
            .await,
        "settings over a stale version",
    );
    assert_eq!(store.get_settings(&p, "production").await.unwrap(), v2);
    assert_eq!(store.environment(&p, "production").await.unwrap().settings, v2);

    let writes: Vec<ExportSettings> = (0..RACERS)
        .map(|i| settings(i % 2 == 0, &format!("racer-{i}"), 3))
        .collect();
    let results = join_all(writes.iter().map(|s| store.put_settings(&p, "production", s, 2))).await;
    let winners: Vec<usize> = (0..RACERS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::VersionConflict))),
        "{results:?}"
    );
    assert_eq!(
        store.get_settings(&p, "production").await.unwrap(),
        writes[winners[0]]
    );
}

// ---------------------------------------------------------------------------------------
// Listing.

/// Every page of the list of every environment's destinations, following `next` from the
/// start, `limit` at a time.
pub async fn every_page<S: Store>(store: &S, limit: usize) -> Vec<Vec<Destination>> {
    let (mut pages, mut after) = (Vec::new(), None);
    loop {
        let page = store.list_destinations_page(limit, after.as_ref()).await.unwrap();
        assert!(
            page.destinations.len() <= limit,
            "a page of {limit} has {}",
            page.destinations.len()
        );
        pages.push(page.destinations);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

fn keys(d: &Destination) -> (String, String, String) {
    (d.project.clone(), d.environment.clone(), d.id.clone())
}

/// Pages of the list of every environment's destinations, followed by `next`, list each
/// destination once and nothing else (no settings, no deleted one): each environment's
/// together and sorted by id, in the same order on every listing, and only the last page
/// without a `next`. [`LISTED`] destinations at [`PAGE`] a page span several pages (and,
/// on `DynamoStore` with small Scan requests, several requests a page).
pub async fn pages_list_every_destination_once<S: Store>(store: &S) {
    let prefix = project();
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    let places = [
        (&b, "staging"),
        (&a, "production"),
        (&b, "production"),
        (&a, "staging"),
    ];
    let mut written: Vec<Destination> = (0..LISTED)
        .map(|i| {
            let (p, e) = places[i % places.len()];
            destination(p, e, &format!("wk-list-{i:04}"))
        })
        .collect();
    for d in &written {
        store.create_destination(d).await.unwrap();
    }
    store
        .put_settings(&a, "production", &all_flags(), 0)
        .await
        .unwrap();
    let gone = destination(&a, "production", "wk-list-gone");
    store.create_destination(&gone).await.unwrap();
    store
        .delete_destination(&a, "production", &gone.id)
        .await
        .unwrap();

    let ours = |pages: &[Vec<Destination>]| -> Vec<Destination> {
        pages
            .iter()
            .flatten()
            .filter(|d| d.project == a || d.project == b)
            .cloned()
            .collect()
    };
    let pages = every_page(store, PAGE).await;
    let listed: Vec<_> = pages.iter().flatten().map(keys).collect();
    let distinct: std::collections::HashSet<_> = listed.iter().collect();
    assert_eq!(distinct.len(), listed.len(), "a destination listed twice");
    assert!(
        pages[..pages.len() - 1].iter().all(|p| p.len() == PAGE),
        "every page but the last is full"
    );
    let mine = ours(&pages);
    // Each environment together, sorted by id.
    let mut environments: Vec<(String, String)> = mine
        .iter()
        .map(|d| (d.project.clone(), d.environment.clone()))
        .collect();
    environments.dedup();
    assert_eq!(
        environments.len(),
        4,
        "each environment's destinations together: {environments:?}"
    );
    for (p, e) in &environments {
        let ids: Vec<&String> = mine
            .iter()
            .filter(|d| &d.project == p && &d.environment == e)
            .map(|d| &d.id)
            .collect();
        assert!(ids.is_sorted(), "{p}/{e}: sorted by id");
    }
    written.sort_by_key(keys);
    let mut sorted = mine.clone();
    sorted.sort_by_key(keys);
    assert_eq!(sorted, written, "every destination written, and nothing else");
    assert_eq!(
        ours(&every_page(store, PAGE + 1).await),
        mine,
        "the same order on every listing"
    );
}

/// One environment's pages, sorted by id; a page resumes after its cursor's destination
/// even when that one was deleted meanwhile; a cursor after the last lists nothing.
pub async fn environment_pages_resume_after_their_cursor<S: Store>(store: &S) {
    let p = project();
    let mut written: Vec<Destination> = (0..5)
        .map(|i| destination(&p, "production", &format!("wk-env-page-{i:04}")))
        .collect();
    for d in &written {
        store.create_destination(d).await.unwrap();
    }
    store
        .create_destination(&destination(&p, "staging", "wk-env-page-other"))
        .await
        .unwrap();
    written.sort_by(|x, y| x.id.cmp(&y.id));
    let first = store
        .environment_destinations_page(&p, "production", 2, None)
        .await
        .unwrap();
    assert_eq!(first.destinations, written[..2]);
    let next = first.next.expect("more after the first page");
    assert_eq!(next.id, written[1].id);
    store
        .delete_destination(&p, "production", &next.id)
        .await
        .unwrap();
    let second = store
        .environment_destinations_page(&p, "production", 2, Some(&next.id))
        .await
        .unwrap();
    assert_eq!(
        second.destinations,
        written[2..4],
        "resumes after the deleted one"
    );
    let last = store
        .environment_destinations_page(&p, "production", 2, second.next.as_ref().map(|k| k.id.as_str()))
        .await
        .unwrap();
    assert_eq!((last.destinations, last.next), (written[4..].to_vec(), None));
    let after_last = store
        .environment_destinations_page(&p, "production", 2, Some(&written[4].id))
        .await
        .unwrap();
    assert_eq!(after_last, shared::store::DestinationPage::default());
    let all = store
        .environment_destinations_page(&p, "production", 50, None)
        .await
        .unwrap();
    assert_eq!(
        all.destinations.len(),
        4,
        "one environment's only, the deleted one gone"
    );
}

// ---------------------------------------------------------------------------------------
// Event sources.

/// Sources with one new credential of each kind, at version 1.
fn fresh_sources() -> (EventSources, [(SourceKind, String); 3]) {
    let (sdk, mobile, client) = (unique("sdk-key"), unique("mob-key"), unique("client-id"));
    let sources = EventSources {
        sdk_keys: vec![key_digest(&sdk)],
        mobile_keys: vec![key_digest(&mobile)],
        client_side_ids: vec![ClientSideId::any_origin(client.clone())],
        version: 1,
    };
    (
        sources,
        [
            (SourceKind::Sdk, sdk),
            (SourceKind::Mobile, mobile),
            (SourceKind::ClientSide, client),
        ],
    )
}

/// The environment a credential resolves to.
async fn resolves<S: SourceStore>(store: &S, kind: SourceKind, credential: &str) -> Option<(String, String)> {
    resolved(store, kind, credential)
        .await
        .map(|r| (r.project, r.environment))
}

async fn resolved<S: SourceStore>(store: &S, kind: SourceKind, credential: &str) -> Option<Resolved> {
    store.resolve(kind, &lookup_id(kind, credential)).await.unwrap()
}

/// The allowed origins `credential` resolves with, in `project`'s production.
async fn origins_of<S: SourceStore>(
    store: &S,
    project: &str,
    kind: SourceKind,
    credential: &str,
) -> AllowedOrigins {
    let r = resolved(store, kind, credential).await.expect("it resolves");
    assert_eq!(
        (r.project.as_str(), r.environment.as_str()),
        (project, "production")
    );
    r.allowed_origins
}

fn origins(listed: &[&str]) -> AllowedOrigins {
    AllowedOrigins::new(listed.iter().map(|o| Origin::parse(o).unwrap()))
}

/// Registered event sources (SDK keys and mobile keys by digest, client-side IDs as
/// they are) read back as written, and each credential resolves to its environment; a
/// credential nobody registered, or one of another kind, resolves to nothing.
pub async fn sources_register_and_resolve<S: SourceStore>(store: &S) {
    let p = project();
    let (sources, credentials) = fresh_sources();
    store
        .put_sources(&p, "production", &sources, &EventSources::default())
        .await
        .unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), sources);

    let here = Some((p.clone(), "production".to_owned()));
    for (kind, credential) in &credentials {
        assert_eq!(
            resolves(store, *kind, credential).await,
            here,
            "{kind:?} resolves"
        );
    }
    let [(_, sdk), (_, mobile), (_, client)] = &credentials;
    assert_eq!(
        resolves(store, SourceKind::Mobile, sdk).await,
        None,
        "an SDK key is no mobile key"
    );
    assert_eq!(resolves(store, SourceKind::Sdk, mobile).await, None);
    assert_eq!(resolves(store, SourceKind::Sdk, client).await, None);
    assert_eq!(
        resolves(store, SourceKind::Sdk, &unique("sdk-unknown")).await,
        None
    );
    assert_eq!(
        resolves(store, SourceKind::ClientSide, &unique("unknown")).await,
        None
    );
    // Another environment of the project is another set.
    assert_eq!(
        store.get_sources(&p, "staging").await.unwrap(),
        EventSources::default()
    );
}

/// A credential another environment already has is refused (`Taken`), the whole write
/// with it: the environment's sources stay as they were and none of the write's other
/// credentials is registered. Once the other environment lets it go, it can be taken.
pub async fn a_credential_of_another_environment_is_taken<S: SourceStore>(store: &S) {
    let p = project();
    let (sources, credentials) = fresh_sources();
    store
        .put_sources(&p, "production", &sources, &EventSources::default())
        .await
        .unwrap();
    let [(_, sdk), (_, mobile), (_, client)] = &credentials;
    let own_key = unique("sdk-own");

    for (what, taking) in [
        (
            "an SDK key",
            EventSources {
                sdk_keys: vec![key_digest(&own_key), key_digest(sdk)],
                version: 1,
                ..EventSources::default()
            },
        ),
        (
            "a mobile key",
            EventSources {
                sdk_keys: vec![key_digest(&own_key)],
                mobile_keys: vec![key_digest(mobile)],
                version: 1,
                ..EventSources::default()
            },
        ),
        (
            "a client-side ID",
            EventSources {
                sdk_keys: vec![key_digest(&own_key)],
                client_side_ids: vec![ClientSideId::any_origin(client.clone())],
                version: 1,
                ..EventSources::default()
            },
        ),
    ] {
        for other in [(p.clone(), "staging"), (project(), "production")] {
            let result = store
                .put_sources(&other.0, other.1, &taking, &EventSources::default())
                .await;
            assert!(
                matches!(result, Err(StoreError::Taken)),
                "{what} of another environment: {result:?}"
            );
            assert_eq!(
                store.get_sources(&other.0, other.1).await.unwrap(),
                EventSources::default(),
                "{what}: nothing written"
            );
            assert_eq!(
                resolves(store, SourceKind::Sdk, &own_key).await,
                None,
                "{what}: no credential of the refused write registered"
            );
        }
    }
    for (kind, credential) in &credentials {
        assert_eq!(
            resolves(store, *kind, credential).await,
            Some((p.clone(), "production".to_owned())),
            "{kind:?} still belongs to its environment"
        );
    }

    // Let go, the SDK key can be registered elsewhere.
    let without = EventSources {
        sdk_keys: vec![],
        version: 2,
        ..sources.clone()
    };
    store
        .put_sources(&p, "production", &without, &sources)
        .await
        .unwrap();
    let taken = EventSources {
        sdk_keys: vec![key_digest(sdk)],
        version: 1,
        ..EventSources::default()
    };
    store
        .put_sources(&p, "staging", &taken, &EventSources::default())
        .await
        .unwrap();
    assert_eq!(
        resolves(store, SourceKind::Sdk, sdk).await,
        Some((p.clone(), "staging".to_owned()))
    );
}

/// A credential listed twice in one write, in a transaction two operations on one item,
/// is refused (`Refused`) and nothing is written.
pub async fn a_credential_listed_twice_is_refused<S: SourceStore>(store: &S) {
    let p = project();
    let key = unique("sdk-twice");
    let twice = EventSources {
        sdk_keys: vec![key_digest(&key), key_digest(&key)],
        version: 1,
        ..EventSources::default()
    };
    let result = store
        .put_sources(&p, "production", &twice, &EventSources::default())
        .await;
    assert!(matches!(result, Err(StoreError::Refused { .. })), "{result:?}");
    assert_eq!(
        store.get_sources(&p, "production").await.unwrap(),
        EventSources::default()
    );
    assert_eq!(resolves(store, SourceKind::Sdk, &key).await, None);
}

/// `put_sources` writes over the version of `previous` only (0: never set): a stale one
/// is `VersionConflict` and changes nothing; of [`RACERS`] writes from the same read, one
/// wins and only its credentials resolve.
pub async fn sources_writes_are_conditional_on_their_version<S: SourceStore>(store: &S) {
    let p = project();
    let (v1, credentials) = fresh_sources();
    store
        .put_sources(&p, "production", &v1, &EventSources::default())
        .await
        .unwrap();
    let (mut v2, _) = fresh_sources();
    v2.version = 2;
    conflict(
        store
            .put_sources(&p, "production", &v2, &EventSources::default())
            .await,
        "sources expecting none when there are",
    );
    let stale = EventSources {
        version: 5,
        ..v1.clone()
    };
    conflict(
        store.put_sources(&p, "production", &v2, &stale).await,
        "sources over a stale version",
    );
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), v1);
    for (kind, credential) in &credentials {
        assert!(resolves(store, *kind, credential).await.is_some());
    }

    let racers: Vec<(EventSources, [(SourceKind, String); 3])> = (0..RACERS)
        .map(|_| {
            let (mut s, c) = fresh_sources();
            s.version = 2;
            (s, c)
        })
        .collect();
    let results = join_all(
        racers
            .iter()
            .map(|(s, _)| store.put_sources(&p, "production", s, &v1)),
    )
    .await;
    let winners: Vec<usize> = (0..RACERS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::VersionConflict))),
        "{results:?}"
    );
    let (won, won_credentials) = &racers[winners[0]];
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), *won);
    for (i, (_, c)) in racers.iter().enumerate() {
        for (kind, credential) in c {
            assert_eq!(
                resolves(store, *kind, credential).await.is_some(),
                i == winners[0],
                "writer {i}'s {kind:?}"
            );
        }
    }
    for (kind, credential) in &credentials {
        assert_eq!(
            resolves(store, *kind, credential).await,
            None,
            "{kind:?} of the replaced sources"
        );
    }
    assert!(won_credentials.iter().all(|(_, c)| !c.is_empty()));
}

/// Rotation: a new key added beside the old one (kept by its digest) leaves both
/// resolving; the old one removed later no longer resolves, the new one still does.
pub async fn rotation_keeps_an_old_digest<S: SourceStore>(store: &S) {
    let p = project();
    let (old, new) = (unique("sdk-old"), unique("sdk-new"));
    let (old_mobile, new_mobile) = (unique("mob-old"), unique("mob-new"));
    let v1 = EventSources {
        sdk_keys: vec![key_digest(&old)],
        mobile_keys: vec![key_digest(&old_mobile)],
        client_side_ids: vec![],
        version: 1,
    };
    store
        .put_sources(&p, "production", &v1, &EventSources::default())
        .await
        .unwrap();

    let here = Some((p.clone(), "production".to_owned()));
    let v2 = EventSources {
        sdk_keys: vec![key_digest(&old), key_digest(&new)],
        mobile_keys: vec![key_digest(&new_mobile), key_digest(&old_mobile)],
        client_side_ids: vec![],
        version: 2,
    };
    store.put_sources(&p, "production", &v2, &v1).await.unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), v2);
    for (kind, key) in [
        (SourceKind::Sdk, &old),
        (SourceKind::Sdk, &new),
        (SourceKind::Mobile, &old_mobile),
        (SourceKind::Mobile, &new_mobile),
    ] {
        assert_eq!(
            resolves(store, kind, key).await,
            here,
            "{kind:?} {key} during the grace period"
        );
    }

    let v3 = EventSources {
        sdk_keys: vec![key_digest(&new)],
        mobile_keys: vec![key_digest(&new_mobile)],
        client_side_ids: vec![],
        version: 3,
    };
    store.put_sources(&p, "production", &v3, &v2).await.unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), v3);
    assert_eq!(resolves(store, SourceKind::Sdk, &old).await, None);
    assert_eq!(resolves(store, SourceKind::Mobile, &old_mobile).await, None);
    assert_eq!(resolves(store, SourceKind::Sdk, &new).await, here);
    assert_eq!(resolves(store, SourceKind::Mobile, &new_mobile).await, here);

    // Removing every source leaves none, at a new version.
    let none = EventSources {
        version: 4,
        ..EventSources::default()
    };
    store.put_sources(&p, "production", &none, &v3).await.unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), none);
    assert_eq!(resolves(store, SourceKind::Sdk, &new).await, None);
}

/// A client-side ID's allowed origins read back with the sources and come with its
/// resolution (the same one read); changed, removed or added to an ID already
/// registered, they are what it resolves with next; keys resolve with none (any origin).
pub async fn allowed_origins_resolve_with_their_client_side_id<S: SourceStore>(store: &S) {
    let p = project();
    let (shop, open, key) = (unique("shop-id"), unique("open-id"), unique("sdk-key"));
    let v1 = EventSources {
        sdk_keys: vec![key_digest(&key)],
        client_side_ids: vec![
            ClientSideId {
                id: shop.clone(),
                allowed_origins: origins(&["https://shop.example", "http://localhost:3000"]),
            },
            ClientSideId::any_origin(open.clone()),
        ],
        version: 1,
        ..EventSources::default()
    };
    store
        .put_sources(&p, "production", &v1, &EventSources::default())
        .await
        .unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), v1);
    assert_eq!(
        origins_of(store, &p, SourceKind::ClientSide, &shop).await,
        origins(&["https://shop.example", "http://localhost:3000"])
    );
    assert!(
        origins_of(store, &p, SourceKind::ClientSide, &open)
            .await
            .is_any()
    );
    assert!(origins_of(store, &p, SourceKind::Sdk, &key).await.is_any());

    // The lists change: the shop's to another, the open ID's from none to one.
    let v2 = EventSources {
        client_side_ids: vec![
            ClientSideId {
                id: shop.clone(),
                allowed_origins: origins(&["https://www.shop.example"]),
            },
            ClientSideId {
                id: open.clone(),
                allowed_origins: origins(&["https://open.example"]),
            },
        ],
        version: 2,
        ..v1.clone()
    };
    store.put_sources(&p, "production", &v2, &v1).await.unwrap();
    assert_eq!(store.get_sources(&p, "production").await.unwrap(), v2);
    assert_eq!(
        origins_of(store, &p, SourceKind::ClientSide, &shop).await,
        origins(&["https://www.shop.example"])
    );
    assert_eq!(
        origins_of(store, &p, SourceKind::ClientSide, &open).await,
        origins(&["https://open.example"])
    );

    // Emptied, the list allows any origin again.
    let v3 = EventSources {
        client_side_ids: vec![
            ClientSideId::any_origin(shop.clone()),
            v2.client_side_ids[1].clone(),
        ],
        version: 3,
        ..v2.clone()
    };
    store.put_sources(&p, "production", &v3, &v2).await.unwrap();
    assert!(
        origins_of(store, &p, SourceKind::ClientSide, &shop)
            .await
            .is_any()
    );

    // Another environment cannot take the ID by listing origins for it.
    let taking = EventSources {
        client_side_ids: vec![ClientSideId {
            id: shop.clone(),
            allowed_origins: origins(&["https://evil.example"]),
        }],
        version: 1,
        ..EventSources::default()
    };
    let result = store
        .put_sources(&p, "staging", &taking, &EventSources::default())
        .await;
    assert!(matches!(result, Err(StoreError::Taken)), "{result:?}");
    assert!(
        origins_of(store, &p, SourceKind::ClientSide, &shop)
            .await
            .is_any()
    );
}

// ---------------------------------------------------------------------------------------
// Delivery status.

fn report(offset: u64, delivered: u64, failed: u64) -> DeliveryReport {
    DeliveryReport {
        delivered,
        failed,
        skipped: shared::delivery_status::Skipped::default(),
        failure: (failed > 0).then(|| "Segment still failing after 4 attempts (HTTP 503)".to_owned()),
        at: START + offset,
    }
}

fn bucket(hours: u64, delivered: u64, failed: u64) -> HourCount {
    HourCount {
        hour: START + hours * HOUR,
        delivered,
        failed,
        skipped: shared::delivery_status::Skipped::default(),
    }
}

/// A status with its buckets by hour (how a store orders them is its own).
fn by_hour(mut status: DeliveryStatus) -> DeliveryStatus {
    status.hours.sort_by_key(|h| h.hour);
    status
}

/// Skipped events add up in their hour by reason, and the skipped flags by key, across
/// reports (README, "Why an event was not exported"); a report of skips only changes
/// no state.
pub async fn skipped_counts_add_up_per_hour_by_reason<S: DeliveryStore>(store: &S) {
    let p = project();
    let skipped = |flag: u64, kind: u64, off: u64, flags: &[(&str, u64)]| shared::delivery_status::Skipped {
        flag_not_enabled: flag,
        kind_not_exported: kind,
        destination_off: off,
        flags: flags.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
    };
    let with = |offset, s| DeliveryReport {
        skipped: s,
        ..report(offset, 0, 0)
    };
    store
        .record_delivery(
            &p,
            "production",
            "d1",
            &with(0, skipped(3, 1, 0, &[("checkout-flow", 3)])),
        )
        .await
        .unwrap();
    store
        .record_delivery(
            &p,
            "production",
            "d1",
            &with(5, skipped(2, 0, 4, &[("checkout-flow", 1), ("new-banner", 1)])),
        )
        .await
        .unwrap();
    let status = by_hour(store.delivery_statuses(&p, "production").await.unwrap()["d1"].clone());
    assert_eq!(status.hours.len(), 1);
    assert_eq!(
        status.hours[0].skipped,
        skipped(5, 1, 4, &[("checkout-flow", 4), ("new-banner", 1)])
    );
    assert_eq!((status.hours[0].delivered, status.hours[0].failed), (0, 0));
    assert_eq!(status.state(), "idle");
}

/// `record_delivery` adds an invocation's report: counts add up in the report's hour,
/// each delivery and failure is kept with when (and why), a failing spell starts at the
/// first failure since a delivery and ends at the next delivery; `delivery_statuses`
/// answers every destination of the environment that has a status, and no other.
pub async fn delivery_reports_add_up_per_destination<S: DeliveryStore>(store: &S) {
    let p = project();
    store
        .record_delivery(&p, "production", "d1", &report(0, 10, 0))
        .await
        .unwrap();
    store
        .record_delivery(&p, "production", "d1", &report(60_000, 5, 1))
        .await
        .unwrap();
    store
        .record_delivery(&p, "production", "d2", &report(120_000, 0, 4))
        .await
        .unwrap();
    store
        .record_delivery(&p, "staging", "d3", &report(0, 1, 0))
        .await
        .unwrap();

    let statuses = store.delivery_statuses(&p, "production").await.unwrap();
    let mut ids: Vec<&String> = statuses.keys().collect();
    ids.sort();
    assert_eq!(ids, ["d1", "d2"]);
    let reason = Some("Segment still failing after 4 attempts (HTTP 503)".to_owned());
    assert_eq!(
        by_hour(statuses["d1"].clone()),
        DeliveryStatus {
            last_delivered_at: Some(START + 60_000),
            last_failed_at: Some(START + 60_000),
            failing_since: None,
            last_failure: reason.clone(),
            hours: vec![bucket(0, 15, 1)],
        }
    );
    assert_eq!(statuses["d1"].state(), "delivering");
    assert_eq!(
        by_hour(statuses["d2"].clone()),
        DeliveryStatus {
            last_delivered_at: None,
            last_failed_at: Some(START + 120_000),
            failing_since: Some(START + 120_000),
            last_failure: reason.clone(),
            hours: vec![bucket(0, 0, 4)],
        }
    );
    assert_eq!(statuses["d2"].state(), "failing");

    // The spell goes on from its first failure, into the next hour, until a delivery.
    store
        .record_delivery(&p, "production", "d2", &report(HOUR + 1, 0, 2))
        .await
        .unwrap();
    let d2 = by_hour(store.delivery_statuses(&p, "production").await.unwrap()["d2"].clone());
    assert_eq!(d2.failing_since, Some(START + 120_000));
    assert_eq!(d2.last_failed_at, Some(START + HOUR + 1));
    assert_eq!(d2.hours, [bucket(0, 0, 4), bucket(1, 0, 2)]);
    let long = DeliveryReport {
        failure: Some("x".repeat(300)),
        ..report(HOUR + 2, 3, 1)
    };
    store
        .record_delivery(&p, "production", "d2", &long)
        .await
        .unwrap();
    let d2 = by_hour(store.delivery_statuses(&p, "production").await.unwrap()["d2"].clone());
    assert_eq!(d2.failing_since, None, "a delivery ends the spell");
    assert_eq!(d2.last_delivered_at, Some(START + HOUR + 2));
    assert_eq!(d2.state(), "delivering");
    assert_eq!(
        d2.last_failure.as_deref(),
        Some("x".repeat(200).as_str()),
        "reasons are bounded"
    );
    assert_eq!(d2.hours, [bucket(0, 0, 4), bucket(1, 3, 3)]);

    let staging = store.delivery_statuses(&p, "staging").await.unwrap();
    assert_eq!(staging.len(), 1);
    assert_eq!(staging["d3"].hours, [bucket(0, 1, 0)]);
}

/// The status keeps a day of hourly buckets in 24 slots: an hour 24 hours later reuses
/// (resets) the slot of its hour, a bucket no later hour reused stays as stored whatever
/// its age, and a report for an hour older than what its slot now holds is refused
/// (`VersionConflict`, nothing changed).
pub async fn delivery_buckets_are_a_ring_of_a_day<S: DeliveryStore>(store: &S) {
    let p = project();
    let status = || async {
        by_hour(
            store
                .delivery_statuses(&p, "production")
                .await
                .unwrap()
                .remove("d1")
                .expect("a status"),
        )
    };
    for (offset, delivered) in [(0, 1), (HOUR, 2), (2 * HOUR + 5, 3)] {
        store
            .record_delivery(&p, "production", "d1", &report(offset, delivered, 0))
            .await
            .unwrap();
    }
    assert_eq!(
        status().await.hours,
        [bucket(0, 1, 0), bucket(1, 2, 0), bucket(2, 3, 0)]
    );

    // A day after the first hour: its slot is reset, the others stay, however old.
    store
        .record_delivery(&p, "production", "d1", &report(24 * HOUR + 7, 4, 0))
        .await
        .unwrap();
    store
        .record_delivery(&p, "production", "d1", &report(24 * HOUR + 8, 1, 1))
        .await
        .unwrap();
    assert_eq!(
        status().await.hours,
        [bucket(1, 2, 0), bucket(2, 3, 0), bucket(24, 5, 1)]
    );
    let before = status().await;
    assert!(before.hours.len() <= 24);

    // A late report for the hour the slot held before.
    let late = store
        .record_delivery(&p, "production", "d1", &report(30_000, 9, 9))
        .await;
    conflict(late, "a report older than its slot's hour");
    assert_eq!(status().await, before, "a refused report changes nothing");

    // Two days on, every slot reused holds only its new hour.
    for h in 48..72 {
        store
            .record_delivery(&p, "production", "d1", &report(h * HOUR, 1, 0))
            .await
            .unwrap();
    }
    let after = status().await;
    assert_eq!(after.hours.len(), 24);
    assert_eq!(after.hours, (48..72).map(|h| bucket(h, 1, 0)).collect::<Vec<_>>());
}

/// `forget_delivery` removes one destination's status, and no other's; forgetting one
/// that has none is harmless; a later report (an `export` that still has the deleted
/// destination cached) is `NotFound` and writes nothing.
pub async fn forget_delivery_removes_one_status<S: DeliveryStore>(store: &S) {
    let p = project();
    for (env, id) in [("production", "d1"), ("production", "d2"), ("staging", "d1")] {
        store
            .record_delivery(&p, env, id, &report(0, 1, 0))
            .await
            .unwrap();
    }
    store.forget_delivery(&p, "production", "d1").await;
    let production = store.delivery_statuses(&p, "production").await.unwrap();
    assert_eq!(production.keys().collect::<Vec<_>>(), ["d2"]);
    assert_eq!(
        store
            .delivery_statuses(&p, "staging")
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["d1"]
    );

    store.forget_delivery(&p, "production", "d1").await;
    store.forget_delivery(&p, "production", "never-had-one").await;
    store.forget_delivery(&unique("nowhere"), "e", "d").await;

    let late = store
        .record_delivery(&p, "production", "d1", &report(HOUR, 0, 1))
        .await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    let production = store.delivery_statuses(&p, "production").await.unwrap();
    assert_eq!(production.keys().collect::<Vec<_>>(), ["d2"], "not written again");
    // The others still report.
    store
        .record_delivery(&p, "production", "d2", &report(HOUR, 0, 1))
        .await
        .unwrap();
}
