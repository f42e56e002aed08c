//! template.yaml is the stack a platform team would ship: every function is a binary of
//! this workspace built for Graviton, roles are least-privilege, and the queue is wired
//! so that nothing is lost (README, "What the stack contains").

use serde_norway::Value;
use shared::requeue::RetrySchedule;
use std::collections::BTreeSet;
use std::time::Duration;
use tests::process::workspace_root;
use tests::template::{function_binaries, resources, template};

/// `(tag, value)` of a CloudFormation short-form intrinsic such as `!GetAtt Table.Arn`.
fn intrinsic(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            t.value.as_str()?.to_owned(),
        )),
        _ => None,
    }
}

/// `(tag, value)` of any short-form intrinsic, its value unparsed.
fn tagged(v: &Value) -> Option<(String, Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            t.value.clone(),
        )),
        _ => None,
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// (actions, resources) of every statement of a role's inline policies.
fn statements(role: &Value) -> Vec<(Vec<String>, Vec<Value>)> {
    list(&role["Properties"]["Policies"])
        .iter()
        .flat_map(|p| list(&p["PolicyDocument"]["Statement"]))
        .map(|s| {
            assert_eq!(s["Effect"].as_str(), Some("Allow"));
            let actions = list(&s["Action"])
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            (actions, list(&s["Resource"]))
        })
        .collect()
}

fn actions_on(role: &Value, service: &str) -> BTreeSet<String> {
    statements(role)
        .into_iter()
        .flat_map(|(actions, _)| actions)
        .filter(|a| a.starts_with(&format!("{service}:")))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_function_is_a_workspace_binary_built_for_graviton_with_cargo_lambda() {
    let t = template();
    let binaries = function_binaries(&t);
    assert_eq!(
        binaries.values().cloned().collect::<BTreeSet<_>>(),
        set(&["destinations", "export", "ingest", "replay", "test-event"])
    );
    let metadata = std::process::Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let workspace_bins: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let globals = &t["Globals"]["Function"];
    for (name, binary) in &binaries {
        assert!(
            workspace_bins.contains(binary),
            "{name} builds {binary}, which is no binary of the workspace"
        );
        let f = &resources(&t)[name];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        let props = &f["Properties"];
        let runtime = props["Runtime"].as_str().or(globals["Runtime"].as_str());
        assert_eq!(runtime, Some("provided.al2023"), "{name}");
        let arch = if props["Architectures"].is_null() {
            &globals["Architectures"]
        } else {
            &props["Architectures"]
        };
        assert_eq!(list(arch), vec![Value::from("arm64")], "{name}");
        assert!(
            props["MemorySize"].as_u64().is_some() && props["Timeout"].as_u64().is_some(),
            "{name} sizes itself"
        );
        assert_eq!(
            props["LoggingConfig"]["LogFormat"].as_str(),
            Some("JSON"),
            "{name} logs JSON"
        );
        let role = intrinsic(&props["Role"]).unwrap_or_else(|| panic!("{name} has an explicit role"));
        assert_eq!(role.0, "GetAtt");
        assert!(
            props["Policies"].is_null(),
            "{name}: permissions live in its role only"
        );
        // The local-only switches: the Segment stand-in's URL, and endpoints on loopback.
        for local_only in ["SEGMENT_BASE_URL", shared::endpoint::ALLOW_LOOPBACK_VARIABLE] {
            for env in [
                &props["Environment"]["Variables"],
                &globals["Environment"]["Variables"],
            ] {
                assert!(env.get(local_only).is_none(), "{name} sets {local_only}");
            }
        }
    }
}

#[test]
fn roles_are_least_privilege() {
    let t = template();
    let r = resources(&t);
    for (name, resource) in &r {
        if resource["Type"].as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        assert!(
            resource["Properties"]["ManagedPolicyArns"].is_null(),
            "{name} attaches no managed policy"
        );
        for (actions, resources) in statements(resource) {
            for a in &actions {
                assert!(!a.contains('*'), "{name} grants the wildcard action {a}");
            }
            for res in &resources {
                let text = serde_norway::to_string(res).unwrap();
                // The archive's objects, new ones only for export and read only for
                // replay (checked below): no other wildcard.
                let archive_objects = ((name == "ExportRole" && actions == ["s3:PutObject"])
                    || (name == "ReplayRole" && actions == ["s3:GetObject"]))
                    && tagged(res) == Some(("Sub".into(), Value::from(ARCHIVE_OBJECTS)));
                assert!(
                    !text.contains('*') || archive_objects,
                    "{name} grants on the wildcard resource {text}"
                );
                assert!(
                    intrinsic(res).is_some(),
                    "{name}: resources are references to this stack's resources"
                );
            }
        }
    }
    let role = |function: &str| {
        let (_, target) = intrinsic(&r[function]["Properties"]["Role"]).unwrap();
        r[target.trim_end_matches(".Arn")].clone()
    };
    let read_only = set(&[
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:Scan",
    ]);
    let export = role("ExportFunction");
    assert_eq!(
        actions_on(&export, "dynamodb"),
        set(&["dynamodb:Query", "dynamodb:UpdateItem"]),
        "export reads the table and writes delivery status"
    );
    let policies = list(&export["Properties"]["Policies"]);
    let writes: Vec<Value> = policies
        .iter()
        .flat_map(|p| list(&p["PolicyDocument"]["Statement"]))
        .filter(|s| {
            list(&s["Action"])
                .iter()
                .any(|a| a.as_str() == Some("dynamodb:UpdateItem"))
        })
        .collect();
    assert_eq!(writes.len(), 1);
    let leading = &writes[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
    // The partition's prefix through its first '#', then anything.
    let prefix = |pk: String| Value::from(format!("{}#*", pk.split('#').next().unwrap()));
    let replays = prefix(shared::store::replay_pk("", "", ""));
    assert_eq!(
        list(leading),
        vec![prefix(shared::store::delivery_pk("", "")), replays.clone()],
        "export may update delivery status and replay items only, never a destination"
    );
    let replay = role("ReplayFunction");
    assert_eq!(
        actions_on(&replay, "s3"),
        set(&["s3:GetObject", "s3:ListBucket"]),
        "replay reads the archive and writes nothing to it"
    );
    assert_eq!(
        actions_on(&replay, "dynamodb"),
        set(&["dynamodb:GetItem", "dynamodb:UpdateItem"])
    );
    for (actions, _) in statements(&replay) {
        if actions.iter().any(|a| a.starts_with("dynamodb:")) {
            let statement = list(&replay["Properties"]["Policies"][0]["PolicyDocument"]["Statement"])
                .into_iter()
                .find(|s| {
                    list(&s["Action"])
                        .iter()
                        .any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:")))
                })
                .unwrap();
            assert_eq!(
                list(&statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]),
                vec![replays.clone()],
                "replay touches replay items only"
            );
        }
    }
    assert_eq!(
        role("ReplayExportFunction")["Properties"],
        export["Properties"],
        "the replay queue's export runs as export"
    );
    assert_eq!(
        actions_on(&export, "s3"),
        set(&["s3:PutObject"]),
        "export writes archive objects, and reads, lists, deletes nothing"
    );
    for (actions, resources) in statements(&export) {
        if actions.iter().any(|a| a.starts_with("s3:")) {
            assert_eq!(actions, ["s3:PutObject"]);
            assert_eq!(
                resources.iter().map(tagged).collect::<Vec<_>>(),
                [Some(("Sub".into(), Value::from(ARCHIVE_OBJECTS)))],
                "the archive bucket's objects only"
            );
        }
    }
    for function in ["DestinationsFunction", "TestEventFunction", "IngestFunction"] {
        assert!(
            actions_on(&role(function), "s3").is_empty(),
            "{function} has no access to the archive"
        );
    }
    let test_event = role("TestEventFunction");
    let mut read_and_check = read_only.clone();
    read_and_check.insert("dynamodb:UpdateItem".to_owned());
    assert!(
        actions_on(&test_event, "dynamodb").is_subset(&read_and_check),
        "test-event reads, and keeps a key check"
    );
    for (actions, _) in statements(&test_event) {
        if actions.iter().any(|a| a == "dynamodb:UpdateItem") {
            assert_eq!(actions, ["dynamodb:UpdateItem"]);
        }
    }
    let policy = &test_event["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let update = list(policy)
        .into_iter()
        .find(|s| s["Sid"] == "KeepWriteKeyCheck")
        .expect("the key check statement");
    let attributes: Vec<String> =
        list(&update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
    assert_eq!(
        attributes,
        [
            "pk",
            "sk",
            "writeKey",
            "writeKeyStatus",
            "writeKeyCheckedAt",
            "writeKeyCheckReason"
        ],
        "test-event may touch the key check's attributes only"
    );
    assert!(actions_on(&role("TestEventFunction"), "sqs").is_empty());
    let destinations = actions_on(&role("DestinationsFunction"), "dynamodb");
    assert!(destinations.contains("dynamodb:PutItem") && destinations.contains("dynamodb:DeleteItem"));
    assert_eq!(
        actions_on(&role("DestinationsFunction"), "sqs"),
        set(&["sqs:SendMessage"]),
        "destinations only starts replays"
    );
    for (actions, resources) in statements(&role("DestinationsFunction")) {
        if actions.iter().any(|a| a.starts_with("sqs:")) {
            assert_eq!(
                resources.iter().map(intrinsic).collect::<Vec<_>>(),
                [Some(("GetAtt".to_owned(), "ReplayRequestQueue.Arn".to_owned()))],
                "the replay-request queue only"
            );
        }
    }
    let ingest = role("IngestFunction");
    assert_eq!(
        actions_on(&ingest, "dynamodb"),
        set(&["dynamodb:GetItem"]),
        "ingest resolves keys only"
    );
    assert_eq!(
        actions_on(&ingest, "sqs"),
        set(&["sqs:SendMessage"]),
        "ingest only sends to the queue"
    );
    for (actions, resources) in statements(&ingest) {
        if actions.iter().any(|a| a.starts_with("sqs:")) {
            assert_eq!(
                intrinsic(&resources[0]),
                Some(("GetAtt".into(), "Queue.Arn".into()))
            );
        }
    }
    assert_eq!(
        actions_on(&export, "sqs"),
        set(&[
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:SendMessage"
        ])
    );
    for (actions, resources) in statements(&export) {
        if actions == ["sqs:SendMessage"] {
            // The remainder of a partly delivered record: its queue (live or replay),
            // or that queue's DLQ.
            let targets: Vec<_> = resources.iter().map(intrinsic).collect();
            assert_eq!(
                targets,
                [
                    Some(("GetAtt".into(), "Queue.Arn".into())),
                    Some(("GetAtt".into(), "DeadLetterQueue.Arn".into())),
                    Some(("GetAtt".into(), "ReplayQueue.Arn".into())),
                    Some(("GetAtt".into(), "ReplayDeadLetterQueue.Arn".into()))
                ]
            );
        } else if actions.iter().any(|a| a.starts_with("sqs:")) {
            let consumed: Vec<_> = resources.iter().map(intrinsic).collect();
            assert_eq!(
                consumed,
                [
                    Some(("GetAtt".into(), "Queue.Arn".into())),
                    Some(("GetAtt".into(), "ReplayQueue.Arn".into()))
                ]
            );
        }
        if actions.iter().any(|a| a.starts_with("dynamodb:")) {
            assert_eq!(
                intrinsic(&resources[0]),
                Some(("GetAtt".into(), "Table.Arn".into()))
            );
        }
    }
}

/// The objects of the archive bucket, as the template names them.
const ARCHIVE_OBJECTS: &str = "${ArchiveBucket.Arn}/*";

#[test]
fn the_archive_bucket_is_private_encrypted_expiring_and_written_by_export_alone() {
    let t = template();
    let r = resources(&t);
    let buckets: Vec<&String> = r
        .iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::S3::Bucket"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(buckets, ["ArchiveBucket"], "one bucket");
    let bucket = &r["ArchiveBucket"]["Properties"];
    let block = &bucket["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting].as_bool(), Some(true), "{setting}");
    }
    assert_eq!(
        bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"].as_str(),
        Some("BucketOwnerEnforced"),
        "no ACLs"
    );
    let sse =
        &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
    assert!(
        matches!(sse["SSEAlgorithm"].as_str(), Some("AES256" | "aws:kms")),
        "encrypted at rest"
    );
    let rules = list(&bucket["LifecycleConfiguration"]["Rules"]);
    let expiry = rules
        .iter()
        .find(|rule| rule["Status"].as_str() == Some("Enabled") && !rule["ExpirationInDays"].is_null())
        .expect("a lifecycle rule that expires objects");
    assert!(
        expiry["Prefix"].is_null() && expiry["Filter"].is_null(),
        "every object"
    );
    assert_eq!(
        intrinsic(&expiry["ExpirationInDays"]),
        Some(("Ref".into(), "ArchiveRetentionDays".into()))
    );
    assert_eq!(
        t["Parameters"]["ArchiveRetentionDays"]["Default"].as_u64(),
        Some(30)
    );

    let policies: Vec<&Value> = r
        .values()
        .filter(|v| v["Type"].as_str() == Some("AWS::S3::BucketPolicy"))
        .collect();
    assert_eq!(policies.len(), 1);
    let policy = &policies[0]["Properties"];
    assert_eq!(
        intrinsic(&policy["Bucket"]),
        Some(("Ref".into(), "ArchiveBucket".into()))
    );
    let statements = list(&policy["PolicyDocument"]["Statement"]);
    assert!(
        statements.iter().all(|s| s["Effect"].as_str() == Some("Deny")),
        "the bucket policy only denies: access comes from the export role alone"
    );
    let tls = statements
        .iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"].as_str() == Some("false"))
        .expect("a statement denying requests without TLS");
    assert_eq!(tls["Action"].as_str(), Some("s3:*"));
    assert_eq!(tls["Principal"].as_str(), Some("*"));
    let covered: Vec<_> = list(&tls["Resource"]).iter().map(tagged).collect();
    assert!(covered.contains(&Some(("GetAtt".into(), Value::from("ArchiveBucket.Arn")))));
    assert!(covered.contains(&Some(("Sub".into(), Value::from(ARCHIVE_OBJECTS)))));
    let others = statements
        .iter()
        .find(|s| !s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"].is_null())
        .expect("a statement denying writes to every principal but export's role");
    assert_eq!(list(&others["Action"]), [Value::from("s3:PutObject")]);
    assert_eq!(
        intrinsic(&others["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
        Some(("GetAtt".into(), "ExportRole.Arn".into()))
    );

    let env = &r["ExportFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        intrinsic(&env["ARCHIVE_BUCKET"]),
        Some(("Ref".into(), "ArchiveBucket".into()))
    );
    for function in ["DestinationsFunction", "TestEventFunction", "IngestFunction"] {
        let env = &r[function]["Properties"]["Environment"]["Variables"];
        assert!(
            env.get("ARCHIVE_BUCKET").is_none(),
            "{function} does not know the bucket"
        );
    }
    assert!(
        t["Globals"]["Function"]["Environment"]["Variables"]
            .get("ARCHIVE_BUCKET")
            .is_none()
    );
}

#[test]
fn the_queue_redrives_to_the_dlq_and_export_reports_item_failures() {
    let t = template();
    let r = resources(&t);
    let queue = &r["Queue"]["Properties"];
    assert_eq!(
        intrinsic(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        Some(("GetAtt".into(), "DeadLetterQueue.Arn".into()))
    );
    assert_eq!(
        intrinsic(&queue["RedrivePolicy"]["maxReceiveCount"]),
        Some(("Ref".into(), "MaxReceiveCount".into()))
    );
    assert!(t["Parameters"]["MaxReceiveCount"]["Default"].as_u64().unwrap() >= 1);
    for q in ["Queue", "DeadLetterQueue"] {
        assert_eq!(
            r[q]["Properties"]["SqsManagedSseEnabled"].as_bool(),
            Some(true),
            "{q} is encrypted"
        );
    }

    let export = &r["ExportFunction"]["Properties"];
    let timeout = export["Timeout"].as_u64().unwrap();
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    let window = t["Parameters"]["MaximumBatchingWindowInSeconds"]["MaxValue"]
        .as_u64()
        .unwrap();
    assert!(
        visibility >= 6 * timeout + window,
        "visibility {visibility} s < 6 × export's {timeout} s + the longest window {window} s"
    );
    // A batch over 10 needs a window: Lambda refuses the event source otherwise.
    let rule = &t["Rules"]["BatchingWindowForLargeBatches"];
    let (condition, compared) = tagged(&rule["RuleCondition"]).unwrap();
    assert_eq!(condition, "Equals");
    assert_eq!(
        tagged(&list(&compared)[0]).unwrap().1.as_str(),
        Some("MaximumBatchingWindowInSeconds")
    );
    let (assert, args) = tagged(&rule["Assertions"][0]["Assert"]).unwrap();
    assert_eq!(assert, "Contains");
    let small: Vec<String> = list(&list(&args)[0])
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(small, (1..=10).map(|n| n.to_string()).collect::<Vec<_>>());

    let sqs_events: Vec<&Value> = export["Events"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .collect();
    assert_eq!(sqs_events.len(), 1);
    let p = &sqs_events[0]["Properties"];
    assert_eq!(
        intrinsic(&p["Queue"]),
        Some(("GetAtt".into(), "Queue.Arn".into()))
    );
    assert_eq!(
        list(&p["FunctionResponseTypes"]),
        vec![Value::from("ReportBatchItemFailures")]
    );
    assert_eq!(
        intrinsic(&p["BatchSize"]),
        Some(("Ref".into(), "BatchSize".into()))
    );
    assert_eq!(
        intrinsic(&p["MaximumBatchingWindowInSeconds"]),
        Some(("Ref".into(), "MaximumBatchingWindowInSeconds".into()))
    );
    assert_eq!(
        intrinsic(&p["ScalingConfig"]["MaximumConcurrency"]),
        Some(("Ref".into(), "ExportMaximumConcurrency".into())),
        "a Segment outage cannot fan out without bound"
    );
}

#[test]
fn failed_records_retry_for_hours_before_the_dlq_and_the_queue_keeps_them_longer() {
    let t = template();
    let r = resources(&t);
    let default = |name: &str| t["Parameters"][name]["Default"].as_u64().unwrap();
    let max = |name: &str| t["Parameters"][name]["MaxValue"].as_u64().unwrap();
    let schedule = RetrySchedule {
        base: Duration::from_secs(default("RetryBaseSeconds")),
        cap: Duration::from_secs(default("RetryCapSeconds")),
    };
    let covered = schedule.covers(default("MaxReceiveCount") as u32);
    assert!(
        covered >= Duration::from_secs(6 * 3600),
        "the defaults retry for {covered:?} only"
    );
    // The longest schedule any parameters allow still ends before the queue drops a record.
    let longest = max("MaxReceiveCount") * max("RetryCapSeconds").min(43_200) * 5 / 4;
    let retention = r["Queue"]["Properties"]["MessageRetentionPeriod"]
        .as_u64()
        .unwrap();
    assert!(
        longest < retention,
        "{longest} s of retries > retention {retention} s"
    );

    let env = &r["ExportFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(intrinsic(&env["QUEUE_URL"]), Some(("Ref".into(), "Queue".into())));
    assert_eq!(
        intrinsic(&env["DEAD_LETTER_QUEUE_URL"]),
        Some(("Ref".into(), "DeadLetterQueue".into()))
    );
    assert_eq!(
        intrinsic(&env["MAX_RECEIVE_COUNT"]),
        Some(("Ref".into(), "MaxReceiveCount".into())),
        "a remainder reaches the DLQ after as many receipts as its record would"
    );
    assert_eq!(
        default("MaxReceiveCount") as u32,
        shared::requeue::DEFAULT_MAX_RECEIVES,
        "export's default bound is the template's"
    );
    assert_eq!(
        intrinsic(&env["RETRY_BASE_SECONDS"]),
        Some(("Ref".into(), "RetryBaseSeconds".into()))
    );
    assert_eq!(
        intrinsic(&env["RETRY_CAP_SECONDS"]),
        Some(("Ref".into(), "RetryCapSeconds".into()))
    );
}

#[test]
fn the_table_alarms_and_outputs() {
    let t = template();
    // A deleted destination's status marker expires through the table's TTL.
    let ttl = &resources(&t)["Table"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some(shared::store::TTL_ATTRIBUTE));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    let r = resources(&t);
    let table = &r["Table"]["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert!(!table["DeletionProtectionEnabled"].is_null());
    assert!(t["Parameters"]["TableDeletionProtection"].is_mapping());

    let alarms: Vec<(&str, &str)> = r
        .values()
        .filter(|v| v["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|a| {
            (
                a["Properties"]["Namespace"].as_str().unwrap(),
                a["Properties"]["MetricName"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        alarms.contains(&("AWS/SQS", "ApproximateNumberOfMessagesVisible")),
        "an alarm on DLQ depth"
    );
    assert!(
        alarms.contains(&("AWS/Lambda", "Errors")),
        "an alarm on export errors"
    );
    assert!(
        alarms.contains(&("AWS/SQS", "ApproximateAgeOfOldestMessage")),
        "an alarm on the age of the oldest queued event"
    );
    for (metric, periods, function) in [
        ("EventsFailedBad", 1, "ExportFunction"),
        ("EventsFailedTransient", 3, "ExportFunction"),
        ("VisibilityChangeFailures", 3, "ExportFunction"),
        ("StatusWriteFailures", 3, "ExportFunction"),
        ("ArchiveWriteFailures", 3, "ExportFunction"),
        ("QueueFailures", 1, "IngestFunction"),
        ("SourceLookupFailures", 1, "IngestFunction"),
    ] {
        let alarm = r
            .values()
            .map(|v| &v["Properties"])
            .find(|p| {
                p["Namespace"].as_str() == Some(shared::metrics::NAMESPACE)
                    && p["MetricName"].as_str() == Some(metric)
            })
            .unwrap_or_else(|| panic!("an alarm on {metric}"));
        assert_eq!(
            alarm["EvaluationPeriods"].as_u64(),
            Some(periods),
            "{metric}: bad events and lost payloads page at once, the rest when sustained"
        );
        assert_eq!(
            intrinsic(&alarm["Dimensions"][0]["Value"]),
            Some(("Ref".into(), function.into())),
            "{metric} of {function}"
        );
    }
    // Every alarm on this service's own metrics names one the code emits, per function,
    // and says what to do.
    let emitted = |line: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    use shared::metrics::{ExportStats, IngestOutcome, export_line, forward_line, ingest_line};
    let export: Vec<String> = emitted(export_line("export", &ExportStats::default()));
    let ingest: Vec<String> = [
        emitted(ingest_line("ingest", IngestOutcome::Accepted)),
        emitted(forward_line("ingest", false)),
    ]
    .concat();
    for (name, alarm) in r
        .iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
    {
        let name = name.as_str();
        let p = &alarm["Properties"];
        assert!(
            p["AlarmDescription"].as_str().is_some_and(|d| d.len() > 40),
            "{name} says what happened and what to do"
        );
        assert_eq!(
            tagged(&p["AlarmActions"]).map(|(tag, _)| tag),
            Some("If".into()),
            "{name} notifies AlarmTopicArn when given"
        );
        if p["Namespace"].as_str() != Some(shared::metrics::NAMESPACE) {
            continue;
        }
        let metric = p["MetricName"].as_str().unwrap().to_owned();
        let function = intrinsic(&p["Dimensions"][0]["Value"]).map(|(_, f)| f);
        let names = match function.as_deref() {
            Some("ExportFunction") => &export,
            Some("IngestFunction") => &ingest,
            other => panic!("{name}: an alarm on {other:?}"),
        };
        assert!(
            names.contains(&metric),
            "{name}: {metric} is no metric that {function:?} emits ({names:?})"
        );
    }
    for output in ["ApiUrl", "QueueUrl", "DeadLetterQueueUrl", "ArchiveBucketName"] {
        assert!(t["Outputs"][output].is_mapping(), "output {output}");
    }
    assert_eq!(
        t["Parameters"]["ApiTokenHashes"]["NoEcho"].as_bool(),
        Some(true),
        "token hashes stay out of the template"
    );
}

#[test]
fn ingest_has_a_route_for_every_sdk_endpoint_and_forwarding_is_a_parameter() {
    let t = template();
    let ingest = &resources(&t)["IngestFunction"]["Properties"];
    let mut routes = BTreeSet::new();
    if let Value::Mapping(events) = &ingest["Events"] {
        for event in events.values() {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"));
            let p = &event["Properties"];
            routes.insert(format!(
                "{} {}",
                p["Method"].as_str().unwrap(),
                p["Path"].as_str().unwrap()
            ));
        }
    }
    let browser = ["/events/bulk/{clientSideId}", "/events/diagnostic/{clientSideId}"];
    let mut expected: BTreeSet<String> = [
        "/bulk",
        "/diagnostic",
        "/mobile",
        "/mobile/events",
        "/mobile/events/bulk",
        "/mobile/events/diagnostic",
    ]
    .iter()
    .chain(&browser)
    .map(|path| format!("POST {path}"))
    .collect();
    expected.extend(browser.iter().map(|path| format!("OPTIONS {path}")));
    assert_eq!(
        routes, expected,
        "the SDKs' endpoints, and the browser SDK's preflights"
    );
    for route in &routes {
        let path = route
            .split_once(' ')
            .unwrap()
            .1
            .replace("{clientSideId}", "5f0a1b2c");
        assert!(shared::ingest::endpoint(&path).is_some(), "ingest answers {path}");
    }

    // SDK traffic has an API of its own, with limits from parameters; the management API
    // keeps its own low ones.
    if let Value::Mapping(events) = &ingest["Events"] {
        for event in events.values() {
            assert_eq!(
                intrinsic(&event["Properties"]["ApiId"]),
                Some(("Ref".into(), "EventsApi".into())),
                "every SDK route is on the events API"
            );
        }
    }
    let r = resources(&t);
    let throttle = &r["EventsApi"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        intrinsic(&throttle["ThrottlingRateLimit"]),
        Some(("Ref".into(), "IngestThrottleRateLimit".into()))
    );
    assert_eq!(
        intrinsic(&throttle["ThrottlingBurstLimit"]),
        Some(("Ref".into(), "IngestThrottleBurstLimit".into()))
    );
    let management = &r["Api"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        (
            management["ThrottlingRateLimit"].as_u64(),
            management["ThrottlingBurstLimit"].as_u64()
        ),
        (Some(25), Some(50))
    );
    // The defaults carry the README's load model: 0.2 posts/s per server SDK instance,
    // 0.5 per open page; 5,000 instances or 2,000 pages.
    let default = |name: &str| t["Parameters"][name]["Default"].as_u64().unwrap();
    assert!(default("IngestThrottleRateLimit") as f64 >= 5_000.0 * 0.2);
    assert!(default("IngestThrottleRateLimit") as f64 >= 2_000.0 * 0.5);
    assert!(default("IngestThrottleBurstLimit") >= default("IngestThrottleRateLimit"));
    let reserved = tagged(&ingest["ReservedConcurrentExecutions"]).expect("a reservation");
    assert_eq!(reserved.0, "If");
    assert_eq!(reserved.1[0].as_str(), Some("ReservesIngestConcurrency"));
    assert_eq!(
        intrinsic(&reserved.1[1]),
        Some(("Ref".into(), "IngestReservedConcurrency".into()))
    );
    assert!(default("IngestReservedConcurrency") > 0);
    for function in ["ExportFunction", "DestinationsFunction", "TestEventFunction"] {
        if let Value::Mapping(events) = &r[function]["Properties"]["Events"] {
            for event in events.values() {
                if event["Type"].as_str() == Some("HttpApi") {
                    assert_eq!(
                        intrinsic(&event["Properties"]["ApiId"]),
                        Some(("Ref".into(), "Api".into())),
                        "{function} stays on the management API"
                    );
                }
            }
        }
    }

    let forward = &ingest["Environment"]["Variables"]["FORWARD_EVENTS_URI"];
    assert_eq!(
        intrinsic(forward),
        Some(("Ref".into(), "ForwardEventsUri".into()))
    );
    assert_eq!(
        t["Parameters"]["ForwardEventsUri"]["Default"].as_str(),
        Some(""),
        "off by default"
    );
}
