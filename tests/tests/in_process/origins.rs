//! A client-side ID's `allowedOrigins` in `ingest`, in process over the in-memory store and
//! a queue in memory: a browser post from another origin (or with none) is a 403 that
//! queues nothing, one from a listed origin is queued; CORS answers, preflights included,
//! let only a listed origin read them; IDs without a list, and SDK and mobile keys, are
//! as before. Preflight and post share the cached lookup. (Through `cargo lambda watch`
//! and moto: `tests/tests/end_to_end/ingest.rs`; a real page: `own_stacks/sdks.rs`.)

use bytes::Bytes;
use shared::ingest::Ingest;
use shared::sources::{AllowedOrigins, ClientSideId, EventSources, Origin, Resolved, SourceKind, key_digest};
use shared::store::{SourceStore, StoreError};
use shared::web::{ApiRequest, ApiResponse};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tests::memory::MemoryQueue;
use tests::memory::MemoryStore;

const SHOP_ID: &str = "shop-client-side-id";
const OPEN_ID: &str = "open-client-side-id";
const SDK_KEY: &str = "sdk-origins-test-key";
const SHOP: &str = "https://shop.example";

/// The in-memory store, counting its lookups.
#[derive(Default)]
struct Counted {
    store: MemoryStore,
    resolves: Arc<AtomicU64>,
}

impl SourceStore for Counted {
    async fn get_sources(&self, p: &str, e: &str) -> Result<EventSources, StoreError> {
        self.store.get_sources(p, e).await
    }
    async fn put_sources(
        &self,
        p: &str,
        e: &str,
        sources: &EventSources,
        previous: &EventSources,
    ) -> Result<(), StoreError> {
        self.store.put_sources(p, e, sources, previous).await
    }
    async fn resolve(&self, kind: SourceKind, id: &str) -> Result<Option<Resolved>, StoreError> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        self.store.resolve(kind, id).await
    }
}

/// `ingest` over p/e's sources: the shop's ID allowing the shop and a local dev server,
/// an ID allowing any origin, and an SDK key.
async fn ingest() -> (Ingest<Counted, MemoryQueue>, Arc<AtomicU64>, MemoryQueue) {
    let store = Counted::default();
    let sources = EventSources {
        sdk_keys: vec![key_digest(SDK_KEY)],
        client_side_ids: vec![
            ClientSideId {
                id: SHOP_ID.into(),
                allowed_origins: AllowedOrigins::new(
                    [SHOP, "http://localhost:3000"].map(|o| Origin::parse(o).unwrap()),
                ),
            },
            ClientSideId::any_origin(OPEN_ID),
        ],
        version: 1,
        ..EventSources::default()
    };
    store
        .put_sources("p", "e", &sources, &EventSources::default())
        .await
        .unwrap();
    let queue = MemoryQueue::default();
    let resolves = store.resolves.clone();
    (Ingest::new(store, queue.clone()), resolves, queue)
}

fn request(method: &str, path: &str, origin: Option<&str>) -> ApiRequest {
    let mut r = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-launchdarkly-event-schema", "4");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if method == "OPTIONS" {
        r = r.header("access-control-request-method", "POST").header(
            "access-control-request-headers",
            "content-type,x-launchdarkly-event-schema",
        );
    }
    r.body(Bytes::from_static(
        br#"[{"kind":"custom","key":"purchase","creationDate":1,"contextKeys":{"user":"u1"}}]"#,
    ))
    .unwrap()
}

async fn post(ingest: &Ingest<Counted, MemoryQueue>, id: &str, origin: Option<&str>) -> ApiResponse {
    let r = request("POST", &format!("/events/bulk/{id}"), origin);
    ingest.handle(&r, r.uri().path(), "req-origins").await
}

async fn preflight(ingest: &Ingest<Counted, MemoryQueue>, path: &str, origin: Option<&str>) -> ApiResponse {
    let r = request("OPTIONS", path, origin);
    ingest.handle(&r, r.uri().path(), "req-origins").await
}

fn allowed_origin(r: &ApiResponse) -> Option<&str> {
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

fn varies_by_origin(r: &ApiResponse) -> bool {
    r.headers().get("vary").is_some_and(|v| v == "Origin")
}

#[tokio::test]
async fn a_post_from_an_origin_not_allowed_is_a_403_and_queues_nothing() {
    let (ingest, _, queue) = ingest().await;
    for origin in [
        Some("https://evil.example"),
        Some("http://shop.example"),
        Some("https://shop.example:8443"),
        Some("null"),
        None,
    ] {
        let r = post(&ingest, SHOP_ID, origin).await;
        assert_eq!(r.status(), 403, "{origin:?}");
        let body: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(body["code"], "forbidden");
        assert_eq!(body["id"], "req-origins");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("not allowed for this client-side ID") && message.contains("allowedOrigins"),
            "says what is refused and how to allow it: {message}"
        );
        assert_eq!(allowed_origin(&r), None, "{origin:?}: the page may not read it");
        assert!(varies_by_origin(&r));
        assert!(
            queue.sent.lock().unwrap().is_empty(),
            "{origin:?}: nothing queued"
        );
    }
    // The diagnostic endpoint too.
    let r = request(
        "POST",
        &format!("/events/diagnostic/{SHOP_ID}"),
        Some("https://evil.example"),
    );
    assert_eq!(ingest.handle(&r, r.uri().path(), "req-1").await.status(), 403);
}

#[tokio::test]
async fn a_post_from_an_allowed_origin_is_queued_and_readable_by_that_origin_only() {
    let (ingest, _, queue) = ingest().await;
    for (n, origin) in [SHOP, "http://localhost:3000"].into_iter().enumerate() {
        let r = post(&ingest, SHOP_ID, Some(origin)).await;
        assert_eq!(r.status(), 202, "{origin}: {}", r.body());
        assert_eq!(allowed_origin(&r), Some(origin), "echoed, never *");
        assert!(varies_by_origin(&r));
        assert_eq!(queue.sent.lock().unwrap().len(), n + 1, "{origin}: queued");
    }
}

#[tokio::test]
async fn ids_without_a_list_and_keys_take_any_origin_as_before() {
    let (ingest, _, queue) = ingest().await;
    let r = post(&ingest, OPEN_ID, Some("https://anywhere.example")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(allowed_origin(&r), Some("https://anywhere.example"));
    let r = post(&ingest, OPEN_ID, None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(allowed_origin(&r), Some("*"));
    // An unknown ID: the 401 is readable, as before.
    let r = post(&ingest, "unknown-id", Some("https://anywhere.example")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(allowed_origin(&r), Some("https://anywhere.example"));
    // A server-side SDK's post is no browser's: its Origin, if any, is not looked at.
    let mut r = request("POST", "/bulk", Some("https://evil.example"));
    r.headers_mut().insert("authorization", SDK_KEY.parse().unwrap());
    assert_eq!(ingest.handle(&r, "/bulk", "req-1").await.status(), 202);
    assert_eq!(
        queue.sent.lock().unwrap().len(),
        3,
        "both posts of the open ID and the SDK's"
    );
}

#[tokio::test]
async fn a_preflight_allows_only_a_listed_origin_and_shares_the_posts_cached_lookup() {
    let (ingest, store, queue) = ingest().await;
    let path = format!("/events/bulk/{SHOP_ID}");
    let r = preflight(&ingest, &path, Some(SHOP)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(allowed_origin(&r), Some(SHOP));
    assert!(varies_by_origin(&r));
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    for origin in [Some("https://evil.example"), None] {
        let r = preflight(&ingest, &path, origin).await;
        assert_eq!(r.status(), 403, "{origin:?}");
        assert_eq!(allowed_origin(&r), None, "{origin:?}: the browser sends no post");
        assert!(r.headers().get("access-control-allow-methods").is_none());
        assert!(varies_by_origin(&r));
    }
    let diagnostic = format!("/events/diagnostic/{SHOP_ID}");
    assert_eq!(
        preflight(&ingest, &diagnostic, Some("https://evil.example"))
            .await
            .status(),
        403
    );
    // The preflights and the post after them: one lookup, cached.
    assert_eq!(post(&ingest, SHOP_ID, Some(SHOP)).await.status(), 202);
    assert_eq!(store.load(Ordering::SeqCst), 1, "one lookup, cached");
    assert_eq!(queue.sent.lock().unwrap().len(), 1);

    // Without a list, or for an ID nobody registered, any origin as before.
    for id in [OPEN_ID, "unknown-id"] {
        let r = preflight(
            &ingest,
            &format!("/events/bulk/{id}"),
            Some("https://anywhere.example"),
        )
        .await;
        assert_eq!(r.status(), 204, "{id}");
        assert_eq!(allowed_origin(&r), Some("https://anywhere.example"), "{id}");
    }
}
