//! Event sources of an environment (README, "Event sources"): the SDK keys, mobile keys
//! and client-side IDs whose SDK events `ingest` takes for it. Keys are secrets: stored
//! as SHA-256 digests, shown only as the first 8 hex digits of their digest. A client-side
//! ID may list the origins whose pages may post its events (`allowedOrigins`).

use super::link;
use super::patch::{self, WriteAttemptError};
use crate::sources::{AllowedOrigins, ClientSideId, EventSources, Origin, key_digest};
use crate::store::SourceStore;
use crate::web::{ApiError, ApiResponse, json_response};
use http::StatusCode;
use serde_json::{Map, Value, json};

/// Credentials of each kind an environment may have: enough for rotations with a grace
/// period, and a transaction of at most 100 items.
pub const MAX_PER_KIND: usize = 10;

fn href(project: &str, environment: &str) -> String {
    format!("/api/v2/event-sources/{project}/{environment}")
}

pub fn to_json(project: &str, environment: &str, s: &EventSources) -> Value {
    let shown = |digests: &[String]| -> Vec<Value> {
        // Read from the table, so never sliced blindly: a short or odd digest shows whole.
        digests
            .iter()
            .map(|d| json!({"sha256Prefix": d.chars().take(8).collect::<String>()}))
            .collect()
    };
    json!({
        "sdkKeys": shown(&s.sdk_keys),
        "mobileKeys": shown(&s.mobile_keys),
        "clientSideIds": s.client_side_ids,
        "version": s.version,
        "_links": {"self": link(&href(project, environment))},
    })
}

pub async fn get(
    store: &impl SourceStore,
    project: &str,
    environment: &str,
) -> Result<ApiResponse, ApiError> {
    let sources = store.get_sources(project, environment).await?;
    Ok(json_response(
        StatusCode::OK,
        &to_json(project, environment, &sources),
    ))
}

/// Replaces the environment's sources. A key is sent as itself, or, to keep one already
/// registered without sending it again, as `{"sha256": "<its digest>"}`.
pub async fn put(
    store: &impl SourceStore,
    project: &str,
    environment: &str,
    body: &Value,
) -> Result<ApiResponse, ApiError> {
    let written = patch::retry_lost_races("event sources", || async {
        let current = store.get_sources(project, environment).await?;
        let mut next = validate(body, &current)?;
        next.version = current.version + 1;
        patch::written(
            store.put_sources(project, environment, &next, &current).await,
            next,
        )
    })
    .await?;
    tracing::info!(
        project,
        environment,
        version = written.version,
        "event sources replaced"
    );
    Ok(json_response(
        StatusCode::OK,
        &to_json(project, environment, &written),
    ))
}

fn validate(body: &Value, current: &EventSources) -> Result<EventSources, WriteAttemptError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("event sources must be a JSON object: {\"sdkKeys\": [...], \"mobileKeys\": [...], \"clientSideIds\": [\"<id>\" or {\"id\": \"<id>\", \"allowedOrigins\": [...]}]}"))?;
    for name in obj.keys() {
        if !matches!(name.as_str(), "sdkKeys" | "mobileKeys" | "clientSideIds") && !name.starts_with('_') {
            return Err(ApiError::invalid(format!(
                "unknown field {name:?}; event sources have sdkKeys, mobileKeys and clientSideIds"
            ))
            .into());
        }
    }
    Ok(EventSources {
        sdk_keys: keys(obj, "sdkKeys", &current.sdk_keys)?,
        mobile_keys: keys(obj, "mobileKeys", &current.mobile_keys)?,
        client_side_ids: client_side_ids(obj)?,
        version: current.version,
    })
}

fn list<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a [Value], ApiError> {
    let items = match obj.get(field) {
        None | Some(Value::Null) => return Ok(&[]),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::invalid(format!("{field} must be an array"))),
    };
    if items.len() > MAX_PER_KIND {
        return Err(ApiError::invalid(format!(
            "{field} has {} entries; an environment may have at most {MAX_PER_KIND}",
            items.len()
        )));
    }
    Ok(items)
}

/// Digests of the keys sent: each a key, or `{"sha256": …}` naming one already registered.
fn keys(obj: &Map<String, Value>, field: &str, registered: &[String]) -> Result<Vec<String>, ApiError> {
    let mut digests = Vec::new();
    for (i, item) in list(obj, field)?.iter().enumerate() {
        let digest = match item {
            Value::String(k) if is_credential(k) => key_digest(k),
            Value::String(_) => {
                return Err(ApiError::invalid(format!(
                    "{field}[{i}] is not a key: 8 to 200 printable ASCII characters without spaces"
                )));
            }
            Value::Object(o) => match o.get("sha256").and_then(Value::as_str) {
                Some(d) if registered.iter().any(|r| r == d) => d.to_owned(),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{field}[{i}] names no key registered for this environment: send {{\"sha256\": \"<the digest>\"}} of a registered key, or the key itself"
                    )));
                }
            },
            _ => {
                return Err(ApiError::invalid(format!(
                    "{field}[{i}] must be a key (a string)"
                )));
            }
        };
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    Ok(digests)
}

/// Client-side IDs, each as itself (any origin) or `{"id", "allowedOrigins"}`.
fn client_side_ids(obj: &Map<String, Value>) -> Result<Vec<ClientSideId>, ApiError> {
    let mut ids: Vec<ClientSideId> = Vec::new();
    for (i, item) in list(obj, "clientSideIds")?.iter().enumerate() {
        let field = format!("clientSideIds[{i}]");
        let entry = match item {
            Value::String(id) => ClientSideId::any_origin(client_side_id(&field, id)?),
            Value::Object(o) => {
                if let Some(name) = o.keys().find(|k| !matches!(k.as_str(), "id" | "allowedOrigins")) {
                    return Err(ApiError::invalid(format!(
                        "{field} has unknown field {name:?}; a client-side ID is \"<id>\" or {{\"id\": \"<id>\", \"allowedOrigins\": [\"https://…\"]}}"
                    )));
                }
                let id = o.get("id").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{field} has no \"id\": send {{\"id\": \"<client-side ID>\", \"allowedOrigins\": [\"https://…\"]}}"
                    ))
                })?;
                ClientSideId {
                    id: client_side_id(&field, id)?,
                    allowed_origins: allowed_origins(&field, o.get("allowedOrigins"))?,
                }
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "{field} must be a client-side ID (a string) or {{\"id\", \"allowedOrigins\"}}"
                )));
            }
        };
        match ids.iter().find(|known| known.id == entry.id) {
            None => ids.push(entry),
            Some(known) if *known == entry => {}
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "{field} repeats the client-side ID {:?} with other allowed origins: list each client-side ID once",
                    entry.id
                )));
            }
        }
    }
    Ok(ids)
}

fn client_side_id(field: &str, id: &str) -> Result<String, ApiError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(id.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} is not a client-side ID: 1 to 64 letters, digits or '-'"
        )))
    }
}

/// The origins listed (none, or an empty list: any origin), normalised.
fn allowed_origins(field: &str, value: Option<&Value>) -> Result<AllowedOrigins, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(AllowedOrigins::default()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{field}.allowedOrigins must be an array of origins, for example [\"https://shop.example\"]"
            )));
        }
    };
    if items.len() > AllowedOrigins::MAX {
        return Err(ApiError::invalid(format!(
            "{field}.allowedOrigins has {} entries; a client-side ID may allow at most {} origins",
            items.len(),
            AllowedOrigins::MAX
        )));
    }
    let mut origins = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let text = item.as_str().ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}.allowedOrigins[{j}] must be an origin (a string): scheme://host[:port], for example https://shop.example"
            ))
        })?;
        let origin =
            Origin::parse(text).map_err(|e| ApiError::invalid(format!("{field}.allowedOrigins[{j}] {e}")))?;
        origins.push(origin);
    }
    Ok(AllowedOrigins::new(origins))
}

fn is_credential(key: &str) -> bool {
    (8..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_digested_and_only_a_digest_prefix_is_shown() {
        let s = validate(
            &json!({"sdkKeys": ["sdk-0123456789"], "clientSideIds": ["abc-123"]}),
            &EventSources::default(),
        )
        .unwrap();
        assert_eq!(s.sdk_keys, [key_digest("sdk-0123456789")]);
        let shown = to_json("p", "e", &s).to_string();
        assert!(!shown.contains("sdk-0123456789"), "{shown}");
        assert!(shown.contains(&key_digest("sdk-0123456789")[..8]));
    }

    #[test]
    fn a_registered_key_is_kept_by_its_digest_and_an_unknown_digest_is_refused() {
        let current = EventSources {
            sdk_keys: vec![key_digest("sdk-old-key-1")],
            ..EventSources::default()
        };
        let kept = validate(
            &json!({"sdkKeys": [{"sha256": key_digest("sdk-old-key-1")}, "sdk-new-key-2"]}),
            &current,
        )
        .unwrap();
        assert_eq!(
            kept.sdk_keys,
            [key_digest("sdk-old-key-1"), key_digest("sdk-new-key-2")]
        );
        let err = validate(
            &json!({"sdkKeys": [{"sha256": key_digest("never-registered")}]}),
            &current,
        );
        assert!(
            matches!(err, Err(WriteAttemptError::Api(e)) if e.message.contains("names no key registered"))
        );
    }

    #[test]
    fn bad_input_says_what_to_fix() {
        let message = |body: Value| match validate(&body, &EventSources::default()) {
            Err(WriteAttemptError::Api(e)) => e.message,
            _ => panic!("accepted {body}"),
        };
        assert!(message(json!({"sdkKeys": ["short"]})).contains("sdkKeys[0]"));
        assert!(message(json!({"sdkKeys": "sdk-0123456789"})).contains("must be an array"));
        assert!(message(json!({"clientSideIds": ["a b"]})).contains("clientSideIds[0]"));
        assert!(message(json!({"other": []})).contains("unknown field"));
        let eleven: Vec<String> = (0..11).map(|i| format!("sdk-key-{i:04}")).collect();
        assert!(message(json!({"mobileKeys": eleven})).contains("at most 10"));
    }

    #[test]
    fn a_client_side_id_may_list_its_allowed_origins_and_reads_back_as_sent() {
        let body = json!({"clientSideIds": [
            "any-origin-id",
            {"id": "shop-id", "allowedOrigins": ["HTTPS://Shop.Example:443", "http://localhost:3000"]},
            {"id": "empty-list-id", "allowedOrigins": []},
        ]});
        let s = validate(&body, &EventSources::default()).unwrap();
        assert_eq!(s.client_side_ids[0], ClientSideId::any_origin("any-origin-id"));
        let shop = &s.client_side_ids[1];
        let listed: Vec<&str> = shop
            .allowed_origins
            .origins()
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(
            listed,
            ["https://shop.example", "http://localhost:3000"],
            "normalised"
        );
        assert!(
            s.client_side_ids[2].allowed_origins.is_any(),
            "an empty list: any origin"
        );
        let shown = to_json("p", "e", &s);
        assert_eq!(
            shown["clientSideIds"],
            json!([
                "any-origin-id",
                {"id": "shop-id", "allowedOrigins": ["https://shop.example", "http://localhost:3000"]},
                "empty-list-id",
            ])
        );
        // What GET shows is a valid PUT of the same sources.
        let again = validate(&json!({"clientSideIds": shown["clientSideIds"]}), &s).unwrap();
        assert_eq!(again.client_side_ids, s.client_side_ids);
    }

    #[test]
    fn bad_allowed_origins_say_which_and_what_to_fix() {
        let message = |ids: Value| match validate(&json!({"clientSideIds": ids}), &EventSources::default()) {
            Err(WriteAttemptError::Api(e)) => e.message,
            _ => panic!("accepted {ids}"),
        };
        let m = message(
            json!(["ok-id", {"id": "shop", "allowedOrigins": ["https://a.example", "https://shop.example/"]}]),
        );
        assert!(
            m.contains("clientSideIds[1].allowedOrigins[1]") && m.contains("path"),
            "{m}"
        );
        let m = message(json!([{"id": "shop", "allowedOrigins": ["ftp://shop.example"]}]));
        assert!(
            m.contains("clientSideIds[0].allowedOrigins[0]") && m.contains("http or https"),
            "{m}"
        );
        let m = message(json!([{"id": "shop", "allowedOrigins": [42]}]));
        assert!(
            m.contains("clientSideIds[0].allowedOrigins[0]") && m.contains("scheme://host"),
            "{m}"
        );
        let m = message(json!([{"id": "shop", "allowedOrigins": "https://shop.example"}]));
        assert!(
            m.contains("clientSideIds[0].allowedOrigins must be an array"),
            "{m}"
        );
        let many: Vec<String> = (0..51).map(|i| format!("https://h{i}.example")).collect();
        let m = message(json!([{"id": "shop", "allowedOrigins": many}]));
        assert!(m.contains("at most 50"), "{m}");
        let m = message(json!([{"id": "a b", "allowedOrigins": []}]));
        assert!(m.contains("clientSideIds[0] is not a client-side ID"), "{m}");
        let m = message(json!([{"allowedOrigins": []}]));
        assert!(m.contains("clientSideIds[0]") && m.contains("\"id\""), "{m}");
        let m = message(json!([{"id": "shop", "origins": []}]));
        assert!(
            m.contains("clientSideIds[0]") && m.contains("unknown field \"origins\""),
            "{m}"
        );
        let m = message(json!([
            {"id": "shop", "allowedOrigins": ["https://a.example"]},
            {"id": "shop", "allowedOrigins": ["https://b.example"]},
        ]));
        assert!(m.contains("clientSideIds[1]") && m.contains("once"), "{m}");
    }

    #[test]
    fn the_openapi_description_has_these_limits_and_forms() {
        let openapi: Value = serde_json::from_str(crate::api::OPENAPI).unwrap();
        let schemas = &openapi["components"]["schemas"];
        let object = &schemas["ClientSideId"]["oneOf"][1]["properties"];
        assert_eq!(object["allowedOrigins"]["maxItems"], AllowedOrigins::MAX);
        assert_eq!(
            schemas["EventSourcesPut"]["properties"]["clientSideIds"]["maxItems"],
            MAX_PER_KIND
        );
        let examples = schemas["Origin"]["examples"].as_array().unwrap();
        assert!(
            examples
                .iter()
                .all(|e| Origin::parse(e.as_str().unwrap()).is_ok())
        );
    }

    #[test]
    fn a_short_or_odd_stored_digest_is_shown_not_a_panic() {
        let s = EventSources {
            sdk_keys: vec!["abc".into(), "éééééééééé".into()],
            ..EventSources::default()
        };
        let shown = to_json("p", "e", &s);
        assert_eq!(shown["sdkKeys"][0]["sha256Prefix"], "abc");
        assert_eq!(shown["sdkKeys"][1]["sha256Prefix"], "éééééééé");
    }
}
