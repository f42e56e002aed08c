//! Replays of a destination (CONTRACT §4.4; README, "Replays"): started here, carried out
//! by the `replay` function, advanced by `export`, read back here.

use super::link;
use crate::ingest::queue::EventQueue;
use crate::replay::{Replay, ReplayKey, ReplayTask, parse_range};
use crate::store::{ReplayStore, Store};
use crate::web::{ApiError, ApiResponse, json_response};
use http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Where the API puts new replays' tasks, and how long the archive keeps events.
pub struct ReplayStart<Q> {
    pub queue: Q,
    pub retention: Duration,
}

fn destination_href(key: &ReplayKey) -> String {
    format!(
        "/api/v2/destinations/{}/{}/{}",
        key.project, key.environment, key.destination
    )
}

fn href(key: &ReplayKey) -> String {
    format!("{}/replays/{}", destination_href(key), key.id)
}

pub fn to_json(r: &Replay) -> Value {
    let mut out = json!({
        "_id": r.key.id,
        "_links": {
            "self": link(&href(&r.key)),
            "parent": link(&format!("{}/replays", destination_href(&r.key))),
            "destination": link(&destination_href(&r.key)),
        },
        "from": r.from,
        "to": r.to,
        "state": r.state(),
        "createdAt": r.created_at,
        "events": r.counts,
    });
    if let Some(at) = r.read_at {
        out["readAt"] = json!(at);
    }
    if let Some(error) = &r.error {
        out["error"] = json!(error);
    }
    out
}

/// A new replay's id: its creation time first, so that ids sort by age.
fn new_id(created_at: i64) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{created_at:013}-{}", &random[..12])
}

/// `POST …/{id}/replays`: 202 with the new replay, running.
pub async fn create<S: Store + ReplayStore, Q: EventQueue>(
    store: &S,
    start: Option<&ReplayStart<Q>>,
    project: &str,
    environment: &str,
    id: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let Some(start) = start else {
        return Err(ApiError::internal(
            "replays are not set up in this deployment: the destinations function has no REPLAY_REQUEST_QUEUE_URL",
        ));
    };
    let destination = store
        .get_destination(project, environment, id)
        .await?
        .ok_or_else(|| super::destinations::not_found(project, environment, id))?;
    if !destination.on {
        return Err(ApiError::invalid(
            "the destination is off: turn it on (PATCH /on to true) before replaying to it",
        ));
    }
    let now = crate::timestamp::now_millis() as i64;
    let range = parse_range(body, now, start.retention).map_err(|e| ApiError::invalid(e.0))?;
    let replay = Replay {
        key: ReplayKey {
            project: project.to_owned(),
            environment: environment.to_owned(),
            destination: id.to_owned(),
            id: new_id(now),
        },
        from: range.from,
        to: range.to,
        created_at: now,
        counts: Default::default(),
        read_at: None,
        error: None,
    };
    store.create_replay(&replay).await?;
    let task = serde_json::to_string(&ReplayTask::of(&replay)).expect("a task serializes");
    if let Err(e) = start.queue.send(vec![task]).await {
        tracing::error!(error = %e, "the replay's task could not be queued");
        let why = "the replay could not be queued; start it again";
        if let Err(e) = store.finish_replay_reading(&replay.key, now, Some(why)).await {
            tracing::error!(error = %e, "the replay could not be marked failed");
        }
        return Err(ApiError::unavailable(
            "the replay could not be queued now; retry shortly",
        ));
    }
    let mut response = json_response(StatusCode::ACCEPTED, &to_json(&replay));
    response.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_str(&href(&replay.key)).expect("keys are header-safe"),
    );
    Ok(response)
}

/// `GET …/{id}/replays`: the destination's newest replays, newest first.
pub async fn list<S: Store + ReplayStore>(
    store: &S,
    project: &str,
    environment: &str,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let (destination, replays) = tokio::join!(
        store.get_destination(project, environment, id),
        store.list_replays(project, environment, id)
    );
    destination?.ok_or_else(|| super::destinations::not_found(project, environment, id))?;
    let items: Vec<Value> = replays?.iter().map(to_json).collect();
    let key = ReplayKey {
        project: project.to_owned(),
        environment: environment.to_owned(),
        destination: id.to_owned(),
        id: String::new(),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "_links": {"self": link(&format!("{}/replays", destination_href(&key)))},
            "items": items,
        }),
    ))
}

/// `GET …/{id}/replays/{replayId}`.
pub async fn get<S: ReplayStore>(store: &S, key: &ReplayKey) -> Result<ApiResponse, ApiError> {
    let replay = store.get_replay(key).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no replay {:?} of destination {:?} in project {:?}, environment {:?}: list them at …/replays",
            key.id, key.destination, key.project, key.environment
        ))
    })?;
    Ok(json_response(StatusCode::OK, &to_json(&replay)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_age() {
        let (a, b) = (new_id(999), new_id(1_000));
        assert!(a < b, "{a} {b}");
        assert!(crate::api::routes::is_valid_id(&a), "{a}");
    }
}
