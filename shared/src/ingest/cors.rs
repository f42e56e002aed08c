//! CORS for the browser SDK's endpoints (`/events/bulk/{clientSideId}`,
//! `/events/diagnostic/{clientSideId}`): pages on any origin post their events here, as they
//! do to LaunchDarkly, so the preflight allows any origin, the headers the browser SDK
//! sends, and POST; every answer (errors too) carries the origin so the page can read it.
//! A client-side ID with `allowedOrigins` narrows this to its origins: only a listed one is
//! echoed, and another's preflight is refused (`ingest::origin`).

use crate::sources::AllowedOrigins;
use crate::web::{ApiRequest, ApiResponse, header};
use http::{HeaderValue, StatusCode, header as h};

/// The request headers the browser SDK sends (and the Relay Proxy allows).
const ALLOWED_HEADERS: &str = "Cache-Control, Content-Type, Content-Length, Accept-Encoding, \
     X-LaunchDarkly-Event-Schema, X-LaunchDarkly-Payload-ID, X-LaunchDarkly-User-Agent, \
     X-LaunchDarkly-Wrapper, X-LaunchDarkly-Tags";

/// How long a browser may reuse a preflight answer.
const MAX_AGE_SECONDS: &str = "300";

/// The answer to a preflight `OPTIONS` the client-side ID's `allowed` origins admit.
pub fn preflight(request: &ApiRequest, allowed: &AllowedOrigins) -> ApiResponse {
    let mut response = http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(h::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS")
        .header(h::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
        .header(h::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS)
        .body(String::new())
        .expect("a valid response");
    allow_origin(request, &mut response, allowed);
    response
}

/// Lets the page that sent `request` read `response`, if the client-side ID's `allowed`
/// origins admit it (any, when none are listed).
pub fn allow_origin(request: &ApiRequest, response: &mut ApiResponse, allowed: &AllowedOrigins) {
    // The browser SDK sends no cookies: no credentials are allowed, whatever the origin.
    let origin = header(request, h::ORIGIN);
    let headers = response.headers_mut();
    headers.insert(h::VARY, HeaderValue::from_static("Origin"));
    if !allowed.admits(origin) {
        return;
    }
    match origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        Some(origin) => {
            headers.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        None => {
            headers.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request(origin: Option<&str>) -> ApiRequest {
        let mut r = http::Request::builder().method("OPTIONS").uri("/events/bulk/abc");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.body(Bytes::new()).unwrap()
    }

    #[test]
    fn a_preflight_allows_the_page_its_method_and_the_sdks_headers() {
        let r = preflight(&request(Some("https://shop.example")), &AllowedOrigins::default());
        assert_eq!(r.status(), 204);
        let get = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(get("access-control-allow-origin"), "https://shop.example");
        assert!(r.headers().get("access-control-allow-credentials").is_none());
        assert!(get("access-control-allow-methods").contains("POST"));
        let allowed = get("access-control-allow-headers").to_ascii_lowercase();
        for sent in [
            "content-type",
            "x-launchdarkly-event-schema",
            "x-launchdarkly-payload-id",
            "x-launchdarkly-user-agent",
        ] {
            assert!(allowed.contains(sent), "{sent} is allowed");
        }
    }

    #[test]
    fn without_an_origin_any_origin_is_allowed() {
        let r = preflight(&request(None), &AllowedOrigins::default());
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
    }

    #[test]
    fn with_a_list_only_a_listed_origin_is_echoed() {
        let allowed = AllowedOrigins::new([crate::sources::Origin::parse("https://shop.example").unwrap()]);
        let answer = |origin| {
            let mut r = http::Response::new(String::new());
            allow_origin(&request(origin), &mut r, &allowed);
            r
        };
        let r = answer(Some("https://shop.example"));
        assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
        assert_eq!(r.headers()["vary"], "Origin");
        for other in [Some("https://evil.example"), None] {
            let r = answer(other);
            assert!(
                r.headers().get("access-control-allow-origin").is_none(),
                "{other:?}"
            );
            assert_eq!(r.headers()["vary"], "Origin", "caches keep answers apart");
        }
    }
}
