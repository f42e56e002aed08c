//! A bad configuration stops each function at start: the real binaries (built by
//! `cargo build -p <function>`, as `scripts/test.sh` does before the tests), run with the
//! Lambda runtime's variables and one malformed variable of their own, exit non-zero at
//! once, saying which variable is wrong. With the variable fixed, the same binary gets
//! past its configuration and fails only on the runtime API, which here is a closed port.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port of 127.0.0.1 that nothing listens on: connecting is refused at once.
const CLOSED_RUNTIME_API: &str = "127.0.0.1:1";

/// `target/debug/<name>`, beside this test's own `target/debug/deps/`.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug/deps/<test>");
    let path = debug.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p {name}` first (scripts/test.sh does)",
        path.display()
    );
    path
}

struct Exit {
    code: Option<i32>,
    output: String,
    took: Duration,
}

/// Runs a function's binary in a clean environment: the Lambda runtime's variables, AWS
/// settings that need no network, and `vars`. Killed after 20 s.
fn run(function: &str, vars: &[(&str, &str)]) -> Exit {
    let mut cmd = Command::new(binary(function));
    cmd.env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", CLOSED_RUNTIME_API),
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "stream"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the function starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the function") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let out = child.wait_with_output().expect("the function's output");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Exit {
        code: status.and_then(|s| s.code()),
        output,
        took,
    }
}

/// What the Lambda runtime prints when its API cannot be reached.
fn reached_runtime_api(output: &str) -> bool {
    output.contains(CLOSED_RUNTIME_API) && output.contains("Connection refused")
}

/// `function` with `good` plus `name=bad` stops at start naming `name`; with `name=fixed`
/// it gets past the configuration (and fails on the closed runtime API instead).
fn stops_at_start(function: &str, good: &[(&str, &str)], name: &str, bad: &str, fixed: &str) -> String {
    let mut vars = good.to_vec();
    vars.push((name, bad));
    let exit = run(function, &vars);
    assert!(
        exit.code.is_some_and(|c| c != 0),
        "{function} with {name}={bad:?} should exit non-zero at start, but exited {:?} after {:?}: {}",
        exit.code,
        exit.took,
        exit.output
    );
    assert!(exit.took < Duration::from_secs(10), "at once: {:?}", exit.took);
    assert!(
        exit.output.contains(&format!("{name}=")) || exit.output.contains(&format!("{name} is not")),
        "{function}'s output names {name}: {}",
        exit.output
    );
    assert!(
        !reached_runtime_api(&exit.output),
        "{function} stopped before reaching the runtime API: {}",
        exit.output
    );

    vars.pop();
    vars.push((name, fixed));
    let fixed_exit = run(function, &vars);
    assert!(
        !fixed_exit.output.contains(name) && reached_runtime_api(&fixed_exit.output),
        "with {name}={fixed:?}, {function} gets past its configuration to the runtime API: {}",
        fixed_exit.output
    );
    assert!(
        fixed_exit.code.is_some_and(|c| c != 0),
        "{function} cannot serve without a runtime API: {:?} {}",
        fixed_exit.code,
        fixed_exit.output
    );
    exit.output
}

#[test]
fn export_stops_on_a_malformed_retry_base() {
    let output = stops_at_start(
        "export",
        &[("TABLE_NAME", "destinations")],
        "RETRY_BASE_SECONDS",
        "abc",
        "60",
    );
    assert!(
        output.contains(r#"RETRY_BASE_SECONDS="abc" is not valid: expected a whole number of seconds"#),
        "{output}"
    );
}

#[test]
fn export_stops_on_an_archive_bucket_that_is_no_bucket_name() {
    let output = stops_at_start(
        "export",
        &[("TABLE_NAME", "destinations")],
        "ARCHIVE_BUCKET",
        "arn:aws:s3:::data-export-archive",
        "data-export-archive",
    );
    assert!(output.contains("expected an S3 bucket name"), "{output}");
}

#[test]
fn export_stops_on_a_cache_ttl_over_30_seconds() {
    stops_at_start(
        "export",
        &[("TABLE_NAME", "destinations")],
        "DESTINATION_CACHE_TTL_SECONDS",
        "60",
        "30",
    );
}

#[test]
fn destinations_stops_on_a_malformed_token_digest_without_showing_it() {
    let secret = "not-a-digest-but-a-real-token-s3cr3t";
    let output = stops_at_start(
        "destinations",
        &[("TABLE_NAME", "destinations")],
        "API_TOKEN_HASHES",
        secret,
        &shared::api::auth::token_hash_hex("token"),
    );
    assert!(
        !output.contains("s3cr3t"),
        "the secret is never printed: {output}"
    );
}

#[test]
fn destinations_stops_without_a_table() {
    let exit = run("destinations", &[]);
    assert!(
        exit.code.is_some_and(|c| c != 0),
        "{:?}: {}",
        exit.code,
        exit.output
    );
    assert!(exit.output.contains("TABLE_NAME is not set"), "{}", exit.output);
}

#[test]
fn test_event_stops_on_a_segment_url_that_is_not_a_url() {
    stops_at_start(
        "test-event",
        &[("TABLE_NAME", "destinations")],
        "SEGMENT_BASE_URL",
        "api.segment.io",
        "https://api.segment.io",
    );
}

#[test]
fn ingest_stops_on_a_forward_uri_without_a_scheme() {
    stops_at_start(
        "ingest",
        &[
            ("TABLE_NAME", "destinations"),
            ("QUEUE_URL", "http://127.0.0.1:1/123456789012/queue"),
        ],
        "FORWARD_EVENTS_URI",
        "events.launchdarkly.com",
        "https://events.launchdarkly.com",
    );
}

/// Every variable the library reads (a `"NAME_LIKE_THIS"` literal in the modules that read
/// the environment) has its row in the README's configuration table.
#[test]
fn the_readme_lists_every_variable_read() {
    let root = tests::process::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme
        .split("## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    let mut names = Vec::new();
    for file in ["config.rs", "logging.rs", "metrics.rs"] {
        let source = std::fs::read_to_string(root.join("shared/src").join(file)).unwrap();
        for literal in source.split('"').skip(1).step_by(2) {
            let is_name = literal.contains('_')
                && literal.len() > 3
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if is_name && !names.contains(&literal.to_owned()) {
                names.push(literal.to_owned());
            }
        }
    }
    for expected in [
        "TABLE_NAME",
        "FORWARD_EVENTS_URI",
        "DELIVERY_STATUS_INTERVAL_SECONDS",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} found in {names:?}"
        );
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !table.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in README's configuration table: {missing:?}"
    );
}

/// `make dev` installs scripts/requirements-dev.txt only: each of its tools must be the
/// one `make test` installs, at the same version.
#[test]
fn the_local_runs_tools_are_the_tests_tools_at_the_same_versions() {
    let read = |name: &str| {
        std::fs::read_to_string(tests::process::workspace_root().join("scripts").join(name)).unwrap()
    };
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let all = lines(&read("requirements.txt"));
    let dev = lines(&read("requirements-dev.txt"));
    assert!(!dev.is_empty());
    for tool in &dev {
        assert!(
            all.contains(tool),
            "{tool} of requirements-dev.txt is not in requirements.txt"
        );
    }
}
