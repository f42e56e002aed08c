//! `cargo xtask ingest-bench [SECONDS] [CONCURRENCY]` (`make bench-ingest`): the `ingest`
//! binary, built `--release`, under `cargo lambda watch` (one instance, as the local
//! runtime runs a function) with moto's queue, loaded by `oha` over HTTP: POST /bulk with
//! a 1,000-event payload of `shared::sample_sdk` at a fixed concurrency; requests/s and
//! latency percentiles as `oha` reports them. Then one body at the size limit, and the
//! peak memory (VmHWM) of the `ingest` process, read from its `/proc/<pid>/status`.

use serde_json::{Value, json};
use shared::ingest::payload::MAX_PAYLOAD_BYTES;
use std::path::{Path, PathBuf};
use std::process::Command;
use tests::fixtures::register_event_sources;
use tests::process::workspace_root;
use tests::stack::{Stack, StackOptions};

const SDK_KEY: &str = "sdk-ingest-bench-key";
const PAYLOAD_ID: &str = "4a3b2c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = args.first().map_or(Ok(30), |a| a.parse())?;
    let concurrency: u64 = args.get(1).map_or(Ok(8), |a| a.parse())?;
    println!("==> starting moto's server and the functions (--release) under cargo lambda watch");
    let stack = Stack::start(StackOptions {
        release: true,
        ..StackOptions::tests("ingest-bench", true)
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(register_event_sources(
        &stack,
        "bench",
        "production",
        json!({"sdkKeys": [SDK_KEY]}),
    ));
    let url = format!("{}/bulk", stack.lambda().function_url("ingest"));
    let payload = stack.log_dir.join("payload-1000.json");
    std::fs::write(
        &payload,
        serde_json::to_vec(&shared::sample_sdk::sdk_payload(1000))?,
    )?;
    // The first post starts the function (and builds it, the first time).
    let status = runtime.block_on(post(&url, std::fs::read(&payload)?))?;
    assert_eq!(status, 202, "ingest takes the payload");

    println!("==> oha: {seconds} s, {concurrency} at once, POST /bulk of 1,000 events");
    let report = oha(&url, &payload, seconds, concurrency)?;
    let summary = &report["summary"];
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let rps = summary["requestsPerSec"].as_f64().unwrap_or(f64::NAN);
    println!(
        "ingest under cargo lambda watch: {rps:.1} requests/s ({:.0} events/s), p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, success rate {}, status codes {}",
        rps * 1000.0,
        percentile("p50"),
        percentile("p90"),
        percentile("p99"),
        summary["successRate"],
        report["statusCodeDistribution"]
    );

    let pid = ingest_pid().ok_or("no ingest process of this build is running")?;
    let before = vm_hwm_kb(pid)?;
    let body = shared::sample_sdk::sdk_body_up_to(MAX_PAYLOAD_BYTES);
    let size = body.len();
    let status = runtime.block_on(post(&url, body))?;
    let after = vm_hwm_kb(pid)?;
    println!(
        "ingest (pid {pid}) VmHWM after the load: {:.1} MiB; after a {size}-byte body (HTTP {status}): {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    Ok(())
}

async fn post(url: &str, body: Vec<u8>) -> Result<u16, reqwest::Error> {
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", SDK_KEY)
        .header("content-type", "application/json")
        .header("x-launchdarkly-event-schema", "4")
        .header("x-launchdarkly-payload-id", PAYLOAD_ID)
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// `oha`'s JSON report of the load.
fn oha(url: &str, body: &Path, seconds: u64, concurrency: u64) -> Result<Value, Box<dyn std::error::Error>> {
    let out = Command::new("oha")
        .args(["--no-tui", "--output-format", "json", "-m", "POST"])
        .args(["-z", &format!("{seconds}s"), "-c", &concurrency.to_string()])
        .args(["-H", &format!("authorization: {SDK_KEY}")])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "x-launchdarkly-event-schema: 4"])
        .args(["-H", &format!("x-launchdarkly-payload-id: {PAYLOAD_ID}")])
        .arg("-D")
        .arg(body)
        .arg(url)
        .output()
        .map_err(|e| format!("running oha (scripts/bench.sh installs it): {e}"))?;
    if !out.status.success() {
        return Err(format!("oha failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The process of this workspace's release `ingest` binary.
fn ingest_pid() -> Option<u32> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let binary = target.join("release/ingest").canonicalize().ok()?;
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        (exe == binary).then_some(pid)
    })
}

fn vm_hwm_kb(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .ok_or_else(|| "no VmHWM".into())
}
