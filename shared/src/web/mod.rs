//! HTTP plumbing of the functions that answer HTTP requests (the management API,
//! `test-event` and `ingest`): the framework-neutral request and response types, the one
//! error shape of every answer (`error`), JSON request bodies (`body`) and the edge to
//! `lambda_http` (`lambda`).

pub mod body;
pub mod error;
pub mod lambda;

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

pub use error::ApiError;

/// A request as the functions see it: `http::Request` with the whole body.
pub type ApiRequest = http::Request<Bytes>;
/// An answer: `http::Response` with a text body.
pub type ApiResponse = http::Response<String>;

pub fn header(request: &ApiRequest, name: http::header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn json_response(status: StatusCode, body: &Value) -> ApiResponse {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .expect("a valid response")
}

pub fn empty_response(status: StatusCode) -> ApiResponse {
    http::Response::builder()
        .status(status)
        .body(String::new())
        .expect("a valid response")
}
