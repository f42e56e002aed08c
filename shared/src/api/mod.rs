//! The management API (README, "The API"): LaunchDarkly's Data Export destinations API on its
//! v2 paths, and the Data Export settings of flags and environments. Framework-neutral:
//! `http::Request` in, `http::Response` out; the Lambda binaries adapt.

pub mod auth;
pub mod console;
pub mod destinations;
pub mod paging;
pub mod patch;
pub mod replays;
pub mod routes;
pub mod settings;
pub mod sources;
pub mod test_event;
pub mod validation;

use crate::endpoint::Outbound;
use crate::ingest::queue::{EventQueue, SqsQueue};
use crate::segment::verify::KeyVerifier;
use crate::store::{DeliveryStore, ReplayStore, SourceStore, Store};
use crate::web::{ApiError, ApiRequest, ApiResponse, body, header};
use auth::Tokens;
use http::{Method, StatusCode};
use routes::Route;
use serde_json::{Value, json};

/// `X-Access: read-write | read-only`: on every answer to a valid token.
pub const X_ACCESS: http::HeaderName = http::HeaderName::from_static("x-access");

/// The `destinations` function: destinations CRUD and Data Export settings.
pub struct Api<S, Q = SqsQueue> {
    store: S,
    tokens: Tokens,
    checks: destinations::WriteChecks,
    /// Where replays start; none: replays are not set up (a 500 that says so).
    replays: Option<replays::ReplayStart<Q>>,
}

impl<S: Store + SourceStore + DeliveryStore + ReplayStore> Api<S> {
    /// Endpoints are checked with the strict rules and the system's resolver.
    pub fn new(store: S, tokens: Tokens) -> Self {
        Self {
            store,
            tokens,
            checks: destinations::WriteChecks {
                outbound: Outbound::default(),
                verifier: KeyVerifier::off(),
            },
            replays: None,
        }
    }
}

impl<S: Store + SourceStore + DeliveryStore + ReplayStore, Q: EventQueue> Api<S, Q> {
    /// Replays' tasks go on `queue` (the replay-request queue); the archive keeps
    /// `retention`, which bounds the ranges accepted.
    pub fn with_replays<R: EventQueue>(self, queue: R, retention: std::time::Duration) -> Api<S, R> {
        Api {
            store: self.store,
            tokens: self.tokens,
            checks: self.checks,
            replays: Some(replays::ReplayStart { queue, retention }),
        }
    }

    /// The rules and resolver that `config.endpoint`s are checked with.
    pub fn with_outbound(mut self, outbound: Outbound) -> Self {
        self.checks.outbound = outbound;
        self
    }

    /// Who is asked whether Segment knows a write key (default: nobody, every key
    /// `unchecked`).
    pub fn with_key_verifier(mut self, verifier: KeyVerifier) -> Self {
        self.checks.verifier = verifier;
        self
    }

    /// Answers one request; `path` is the raw request path, `request_id` names the
    /// request in every error.
    pub async fn handle(&self, request: &ApiRequest, path: &str, request_id: &str) -> ApiResponse {
        if let Some(asset) = console::asset(path) {
            return console::serve(asset, request.method()).unwrap_or_else(|e| e.into_response(request_id));
        }
        let mut response = match self.dispatch(request, path).await {
            Ok(response) => response,
            Err(e) => e.into_response(request_id),
        };
        // What the token may do, so that a client (the console) can offer only that.
        if let Ok(access) = self.tokens.check(header(request, http::header::AUTHORIZATION)) {
            response
                .headers_mut()
                .insert(X_ACCESS, http::HeaderValue::from_static(access.as_str()));
        }
        response
    }

    async fn dispatch(&self, request: &ApiRequest, path: &str) -> Result<ApiResponse, ApiError> {
        // Routed once; a bad path is reported only to a caller with a valid token.
        let route = routes::route(path);
        if matches!(route, Ok(Some(Route::OpenApi))) {
            return openapi(request.method());
        }
        self.tokens
            .check(header(request, http::header::AUTHORIZATION))?
            .permits(request.method())?;
        let route = route?.ok_or_else(|| not_found_route(request.method(), path))?;
        let method = request.method();
        let store = &self.store;
        match (&route, method) {
            (Route::Destinations, &Method::GET) => {
                destinations::list(store, &paging::parse(request.uri().query())?).await
            }
            (Route::EnvironmentDestinations { project, environment }, &Method::GET) => {
                let page = paging::parse(request.uri().query())?;
                destinations::list_environment(store, project, environment, &page).await
            }
            (Route::EnvironmentDestinations { project, environment }, &Method::POST) => {
                destinations::create(store, &self.checks, project, environment, &body::json(request)?).await
            }
            (
                Route::Destination {
                    project,
                    environment,
                    id,
                },
                &Method::GET,
            ) => destinations::get(store, project, environment, id).await,
            (
                Route::Destination {
                    project,
                    environment,
                    id,
                },
                &Method::PATCH,
            ) => {
                destinations::patch(
                    store,
                    &self.checks,
                    project,
                    environment,
                    id,
                    &body::json(request)?,
                )
                .await
            }
            (
                Route::Destination {
                    project,
                    environment,
                    id,
                },
                &Method::DELETE,
            ) => destinations::delete(store, project, environment, id).await,
            (Route::Settings { project, environment }, &Method::GET) => {
                settings::get(store, project, environment).await
            }
            (Route::Settings { project, environment }, &Method::PATCH) => {
                settings::patch(store, project, environment, &body::json(request)?).await
            }
            (Route::EventSources { project, environment }, &Method::GET) => {
                sources::get(store, project, environment).await
            }
            (Route::EventSources { project, environment }, &Method::PUT) => {
                sources::put(store, project, environment, &body::json(request)?).await
            }
            (
                Route::Replays {
                    project,
                    environment,
                    id,
                },
                &Method::POST,
            ) => {
                replays::create(
                    store,
                    self.replays.as_ref(),
                    project,
                    environment,
                    id,
                    &body::json(request)?,
                )
                .await
            }
            (
                Route::Replays {
                    project,
                    environment,
                    id,
                },
                &Method::GET,
            ) => replays::list(store, project, environment, id).await,
            (
                Route::Replay {
                    project,
                    environment,
                    id,
                    replay,
                },
                &Method::GET,
            ) => {
                let key = crate::replay::ReplayKey {
                    project: project.clone(),
                    environment: environment.clone(),
                    destination: id.clone(),
                    id: replay.clone(),
                };
                replays::get(store, &key).await
            }
            (Route::TestEvent { .. }, &Method::POST) => Err(ApiError::not_found(
                "test events are served by the test-event function: POST …/{id}/test there",
            )),
            (route, method) => Err(ApiError::method_not_allowed(method, route.allow())),
        }
    }
}

/// The OpenAPI 3.1 description of this API (`openapi.json` beside this module), served
/// without a token, as published descriptions are.
pub const OPENAPI: &str = include_str!("openapi.json");

fn openapi(method: &Method) -> Result<ApiResponse, ApiError> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::method_not_allowed(method, Route::OpenApi.allow()));
    }
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(OPENAPI.to_owned())
        .expect("a valid response"))
}

pub fn not_found_route(method: &Method, path: &str) -> ApiError {
    let shown: String = path.chars().take(200).collect();
    ApiError::not_found(format!(
        "no route for {method} {shown}: see /api/v2/destinations and /api/v2/data-export/{{projectKey}}/{{environmentKey}}"
    ))
}

/// A `_links` member.
pub fn link(href: &str) -> Value {
    json!({"href": href, "type": "application/json"})
}
