//! The stack as Lambda runs it (issue 18): the functions of `template.yaml` under AWS SAM's
//! `sam local invoke` and `sam local start-api`, in podman containers with Lambda's runtime
//! interface emulator, against moto and the Segment receiver on the host's loopback.
//!
//! Run by `scripts/sam-local.sh test` (`make sam-local`, and `make test`), which prepares
//! podman, runs `sam build` and keeps podman's Docker API up meanwhile; run alone, this
//! target says so and fails.
//!
//! - arm64 (the architecture the template deploys): `sam build`'s release bootstraps, as
//!   built, under qemu: `export` with an `events/` batch, one API call, one SDK payload.
//! - x86_64: the same template with the architecture switched and each function's code the
//!   debug build of its binary (`cargo build -p <binary>`), which runs natively: every
//!   `events/` file of README's table through `sam local invoke`, then `sam local
//!   start-api` with LaunchDarkly's Python API client, a test event, the console and an SDK
//!   payload on `/bulk`, through the template's own routes.
//!
//! Every container any of it starts is inspected while it runs: its network is slirp4netns
//! (or the host's), never a bridge.

use reqwest::StatusCode;
use serde_json::{Value, json};
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::fixtures::{
    EVENTS_DESTINATION_ID, SAMPLE_SDK_KEY, put_events_destination, put_sample_sources, python_script, unique,
};
use tests::process::{Service, free_port, workspace_root};
use tests::sqs::failed_ids;
use tests::stack::{LOCAL_API_TOKEN, Stack, StackOptions};
use tests::template::{function_binaries, readme_events_table, template};

/// How a container reaches the host's 127.0.0.1 under slirp4netns (allow_host_loopback).
const HOST_FROM_CONTAINER: &str = "10.0.2.2";

/// The variables of local runs (CONTRACT §1) that the template does not declare, since a
/// deployment never sets them. SAM passes a function only the `--env-vars` values of
/// variables its template declares, so the suite's copy of the built template declares
/// these (empty) in Globals; every other variable is the template's own, and one it
/// misnames does not get its local value.
const LOCAL_ONLY: [&str; 5] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "SEGMENT_BASE_URL",
    "SEGMENT_CDN_URL",
];

/// Variables SAM sets itself (from its own environment and the template's LoggingConfig).
const SAM_SETS: [&str; 5] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_LAMBDA_LOG_FORMAT",
];

/// The routes the service must have, by function, whatever the template says: the API's
/// paths (its OpenAPI description, the test event's on test-event) and the paths
/// LaunchDarkly's SDKs post events to.
fn required_routes() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let openapi: Value =
        serde_json::from_str(include_str!("../../shared/src/api/openapi.json")).expect("openapi.json");
    let mut routes: Vec<(&'static str, String, Vec<&'static str>)> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        // The description itself is served by the catch-all route (checked by a request).
        .filter(|p| !p.ends_with("/openapi.json"))
        .map(|p| {
            let function = if p.ends_with("/test") {
                "TestEventFunction"
            } else {
                "DestinationsFunction"
            };
            (function, p.clone(), vec!["GET", "POST", "PATCH", "DELETE"])
        })
        .collect();
    for path in [
        "/bulk",
        "/diagnostic",
        "/mobile",
        "/mobile/events",
        "/mobile/events/bulk",
        "/mobile/events/diagnostic",
    ] {
        routes.push(("IngestFunction", path.to_owned(), vec!["POST"]));
    }
    for path in ["/events/bulk/{clientSideId}", "/events/diagnostic/{clientSideId}"] {
        routes.push(("IngestFunction", path.to_owned(), vec!["POST", "OPTIONS"]));
    }
    routes
}

struct Sam {
    stack: Stack,
    build_dir: PathBuf,
    env_file: PathBuf,
    arm64: PathBuf,
    x86_64: PathBuf,
    invocations: usize,
}

fn sam_program() -> PathBuf {
    let dir = std::env::var("DATA_EXPORT_SAM").unwrap_or_else(|_| {
        format!(
            "{}/.cache/data-export-segment/sam",
            std::env::var("HOME").unwrap()
        )
    });
    Path::new(&dir).join("bin/sam")
}

fn sam_command() -> Command {
    let mut cmd = Command::new(sam_program());
    cmd.current_dir(workspace_root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", tests::moto::REGION)
        .env("AWS_REGION", tests::moto::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    cmd
}

fn function_names(t: &Yaml) -> Vec<String> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect()
}

impl Sam {
    fn prepare() -> Self {
        let build_dir = PathBuf::from(std::env::var("SAM_LOCAL_BUILD_DIR").expect(
            "SAM_LOCAL_BUILD_DIR is unset: run this suite with scripts/sam-local.sh test (make sam-local)",
        ));
        assert!(
            std::env::var("DOCKER_HOST").is_ok_and(|h| h.starts_with("unix://")),
            "DOCKER_HOST is not podman's socket: run this suite with scripts/sam-local.sh test"
        );
        let stack = Stack::start(StackOptions {
            label: "sam-local",
            lambda: false,
            reload: false,
            cache_ttl_seconds: 1,
            ports: Default::default(),
            queues: true,
            env: Vec::new(),
            release: false,
        })
        .expect("moto and the receiver start");

        // The functions' variables, with the host's loopback as the containers see it.
        let vars: serde_json::Map<String, Value> = stack
            .function_env()
            .into_iter()
            .filter(|(k, _)| !SAM_SETS.contains(&k.as_str()))
            .map(|(k, v)| (k, Value::from(v.replace("127.0.0.1", HOST_FROM_CONTAINER))))
            .collect();
        let env_file = stack.log_dir.join("env.json");
        std::fs::write(&env_file, json!({"Parameters": vars}).to_string()).unwrap();

        let built: Yaml = serde_norway::from_str(
            &std::fs::read_to_string(build_dir.join("template.yaml")).expect("sam build's template.yaml"),
        )
        .unwrap();
        let mut arm64 = built.clone();
        let globals = &mut arm64["Globals"]["Function"]["Environment"]["Variables"];
        let globals = globals
            .as_mapping_mut()
            .expect("Globals.Function.Environment.Variables");
        for name in LOCAL_ONLY {
            assert!(
                !globals.contains_key(name),
                "the template sets {name}, which only local runs may"
            );
            globals.insert(Yaml::from(name), Yaml::from(""));
        }
        let arm64_path = build_dir.join("sam-local-arm64.yaml");
        std::fs::write(&arm64_path, serde_norway::to_string(&arm64).unwrap()).unwrap();

        // x86_64: the debug builds, hard-linked (not copied) into code folders of their own.
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join("target"));
        let binaries = function_binaries(&template());
        let mut x86 = arm64.clone();
        for name in function_names(&x86) {
            let code = build_dir.join("x86_64").join(&name);
            std::fs::create_dir_all(&code).unwrap();
            let bootstrap = code.join("bootstrap");
            let _ = std::fs::remove_file(&bootstrap);
            let binary = target.join("debug").join(&binaries[&name]);
            std::fs::hard_link(&binary, &bootstrap)
                .unwrap_or_else(|e| panic!("{}: {e} (cargo build -p {})", binary.display(), binaries[&name]));
            let props = &mut x86["Resources"][name.as_str()]["Properties"];
            props["CodeUri"] = Yaml::from(format!("x86_64/{name}"));
            props["Architectures"] = serde_norway::from_str("[x86_64]").unwrap();
        }
        let x86_path = build_dir.join("sam-local-x86_64.yaml");
        std::fs::write(&x86_path, serde_norway::to_string(&x86).unwrap()).unwrap();

        Self {
            stack,
            build_dir,
            env_file,
            arm64: arm64_path,
            x86_64: x86_path,
            invocations: 0,
        }
    }

    /// `sam local invoke FUNCTION -e EVENT` on one of the templates: the function's answer.
    fn invoke(&mut self, template: &Path, function: &str, event: &Path) -> Value {
        self.invocations += 1;
        let out = sam_command()
            .args(["local", "invoke", function, "--skip-pull-image", "-t"])
            .arg(template)
            .arg("-e")
            .arg(event)
            .arg("--env-vars")
            .arg(&self.env_file)
            .output()
            .expect("sam runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = self
            .stack
            .log_dir
            .join(format!("invoke-{}.log", self.invocations));
        std::fs::write(&log, stderr.as_bytes()).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answer = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            out.status.success(),
            "sam local invoke {function} -e {} failed:\n{stdout}\n{stderr}",
            event.display()
        );
        serde_json::from_str(answer).unwrap_or_else(|e| {
            panic!(
                "{function} -e {}: {e}; stdout {stdout:?}; log {}",
                event.display(),
                log.display()
            )
        })
    }
}

/// Polls podman for containers while the suite runs: each one's network mode and image.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, (String, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ids = Command::new("podman").args(["ps", "-aq", "--no-trunc"]).output();
                    for id in ids
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default()
                        .split_whitespace()
                    {
                        if seen.lock().unwrap().contains_key(id) {
                            continue;
                        }
                        let inspected = Command::new("podman")
                            .args([
                                "inspect",
                                "--format",
                                "{{.HostConfig.NetworkMode}} {{.ImageName}}",
                                id,
                            ])
                            .output();
                        if let Ok(o) = inspected
                            && o.status.success()
                        {
                            let text = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                            let (mode, image) = text.split_once(' ').unwrap_or((&text, ""));
                            seen.lock()
                                .unwrap()
                                .insert(id.to_owned(), (mode.to_owned(), image.to_owned()));
                        }
                    }
                    // Short: a container that answers at once (a dropped replay task) lives
                    // about a second, and one missed fails the count below.
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> BTreeMap<String, (String, String)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

fn phase(name: &str, started: Instant) {
    eprintln!("sam-local: {name} in {:.1}s", started.elapsed().as_secs_f64());
}

/// "Mounting FUNCTION at http://127.0.0.1:PORT/PATH [METHODS]" lines of `start-api`.
fn mounted(log: &str) -> Vec<(String, String, BTreeSet<String>)> {
    log.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("Mounting ")?;
            let (function, rest) = rest.split_once(" at ")?;
            let (url, methods) = rest.split_once(" [")?;
            let path = url
                .split_once("://")
                .map(|(_, r)| r)?
                .split_once('/')
                .map(|(_, p)| format!("/{p}"))?;
            let methods = methods
                .trim_end_matches(']')
                .split(", ")
                .map(str::to_owned)
                .collect();
            Some((function.to_owned(), path, methods))
        })
        .collect()
}

#[test]
fn the_template_runs_under_sam_local_on_both_architectures() {
    let started = Instant::now();
    let mut sam = Sam::prepare();
    let watcher = Watcher::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(sam.stack.store());
    rt.block_on(put_sample_sources(&store));
    phase("moto, the receiver and the templates", started);

    // arm64, the deployed build, under qemu.
    let t = Instant::now();
    let arm64 = sam.arm64.clone();
    rt.block_on(put_events_destination(&store));
    let out = sam.invoke(
        &arm64,
        "ExportFunction",
        &workspace_root().join("events/sqs-all-kinds.json"),
    );
    assert_eq!(
        failed_ids(&out),
        ["m-array-one-bad", "m-bad-json", "m-no-context", "m-no-project"],
        "arm64 export: {out}"
    );
    let out = sam.invoke(
        &arm64,
        "DestinationsFunction",
        &workspace_root().join("events/api-get-destination.json"),
    );
    assert_eq!(out["statusCode"], 200, "arm64 destinations: {out}");
    let out = sam.invoke(
        &arm64,
        "IngestFunction",
        &workspace_root().join("events/ingest-bulk.json"),
    );
    assert_eq!(out["statusCode"], 202, "arm64 ingest: {out}");
    phase("arm64: 3 invocations", t);

    // x86_64: README's events/ table, row by row.
    let t = Instant::now();
    let x86 = sam.x86_64.clone();
    let rows = readme_events_table();
    assert!(rows.len() >= 20, "README's events/ table: {rows:?}");
    for (file, function, expected) in &rows {
        rt.block_on(put_events_destination(&store));
        let out = sam.invoke(&x86, function, &workspace_root().join(file));
        if let Some(status) = expected.strip_prefix("HTTP ") {
            assert_eq!(out["statusCode"].to_string(), status, "{file}: {out}");
        } else if let Some(list) = expected.strip_prefix("batchItemFailures: ") {
            let want: Vec<String> = if list == "none" {
                vec![]
            } else {
                list.split(", ").map(str::to_owned).collect()
            };
            assert_eq!(failed_ids(&out), want, "{file}: {out}");
        } else {
            panic!("{file}: result {expected:?} is neither \"HTTP <status>\" nor \"batchItemFailures: …\"");
        }
    }
    assert!(
        !sam.stack
            .receiver
            .messages(Some("events-write-key-0005"))
            .is_empty(),
        "export and the test event reached the receiver"
    );
    phase(&format!("x86_64: {} events/ files", rows.len()), t);

    // x86_64: the template's APIs under start-api.
    let t = Instant::now();
    start_api(&mut sam, &rt, &store);
    phase("x86_64: start-api", t);

    let seen = watcher.finish();
    eprintln!("sam-local: containers seen: {seen:?}");
    for (id, (mode, image)) in &seen {
        assert!(
            mode == "slirp4netns" || mode == "host",
            "container {id} ({image}) uses network {mode:?}, not slirp4netns or the host's"
        );
    }
    assert!(
        seen.len() >= sam.invocations,
        "{} invocations, {} containers inspected",
        sam.invocations,
        seen.len()
    );
    assert!(
        seen.values()
            .any(|(_, image)| image.ends_with("al2023-rapid-arm64")),
        "an arm64 container ran: {seen:?}"
    );
    let _ = &sam.build_dir;
    phase("the whole suite", started);
}

fn start_api(sam: &mut Sam, rt: &tokio::runtime::Runtime, store: &shared::store::DynamoStore) {
    let port = free_port();
    let mut cmd = sam_command();
    cmd.args([
        "local",
        "start-api",
        "--skip-pull-image",
        "--warm-containers",
        "LAZY",
    ])
    .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t"])
    .arg(&sam.x86_64)
    .arg("--env-vars")
    .arg(&sam.env_file);
    let mut api = Service::spawn("sam-start-api", cmd, &sam.stack.log_dir).expect("start-api starts");
    api.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(60))
        .expect("start-api listens");
    let base = format!("http://127.0.0.1:{port}");

    // Every route the service needs is the template's, on its function.
    let routes = mounted(&std::fs::read_to_string(&api.log).unwrap());
    for (function, path, methods) in required_routes() {
        let route = routes.iter().find(|(_, p, _)| *p == path);
        let Some((by, _, mounted_methods)) = route else {
            panic!("template.yaml has no route for {path} ({function}); start-api mounted {routes:#?}");
        };
        assert_eq!(by, function, "{path} is routed to {by}, not {function}");
        for m in methods {
            assert!(
                mounted_methods.contains(m) || mounted_methods.contains("X-AMAZON-APIGATEWAY-ANY-METHOD"),
                "{path}: no {m} route ({mounted_methods:?})"
            );
        }
    }

    rt.block_on(async {
        let http = reqwest::Client::new();
        // LaunchDarkly's own Python client: create, read, list, patch, delete.
        let (project, env, key) = (unique("samproj"), unique("samenv"), unique("wk-sam-client"));
        let stdout = python_script(
            "ld_client_check.py",
            vec![base.clone(), LOCAL_API_TOKEN.to_owned(), project, env, key],
        )
        .await;
        let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(seen["patchedVersion"], 2, "{seen}");
        assert_eq!(
            (&seen["deleted"], &seen["unauthorized"]),
            (&json!(true), &json!(true))
        );

        // A test event, through test-event's own route.
        put_events_destination(store).await;
        let r = http
            .post(format!(
                "{base}/api/v2/destinations/demo/staging/{EVENTS_DESTINATION_ID}/test"
            ))
            .header("authorization", LOCAL_API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "the test event: {body}");

        // The catch-all route: the OpenAPI description, the console and its script.
        for (path, kind) in [
            ("/api/v2/openapi.json", "application/json"),
            ("/console", "text/html"),
            ("/console/console.js", "javascript"),
        ] {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            let (status, ctype) = (
                r.status(),
                r.headers()["content-type"].to_str().unwrap().to_owned(),
            );
            let body = r.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert!(ctype.contains(kind), "{path}: content-type {ctype}");
            if path == "/console" {
                assert!(body.contains("console.js"), "the console page: {body}");
            }
        }

        // An SDK payload on /bulk lands on the export queue.
        let sample = tests::fixtures::read_event_file("ingest-bulk.json");
        let sqs = sam.stack.sqs().await;
        let queue = sam.stack.queues.as_ref().unwrap().queue.clone();
        let queued = || async {
            let a = sqs
                .get_queue_attributes()
                .queue_url(&queue)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .unwrap();
            a.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
                .parse::<u64>()
                .unwrap()
        };
        let before = queued().await;
        let r = http
            .post(format!("{base}/bulk"))
            .header("authorization", SAMPLE_SDK_KEY)
            .header("content-type", "application/json")
            .header("x-launchdarkly-event-schema", "4")
            .header("user-agent", "PythonClient/9.20.0")
            .body(sample["body"].as_str().unwrap().to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "/bulk: {body}");
        assert!(queued().await > before, "the payload is on the export queue");
    });
    // SIGTERM: start-api removes its containers.
    api.stop();
    let log = std::fs::read_to_string(&api.log).unwrap_or_default();
    assert!(
        !log.contains("Traceback"),
        "start-api failed; log {}:\n{log}",
        api.log.display()
    );
}
