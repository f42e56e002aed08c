//! Reading a JSON request body: size, content type and syntax, each with a message that
//! says what to fix.

use super::error::ApiError;
use super::{ApiRequest, header};
use serde_json::Value;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn json(request: &ApiRequest) -> Result<Value, ApiError> {
    let body = request.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(format!(
            "the request body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    if let Some(content_type) = header(request, http::header::CONTENT_TYPE) {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::invalid(format!(
                "Content-Type {content_type:?} is not supported: send JSON with Content-Type: application/json"
            )));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty: send a JSON document",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> ApiRequest {
        http::Request::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes::Bytes::copy_from_slice(body))
            .unwrap()
    }

    #[test]
    fn a_body_that_is_not_utf8_is_a_400() {
        let err = json(&request(b"{\"a\": \"\xff\xfe\"}")).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
    }
}
