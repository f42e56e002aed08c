//! moto's server: DynamoDB and SQS on one local port (`tests/python/moto_server.py`, moto's
//! own server answering one request at a time), and the table created from its definition
//! in `template.yaml`.

use crate::process::{Service, command, free_port, workspace_root};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_norway::Value;
use std::io;
use std::path::Path;
use std::time::Duration;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub service: Service,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto's server on `port` (0: any free port).
    pub fn start(log_dir: &Path, port: u16) -> io::Result<Self> {
        let port = if port == 0 { free_port() } else { port };
        // One request at a time, so that conditional writes are atomic (see the script).
        let mut cmd = command("python3");
        cmd.arg(workspace_root().join("tests/python/moto_server.py"))
            .args(["127.0.0.1", &port.to_string()]);
        let mut service = Service::spawn("moto_server", cmd, log_dir)?;
        service.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(60))?;
        Ok(Self {
            service,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }
}

/// SDK configuration that talks to a local endpoint with dummy credentials.
pub async fn aws_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(REGION)
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "local"))
        .load()
        .await
}

/// The properties of the one `AWS::DynamoDB::Table` resource of `template.yaml`.
pub fn table_definition(template: &Path) -> io::Result<Value> {
    let text = std::fs::read_to_string(template)?;
    let doc: Value = serde_norway::from_str(&text).map_err(io::Error::other)?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| io::Error::other("template has no Resources"))?;
    let tables: Vec<&Value> = resources
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .collect();
    match tables.as_slice() {
        [table] => table
            .get("Properties")
            .cloned()
            .ok_or_else(|| io::Error::other("the table has no Properties")),
        _ => Err(io::Error::other(format!(
            "expected one AWS::DynamoDB::Table, found {}",
            tables.len()
        ))),
    }
}

/// Creates `name` with the key schema and billing mode of the template's table.
pub async fn create_table_from_template(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let props = table_definition(&workspace_root().join("template.yaml"))?;
    let field = |v: &Value, k: &str| -> Result<String, String> {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("table definition lacks {k}"))
    };
    let mut create = client.create_table().table_name(name);
    for a in props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or("no AttributeDefinitions")?
    {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(field(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(field(a, "AttributeType")?.as_str()))
                .build()?,
        );
    }
    for k in props
        .get("KeySchema")
        .and_then(Value::as_sequence)
        .ok_or("no KeySchema")?
    {
        create = create.key_schema(
            KeySchemaElement::builder()
                .attribute_name(field(k, "AttributeName")?)
                .key_type(KeyType::from(field(k, "KeyType")?.as_str()))
                .build()?,
        );
    }
    let billing = field(&props, "BillingMode")?;
    create
        .billing_mode(BillingMode::from(billing.as_str()))
        .send()
        .await?;
    Ok(())
}

/// A template value with `!Ref Parameter` resolved to the parameter's default.
fn resolve(template: &Value, v: &Value) -> Value {
    if let Value::Tagged(tagged) = v
        && tagged.tag == "Ref"
        && let Some(name) = tagged.value.as_str()
    {
        return template["Parameters"][name]["Default"].clone();
    }
    v.clone()
}

fn number(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Queue URLs of the export queue, the replay queue and the replay-request queue, each
/// with its dead-letter queue.
pub struct Queues {
    pub queue: String,
    pub dead_letter: String,
    pub replay: String,
    pub replay_dead_letter: String,
    pub replay_requests: String,
    pub replay_requests_dead_letter: String,
}

/// Creates the template's queues (named `<prefix>-…`) with their visibility timeouts and
/// redrive policies, `!Ref` parameters taking their defaults.
pub async fn create_queues_from_template(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<Queues, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml"))?;
    let template: Value = serde_norway::from_str(&text)?;
    let (queue, dead_letter) = create_pair(
        sqs,
        &template,
        ("Queue", "DeadLetterQueue"),
        &format!("{prefix}-queue"),
        &format!("{prefix}-dlq"),
    )
    .await?;
    let (replay, replay_dead_letter) = create_pair(
        sqs,
        &template,
        ("ReplayQueue", "ReplayDeadLetterQueue"),
        &format!("{prefix}-replay-queue"),
        &format!("{prefix}-replay-queue-dlq"),
    )
    .await?;
    let (replay_requests, replay_requests_dead_letter) = create_pair(
        sqs,
        &template,
        ("ReplayRequestQueue", "ReplayRequestDeadLetterQueue"),
        &format!("{prefix}-replay-requests"),
        &format!("{prefix}-replay-requests-dlq"),
    )
    .await?;
    Ok(Queues {
        queue,
        dead_letter,
        replay,
        replay_dead_letter,
        replay_requests,
        replay_requests_dead_letter,
    })
}

/// One of the template's queues and its dead-letter queue, by resource names.
async fn create_pair(
    sqs: &aws_sdk_sqs::Client,
    template: &Value,
    (queue_resource, dlq_resource): (&str, &str),
    queue_name: &str,
    dlq_name: &str,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let props = |name: &str| template["Resources"][name]["Properties"].clone();
    let attributes = |p: &Value| {
        let mut attrs = std::collections::HashMap::new();
        for (key, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
        ] {
            if let Some(v) = number(&resolve(template, &p[key])) {
                attrs.insert(attr, v);
            }
        }
        attrs
    };
    let dlq_props = props(dlq_resource);
    let dead_letter = sqs
        .create_queue()
        .queue_name(dlq_name)
        .set_attributes(Some(attributes(&dlq_props)))
        .send()
        .await?
        .queue_url
        .ok_or("no DLQ URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no DLQ ARN")?;
    let queue_props = props(queue_resource);
    let max_receive = number(&resolve(
        template,
        &queue_props["RedrivePolicy"]["maxReceiveCount"],
    ))
    .ok_or_else(|| format!("{queue_resource} has no maxReceiveCount"))?;
    let mut attrs = attributes(&queue_props);
    attrs.insert(
        QueueAttributeName::RedrivePolicy,
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}).to_string(),
    );
    let queue = sqs
        .create_queue()
        .queue_name(queue_name)
        .set_attributes(Some(attrs))
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    Ok((queue, dead_letter))
}
