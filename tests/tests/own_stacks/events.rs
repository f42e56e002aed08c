//! Every `events/` file named in README.md drives its function (by its logical name in
//! template.yaml) to the documented result under `cargo lambda invoke`.

use std::collections::BTreeSet;
use tests::fixtures::{put_events_destination, put_sample_sources};
use tests::process::workspace_root;
use tests::sqs::failed_ids;
use tests::stack::shared;
use tests::template::{function_binaries, readme_events_table, template};

#[tokio::test]
async fn every_events_file_in_the_readme_drives_its_function_to_the_documented_result() {
    let stack = shared(true);
    let binaries = function_binaries(&template());
    let rows = readme_events_table();

    let on_disk: BTreeSet<String> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .map(|e| format!("events/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let documented: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        documented, on_disk,
        "README documents every events/ file, and only those"
    );

    let store = stack.store().await;
    put_sample_sources(&store).await;
    for (file, function, expected) in rows {
        put_events_destination(&store).await;
        let binary = binaries
            .get(&function)
            .unwrap_or_else(|| panic!("{function} is not a function of template.yaml"))
            .clone();
        let path = workspace_root().join(&file);
        let lambda = stack.lambda();
        let out = tokio::task::spawn_blocking(move || lambda.invoke_cli(&binary, &path))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Some(status) = expected.strip_prefix("HTTP ") {
            assert_eq!(out["statusCode"].to_string(), status, "{file}: {out}");
        } else if let Some(list) = expected.strip_prefix("batchItemFailures: ") {
            let want: Vec<String> = if list == "none" {
                vec![]
            } else {
                list.split(", ").map(str::to_owned).collect()
            };
            assert_eq!(failed_ids(&out), want, "{file}");
        } else {
            panic!("{file}: result {expected:?} is neither \"HTTP <status>\" nor \"batchItemFailures: …\"");
        }
    }
}

/// A concrete path for a route template: `{proxy+}` and `{name}` filled in.
fn concrete(path: &str) -> String {
    if path == "$default" {
        return "/api/v2/no-such-thing".to_owned();
    }
    path.replace("{projectKey}", "demo")
        .replace("{environmentKey}", "staging")
        .replace("{id}", "some-destination")
        .replace("{replayId}", "some-replay")
        .replace("{clientSideId}", "no-such-client-side-id")
}

#[tokio::test]
async fn every_route_of_the_template_is_served_by_its_function() {
    let stack = shared(true);
    let t = template();
    let binaries = function_binaries(&t);
    let routes = tests::template::routes(&t);
    assert!(routes.len() >= 4, "{routes:?}");
    for (function, method, path) in routes {
        let path = concrete(&path);
        let method = match method.as_str() {
            "ANY" if path.ends_with("/test") => "POST".to_owned(),
            "ANY" => "GET".to_owned(),
            m => m.to_owned(),
        };
        let event = tests::apigw::request(&method, &path, None);
        let out = stack.lambda().invoke(&binaries[&function], &event).await.unwrap();
        if function == "IngestFunction" && method == "OPTIONS" {
            // The browser SDK's preflight, answered for any page.
            assert_eq!(
                out["statusCode"],
                serde_json::json!(204),
                "{method} {path}: {out}"
            );
            continue;
        }
        let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap_or("null")).unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        if path == "/api/v2/no-such-thing" {
            // The catch-all: unknown paths get a 404 in the API's error shape.
            assert_eq!(
                (&out["statusCode"], &body["code"]),
                (&serde_json::json!(404), &serde_json::json!("not_found"))
            );
            continue;
        }
        assert!(
            !message.starts_with("no route") && !message.contains("served by the test-event function"),
            "{function} does not serve {method} {path}: {out}"
        );
        if function == "IngestFunction" {
            // SDKs authenticate with their own keys: the API token is no SDK key.
            assert_eq!(
                (&out["statusCode"], &body["code"]),
                (&serde_json::json!(401), &serde_json::json!("unauthorized"))
            );
            continue;
        }
        assert_ne!(out["statusCode"], 401, "{function}: the local token is accepted");
    }
}
