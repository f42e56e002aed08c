//! Pages of the destination lists (README, "The API", "Pages"), the way LaunchDarkly's
//! list APIs page: `limit` (how many), and `_links.next` when there are more. Where the
//! next page starts is an opaque cursor, `after`, in that link's href: the keys of the
//! last destination listed, base64url-encoded. DynamoDB resumes a Scan or Query right
//! after it, so a page costs the same however deep it is (an `offset` would make page
//! *n* read every item before it). A cursor is only ever a starting point: decoded, its
//! keys are checked like a path's, so a changed one lists from elsewhere or is a 400.

use super::link;
use super::routes::{ID_RULE, KEY_RULE, is_valid_id, is_valid_key};
use crate::store::DestinationKey;
use crate::web::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Destinations per page when `limit` is not given (LaunchDarkly's lists default to 20).
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit`: the largest page possible stays under Lambda's 6 MB answer
/// (`tests::the_largest_possible_page_fits_in_a_lambda_answer`).
pub const MAX_LIMIT: usize = 50;
/// Longer than any cursor this API issues (three keys of at most 256 and an id of 64).
const MAX_CURSOR_LEN: usize = 1_200;

/// What a list request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<DestinationKey>,
    /// Whether the request named its `limit`, or a cursor: its self link says so.
    explicit: bool,
}

fn limit_rule() -> String {
    format!("limit must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
}

const AFTER_RULE: &str = "after must be the cursor of a _links.next href of this list, sent unchanged; leave it out for the first page";

/// The paging parameters of a query string. Other parameters are ignored, as
/// LaunchDarkly's API ignores what an endpoint does not take.
pub fn parse(query: Option<&str>) -> Result<PageRequest, ApiError> {
    let (mut limit, mut after, mut explicit) = (None, None, false);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match name.as_ref() {
            "limit" => &mut limit,
            "after" => &mut after,
            "offset" => {
                if value != "0" {
                    return Err(ApiError::invalid(format!(
                        "offset {:?}: this list pages with a cursor, not an offset: follow _links.next (its after parameter); offset may only be 0, the first page",
                        shown(&value)
                    )));
                }
                continue;
            }
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::invalid(format!("{name} is given more than once")));
        }
        explicit = true;
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid(format!("{}; got {:?}", limit_rule(), shown(&raw))))?,
    };
    let after = after.map(|raw| decode(&raw)).transpose()?;
    Ok(PageRequest {
        limit,
        after,
        explicit,
    })
}

fn shown(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// The cursor of a page that resumes after `key`.
pub fn encode(key: &DestinationKey) -> String {
    let keys = json!([key.project, key.environment, key.id]);
    URL_SAFE_NO_PAD.encode(keys.to_string())
}

fn decode(raw: &str) -> Result<DestinationKey, ApiError> {
    let bad = || ApiError::invalid(AFTER_RULE);
    if raw.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let (project, environment, id): (String, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if !is_valid_key(&project) || !is_valid_key(&environment) {
        return Err(ApiError::invalid(format!(
            "{AFTER_RULE} (its project or environment key {KEY_RULE})"
        )));
    }
    if !is_valid_id(&id) {
        return Err(ApiError::invalid(format!(
            "{AFTER_RULE} (its destination id {ID_RULE})"
        )));
    }
    Ok(DestinationKey {
        project,
        environment,
        id,
    })
}

impl PageRequest {
    /// The id to resume after in one environment's list; a cursor of another list is a 400.
    pub fn after_in(&self, project: &str, environment: &str) -> Result<Option<&str>, ApiError> {
        match &self.after {
            None => Ok(None),
            Some(k) if k.project == project && k.environment == environment => Ok(Some(&k.id)),
            Some(_) => Err(ApiError::invalid(format!(
                "{AFTER_RULE}: this cursor is of another list"
            ))),
        }
    }

    /// `_links` of the page of `path` this request asked for: `self`, and `next` when
    /// there are more.
    pub fn links(&self, path: &str, next: Option<&DestinationKey>) -> Value {
        let href = |after: Option<&DestinationKey>| match after {
            Some(k) => format!("{path}?limit={}&after={}", self.limit, encode(k)),
            None => format!("{path}?limit={}", self.limit),
        };
        let own = if self.explicit {
            href(self.after.as_ref())
        } else {
            path.to_owned()
        };
        let mut links = json!({"self": link(&own)});
        if let Some(next) = next {
            links["next"] = link(&href(Some(next)));
        }
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DestinationKey {
        DestinationKey {
            project: "p".into(),
            environment: "e".into(),
            id: "0f8f6d3e-5c4b-4a29-9e1d-2b7c8a6f4e10".into(),
        }
    }

    #[test]
    fn a_cursor_reads_back_as_the_key_it_was_made_of() {
        let cursor = encode(&key());
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let request = parse(Some(&format!("limit=5&after={cursor}"))).unwrap();
        assert_eq!((request.limit, request.after), (5, Some(key())));
    }

    #[test]
    fn no_parameters_ask_for_the_default_page() {
        let request = parse(None).unwrap();
        assert_eq!((request.limit, &request.after), (DEFAULT_LIMIT, &None));
        assert_eq!(
            request.links("/api/v2/destinations", None),
            json!({"self": link("/api/v2/destinations")})
        );
        assert_eq!(parse(Some("offset=0&other=1")).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_limits_cursors_and_offsets_are_400s_saying_what_to_send() {
        for limit in ["0", "-1", "51", "abc", "1.5", "", "99999999999999999999999"] {
            let e = parse(Some(&format!("limit={limit}"))).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert!(e.message.contains("from 1 to 50"), "{}", e.message);
        }
        let forged = |keys: Value| URL_SAFE_NO_PAD.encode(keys.to_string());
        for after in [
            "not base64!".to_owned(),
            URL_SAFE_NO_PAD.encode("not json"),
            forged(json!(["p", "e"])),
            forged(json!(["p q", "e", "id"])),
            forged(json!(["p", "e", "a/b"])),
            "A".repeat(5000),
        ] {
            let e = parse(Some(&format!("after={after}"))).unwrap_err();
            assert!(e.message.contains("_links.next"), "{}", e.message);
        }
        assert!(parse(Some("offset=20")).unwrap_err().message.contains("cursor"));
        assert!(
            parse(Some("limit=1&limit=2"))
                .unwrap_err()
                .message
                .contains("more than once")
        );
        let request = parse(Some(&format!("after={}", encode(&key())))).unwrap();
        assert!(request.after_in("p", "other").is_err());
        assert_eq!(request.after_in("p", "e").unwrap(), Some(key().id.as_str()));
    }
}
