//! API errors in the contract's shape: `{"code", "message", "id"}` (README, "The API").

use super::{ApiResponse, json_response};
use crate::store::StoreError;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// The `Retry-After` header (seconds) of a 503.
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed(method: &http::Method, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here; use {allow}"),
            )
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "optimistic_locking_error", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 503: a dependency cannot answer now; the caller should retry, after `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", message)
        }
    }

    /// Whether the caller is at fault (4xx): logged below ERROR, since the service is fine.
    pub fn is_client_error(&self) -> bool {
        self.status.is_client_error()
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// The response, carrying the request id. A refusal of the caller's request is logged
    /// at DEBUG, the service's own failure at WARN (its cause was logged where it happened).
    pub fn into_response(self, request_id: &str) -> ApiResponse {
        if self.is_client_error() {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        } else {
            tracing::warn!(status = self.status.as_u16(), code = self.code, "request failed");
        }
        let body = json!({"code": self.code, "message": self.message, "id": request_id});
        let mut response = json_response(self.status, &body);
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

/// How long a caller should wait before retrying after an outage.
const RETRY_AFTER_SECONDS: u32 = 1;

/// The one mapping from store failures to the API's answer, for the management API and
/// `ingest` alike: an outage is a 503 with `Retry-After`, a malformed item a 500, and the
/// rest the caller's 4xx. Only the service's own failures are logged at ERROR.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("no such destination"),
            StoreError::Taken => Self::conflict(
                "one of these keys or client-side IDs is registered for another environment: remove it there first",
            ),
            StoreError::VersionConflict => {
                Self::conflict("the resource was changed concurrently; read it again and retry")
            }
            StoreError::Refused { message } => Self::invalid(format!(
                "the destinations table refused this request as invalid ({message}); make it smaller or simpler"
            )),
            StoreError::Dynamo { .. } => {
                // The details go to the log; the caller learns what to do.
                tracing::error!(error = %e, "the table could not be read or written");
                Self::unavailable("the destinations table cannot be reached now; retry shortly")
            }
            StoreError::Malformed { .. } => {
                tracing::error!(error = %e, "a stored item is malformed");
                Self::internal("a stored item could not be read; the service's operators are told")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_dynamodb_refuses_is_the_callers_400_not_a_500() {
        let e = ApiError::from(StoreError::Refused {
            message: "Item size has exceeded the maximum allowed size".into(),
        });
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"));
        let outage = ApiError::from(StoreError::Dynamo {
            operation: "PutItem",
            source: "timeout".into(),
        });
        assert_eq!(
            (outage.status.as_u16(), outage.code),
            (503, "service_unavailable")
        );
        let response = outage.into_response("req-1");
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        let malformed = ApiError::from(StoreError::Malformed {
            pk: "ENV#p#e".into(),
            sk: "DEST#d".into(),
            reason: "missing field `version`".into(),
        });
        assert_eq!(malformed.status.as_u16(), 500);
    }
}
