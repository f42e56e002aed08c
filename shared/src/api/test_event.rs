//! `POST /api/v2/destinations/{projectKey}/{environmentKey}/{id}/test` (README, "The API"):
//! one test event through the same mapping and sender as `export`.

use super::auth::Tokens;
use super::not_found_route;
use super::routes::{self, Route};
use crate::deadline::Deadline;
use crate::destination::Destination;
use crate::event::{Envelope, Kind};
use crate::segment::batch;
use crate::segment::verify::{KeyCheck, KeyStatus, KeyVerifier};
use crate::segment::{ExportEvent, SegmentApi, message_id};
use crate::store::Store;
use crate::timestamp::Timestamp;
use crate::web::{ApiError, ApiRequest, ApiResponse, header, json_response};
use http::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The key of the test event's `custom` event, to look for in Segment's debugger.
pub const TEST_EVENT_KEY: &str = "ld-data-export-test-event";
/// Longest a test event may take, retries included.
const BUDGET: Duration = Duration::from_secs(10);

/// The `test-event` function.
pub struct TestEventApi<S, Se> {
    store: S,
    segment: Se,
    tokens: Tokens,
    verifier: KeyVerifier,
}

impl<S: Store, Se: SegmentApi> TestEventApi<S, Se> {
    pub fn new(store: S, segment: Se, tokens: Tokens) -> Self {
        Self {
            store,
            segment,
            tokens,
            verifier: KeyVerifier::off(),
        }
    }

    /// Who is asked whether Segment knows the write key (default: nobody).
    pub fn with_key_verifier(mut self, verifier: KeyVerifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Asks Segment about the destination's key, beside the test event, and keeps the
    /// answer with the destination. A destination with its own endpoint is not asked.
    async fn check_key(&self, destination: &Destination) -> KeyCheck {
        if destination.config.endpoint.is_some() {
            return KeyCheck::own_endpoint();
        }
        let check = self
            .verifier
            .verify(&destination.config.write_key)
            .await
            .check(crate::timestamp::now_millis());
        if check.status == KeyStatus::Unchecked {
            // No answer says nothing new: what was known before stands.
            return check;
        }
        if let Err(e) = self.store.record_key_check(destination, &check).await {
            tracing::warn!(destination = %destination.id, error = %e, "the write key's check could not be kept");
        }
        check
    }

    pub async fn handle(
        &self,
        request: &ApiRequest,
        path: &str,
        request_id: &str,
        deadline: Deadline,
    ) -> ApiResponse {
        match self.dispatch(request, path, request_id, deadline).await {
            Ok(response) => response,
            Err(e) => e.into_response(request_id),
        }
    }

    async fn dispatch(
        &self,
        request: &ApiRequest,
        path: &str,
        request_id: &str,
        deadline: Deadline,
    ) -> Result<ApiResponse, ApiError> {
        self.tokens
            .check(header(request, http::header::AUTHORIZATION))?
            .permits(request.method())?;
        let Some(Route::TestEvent {
            project,
            environment,
            id,
        }) = routes::route(path)?
        else {
            return Err(not_found_route(request.method(), path));
        };
        if request.method() != Method::POST {
            return Err(ApiError::method_not_allowed(request.method(), "POST"));
        }
        let destination = self
            .store
            .get_destination(&project, &environment, &id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no destination {id:?} in project {project:?}, environment {environment:?}"
                ))
            })?;
        let deadline = if deadline.remaining() < BUDGET {
            deadline
        } else {
            Deadline::after(BUDGET)
        };
        Ok(self.send(&destination, request_id, deadline).await)
    }

    async fn send(&self, destination: &Destination, request_id: &str, deadline: Deadline) -> ApiResponse {
        let event_id = format!("test-{request_id}");
        let message = test_message(destination, &event_id);
        let message_id = message_id(&destination.id, &event_id).to_string();
        let body = batch::body(
            std::iter::once(message.as_slice()),
            Timestamp::now(),
            message.len(),
        );
        let (sent, key) = tokio::join!(
            self.segment.send_batch(destination, body.into(), deadline),
            self.check_key(destination)
        );
        match sent {
            Ok(delivery) => {
                tracing::info!(destination = %destination.id, status = delivery.status, "test event accepted");
                let look = format!(
                    "open the LaunchDarkly source's Debugger in Segment and look for a \"custom\" track event \
                     with properties.key \"{TEST_EVENT_KEY}\" and messageId {message_id}."
                );
                let key_says = match key.status {
                    KeyStatus::Verified => format!("Segment knows this write key: {look}"),
                    KeyStatus::Rejected => "but Segment does not know this write key, so it drops everything sent \
                                            with it: copy the key again from the Segment source (Settings → API \
                                            Keys) and PATCH config.writeKey."
                        .to_owned(),
                    KeyStatus::Unchecked => format!(
                        "The key could not be checked ({}), and Segment answers 200 even for a wrong write key: {look}",
                        key.reason.as_deref().unwrap_or("no answer")
                    ),
                };
                json_response(
                    StatusCode::OK,
                    &json!({
                        "status": delivery.status,
                        "messageId": message_id,
                        "writeKey": key,
                        "message": format!("Segment accepted the test event (HTTP {}); {key_says}", delivery.status),
                    }),
                )
            }
            Err(e) => {
                tracing::warn!(destination = %destination.id, error = %e, "test event failed");
                json_response(
                    StatusCode::BAD_GATEWAY,
                    &json!({
                        "code": "segment_error",
                        // Segment's text concerns the test event alone: the caller may see it.
                        "message": match e.segment_message() {
                            Some(said) => format!("the test event did not reach Segment: {e}: {said}"),
                            None => format!("the test event did not reach Segment: {e}"),
                        },
                        "id": request_id,
                        "segmentStatus": e.status(),
                        "messageId": message_id,
                    }),
                )
            }
        }
    }
}

/// The test event as Segment receives it: a `custom` event mapped like any other.
fn test_message(destination: &Destination, event_id: &str) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let envelope_text = json!({
        "project": destination.project,
        "environment": destination.environment,
        "event": {
            "kind": "custom", "id": event_id, "creationDate": now, "key": TEST_EVENT_KEY,
            "contextKeys": {"user": "ld-data-export-test-user"},
        },
    })
    .to_string();
    let envelope: Envelope = serde_json::from_str(&envelope_text).expect("the test envelope parses");
    let mut out = Vec::new();
    ExportEvent::new(&envelope, Kind::Custom, event_id)
        .expect("the test event maps")
        .write(destination, &mut out);
    out
}
