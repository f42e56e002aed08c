//! The edge between `lambda_http` and the framework-neutral API.

use super::{ApiRequest, ApiResponse};
use lambda_http::{Body, Request, RequestExt, Response};

/// A Lambda HTTP request as the API sees it.
pub struct Incoming {
    pub request: ApiRequest,
    /// The raw path as received (a stage or `/lambda-url/<function>` prefix included).
    pub path: String,
    pub request_id: String,
    /// The invocation deadline in epoch milliseconds (0 when unknown).
    pub deadline_ms: u64,
}

pub fn incoming(request: Request) -> Incoming {
    let path = match request.raw_http_path() {
        "" => request.uri().path().to_owned(),
        raw => raw.to_owned(),
    };
    let context = request.lambda_context_ref();
    let request_id = context
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let deadline_ms = context.map_or(0, |c| c.deadline);
    let query = query_of(&request);
    let (mut parts, body) = request.into_parts();
    if let Some(uri) = query.and_then(|q| format!("{}?{q}", parts.uri.path()).parse().ok()) {
        parts.uri = uri;
    }
    let bytes = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    Incoming {
        request: ApiRequest::from_parts(parts, bytes),
        path,
        request_id,
        deadline_ms,
    }
}

/// The query string, when the URI lacks it but the event had its parameters (an event
/// with `queryStringParameters` and no `rawQueryString`, as `cargo lambda watch` sends):
/// the API reads its parameters (`limit`, `after`) from the URI alone.
fn query_of(request: &Request) -> Option<String> {
    if request.uri().query().is_some() {
        return None;
    }
    let params = request.query_string_parameters_ref()?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    (!query.is_empty()).then_some(query)
}

pub fn outgoing(response: ApiResponse) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body)
    };
    Response::from_parts(parts, body)
}
