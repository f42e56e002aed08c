//! An origin for LaunchDarkly's browser SDK in the tests: every page of `tests/browser/`,
//! the SDK itself from npm's package (unchanged, as `/js-client-sdk.js`), and stand-ins for
//! LaunchDarkly's client-side flag and goal endpoints: `checkout-flow` (true, version 7,
//! with `trackEvents`) and a page-view goal `checkout-page` for every URL with `-page`.

use crate::process::workspace_root;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use std::path::PathBuf;

/// Where `scripts/tools.sh` installed the npm packages.
fn tools_dir() -> PathBuf {
    std::env::var("DATA_EXPORT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/data-export-segment/tools")
        })
}

/// Starts the origin on 127.0.0.1 (any free port), on its own thread; its base URL.
pub fn serve() -> String {
    let path = tools_dir().join("node/node_modules/@launchdarkly/js-client-sdk/dist/index.js");
    let sdk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let app = Router::new()
        .route(
            "/js-client-sdk.js",
            get(move || async move { ([(CONTENT_TYPE, "text/javascript")], sdk) }),
        )
        .route("/{file}", get(page_file))
        .route(
            "/sdk/evalx/{env}/contexts/{context}",
            get(|| async {
                axum::Json(
                    json!({"checkout-flow": {"value": true, "variation": 1, "version": 7,
                                  "flagVersion": 7, "trackEvents": true}}),
                )
            }),
        )
        .route(
            "/sdk/goals/{env}",
            get(|| async {
                axum::Json(json!([{"kind": "pageview", "key": "checkout-page",
                                   "urls": [{"kind": "substring", "substring": "-page"}]}]))
            }),
        );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sdk-page".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("page runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send(listener.local_addr().expect("address"))
                    .expect("hand over");
                axum::serve(listener, app).await.expect("serve");
            });
        })
        .expect("page thread");
    format!("http://{}", rx.recv().expect("page origin started"))
}

/// A file of `tests/browser/` (no subfolders), typed by its extension.
async fn page_file(Path(file): Path<String>) -> impl IntoResponse {
    let kind = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html",
        Some("js") => "text/javascript",
        _ => return Err(StatusCode::NOT_FOUND),
    };
    if file.contains("..") || file.contains('/') {
        return Err(StatusCode::NOT_FOUND);
    }
    let text = std::fs::read_to_string(workspace_root().join("tests/browser").join(&file))
        .map_err(|_| StatusCode::NOT_FOUND)?;
    Ok(([(CONTENT_TYPE, kind)], text))
}
