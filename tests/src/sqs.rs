//! SQS batches as Lambda receives them.

use serde_json::{Value, json};

/// An `SqsEvent` with one record per `(messageId, body)`.
pub fn sqs_event<'a>(records: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let records: Vec<Value> = records
        .into_iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("handle-{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1568409618153",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1568409618160"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:data-export",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The `(messageId, body)` pairs of an `SqsEvent`.
pub fn records(event: &Value) -> Vec<(String, String)> {
    event["Records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        r["messageId"].as_str().unwrap_or_default().to_owned(),
                        r["body"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `itemIdentifier`s of an `SqsBatchResponse`, sorted.
pub fn failed_ids(response: &Value) -> Vec<String> {
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A received message as Lambda's SQS event source hands it over: its system attributes
/// and its message attributes (the retry bookkeeping of a remainder rides in those).
pub fn lambda_record(m: &aws_sdk_sqs::types::Message) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let value = json!({"stringValue": v.string_value(), "dataType": v.data_type(),
                                       "stringListValues": [], "binaryListValues": []});
                    (k.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:export-queue",
        "awsRegion": "us-east-1"
    })
}
