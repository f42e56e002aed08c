//! The published description of the API (`GET /api/v2/openapi.json`) against the running
//! functions under `cargo lambda watch`: it validates as OpenAPI 3.1, and Schemathesis
//! (PyPI) fuzzes every operation with a valid token, stateful sequences included
//! (create → get → patch → test → delete, through the description's links), checking that
//! no input gets a 5xx, every response conforms to the description, and no write key is in
//! any response. `SCHEMATHESIS_EXAMPLES` sets the examples per operation (`make fuzz` runs
//! more).

use serde_json::{Value, json};
use std::process::Output;
use tests::fixtures::unique;
use tests::process::{command, workspace_root};
use tests::stack::{LOCAL_API_TOKEN, Stack, StackOptions};

fn start_stack() -> Stack {
    std::thread::spawn(|| Stack::start(StackOptions::tests("openapi", true)))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("starting the stack: {e}"))
}

fn spec_path() -> std::path::PathBuf {
    workspace_root().join("shared/src/api/openapi.json")
}

fn shown(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs Schemathesis against `base` for the operations `filter` selects.
fn schemathesis(base: &str, filter: &[&str], secret: &str, logs: &std::path::Path) -> Output {
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let mut cmd = command("st");
    cmd.arg("run")
        .arg(spec_path())
        .args(["--url", base])
        .args(["--header", &format!("Authorization: {LOCAL_API_TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,no_write_key_in_response,write_key_masked",
        ])
        .args(["--max-examples", &examples])
        .args(["--seed", "1", "--workers", "1", "--no-color"])
        // A loaded 2-core machine (the other suites run beside) can make moto's Scan of
        // the fuzzed table slow: a hang still fails, a slow answer is not the point here.
        .args(["--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .args(filter)
        .current_dir(logs)
        .env("PYTHONPATH", workspace_root().join("tests/python"))
        .env("SCHEMATHESIS_HOOKS", "st_hooks")
        .env("SECRET_WRITE_KEYS", secret);
    cmd.output().expect("schemathesis runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_description_is_valid_served_and_true_of_every_operation() {
    let out = command("openapi-spec-validator")
        .arg(spec_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not a valid OpenAPI description:\n{}",
        shown(&out)
    );

    let stack = start_stack();
    let api = stack.api_base();
    let http = reqwest::Client::new();
    let served: Value = http
        .get(format!("{api}/api/v2/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(spec_path()).unwrap()).unwrap();
    assert_eq!(served, file, "the served description is the file's");
    assert_eq!(served["openapi"], "3.1.0");

    // A destination whose key must never come back, for the fuzzer to find.
    let secret = unique("fuzz-secret-write-key");
    let created = http
        .post(format!("{api}/api/v2/destinations/fuzz/production"))
        .header("authorization", LOCAL_API_TOKEN)
        .json(&json!({"kind": "segment", "config": {"writeKey": secret}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let logs = &stack.log_dir;
    // Locally each function has its own URL: the test-event route is fuzzed against its own
    // (without stateful sequences, whose links start at the other function's POST).
    let all_phases = ["--phases", "examples,coverage,fuzzing,stateful"];
    let management = schemathesis(
        &api,
        &[&all_phases[..], &["--exclude-path-regex", "/test$"]].concat(),
        &secret,
        logs,
    );
    let tests = stack.lambda().function_url("test-event");
    let test_events = schemathesis(
        &tests,
        &[
            "--phases",
            "examples,coverage,fuzzing",
            "--include-path-regex",
            "/test$",
        ],
        &secret,
        logs,
    );
    for (what, out) in [("management API", &management), ("test events", &test_events)] {
        let text = shown(out);
        println!("==> schemathesis, {what}\n{text}");
        assert!(
            out.status.success(),
            "schemathesis found failures in the {what}:\n{text}"
        );
    }
}
