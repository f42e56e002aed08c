//! The web console (README, "The console"): a static page, stylesheet and scripts embedded in
//! the `destinations` binary and served at `<base>/console`, using only the public API. No
//! token is needed to load it (it holds none); every call it makes carries the token the
//! user pasted. A strict Content-Security-Policy allows nothing but these same-origin files
//! and same-origin API calls.

use crate::web::{ApiError, ApiResponse};
use http::{Method, StatusCode, header};

const PAGE: &str = include_str!("console/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// A file the page loads from `<base>/console/`.
#[derive(Debug, PartialEq, Eq)]
pub struct File {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const fn js(name: &'static str, body: &'static str) -> File {
    File {
        name,
        content_type: JS,
        body,
    }
}

/// Every file under `<base>/console/`. The script is ES modules whose relative imports
/// resolve here, so each module must be listed (the tests check every import is).
const FILES: &[File] = &[
    js("console.js", include_str!("console/console.js")),
    js("api.js", include_str!("console/api.js")),
    js("session.js", include_str!("console/session.js")),
    js("dom.js", include_str!("console/dom.js")),
    js("destinations.js", include_str!("console/destinations.js")),
    js("delivery.js", include_str!("console/delivery.js")),
    js("edit.js", include_str!("console/edit.js")),
    js("delete.js", include_str!("console/delete.js")),
    js("replay.js", include_str!("console/replay.js")),
    js("settings.js", include_str!("console/settings.js")),
    File {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("console/console.css"),
    },
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// A file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Page,
    /// `<base>/console/`: the page's relative links need `<base>/console`.
    PageWithSlash,
    File(&'static File),
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
        [name] => FILES.iter().find(|f| f.name == *name).map(Asset::File),
        _ => None,
    }
}

pub fn serve(asset: Asset, method: &Method) -> Result<ApiResponse, ApiError> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::method_not_allowed(method, "GET"));
    }
    let (content_type, body) = match asset {
        Asset::Page => ("text/html; charset=utf-8", PAGE),
        Asset::File(file) => (file.content_type, file.body),
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

    fn file(name: &str) -> Asset {
        Asset::File(FILES.iter().find(|f| f.name == name).unwrap())
    }

    fn scripts() -> impl Iterator<Item = &'static File> {
        FILES.iter().filter(|f| f.content_type == JS)
    }

    /// What each `import` of a module names. The modules write every import on one line
    /// ending in its specifier: a line starting with `import` that does not is refused,
    /// rather than read wrongly.
    fn imports(module: &File) -> Vec<&'static str> {
        let mut names = Vec::new();
        for line in module.body.lines().map(str::trim) {
            let reexport = line.starts_with("export ") && line.contains(" from ");
            if !line.starts_with("import ") && !reexport {
                continue;
            }
            let last = line.trim_end_matches(';').rsplit(' ').next().unwrap_or_default();
            let name = last
                .strip_prefix('\'')
                .and_then(|l| l.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{}: an import not on one line: {line}", module.name));
            names.push(name);
        }
        names
    }

    #[test]
    fn the_console_behind_any_prefix() {
        assert_eq!(asset("/console"), Some(Asset::Page));
        assert_eq!(asset("/lambda-url/destinations/console"), Some(Asset::Page));
        assert_eq!(asset("/prod/console/console.js"), Some(file("console.js")));
        assert_eq!(asset("/prod/console/api.js"), Some(file("api.js")));
        assert_eq!(asset("/console/console.css"), Some(file("console.css")));
        assert_eq!(asset("/console/"), Some(Asset::PageWithSlash));
        assert_eq!(asset("/console/secrets"), None);
        assert_eq!(asset("/console/console.js/api.js"), None);
        assert_eq!(asset("/api/v2/destinations"), None);
        assert_eq!(
            asset("/api/v2/destinations/p/console"),
            None,
            "an environment called console"
        );
    }

    #[test]
    fn every_file_is_served_with_its_type() {
        for f in FILES {
            let r = serve(Asset::File(f), &Method::GET).unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], f.content_type);
            assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(
                r.headers()[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(r.body(), f.body);
        }
        let names: Vec<&str> = FILES.iter().map(|f| f.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a file listed twice: {names:?}");
    }

    #[test]
    fn every_import_names_a_served_module_and_every_module_is_imported() {
        let mut imported = vec!["console.js"];
        for module in scripts() {
            assert!(
                !module.body.contains("import("),
                "{}: a dynamic import, which this test cannot follow",
                module.name
            );
            for name in imports(module) {
                let served = name
                    .strip_prefix("./")
                    .and_then(|n| FILES.iter().find(|f| f.name == n));
                assert!(
                    served.is_some_and(|f| f.content_type == JS),
                    "{} imports {name}, which is not a served module",
                    module.name
                );
                imported.push(&name[2..]);
            }
        }
        for module in scripts() {
            assert!(
                imported.contains(&module.name),
                "{} is served but never imported",
                module.name
            );
        }
        assert!(PAGE.contains(r#"<script type="module" src="console/console.js"></script>"#));
        let links = [r#"src="console/"#, r#"href="console/"#]
            .into_iter()
            .flat_map(|attribute| PAGE.split(attribute).skip(1));
        for link in links {
            let name = link.split('"').next().unwrap();
            assert!(
                asset(&format!("/console/{name}")).is_some(),
                "the page loads console/{name}, which is not served"
            );
        }
    }

    #[test]
    fn the_page_holds_no_inline_script_or_style_and_is_served_under_a_strict_policy() {
        for f in FILES {
            assert!(
                !f.body.contains("eval(") && !f.body.contains("new Function"),
                "{}",
                f.name
            );
        }
        for module in scripts() {
            for banned in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "console.log",
            ] {
                assert!(!module.body.contains(banned), "{} uses {banned}", module.name);
            }
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
    }
}
