//! LaunchDarkly's own server SDKs, unchanged from PyPI and npm, pointed at `ingest` under
//! `cargo lambda watch` (`tests/python/sdk_events.py`, `tests/node/sdk_events.js`: flags from
//! a local file with `trackEvents`, an experiment, custom events with data and metric
//! values, anonymous and multi-kind contexts). A proxy answers each SDK's first `/bulk`
//! with a 503 after `ingest` queued it, so the SDK retries the same payload. Each run ends
//! with exactly the expected messages at the Segment receiver, each `messageId` the one its
//! payload id and position give (no duplicate from the retry), and every payload forwarded
//! to a stand-in for LaunchDarkly's events service.

use serde_json::{Value, json};
use shared::ingest::payload::event_id;
use shared::segment::identity::message_id;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use tests::event_source::EventSource;
use tests::events_service::EventsService;
use tests::fixtures::*;
use tests::process::{command, workspace_root};
use tests::proxy::FailFirstProxy;
use tests::stack::{Stack, StackOptions};

struct Harness {
    stack: Stack,
    launchdarkly: EventsService,
    proxy: FailFirstProxy,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        std::thread::spawn(|| {
            let launchdarkly = EventsService::start();
            let mut options = StackOptions::tests("sdks", true);
            options.env = vec![("FORWARD_EVENTS_URI".into(), launchdarkly.base_url())];
            let stack = Stack::start(options).expect("the local stack");
            let proxy = FailFirstProxy::start(&stack.lambda().function_url("ingest"));
            Harness {
                stack,
                launchdarkly,
                proxy,
            }
        })
        .join()
        .expect("harness setup")
    })
}

/// Registers a destination (custom data on), Data Export for `checkout-flow` only, and
/// an SDK key; returns (destination id, write key, SDK key).
async fn environment(project: &str, env: &str) -> (String, String, String) {
    let stack = &harness().stack;
    let write_key = unique("wk-sdk");
    let mut d = destination(project, env, &write_key);
    d.config.include_custom_data = true;
    put_destination(&stack.store().await, &d).await;
    put_settings(&stack.store().await, project, env, false, &["checkout-flow"]).await;
    let sdk_key = unique("sdk-key");
    register_event_sources(stack, project, env, json!({"sdkKeys": [sdk_key]})).await;
    (d.id, write_key, sdk_key)
}

/// Runs an SDK script against the proxy; what it did, as it reports it.
async fn run_sdk(program: &'static str, script: &'static str, sdk_key: &str) -> Value {
    let args = [
        harness().proxy.base_url(),
        sdk_key.to_owned(),
        std::env::temp_dir()
            .join(format!("{}-flags.json", unique("sdk")))
            .display()
            .to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let tools = std::env::var("DATA_EXPORT_TOOLS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/data-export-segment/tools",
                std::env::var("HOME").unwrap()
            )
        });
        command(program)
            .arg(workspace_root().join(script))
            .args(args)
            .env("NODE_PATH", format!("{tools}/node/node_modules"))
            .output()
            .expect("the SDK script runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script's report")
}

/// Hands the queue to `export` until `write_key` has `count` distinct messages.
async fn deliver(write_key: &str, count: usize) -> Vec<Value> {
    let stack = &harness().stack;
    let source = EventSource {
        sqs: stack.sqs().await,
        queue_url: stack.queues.as_ref().unwrap().queue.clone(),
        batch_size: 10,
    };
    for _ in 0..60 {
        let messages: Vec<Value> = stack
            .receiver
            .messages(Some(write_key))
            .into_iter()
            .map(|a| a.message)
            .collect();
        let ids: BTreeSet<&str> = messages
            .iter()
            .map(|m| m["messageId"].as_str().unwrap())
            .collect();
        if ids.len() >= count {
            return messages;
        }
        let poll = source.poll(stack.lambda(), "export").await.unwrap();
        assert!(poll.failed.is_empty(), "export failed records: {:?}", poll.failed);
        if poll.received.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    panic!("{write_key} never got {count} messages");
}

/// (userId, anonymousId, contextKeys) of a context, per README "Which key is the userId".
fn identity(context: &Value) -> (Value, Value, Value) {
    let contexts: Vec<(String, &Value)> = if context["kind"] == "multi" {
        context
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "kind")
            .map(|(k, c)| (k.clone(), c))
            .collect()
    } else {
        vec![(context["kind"].as_str().unwrap().to_owned(), context)]
    };
    let keys: serde_json::Map<String, Value> = contexts
        .iter()
        .map(|(k, c)| (k.clone(), c["key"].clone()))
        .collect();
    let user = contexts
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, c)| *c)
        .unwrap();
    if user["anonymous"] == true {
        (Value::Null, user["key"].clone(), Value::Object(keys))
    } else {
        (user["key"].clone(), Value::Null, Value::Object(keys))
    }
}

/// What Segment must hold for what the SDK did: one message per exported evaluation
/// (`checkout-flow` is exported, `experiment-flag` is in an experiment, `quiet-flag` sends
/// no feature event) and per custom event, as (event, key, userId, anonymousId) → fields.
fn expected(report: &Value) -> BTreeMap<(String, String, String, String), Value> {
    let mut out = BTreeMap::new();
    let id = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    for e in report["evaluations"].as_array().unwrap() {
        if e["flag"] == "quiet-flag" {
            continue;
        }
        let (user, anonymous, keys) = identity(&e["context"]);
        let mut fields = json!({"value": e["value"], "variation": e["variation"], "contextKeys": keys,
                                "flagVersion": if e["flag"] == "checkout-flow" { 7 } else { 3 }});
        if e["flag"] == "experiment-flag" {
            fields["inExperiment"] = json!(true);
        }
        out.insert(
            ("feature".into(), id(&e["flag"]), id(&user), id(&anonymous)),
            fields,
        );
    }
    for c in report["custom"].as_array().unwrap() {
        let (user, anonymous, keys) = identity(&c["context"]);
        let mut fields = json!({"contextKeys": keys});
        if !c["data"].is_null() {
            fields["data"] = c["data"].clone();
        }
        if !c["metricValue"].is_null() {
            fields["metricValue"] = c["metricValue"].clone();
        }
        out.insert(
            ("custom".into(), id(&c["key"]), id(&user), id(&anonymous)),
            fields,
        );
    }
    out
}

async fn sdk_events_reach_segment_once(sdk: &str, program: &'static str, script: &'static str) {
    let (project, env) = (unique(&format!("{sdk}proj")), unique("env"));
    let (destination_id, write_key, sdk_key) = environment(&project, &env).await;
    let report = run_sdk(program, script, &sdk_key).await;
    let want = expected(&report);
    assert_eq!(
        want.len(),
        8,
        "5 evaluations exported and 3 custom events: {report:#}"
    );

    // The SDK posted its payload twice (a 503, then its retry), the same both times.
    let posts: Vec<_> = harness()
        .proxy
        .posts()
        .into_iter()
        .filter(|p| p.path == "/bulk" && p.headers["authorization"] == sdk_key.as_str())
        .collect();
    let seen: Vec<(String, usize)> = posts
        .iter()
        .map(|p| {
            (
                p.headers["x-launchdarkly-payload-id"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
                p.body.len(),
            )
        })
        .collect();
    assert_eq!(
        posts.len(),
        2,
        "{sdk}: one post answered 503, and the SDK's retry: {seen:?}"
    );
    assert_eq!(posts[0].body, posts[1].body);
    let payload_id = posts[0].headers["x-launchdarkly-payload-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(posts[1].headers["x-launchdarkly-payload-id"], payload_id.as_str());

    // Exactly the messages the payload's exported events give, each id from its position.
    let events: Vec<Value> = serde_json::from_slice(&posts[0].body).unwrap();
    let exported = |e: &Value| e["kind"] == "custom" || (e["kind"] == "feature" && e["key"] != "quiet-flag");
    let want_ids: BTreeSet<String> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| exported(e))
        .map(|(i, _)| message_id(&destination_id, &event_id(&payload_id, i)).to_string())
        .collect();
    let messages = deliver(&write_key, want_ids.len()).await;
    let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
    for m in &messages {
        let id = m["messageId"].as_str().unwrap().to_owned();
        if let Some(seen) = by_id.insert(id.clone(), m) {
            assert_eq!(seen, m, "{sdk}: {id} delivered twice with different content");
        }
    }
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        want_ids,
        "{sdk}: messageIds"
    );

    let mut got = BTreeMap::new();
    for m in by_id.values() {
        let p = &m["properties"];
        let id = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let mut fields = json!({"contextKeys": p["contextKeys"]});
        for name in [
            "value",
            "variation",
            "flagVersion",
            "inExperiment",
            "data",
            "metricValue",
        ] {
            if !p[name].is_null() {
                fields[name] = p[name].clone();
            }
        }
        assert_eq!(
            (&m["type"], &p["project"], &p["environment"]),
            (&json!("track"), &json!(project), &json!(env))
        );
        got.insert(
            (
                id(&m["event"]),
                id(&p["key"]),
                id(&m["userId"]),
                id(&m["anonymousId"]),
            ),
            fields,
        );
    }
    assert_eq!(got, want, "{sdk}: the messages at Segment");

    // Both posts and the diagnostics went on to LaunchDarkly, with the SDK's key.
    let forwarded: Vec<String> = harness()
        .launchdarkly
        .posts()
        .into_iter()
        .filter(|p| {
            p.headers
                .get("authorization")
                .is_some_and(|a| a == sdk_key.as_str())
        })
        .map(|p| p.path)
        .collect();
    assert_eq!(
        forwarded.iter().filter(|p| *p == "/bulk").count(),
        2,
        "{sdk}: {forwarded:?}"
    );
    assert!(
        forwarded.iter().any(|p| p == "/diagnostic"),
        "{sdk}: {forwarded:?}"
    );
}

#[tokio::test]
async fn python_server_sdk_events_reach_segment_once() {
    sdk_events_reach_segment_once("python", "python3", "tests/python/sdk_events.py").await;
}

#[tokio::test]
async fn node_server_sdk_events_reach_segment_once() {
    sdk_events_reach_segment_once("node", "node", "tests/node/sdk_events.js").await;
}

/// Serves the browser SDK's page and its stand-ins for LaunchDarkly's client-side flag
/// and goal endpoints (`checkout-flow` with detailed events; a page-view goal).
fn serve_sdk_page() -> String {
    use axum::Router;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let tools = std::env::var("DATA_EXPORT_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/data-export-segment/tools",
            std::env::var("HOME").unwrap()
        )
    });
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let sdk = read(
        std::path::Path::new(&tools).join("node/node_modules/@launchdarkly/js-client-sdk/dist/index.js"),
    );
    let page = read(workspace_root().join("tests/browser/sdk-page.html"));
    let script = read(workspace_root().join("tests/browser/sdk-page.js"));
    let js = "text/javascript";
    let app = Router::new()
        .route(
            "/sdk-page.html",
            get(move || async move { ([(CONTENT_TYPE, "text/html")], page) }),
        )
        .route(
            "/sdk-page.js",
            get(move || async move { ([(CONTENT_TYPE, js)], script) }),
        )
        .route(
            "/js-client-sdk.js",
            get(move || async move { ([(CONTENT_TYPE, js)], sdk) }),
        )
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
                                   "urls": [{"kind": "substring", "substring": "/sdk-page"}]}]))
            }),
        );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[tokio::test]
async fn browser_sdk_events_reach_segment_from_a_page_in_chromium() {
    let (project, env) = (unique("browserproj"), unique("env"));
    let (_, write_key, _) = environment(&project, &env).await;
    let client_side_id = format!("{:024x}", fastrand::u128(..) >> 32);
    // The ID allows the page's origin only: the browser's preflight and post must carry it.
    let page = serve_sdk_page();
    register_event_sources(
        &harness().stack,
        &project,
        &env,
        json!({"clientSideIds": [{"id": client_side_id, "allowedOrigins": [page]}]}),
    )
    .await;

    let browser = tests::browser::Browser::start(&harness().stack.log_dir).expect("chromedriver");
    let client = browser.session().await.unwrap();
    let events_uri = harness().stack.lambda().function_url("ingest");
    client
        .goto(&format!(
            "{page}/sdk-page.html?clientSideId={client_side_id}&eventsUri={events_uri}"
        ))
        .await
        .unwrap();
    let mut outcome = String::new();
    for _ in 0..100 {
        outcome = client
            .find(fantoccini::Locator::Id("result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if outcome != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.close().await.unwrap();
    let outcome: Value = serde_json::from_str(&outcome).unwrap_or_else(|_| panic!("the page: {outcome}"));
    assert_eq!(
        outcome["value"],
        json!(true),
        "the flag from the stand-in: {outcome}"
    );
    assert_eq!(
        outcome["flushed"]["result"],
        json!(true),
        "the SDK's flush went through CORS: {outcome}"
    );

    let messages = deliver(&write_key, 3).await;
    let find = |kind: &str, event: Option<&str>| {
        messages
            .iter()
            .find(|m| m["type"] == kind && event.is_none_or(|e| m["event"] == e))
            .unwrap_or_else(|| panic!("no {kind} {event:?} in {messages:#?}"))
    };
    let feature = find("track", Some("feature"));
    assert_eq!(
        (
            &feature["userId"],
            &feature["properties"]["key"],
            &feature["properties"]["value"],
            &feature["properties"]["flagVersion"]
        ),
        (
            &json!("browser-user-1"),
            &json!("checkout-flow"),
            &json!(true),
            &json!(7)
        )
    );
    let custom = find("track", Some("custom"));
    assert_eq!(
        (&custom["properties"]["key"], &custom["properties"]["metricValue"]),
        (&json!("purchase"), &json!(12.5))
    );
    assert_eq!(custom["properties"]["data"], json!({"sku": "sku-42"}));
    let page_view = find("page", None);
    assert_eq!(page_view["properties"]["key"], "checkout-page");
    assert!(
        page_view["properties"]["url"]
            .as_str()
            .unwrap()
            .contains("/sdk-page.html")
    );
    let ids: BTreeSet<&str> = messages
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "a feature event, a custom event and a page view, once each"
    );
}
