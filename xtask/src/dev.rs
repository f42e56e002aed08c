//! `make dev`: the whole service on this machine. Starts moto's server with the table
//! from template.yaml, the Segment receiver and the functions under `cargo lambda watch`,
//! registers sample destinations through the API, sends a test event, sends every
//! `events/sqs-*.json` batch through `export`, prints what Segment received and the
//! commands to try next, then stays up until Ctrl-C (`--once`: stop after the walkthrough).

use serde_json::{Value, json};
use std::path::PathBuf;
use tests::fixtures::{EVENTS_DESTINATION_ID, put_events_destination};
use tests::process::workspace_root;
use tests::sqs::failed_ids;
use tests::stack::{LOCAL_API_TOKEN, Ports, Stack, StackOptions};

/// Environments of the sample events, each with its own sample write key.
const SAMPLE_ENVIRONMENTS: [(&str, &str, &str); 4] = [
    ("demo", "production", "demo-write-key-0001"),
    (
        "5744c12345c9900708000001",
        "5d4b12345d2a2806bd2cc6eb",
        "seed-write-key-0002",
    ),
    (
        "5744c98765c9900708000001",
        "5d4b12345d2a2806bd2cc6eb",
        "seed-write-key-0003",
    ),
    (
        "5744c123459900708000001",
        "5d123454d2a2806bd2cc6eb",
        "seed-write-key-0004",
    ),
];

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let once = args.iter().any(|a| a == "--once");
    println!("==> starting moto's server, the Segment receiver and cargo lambda watch");
    let stack = Stack::start(StackOptions {
        label: "dev",
        lambda: true,
        reload: !once,
        release: false,
        cache_ttl_seconds: 1,
        ports: Ports {
            lambda: port("LAMBDA_PORT", 9000),
            receiver: port("RECEIVER_PORT", 9100),
            moto: port("MOTO_PORT", 5000),
        },
        queues: true,
        env: Vec::new(),
    })?;
    println!(
        "    moto_server      {}  (table {})",
        stack.moto.endpoint, stack.table
    );
    println!("    Segment receiver {}", stack.receiver.base_url());
    println!("    functions        http://127.0.0.1:{}", stack.lambda().port);
    println!("    logs             {}", stack.log_dir.display());

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(walkthrough(&stack))?;

    if once {
        println!("==> done (--once): stopping everything");
        return Ok(());
    }
    println!("\n==> up; try your own calls. Ctrl-C stops everything.");
    print_next_steps(&stack);
    runtime.block_on(tokio::signal::ctrl_c())?;
    println!("\n==> stopping");
    Ok(())
}

async fn walkthrough(stack: &Stack) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n==> registering sample destinations through the API");
    let http = reqwest::Client::new();
    let api = stack.api_base();
    let mut demo_destination = String::new();
    for (project, environment, write_key) in SAMPLE_ENVIRONMENTS {
        let created: Value = http
            .post(format!("{api}/api/v2/destinations/{project}/{environment}"))
            .header("authorization", LOCAL_API_TOKEN)
            .json(
                &json!({"name": format!("Segment ({environment})"), "kind": "segment",
                          "config": {"writeKey": write_key}}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        http.patch(format!("{api}/api/v2/data-export/{project}/{environment}"))
            .header("authorization", LOCAL_API_TOKEN)
            .json(
                &json!([{"op": "add", "path": "/flags/checkout-flow", "value": true},
                          {"op": "add", "path": "/flags/EXAMPLE-FLAG-KEY", "value": true}]),
            )
            .send()
            .await?
            .error_for_status()?;
        let id = created["_id"].as_str().unwrap_or_default().to_owned();
        println!(
            "    {project}/{environment}: destination {id}, writeKey {} (flags checkout-flow, EXAMPLE-FLAG-KEY exported)",
            created["config"]["writeKey"].as_str().unwrap_or_default()
        );
        if project == "demo" {
            demo_destination = id;
        }
    }
    put_events_destination(&stack.store().await).await;
    println!(
        "    demo/staging: destination {EVENTS_DESTINATION_ID} (the one the events/api-*.json files use)"
    );

    println!("\n==> sending a test event to demo/production");
    let test_url = format!(
        "{}/api/v2/destinations/demo/production/{demo_destination}/test",
        stack.lambda().function_url("test-event")
    );
    let reply = http
        .post(&test_url)
        .header("authorization", LOCAL_API_TOKEN)
        .send()
        .await?;
    println!("    HTTP {}: {}", reply.status().as_u16(), reply.text().await?);

    println!("\n==> sending events/ batches through export");
    for file in sqs_batches()? {
        let batch: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
        let records = batch["Records"].as_array().map_or(0, Vec::len);
        let response = stack.lambda().invoke("export", &batch).await?;
        println!(
            "    {}: {records} records, batchItemFailures {:?}",
            file.strip_prefix(workspace_root())?.display(),
            failed_ids(&response)
        );
    }

    let received = stack.receiver.messages(None);
    println!("\n==> the Segment receiver accepted {} messages:", received.len());
    for a in &received {
        let m = &a.message;
        println!(
            "    {:<5} {:<8} {:<26} user={:<24} anon={:<14} props.key={}",
            m["type"].as_str().unwrap_or_default(),
            m["event"].as_str().unwrap_or("-"),
            m["properties"]["eventId"].as_str().unwrap_or_default(),
            m["userId"].as_str().unwrap_or("-"),
            m["anonymousId"].as_str().unwrap_or("-"),
            m["properties"]["key"].as_str().unwrap_or("-"),
        );
    }
    if let Some(first) = received.iter().find(|a| a.message["event"] == "feature") {
        println!(
            "\n    a feature event in full:\n{}",
            serde_json::to_string_pretty(&first.message)?
        );
    }
    Ok(())
}

fn sqs_batches() -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("events"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sqs-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn print_next_steps(stack: &Stack) {
    let api = stack.api_base();
    let tests = stack.lambda().function_url("test-event");
    let lambda = stack.lambda().port;
    let receiver = stack.receiver.base_url();
    let auth = format!("-H 'Authorization: {LOCAL_API_TOKEN}'");
    println!("    # the console in a browser (sign in with the local token {LOCAL_API_TOKEN})");
    println!("    {}/console", stack.lambda().function_url("destinations"));
    println!("    # LaunchDarkly SDKs: point their events URI here (an SDK key registered through");
    println!(
        "    # PUT /api/v2/event-sources/{{project}}/{{environment}}; README, \"Pointing your SDKs here\")"
    );
    println!("    {}", stack.lambda().function_url("ingest"));
    println!("    # the API (LaunchDarkly v2 paths; the token is the local stacks' own)");
    println!("    curl -s {auth} {api}/api/v2/destinations");
    println!(
        "    curl -s {auth} -X POST -H 'Content-Type: application/json' {api}/api/v2/destinations/demo/staging \\\n        -d '{{\"name\": \"Mine\", \"kind\": \"segment\", \"config\": {{\"writeKey\": \"your-write-key\"}}}}'"
    );
    println!(
        "    curl -s {auth} -X PATCH -H 'Content-Type: application/json' {api}/api/v2/destinations/demo/staging/{EVENTS_DESTINATION_ID} \\\n        -d '[{{\"op\": \"replace\", \"path\": \"/on\", \"value\": false}}]'"
    );
    println!(
        "    curl -s {auth} -X POST {tests}/api/v2/destinations/demo/staging/{EVENTS_DESTINATION_ID}/test"
    );
    println!("    curl -s {auth} {api}/api/v2/data-export/demo/production");
    println!(
        "    curl -s {auth} -X PATCH -H 'Content-Type: application/json' {api}/api/v2/data-export/demo/production \\\n        -d '[{{\"op\": \"replace\", \"path\": \"/allFlags\", \"value\": true}}]'"
    );
    println!("    # events through export, and what Segment got");
    println!(
        "    cargo lambda invoke export --invoke-address 127.0.0.1 --invoke-port {lambda} --data-file events/sqs-all-kinds.json"
    );
    println!("    curl -s {receiver}/__receiver/messages | python3 -m json.tool | less");
}
