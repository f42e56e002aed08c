//! `ingest` in process, over an in-memory source store and queue, forwarding to a stand-in
//! for LaunchDarkly's events service on loopback: the payload goes on as it came, with the
//! SDK's headers; a failing or hung events service never changes the SDK's answer nor
//! holds back the queue write; the browser SDK's preflight and answers carry CORS headers.
//! (The same forwarding through the real binary: `tests/tests/own_stacks/sdks.rs`.)

use bytes::Bytes;
use shared::ingest::Ingest;
use shared::ingest::forward::Forwarder;
use shared::sources::{EventSources, Resolved, SourceKind};
use shared::store::{SourceStore, StoreError};
use shared::web::{ApiRequest, ApiResponse};
use std::sync::Arc;
use std::time::Duration;
use tests::events_service::EventsService;
use tests::memory::MemoryQueue;

const SDK_KEY: &str = "sdk-forward-test-key";

/// Every credential belongs to (p, e).
struct EverySource;

impl SourceStore for EverySource {
    async fn get_sources(&self, _: &str, _: &str) -> Result<EventSources, StoreError> {
        Ok(EventSources::default())
    }
    async fn put_sources(
        &self,
        _: &str,
        _: &str,
        _: &EventSources,
        _: &EventSources,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn resolve(&self, _: SourceKind, _: &str) -> Result<Option<Resolved>, StoreError> {
        Ok(Some(Resolved {
            project: "p".into(),
            environment: "e".into(),
            allowed_origins: Default::default(),
        }))
    }
}

fn bulk(path: &str) -> ApiRequest {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", SDK_KEY)
        .header("content-type", "application/json")
        .header("user-agent", "PythonClient/9.20.0")
        .header("x-launchdarkly-event-schema", "4")
        .header("x-launchdarkly-payload-id", "6b1e1f5e-payload")
        .header("x-launchdarkly-instance-id", "not-forwarded")
        .body(Bytes::from_static(
            br#"[{"kind":"custom","key":"purchase","creationDate":1,"contextKeys":{"user":"u1"}}]"#,
        ))
        .unwrap()
}

fn ingest(service: &EventsService, queue: &MemoryQueue) -> Ingest<EverySource, MemoryQueue> {
    Ingest::new(EverySource, queue.clone()).forwarding(Some(Forwarder::new(&service.base_url())))
}

async fn handle(ingest: &Ingest<EverySource, MemoryQueue>, request: &ApiRequest) -> ApiResponse {
    ingest.handle(request, request.uri().path(), "req-1").await
}

#[tokio::test]
async fn the_payload_goes_on_as_it_came_with_the_sdks_headers() {
    let service = EventsService::start();
    let queue = MemoryQueue::default();
    let request = bulk("/lambda-url/ingest/bulk");
    assert_eq!(handle(&ingest(&service, &queue), &request).await.status(), 202);

    let posts = service.posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.path, "/bulk", "the SDK's own path, without the local prefix");
    assert_eq!(post.body, request.body());
    for name in [
        "authorization",
        "user-agent",
        "x-launchdarkly-event-schema",
        "x-launchdarkly-payload-id",
    ] {
        assert_eq!(post.headers.get(name), request.headers().get(name), "{name}");
    }
    assert!(post.headers.get("x-launchdarkly-instance-id").is_none());
    assert_eq!(queue.sent.lock().unwrap().len(), 1, "and the events are queued");

    // A diagnostic payload is forwarded too, and never queued.
    let mut diagnostic = bulk("/diagnostic");
    *diagnostic.body_mut() = Bytes::from_static(br#"{"kind":"diagnostic"}"#);
    assert_eq!(handle(&ingest(&service, &queue), &diagnostic).await.status(), 202);
    assert_eq!(service.posts()[1].path, "/diagnostic");
    assert_eq!(queue.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_events_service_is_retried_once_and_never_fails_the_sdk() {
    let service = EventsService::start();
    let queue = MemoryQueue::default();
    service.answer_next(&[503, 500]);
    let response = handle(&ingest(&service, &queue), &bulk("/bulk")).await;
    assert_eq!(response.status(), 202, "the SDK's answer is the queue's");
    assert_eq!(service.posts().len(), 2, "one post and one retry");
    assert_eq!(queue.sent.lock().unwrap().len(), 1);

    // A refusal (LaunchDarkly does not know the key) is not retried, and neither is a 501
    // or a 505: the service's one classification, the same as export's.
    service.answer_next(&[401]);
    assert_eq!(
        handle(&ingest(&service, &queue), &bulk("/bulk")).await.status(),
        202
    );
    assert_eq!(service.posts().len(), 3);
    for final_status in [501, 505] {
        service.answer_next(&[final_status]);
        handle(&ingest(&service, &queue), &bulk("/bulk")).await;
    }
    assert_eq!(service.posts().len(), 5, "501 and 505 are final");

    // The queue down: 503, whatever LaunchDarkly said, so that the SDK retries.
    *queue.fail.lock().unwrap() = true;
    assert_eq!(
        handle(&ingest(&service, &queue), &bulk("/bulk")).await.status(),
        503
    );
}

#[tokio::test]
async fn a_hung_events_service_does_not_hold_back_the_queue_write() {
    let service = EventsService::start();
    service.hang(true);
    let queue = MemoryQueue::default();
    let ingest = Arc::new(ingest(&service, &queue));
    let answer = tokio::spawn({
        let ingest = ingest.clone();
        async move { handle(&ingest, &bulk("/bulk")).await.status() }
    });
    // The events are on the queue while the forward still waits for an answer.
    let mut waited = Duration::ZERO;
    while queue.sent.lock().unwrap().is_empty() {
        assert!(
            waited < Duration::from_secs(1),
            "the queue write waited for the forward"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert!(!answer.is_finished(), "the forward is still pending");
    assert_eq!(
        answer.await.unwrap(),
        202,
        "and the forward's time-outs end in a 202"
    );
    assert_eq!(service.posts().len(), 2, "one post and one retry, both timed out");
}

#[tokio::test]
async fn the_browser_sdks_endpoints_answer_preflights_and_carry_the_origin() {
    let service = EventsService::start();
    let queue = MemoryQueue::default();
    let ingest = ingest(&service, &queue);
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri("/events/bulk/5f0a1b2c3d4e5f6a7b8c9d0e")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-launchdarkly-event-schema",
        )
        .body(Bytes::new())
        .unwrap();
    let r = handle(&ingest, &preflight).await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(service.posts().is_empty(), "a preflight is not an events post");

    let mut post = bulk("/events/bulk/5f0a1b2c3d4e5f6a7b8c9d0e");
    post.headers_mut().remove("authorization");
    post.headers_mut()
        .insert("origin", "https://shop.example".parse().unwrap());
    let r = handle(&ingest, &post).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
    assert_eq!(service.posts()[0].path, "/events/bulk/5f0a1b2c3d4e5f6a7b8c9d0e");

    // An error the page must be able to read carries the origin too.
    *post.body_mut() = Bytes::from_static(b"not json");
    let r = handle(&ingest, &post).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");

    // Server-side endpoints have no CORS.
    let r = handle(&ingest, &bulk("/bulk")).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
