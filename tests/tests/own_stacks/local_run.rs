//! `make dev ONCE=1`: the local run a newcomer starts with, end to end.

use std::net::TcpStream;
use std::process::Command;
use tests::process::{free_port, workspace_root};

#[test]
fn make_dev_once_walks_through_the_sample_events_and_stops_everything() {
    let ports = [free_port(), free_port(), free_port()];
    let out = Command::new("make")
        .args(["dev", "ONCE=1"])
        .current_dir(workspace_root())
        .env("LAMBDA_PORT", ports[0].to_string())
        .env("RECEIVER_PORT", ports[1].to_string())
        .env("MOTO_PORT", ports[2].to_string())
        .output()
        .expect("make runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "make dev failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            r#"events/sqs-all-kinds.json: 17 records, batchItemFailures ["m-array-one-bad", "m-bad-json", "m-no-context", "m-no-project"]"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("events/sqs-seed-examples.json: 4 records, batchItemFailures []"),
        "{stdout}"
    );
    assert!(
        stdout.contains("registering sample destinations through the API"),
        "{stdout}"
    );
    assert!(stdout.contains("demo/production: destination "), "{stdout}");
    assert!(
        stdout.contains(r#"HTTP 200: {"message":"Segment accepted the test event"#),
        "{stdout}"
    );
    // 8 demo events, the 4 seed examples and the test event.
    assert!(
        stdout.contains("the Segment receiver accepted 13 messages"),
        "{stdout}"
    );
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port} after make dev ONCE=1"
        );
    }
}
