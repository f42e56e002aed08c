//! `ingest`: what LaunchDarkly SDKs post to their events URL (schema version 4), onto the
//! export queue (README, "Pointing your SDKs here"). An SDK stops sending for good after a
//! 401 or 403, so only a credential no environment has is a 401: a store that cannot
//! answer is a 503, and an unknown credential is never cached.

#[cfg(any(test, feature = "sample"))]
pub mod before;
pub mod cors;
mod envelope;
#[cfg(test)]
mod equivalence_tests;
pub mod forward;
pub mod origin;
pub mod payload;
pub mod queue;
mod scan;

use crate::metrics::{self, IngestOutcome};
use crate::sources::{AllowedOrigins, Resolved, SourceKind, lookup_id};
use crate::store::SourceStore;
use crate::web::{ApiError, ApiRequest, ApiResponse, header};
use forward::Forwarder;
use http::{Method, StatusCode};
use payload::PayloadError;
use queue::EventQueue;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How long a resolved credential is reused: a removed key stops within this.
const SOURCE_CACHE_TTL: Duration = Duration::from_secs(30);

/// What an SDK posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: SourceKind,
    /// Diagnostic payloads are accepted and not exported.
    pub diagnostic: bool,
    /// The browser SDK's client-side ID, from the path.
    pub client_side_id: Option<String>,
    /// The SDK's own path (`/bulk`, `/events/bulk/{id}`, …), without any prefix.
    pub sdk_path: String,
}

/// The endpoint of a raw path; whatever comes before the SDK's own path (a stage, or
/// `/lambda-url/ingest` under `cargo lambda watch`) is ignored.
pub fn endpoint(raw_path: &str) -> Option<Endpoint> {
    let segments: Vec<&str> = raw_path.split('/').filter(|s| !s.is_empty()).collect();
    (0..segments.len()).find_map(|start| {
        let mut endpoint = sdk_endpoint(&segments[start..])?;
        endpoint.sdk_path = format!("/{}", segments[start..].join("/"));
        Some(endpoint)
    })
}

fn sdk_endpoint(segments: &[&str]) -> Option<Endpoint> {
    let of = |kind, diagnostic| Endpoint {
        kind,
        diagnostic,
        client_side_id: None,
        sdk_path: String::new(),
    };
    Some(match segments {
        ["bulk"] => of(SourceKind::Sdk, false),
        ["diagnostic"] => of(SourceKind::Sdk, true),
        ["mobile"] | ["mobile", "events"] | ["mobile", "events", "bulk"] => of(SourceKind::Mobile, false),
        ["mobile", "events", "diagnostic"] => of(SourceKind::Mobile, true),
        ["events", kind @ ("bulk" | "diagnostic"), id] => Endpoint {
            kind: SourceKind::ClientSide,
            diagnostic: *kind == "diagnostic",
            client_side_id: Some((*id).to_owned()),
            sdk_path: String::new(),
        },
        _ => return None,
    })
}

/// A credential as looked up: its kind and its digest (or client-side ID).
type Credential = (&'static str, String);

/// What [`Ingest::accept`] found out besides its answer.
#[derive(Default)]
struct Found {
    /// The answer is a 503 of the export queue (not of the event sources).
    queue_failed: bool,
    /// The client-side ID's allowed origins, once resolved: which pages may read the answer.
    allowed_origins: AllowedOrigins,
}

/// The `ingest` function over an event-source store and the export queue, forwarding to
/// LaunchDarkly when configured.
pub struct Ingest<So, Q> {
    sources: So,
    queue: Q,
    forwarder: Option<Forwarder>,
    cache: Mutex<HashMap<Credential, (Instant, Resolved)>>,
}

impl<So: SourceStore, Q: EventQueue> Ingest<So, Q> {
    pub fn new(sources: So, queue: Q) -> Self {
        Self {
            sources,
            queue,
            forwarder: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Also posts every accepted payload on to LaunchDarkly through `forwarder`.
    pub fn forwarding(mut self, forwarder: Option<Forwarder>) -> Self {
        self.forwarder = forwarder;
        self
    }

    pub async fn handle(&self, request: &ApiRequest, path: &str, request_id: &str) -> ApiResponse {
        let endpoint = endpoint(path);
        let client_side_id = endpoint.as_ref().and_then(|e| e.client_side_id.clone());
        if let Some(id) = &client_side_id
            && request.method() == Method::OPTIONS
        {
            return self.preflight(request, id, request_id).await;
        }
        let mut found = Found::default();
        let mut response = match self.accept(request, endpoint, &mut found).await {
            Ok(()) => accepted(),
            Err(e) => e.into_response(request_id),
        };
        // One EMF line per request: the payload accepted, or why not.
        let outcome = IngestOutcome::of(response.status().as_u16(), found.queue_failed);
        println!("{}", metrics::ingest_line(&metrics::function_name(), outcome));
        if client_side_id.is_some() {
            cors::allow_origin(request, &mut response, &found.allowed_origins);
        }
        response
    }

    /// A browser's preflight: for an origin the client-side ID does not allow, a 403 without
    /// CORS headers (counted as a refused post: the browser sends none). An ID not resolved
    /// now (unknown, or the store down) is answered as one without a list: its post decides.
    async fn preflight(&self, request: &ApiRequest, client_side_id: &str, request_id: &str) -> ApiResponse {
        let allowed = self
            .resolve(SourceKind::ClientSide, client_side_id)
            .await
            .map(|r| r.allowed_origins)
            .unwrap_or_default();
        match origin::check(request, &allowed) {
            Ok(()) => cors::preflight(request, &allowed),
            Err(e) => {
                let line = metrics::ingest_line(&metrics::function_name(), IngestOutcome::OriginRefused);
                println!("{line}");
                let mut response = e.into_response(request_id);
                cors::allow_origin(request, &mut response, &allowed);
                response
            }
        }
    }

    /// Queues the payload; `found` tells a 503 of the export queue, and the origins allowed.
    async fn accept(
        &self,
        request: &ApiRequest,
        endpoint: Option<Endpoint>,
        found: &mut Found,
    ) -> Result<(), ApiError> {
        let endpoint = endpoint.ok_or_else(|| {
            ApiError::not_found(
                "not an SDK events endpoint: /bulk, /diagnostic, /mobile…, /events/bulk/{clientSideId}",
            )
        })?;
        if request.method() != Method::POST {
            return Err(ApiError::method_not_allowed(request.method(), "POST"));
        }
        let credential = match &endpoint.client_side_id {
            Some(id) => id.clone(),
            None => header(request, http::header::AUTHORIZATION)
                .map(|a| a.trim().trim_start_matches("api_key ").to_owned())
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ApiError::unauthorized("missing Authorization: send the SDK or mobile key"))?,
        };
        let resolved = self.resolve(endpoint.kind, &credential).await?;
        if endpoint.client_side_id.is_some() {
            found.allowed_origins = resolved.allowed_origins.clone();
            origin::check(request, &found.allowed_origins)?;
        }
        let Resolved {
            project, environment, ..
        } = resolved;
        let gzipped =
            header(request, http::header::CONTENT_ENCODING).is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
        let json = payload::decode(request.body(), gzipped).map_err(payload_error)?;
        let forward = self.forward(request, &endpoint.sdk_path);
        if endpoint.diagnostic {
            forward.await;
            return Ok(());
        }
        let payload_id = header(
            request,
            http::header::HeaderName::from_static("x-launchdarkly-payload-id"),
        )
        .map(str::to_owned)
        .unwrap_or_else(|| crate::sources::key_digest(&String::from_utf8_lossy(&json)));
        let packed = payload::messages(&json, &project, &environment, &payload_id).map_err(payload_error)?;
        let count = packed.events;
        let queued = async {
            if count > 0 {
                self.queue.send(packed.messages).await
            } else {
                Ok(())
            }
        };
        let (queued, ()) = tokio::join!(queued, forward);
        queued.map_err(|e| {
            found.queue_failed = true;
            tracing::error!(error = %e, events = count, "the export queue could not be written");
            ApiError::unavailable("the events could not be queued; retry")
        })?;
        tracing::info!(project, environment, events = count, "SDK events queued");
        Ok(())
    }

    /// Posts the payload on to LaunchDarkly, when forwarding is on; its outcome is a metric
    /// and never the SDK's answer.
    async fn forward(&self, request: &ApiRequest, sdk_path: &str) {
        let Some(forwarder) = &self.forwarder else {
            return;
        };
        let outcome = forwarder.forward(request, sdk_path).await;
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, path = sdk_path, "forwarding to LaunchDarkly failed");
        }
        println!(
            "{}",
            crate::metrics::forward_line(&crate::metrics::function_name(), outcome.is_err())
        );
    }

    /// The environment of a credential: cached while known, read again while unknown.
    async fn resolve(&self, kind: SourceKind, credential: &str) -> Result<Resolved, ApiError> {
        let key = (kind.as_str(), lookup_id(kind, credential));
        if let Some((at, found)) = self.cache.lock().expect("cache lock").get(&key)
            && at.elapsed() < SOURCE_CACHE_TTL
        {
            return Ok(found.clone());
        }
        match self.sources.resolve(kind, &key.1).await {
            Ok(Some(found)) => {
                self.cache
                    .lock()
                    .expect("cache lock")
                    .insert(key, (Instant::now(), found.clone()));
                Ok(found)
            }
            Ok(None) => Err(ApiError::unauthorized(
                "this SDK key, mobile key or client-side ID is not registered: PUT it under /api/v2/event-sources/{projectKey}/{environmentKey}",
            )),
            // The one mapping of store failures: an outage is a 503 with Retry-After.
            Err(e) => Err(e.into()),
        }
    }
}

fn payload_error(e: PayloadError) -> ApiError {
    match e {
        PayloadError::TooLarge => ApiError::too_large(e.to_string()),
        PayloadError::BadGzip | PayloadError::NotEvents(_) => ApiError::invalid(e.to_string()),
    }
}

/// 202, with the `Date` SDKs read to correct their clocks.
fn accepted() -> ApiResponse {
    http::Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(http::header::DATE, httpdate::fmt_http_date(SystemTime::now()))
        .body(String::new())
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdks_endpoints_behind_any_prefix() {
        assert_eq!(endpoint("/bulk").unwrap().kind, SourceKind::Sdk);
        assert!(endpoint("/lambda-url/ingest/diagnostic").unwrap().diagnostic);
        assert_eq!(endpoint("/mobile/events/bulk").unwrap().kind, SourceKind::Mobile);
        let browser = endpoint("/prod/events/bulk/5f0a1b2c").unwrap();
        assert_eq!(
            (browser.kind, browser.client_side_id.as_deref()),
            (SourceKind::ClientSide, Some("5f0a1b2c"))
        );
        assert!(endpoint("/api/v2/destinations").is_none());
        assert_eq!(
            endpoint("/lambda-url/ingest/mobile/events").unwrap().sdk_path,
            "/mobile/events"
        );
        assert_eq!(browser.sdk_path, "/events/bulk/5f0a1b2c");
    }
}
