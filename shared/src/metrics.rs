//! CloudWatch Embedded Metric Format: one JSON line per invocation that CloudWatch turns into
//! metrics without any API call. Specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Namespace of every metric this service emits.
pub const NAMESPACE: &str = "DataExportToSegment";

/// What one `export` invocation did, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportStats {
    pub records: u64,
    pub failed_records: u64,
    pub events: u64,
    /// Events delivered to every destination that should have them.
    pub exported: u64,
    /// Events that Segment should not get: skipped kinds, flags not exported, no destination.
    pub skipped: u64,
    /// Events that failed because they are bad in themselves (a bad envelope or event, a
    /// message over Segment's 32,000 bytes, a message Segment refuses as invalid): no retry
    /// can help, their records go to the dead-letter queue, a person must look.
    pub failed_bad: u64,
    /// Events that failed for now (their environment could not be read, or delivery
    /// still failed after its retries): their records come back on the retry schedule.
    pub failed_transient: u64,
    pub segment_requests: u64,
    pub segment_bytes: u64,
    /// Failed records whose visibility could not be changed: they come back after the
    /// queue's own visibility timeout instead of on the retry schedule.
    pub visibility_failures: u64,
    /// Delivery-status writes that failed or were left unwritten for lack of time: the
    /// API shows an older status.
    pub status_write_failures: u64,
    /// How long the invocation took, in milliseconds.
    pub duration_ms: u64,
    /// Destination items that could not be read in the environments of the invocation:
    /// their environments export without them until a person mends or deletes them.
    pub unreadable_destinations: u64,
    /// Failed records replaced by what is left of them, so that no destination that
    /// accepted an event gets it again.
    pub replaced_records: u64,
    /// Partly delivered records that could not be replaced: they come back whole, and
    /// the destinations that accepted their events get them again.
    pub replace_failures: u64,
    /// Envelopes kept in the event archive.
    pub archived: u64,
    /// Archive objects written, and their (compressed) bytes.
    pub archive_objects: u64,
    pub archive_bytes: u64,
    /// Archive objects that could not be written: their records are retried.
    pub archive_write_failures: u64,
}

/// The `FunctionName` dimension: the deployed function's own name, so that two stacks
/// in one account keep their metrics apart. `AWS_LAMBDA_FUNCTION_NAME` is the Lambda
/// runtime's own variable (always set in Lambda), so it is read here, not in `config`.
pub fn function_name() -> String {
    function_name_from(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
}

fn function_name_from(variable: Option<String>) -> String {
    variable
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "export".to_owned())
}

/// The EMF line of one `export` invocation, with `function` as the only dimension.
pub fn export_line(function: &str, stats: &ExportStats) -> String {
    counts_line(
        function,
        &[
            ("Records", stats.records, "Count"),
            ("FailedRecords", stats.failed_records, "Count"),
            ("Events", stats.events, "Count"),
            ("EventsExported", stats.exported, "Count"),
            ("EventsSkipped", stats.skipped, "Count"),
            ("EventsFailedBad", stats.failed_bad, "Count"),
            ("EventsFailedTransient", stats.failed_transient, "Count"),
            ("SegmentRequests", stats.segment_requests, "Count"),
            ("SegmentBytes", stats.segment_bytes, "Bytes"),
            ("VisibilityChangeFailures", stats.visibility_failures, "Count"),
            ("StatusWriteFailures", stats.status_write_failures, "Count"),
            ("Duration", stats.duration_ms, "Milliseconds"),
            ("UnreadableDestinations", stats.unreadable_destinations, "Count"),
            ("RecordsReplaced", stats.replaced_records, "Count"),
            ("RecordReplaceFailures", stats.replace_failures, "Count"),
            ("EventsArchived", stats.archived, "Count"),
            ("ArchiveObjects", stats.archive_objects, "Count"),
            ("ArchiveBytes", stats.archive_bytes, "Bytes"),
            ("ArchiveWriteFailures", stats.archive_write_failures, "Count"),
        ],
    )
}

/// What `ingest` answered one request, for its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// 202: queued (or a diagnostic payload, taken and not exported).
    Accepted,
    /// 401: no key, or a key, mobile key or client-side ID no environment has.
    UnknownKey,
    /// 400: not gzip or not an events payload.
    Malformed,
    /// 413: over the payload limit.
    TooLarge,
    /// 403: a browser's post, or its preflight, from an origin its client-side ID does not
    /// allow.
    OriginRefused,
    /// 503: the export queue could not be written.
    QueueFailed,
    /// 503: the event sources (credentials) could not be read.
    SourcesFailed,
    /// Anything else (not an SDK endpoint, not a POST): counted by no metric.
    Other,
}

impl IngestOutcome {
    /// The outcome of an answer with `status`; `queue_failed` tells a 503 of the queue
    /// from one of the event sources.
    pub fn of(status: u16, queue_failed: bool) -> Self {
        match status {
            200..=299 => Self::Accepted,
            401 => Self::UnknownKey,
            400 => Self::Malformed,
            413 => Self::TooLarge,
            403 => Self::OriginRefused,
            503 if queue_failed => Self::QueueFailed,
            503 => Self::SourcesFailed,
            _ => Self::Other,
        }
    }
}

/// The EMF line of one `ingest` request: every counter, the outcome's at 1.
pub fn ingest_line(function: &str, outcome: IngestOutcome) -> String {
    let is = |o: IngestOutcome| u64::from(outcome == o);
    counts_line(
        function,
        &[
            ("PayloadsAccepted", is(IngestOutcome::Accepted), "Count"),
            (
                "PayloadsRefusedUnknownKey",
                is(IngestOutcome::UnknownKey),
                "Count",
            ),
            ("PayloadsRefusedMalformed", is(IngestOutcome::Malformed), "Count"),
            ("PayloadsRefusedTooLarge", is(IngestOutcome::TooLarge), "Count"),
            ("PayloadsRefusedOrigin", is(IngestOutcome::OriginRefused), "Count"),
            ("QueueFailures", is(IngestOutcome::QueueFailed), "Count"),
            ("SourceLookupFailures", is(IngestOutcome::SourcesFailed), "Count"),
        ],
    )
}

/// The EMF line of one payload forwarded to LaunchDarkly (`ingest`), failed or not.
pub fn forward_line(function: &str, failed: bool) -> String {
    counts_line(
        function,
        &[
            ("PayloadsForwarded", 1, "Count"),
            ("ForwardFailures", u64::from(failed), "Count"),
        ],
    )
}

/// An EMF line of (name, value, unit) metrics with `function` as the only dimension.
fn counts_line(function: &str, metrics: &[(&str, u64, &str)]) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("FunctionName".into(), Value::from(function));
    for (name, value, _) in metrics {
        line.insert((*name).into(), Value::from(*value));
    }
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a line against the rules of the EMF specification.
    fn assert_valid_emf(line: &str) -> Value {
        let v: Value = serde_json::from_str(line).unwrap();
        let aws = &v["_aws"];
        assert!(
            aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000,
            "Timestamp in epoch ms"
        );
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().unwrap();
            assert!(!ns.is_empty() && ns.len() <= 255);
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for dim in set {
                    assert!(
                        v[dim.as_str().unwrap()].is_string(),
                        "dimension {dim} must be a top-level string"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().unwrap();
                assert!(v[name].is_number(), "metric {name} must be a top-level number");
                let unit = m["Unit"].as_str().unwrap();
                assert!(["Count", "Bytes", "Milliseconds", "None"].contains(&unit));
            }
        }
        v
    }

    #[test]
    fn the_dimension_is_the_deployed_function_name() {
        assert_eq!(
            function_name_from(Some("prod-stack-export".into())),
            "prod-stack-export"
        );
        assert_eq!(function_name_from(Some(String::new())), "export");
        assert_eq!(function_name_from(None), "export");
        let v = assert_valid_emf(&export_line("prod-stack-export", &ExportStats::default()));
        assert_eq!(v["FunctionName"], "prod-stack-export");
    }

    #[test]
    fn export_line_is_valid_emf_with_the_counts() {
        let stats = ExportStats {
            records: 10,
            failed_records: 1,
            events: 12,
            exported: 9,
            skipped: 2,
            failed_bad: 1,
            failed_transient: 4,
            segment_requests: 3,
            segment_bytes: 4567,
            visibility_failures: 5,
            status_write_failures: 6,
            duration_ms: 789,
            unreadable_destinations: 2,
            replaced_records: 3,
            replace_failures: 1,
            archived: 11,
            archive_objects: 2,
            archive_bytes: 900,
            archive_write_failures: 1,
        };
        let v = assert_valid_emf(&export_line("export", &stats));
        assert_eq!(v["EventsArchived"], 11);
        assert_eq!(v["ArchiveObjects"], 2);
        assert_eq!(v["ArchiveBytes"], 900);
        assert_eq!(v["ArchiveWriteFailures"], 1);
        assert_eq!(v["RecordsReplaced"], 3);
        assert_eq!(v["RecordReplaceFailures"], 1);
        assert_eq!(v["FunctionName"], "export");
        assert_eq!(v["Records"], 10);
        assert_eq!(v["FailedRecords"], 1);
        assert_eq!(v["EventsExported"], 9);
        assert_eq!(v["EventsSkipped"], 2);
        assert_eq!(v["EventsFailedBad"], 1);
        assert_eq!(v["EventsFailedTransient"], 4);
        assert_eq!(v["UnreadableDestinations"], 2);
        assert!(v.get("EventsFailed").is_none(), "split by cause");
        assert_eq!(v["SegmentRequests"], 3);
        assert_eq!(v["SegmentBytes"], 4567);
        assert_eq!(v["VisibilityChangeFailures"], 5);
        assert_eq!(v["StatusWriteFailures"], 6);
        assert_eq!(v["Duration"], 789);
        let units: Vec<(&str, &str)> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert!(units.contains(&("Duration", "Milliseconds")), "{units:?}");
        assert!(units.contains(&("SegmentBytes", "Bytes")), "{units:?}");
    }

    #[test]
    fn ingest_line_counts_each_request_once_under_its_cause() {
        let counters = [
            "PayloadsAccepted",
            "PayloadsRefusedUnknownKey",
            "PayloadsRefusedMalformed",
            "PayloadsRefusedTooLarge",
            "PayloadsRefusedOrigin",
            "QueueFailures",
            "SourceLookupFailures",
        ];
        for (status, queue_failed, counted) in [
            (202, false, Some("PayloadsAccepted")),
            (401, false, Some("PayloadsRefusedUnknownKey")),
            (400, false, Some("PayloadsRefusedMalformed")),
            (413, false, Some("PayloadsRefusedTooLarge")),
            (403, false, Some("PayloadsRefusedOrigin")),
            (503, true, Some("QueueFailures")),
            (503, false, Some("SourceLookupFailures")),
            (404, false, None),
            (405, false, None),
        ] {
            let v = assert_valid_emf(&ingest_line(
                "stack-ingest",
                IngestOutcome::of(status, queue_failed),
            ));
            assert_eq!(v["FunctionName"], "stack-ingest");
            for name in counters {
                let expected = u64::from(Some(name) == counted);
                assert_eq!(v[name], expected, "{name} after a {status}");
            }
        }
    }

    #[test]
    fn forward_line_counts_a_payload_and_its_failure() {
        let v = assert_valid_emf(&forward_line("stack-ingest", true));
        assert_eq!(
            (&v["PayloadsForwarded"], &v["ForwardFailures"]),
            (&json!(1), &json!(1))
        );
        let v = assert_valid_emf(&forward_line("stack-ingest", false));
        assert_eq!(v["ForwardFailures"], 0);
    }
}
