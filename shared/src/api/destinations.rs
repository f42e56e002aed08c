//! Destinations: their JSON representation and the CRUD handlers (README,
//! "The API"); bodies are checked by [`super::validation`].

use super::link;
use super::paging::PageRequest;
use super::patch::{self, WriteAttemptError};
use super::validation::{Fields, read_only, validate};
use crate::delivery_status::{self, DeliveryStatus};
use crate::destination::{Destination, SEGMENT_KIND};
use crate::endpoint::Outbound;
use crate::segment::verify::{KeyCheck, KeyVerifier, Verdict};
use crate::store::{DeliveryStore, Store, StoreError};
use crate::timestamp::now_millis;
use crate::web::{ApiError, ApiResponse, empty_response, json_response};
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn href(d: &Destination) -> String {
    format!("/api/v2/destinations/{}/{}/{}", d.project, d.environment, d.id)
}

/// A destination as the API shows it: the config as its type serializes (the write key
/// masked).
pub fn to_json(d: &Destination) -> Value {
    json!({
        "_id": d.id,
        "_links": {"self": link(&href(d)), "parent": link("/api/v2/destinations")},
        "name": d.name,
        "kind": d.kind,
        "version": d.version,
        "createdAt": d.created_at,
        "on": d.on,
        "config": d.config,
        "_writeKey": d.write_key_check,
        "_access": {"allowed": [], "denied": []},
    })
}

/// What a write is checked against beyond its body: where an endpoint resolves, and
/// whether Segment knows the write key.
pub struct WriteChecks {
    pub outbound: Outbound,
    pub verifier: KeyVerifier,
}

/// Asks Segment about the write key of a config being written, unless it is the key
/// already stored (`current`) or the destination sends to its own endpoint. A key Segment
/// does not know is a 400, so nothing is stored; no answer lets the write go, unchecked.
async fn key_check(
    verifier: &KeyVerifier,
    config: &crate::destination::SegmentConfig,
    current: Option<&Destination>,
) -> Result<KeyCheck, ApiError> {
    if config.endpoint.is_some() {
        return Ok(KeyCheck::own_endpoint());
    }
    if let Some(current) = current
        && current.config.endpoint.is_none()
        && current.config.write_key.expose() == config.write_key.expose()
    {
        return Ok(current.write_key_check.clone());
    }
    match verifier.verify(&config.write_key).await {
        Verdict::Unknown => Err(ApiError::invalid(
            "config.writeKey: Segment does not know this write key. Copy it again from the Segment source (Settings → API Keys); nothing was stored",
        )),
        verdict => Ok(verdict.check(now_millis())),
    }
}

/// Validates a body and checks where its endpoint, if any, resolves now.
async fn checked(
    doc: &Value,
    current: Option<&Destination>,
    outbound: &Outbound,
) -> Result<Fields, ApiError> {
    let fields = validate(doc, current, outbound.policy)?;
    if let Some(endpoint) = &fields.config.endpoint {
        outbound
            .check(endpoint)
            .await
            .map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    Ok(fields)
}

pub(super) fn not_found(project: &str, environment: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no destination {id:?} in project {project:?}, environment {environment:?}"
    ))
}

/// A page of every environment's destinations (README, "Pages").
pub async fn list(store: &impl Store, request: &PageRequest) -> Result<ApiResponse, ApiError> {
    let page = store
        .list_destinations_page(request.limit, request.after.as_ref())
        .await?;
    let items: Vec<Value> = page.destinations.iter().map(to_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"_links": request.links("/api/v2/destinations", page.next.as_ref()), "items": items}),
    ))
}

/// The delivery statuses of an environment; none (logged, and shown as `unknown`) when
/// they cannot be read, so that the destinations themselves are still served.
async fn statuses(
    store: &impl DeliveryStore,
    project: &str,
    environment: &str,
) -> Option<HashMap<String, DeliveryStatus>> {
    store
        .delivery_statuses(project, environment)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "delivery statuses could not be read"))
        .ok()
}

/// A destination as the API shows it, with its delivery status (`_delivery`).
fn with_delivery(d: &Destination, statuses: Option<&HashMap<String, DeliveryStatus>>) -> Value {
    let mut v = to_json(d);
    v["_delivery"] = match statuses {
        Some(statuses) => statuses
            .get(&d.id)
            .map_or_else(delivery_status::idle_json, |s| s.to_json(now_millis())),
        // Not "no events yet": the status could not be read this time.
        None => json!({"state": "unknown", "hours": []}),
    };
    v
}

/// A page of the destinations of one environment, sorted by id (this service's addition
/// to LaunchDarkly's paths).
pub async fn list_environment(
    store: &(impl Store + DeliveryStore),
    project: &str,
    environment: &str,
    request: &PageRequest,
) -> Result<ApiResponse, ApiError> {
    let after = request.after_in(project, environment)?;
    let (page, statuses) = tokio::join!(
        store.environment_destinations_page(project, environment, request.limit, after),
        statuses(store, project, environment)
    );
    let page = page?;
    let items: Vec<Value> = page
        .destinations
        .iter()
        .map(|d| with_delivery(d, statuses.as_ref()))
        .collect();
    let path = format!("/api/v2/destinations/{project}/{environment}");
    Ok(json_response(
        StatusCode::OK,
        &json!({"_links": request.links(&path, page.next.as_ref()), "items": items}),
    ))
}

pub async fn create(
    store: &impl Store,
    checks: &WriteChecks,
    project: &str,
    environment: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let fields = checked(body, None, &checks.outbound).await?;
    let write_key_check = key_check(&checks.verifier, &fields.config, None).await?;
    let destination = Destination {
        id: uuid::Uuid::new_v4().to_string(),
        project: project.to_owned(),
        environment: environment.to_owned(),
        name: fields.name,
        kind: SEGMENT_KIND.to_owned(),
        on: fields.on,
        version: 1,
        created_at: now_millis(),
        config: fields.config,
        write_key_check,
    };
    store.create_destination(&destination).await?;
    tracing::info!(project, environment, id = %destination.id, "destination created");
    Ok(json_response(StatusCode::CREATED, &to_json(&destination)))
}

pub async fn get(
    store: &(impl Store + DeliveryStore),
    project: &str,
    environment: &str,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let (d, statuses) = tokio::join!(
        store.get_destination(project, environment, id),
        statuses(store, project, environment)
    );
    let d = d?.ok_or_else(|| not_found(project, environment, id))?;
    Ok(json_response(
        StatusCode::OK,
        &with_delivery(&d, statuses.as_ref()),
    ))
}

pub async fn delete(
    store: &(impl Store + DeliveryStore),
    project: &str,
    environment: &str,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    match store.delete_destination(project, environment, id).await {
        Ok(()) => {
            store.forget_delivery(project, environment, id).await;
            tracing::info!(project, environment, id, "destination deleted");
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        Err(StoreError::NotFound) => Err(not_found(project, environment, id)),
        Err(e) => Err(e.into()),
    }
}

/// Applies a JSON Patch to the destination as the API shows it, validates the result
/// like a POST and writes it conditionally on the version read. A lost race re-reads
/// and re-applies (its `test` operations are checked again against the new state).
pub async fn patch(
    store: &impl Store,
    checks: &WriteChecks,
    project: &str,
    environment: &str,
    id: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let ops = patch::operations(body)?;
    patch::check_read_only(&ops, read_only)?;
    let updated = patch::retry_lost_races("destination", || {
        patch_once(store, checks, project, environment, id, &ops)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &to_json(&updated)))
}

async fn patch_once(
    store: &impl Store,
    checks: &WriteChecks,
    project: &str,
    environment: &str,
    id: &str,
    ops: &json_patch::Patch,
) -> Result<Destination, WriteAttemptError> {
    let current = store
        .get_destination(project, environment, id)
        .await?
        .ok_or_else(|| not_found(project, environment, id))?;
    let mut doc = to_json(&current);
    patch::apply(&mut doc, ops)?;
    let fields = checked(&doc, Some(&current), &checks.outbound).await?;
    if fields.name == current.name && fields.on == current.on && fields.config == current.config {
        return Ok(current);
    }
    let write_key_check = key_check(&checks.verifier, &fields.config, Some(&current)).await?;
    let next = Destination {
        name: fields.name,
        on: fields.on,
        config: fields.config,
        write_key_check,
        version: current.version + 1,
        ..current.clone()
    };
    let written = patch::written(store.replace_destination(&next, current.version).await, next)?;
    tracing::info!(
        project,
        environment,
        id,
        version = written.version,
        "destination updated"
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Destination {
        crate::destination::stored_test_destination()
    }

    #[test]
    fn the_representation_masks_the_write_key() {
        let v = to_json(&stored());
        assert_eq!(v["config"]["writeKey"], "***********f00d");
        assert!(!v.to_string().contains("secret"));
        assert_eq!(v["_links"]["self"]["href"], "/api/v2/destinations/p/e/d1");
        assert_eq!(v["_access"], json!({"allowed": [], "denied": []}));
    }

    /// The largest destination the API can show: every field at its longest, each
    /// character the one JSON escapes longest (a control character, `\u0001`) wherever
    /// the rules allow it, and a delivery status of 24 hours each naming its top flags.
    fn largest() -> (Destination, HashMap<String, DeliveryStatus>) {
        use crate::delivery_status::{HourCount, MAX_REASON_CHARS, Skipped};
        use crate::destination::{MAX_CONTEXT_KIND_LEN, MAX_WRITE_KEY_LEN, SegmentConfig, WriteKey};
        use crate::segment::verify::{KeyCheck, KeyStatus};
        let key = "k".repeat(256);
        let kind = Some("c".repeat(MAX_CONTEXT_KIND_LEN));
        let control = |n: usize| "\u{1}".repeat(n);
        let endpoint = serde_json::from_value(json!(control(crate::endpoint::MAX_ENDPOINT_LEN))).unwrap();
        let d = Destination {
            id: "i".repeat(64),
            project: key.clone(),
            environment: key.clone(),
            name: control(256),
            kind: SEGMENT_KIND.to_owned(),
            on: true,
            version: u64::MAX,
            created_at: u64::MAX,
            config: SegmentConfig {
                // Printable ASCII; its last four, shown, JSON-escaped.
                write_key: WriteKey::new(format!("{}\"\"\"\"", "w".repeat(MAX_WRITE_KEY_LEN - 4))),
                region: crate::destination::Region::Eu,
                user_id_context_kind: kind.clone(),
                anonymous_id_context_kind: kind,
                include_custom_data: true,
                experiment_viewed: true,
                endpoint: Some(endpoint),
            },
            write_key_check: KeyCheck {
                status: KeyStatus::Unchecked,
                checked_at: Some(u64::MAX),
                reason: Some(control(MAX_REASON_CHARS)),
            },
        };
        let now = now_millis();
        let hour = now - now % 3_600_000;
        let hours = (0..24)
            .map(|i| HourCount {
                hour: hour - i * 3_600_000,
                // 19 digits each, as big as counts that are summed can be.
                delivered: u64::MAX / 8,
                failed: u64::MAX / 8,
                skipped: Skipped {
                    flag_not_enabled: u64::MAX / 8,
                    kind_not_exported: u64::MAX / 8,
                    destination_off: u64::MAX / 8,
                    flags: (0..10)
                        .map(|f| (format!("{f}{}", "f".repeat(255)), u64::MAX / 8))
                        .collect(),
                },
            })
            .collect();
        let status = DeliveryStatus {
            last_delivered_at: Some(u64::MAX),
            last_failed_at: Some(u64::MAX),
            failing_since: Some(u64::MAX),
            last_failure: Some(control(MAX_REASON_CHARS)),
            hours,
        };
        let statuses = HashMap::from([(d.id.clone(), status)]);
        (d, statuses)
    }

    /// What Lambda counts against its 6 MB: the body as a JSON string in the function's
    /// answer (function URLs and API Gateway alike), so escaped once more.
    fn answered_bytes(page: &Value) -> usize {
        serde_json::to_string(&page.to_string()).unwrap().len()
    }

    const LAMBDA_ANSWER_LIMIT: usize = 6 * 1024 * 1024;

    /// README, "Pages": the largest page either list can answer, `MAX_LIMIT` of the largest
    /// destination, fits in Lambda's 6 MB answer with room to spare, and the default page
    /// is a small part of it.
    #[test]
    fn the_largest_possible_page_fits_in_a_lambda_answer() {
        use crate::api::paging::{DEFAULT_LIMIT, MAX_LIMIT, parse};
        let (d, statuses) = largest();
        let shown = with_delivery(&d, Some(&statuses));
        assert_eq!(shown["_delivery"]["hours"].as_array().unwrap().len(), 24);
        assert_eq!(
            shown["_delivery"]["hours"][0]["skipped"]["topFlags"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        let cursor = crate::store::DestinationKey::of(&d);
        let request = parse(Some(&format!(
            "limit={MAX_LIMIT}&after={}",
            crate::api::paging::encode(&cursor)
        )))
        .unwrap();
        let page = |item: &Value, n: usize| {
            json!({"_links": request.links(&format!("/api/v2/destinations/{}/{}", d.project, d.environment), Some(&cursor)),
                   "items": vec![item.clone(); n]})
        };
        let environment_page = answered_bytes(&page(&shown, MAX_LIMIT));
        let list_page = answered_bytes(&page(&to_json(&d), MAX_LIMIT));
        let default_page = answered_bytes(&page(&shown, DEFAULT_LIMIT));
        println!(
            "largest destination: {} bytes with its delivery status, {} without; largest page: {environment_page} bytes (an environment's), {list_page} (every environment's); largest default page: {default_page}",
            answered_bytes(&shown),
            answered_bytes(&to_json(&d)),
        );
        assert!(environment_page > list_page);
        assert!(
            environment_page < LAMBDA_ANSWER_LIMIT * 3 / 4,
            "{environment_page} bytes: too near Lambda's 6 MB"
        );
        assert!(default_page < LAMBDA_ANSWER_LIMIT / 4, "{default_page} bytes");
    }

    #[test]
    fn delivery_is_idle_without_a_status_and_unknown_when_statuses_could_not_be_read() {
        let d = stored();
        assert_eq!(
            with_delivery(&d, Some(&HashMap::new()))["_delivery"]["state"],
            "idle"
        );
        assert_eq!(with_delivery(&d, None)["_delivery"]["state"], "unknown");
        let failing = DeliveryStatus {
            failing_since: Some(5),
            ..DeliveryStatus::default()
        };
        let statuses = HashMap::from([(d.id.clone(), failing)]);
        assert_eq!(
            with_delivery(&d, Some(&statuses))["_delivery"]["state"],
            "failing"
        );
    }
}
