//! Every outbound call is bounded (README, "Timeouts"): a DynamoDB or SQS endpoint that
//! accepts and never answers is an error within the AWS SDK's timeouts, and an answer
//! whose body has no end (Segment's, LaunchDarkly's events service's) is read up to a cap.
//! The servers are on 127.0.0.1 and stop with the test; each outer `timeout` only turns a
//! hang into a failure, it measures nothing.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use bytes::Bytes;
use shared::deadline::Deadline;
use shared::ingest::forward::{ForwardError, Forwarder};
use shared::ingest::queue::{EventQueue, SqsQueue};
use shared::retry::Backoff;
use shared::segment::client::http_client;
use shared::segment::{DeliveryError, SegmentApi, SegmentClient, SendPolicy};
use shared::store::{DynamoStore, Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longer than any bound under test; reaching it means the call hung.
const HANG: Duration = Duration::from_secs(60);

/// Accepts connections, reads what comes, never answers.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Answers every request with `status` and a chunked body that goes on until the client
/// stops reading (64 MiB, then it stalls, never ending it); counts the bytes it got out.
async fn endless_body_server(status: u16) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                for _ in 0..(64 << 20) / 0x4000 {
                    if conn.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                // Then nothing more, and no end: a reader without a cap waits for its timeout.
                tokio::time::sleep(2 * HANG).await;
            });
        }
    });
    (addr, written)
}

/// What a reader that stops at the cap lets through: the cap, and the sockets' buffers.
const READ_AT_MOST: u64 = 16 << 20;

async fn sdk_config(endpoint: SocketAddr) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(Credentials::new("test", "test", None, None, "local"))
        .timeout_config(shared::aws::timeouts())
        .load()
        .await
}

#[tokio::test]
async fn a_table_that_never_answers_is_an_error_within_the_sdks_timeouts() {
    let config = sdk_config(silent_server().await).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "data-export");
    let read = tokio::time::timeout(HANG, store.environment("p", "e"))
        .await
        .expect("the read hung");
    assert!(matches!(read, Err(StoreError::Dynamo { .. })), "{read:?}");
}

#[tokio::test]
async fn a_queue_that_never_answers_is_an_error_within_the_sdks_timeouts() {
    let config = sdk_config(silent_server().await).await;
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        "http://127.0.0.1/000000000000/export",
    );
    let sent = tokio::time::timeout(HANG, queue.send(vec!["[]".to_owned()]))
        .await
        .expect("the send hung");
    assert!(sent.is_err());
}

fn one_attempt() -> SendPolicy {
    SendPolicy {
        backoff: Backoff {
            max_attempts: 1,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
        request_timeout: Duration::from_secs(30),
        reserve: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn segments_answers_without_end_are_read_up_to_a_cap() {
    for (status, accepted) in [(200, true), (500, false)] {
        let (addr, written) = endless_body_server(status).await;
        let client =
            SegmentClient::new(http_client(), Some(format!("http://{addr}"))).with_policy(one_attempt());
        let d = tests::fixtures::destination("p", "e", "wk-endless-0123");
        let sent = tokio::time::timeout(
            HANG,
            client.send_batch(&d, Bytes::from_static(b"{\"batch\":[]}"), Deadline::after(HANG)),
        )
        .await
        .expect("the answer's body was read without end");
        match sent {
            Ok(a) => assert!(accepted && a.status == 200),
            // The answer itself, not a timeout while reading its body.
            Err(DeliveryError::GaveUp { last, .. }) => {
                assert_eq!((accepted, last.as_str()), (false, "HTTP 500"))
            }
            Err(e) => panic!("{status}: {e}"),
        }
        let written = written.load(Ordering::SeqCst);
        assert!(
            written < READ_AT_MOST,
            "{status}: {written} bytes of the body were read"
        );
    }
}

#[tokio::test]
async fn the_events_services_answers_without_end_are_read_up_to_a_cap() {
    let (addr, written) = endless_body_server(503).await;
    let forwarder = Forwarder::new(&format!("http://{addr}"));
    let request = http::Request::builder()
        .method("POST")
        .uri("/bulk")
        .body(Bytes::from_static(b"[]"))
        .unwrap();
    let forwarded = tokio::time::timeout(HANG, forwarder.forward(&request, "/bulk"))
        .await
        .expect("the answer's body was read without end");
    assert!(
        matches!(forwarded, Err(ForwardError::Status { status: 503, .. })),
        "{forwarded:?}"
    );
    let written = written.load(Ordering::SeqCst);
    assert!(written < READ_AT_MOST, "{written} bytes of the body were read");
}

/// The whole of `export` through the real AWS SDK clients, against a table and a queue
/// that accept and never answer: the invocation still answers its batch, every record
/// failed for now, and the visibility changes it could not make counted.
#[tokio::test]
async fn an_export_whose_table_and_queue_never_answer_still_answers_its_batch() {
    let config = sdk_config(silent_server().await).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "data-export");
    let requeue = shared::requeue::SqsRequeue::new(
        aws_sdk_sqs::Client::new(&config),
        "http://127.0.0.1/000000000000/export",
    );
    let exporter = shared::export::Exporter::new(store, SegmentClient::new(http_client(), None))
        .with_requeue(requeue, shared::requeue::RetrySchedule::default());
    let records: Vec<(String, String)> = (0..2)
        .map(|i| {
            let event = tests::fixtures::custom_event(&format!("e-{i}"), "u");
            (
                format!("m-{i}"),
                tests::fixtures::envelope("p", &format!("env-{i}"), event),
            )
        })
        .collect();
    // Shorter than the SDK's own operation timeout: only the deadline can end the reads.
    let deadline = Deadline::after(Duration::from_secs(3));
    let (response, stats) =
        tokio::time::timeout(HANG, exporter.export(&tests::fixtures::batch(&records), deadline))
            .await
            .expect("export hung on its table or queue");
    assert_eq!(tests::fixtures::failed(&response), ["m-0", "m-1"]);
    assert_eq!((stats.failed_transient, stats.exported), (2, 0));
    assert_eq!(stats.visibility_failures, 2, "neither visibility could be set");
}
