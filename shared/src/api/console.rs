//! The web console (README, "The console"): a static page, stylesheet and script embedded in
//! the `destinations` binary and served at `<base>/console`, using only the public API. No
//! token is needed to load it (it holds none); every call it makes carries the token the
//! user pasted. A strict Content-Security-Policy allows nothing but these same-origin files
//! and same-origin API calls.

use super::ApiResponse;
use super::error::ApiError;
use http::{Method, StatusCode, header};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// A file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Page,
    Script,
    Style,
    /// `<base>/console/`: the page's relative links need `<base>/console`.
    PageWithSlash,
}

/// The console asset a raw path names (whatever prefix comes first), if any. API paths
/// never are (a project or environment may be called `console`).
pub fn asset(raw_path: &str) -> Option<Asset> {
    if raw_path.contains("/api/v2/") {
        return None;
    }
    let segments: Vec<&str> = raw_path.split('/').collect();
    let at = segments.iter().position(|s| *s == "console")?;
    match &segments[at + 1..] {
        [] => Some(Asset::Page),
        [""] => Some(Asset::PageWithSlash),
        ["console.js"] => Some(Asset::Script),
        ["console.css"] => Some(Asset::Style),
        _ => None,
    }
}

pub fn serve(asset: Asset, method: &Method) -> Result<ApiResponse, ApiError> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::method_not_allowed(method, "GET"));
    }
    let (content_type, body) = match asset {
        Asset::Page => ("text/html; charset=utf-8", PAGE),
        Asset::Script => ("text/javascript; charset=utf-8", SCRIPT),
        Asset::Style => ("text/css; charset=utf-8", STYLE),
        Asset::PageWithSlash => {
            return Ok(http::Response::builder()
                .status(StatusCode::PERMANENT_REDIRECT)
                .header(header::LOCATION, "../console")
                .body(String::new())
                .expect("a valid response"));
        }
    };
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body.to_owned())
        .expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_behind_any_prefix() {
        assert_eq!(asset("/console"), Some(Asset::Page));
        assert_eq!(asset("/lambda-url/destinations/console"), Some(Asset::Page));
        assert_eq!(asset("/prod/console/console.js"), Some(Asset::Script));
        assert_eq!(asset("/console/console.css"), Some(Asset::Style));
        assert_eq!(asset("/console/"), Some(Asset::PageWithSlash));
        assert_eq!(asset("/console/secrets"), None);
        assert_eq!(asset("/api/v2/destinations"), None);
        assert_eq!(
            asset("/api/v2/destinations/p/console"),
            None,
            "an environment called console"
        );
    }

    #[test]
    fn the_page_holds_no_inline_script_or_style_and_is_served_under_a_strict_policy() {
        for file in [PAGE, SCRIPT, STYLE] {
            assert!(!file.contains("eval(") && !file.contains("new Function"));
        }
        let page = PAGE.to_ascii_lowercase();
        assert!(!page.contains("<style"), "no inline style element");
        assert!(!page.contains(" style="), "no inline style attribute");
        let handler = page.split(" on").skip(1).find(|after| {
            let name: String = after.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && after[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "no inline event handler: on{handler:?}");
        // Every <script> loads a file: none carries code.
        for script in page.split("<script").skip(1) {
            let (tag, rest) = script.split_once('>').unwrap();
            assert!(tag.contains("src="), "a script element without src");
            assert!(rest.starts_with("</script>"), "a script element with inline code");
        }
        let r = serve(Asset::Page, &Method::GET).unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"));
        assert!(!SCRIPT.contains("console.log"), "nothing is logged by the page");
    }
}
