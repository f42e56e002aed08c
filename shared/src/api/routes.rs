//! Routing on the raw request path, so that the same code serves API Gateway (REST or
//! HTTP API, with or without a stage), function URLs and `cargo lambda watch`
//! (`/lambda-url/<function>/…`): everything before `/api/v2/` is ignored.

use crate::web::ApiError;
use percent_encoding::percent_decode_str;

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$`, the pattern of project, environment and flag keys.
pub fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A destination id: what this service issues (UUIDs) and what LaunchDarkly's look like.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

pub const ID_RULE: &str = "must be 1 to 64 letters, digits, '-' or '_' (the _id this API returned)";

pub const KEY_RULE: &str =
    "must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 256)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api/v2/destinations`
    Destinations,
    /// `/api/v2/destinations/{projectKey}/{environmentKey}`
    EnvironmentDestinations { project: String, environment: String },
    /// `/api/v2/destinations/{projectKey}/{environmentKey}/{id}`
    Destination {
        project: String,
        environment: String,
        id: String,
    },
    /// `/api/v2/destinations/{projectKey}/{environmentKey}/{id}/test`
    TestEvent {
        project: String,
        environment: String,
        id: String,
    },
    /// `/api/v2/destinations/{projectKey}/{environmentKey}/{id}/replays`
    Replays {
        project: String,
        environment: String,
        id: String,
    },
    /// `/api/v2/destinations/{projectKey}/{environmentKey}/{id}/replays/{replayId}`
    Replay {
        project: String,
        environment: String,
        id: String,
        replay: String,
    },
    /// `/api/v2/data-export/{projectKey}/{environmentKey}`
    Settings { project: String, environment: String },
    /// `/api/v2/event-sources/{projectKey}/{environmentKey}`
    EventSources { project: String, environment: String },
    /// `/api/v2/openapi.json`: this API's description, public.
    OpenApi,
}

impl Route {
    /// The methods the route answers, for `Allow`.
    pub fn allow(&self) -> &'static str {
        match self {
            Self::Destinations => "GET",
            Self::EnvironmentDestinations { .. } => "GET, POST",
            Self::Destination { .. } => "GET, PATCH, DELETE",
            Self::TestEvent { .. } => "POST",
            Self::Replays { .. } => "GET, POST",
            Self::Replay { .. } => "GET",
            Self::Settings { .. } => "GET, PATCH",
            Self::EventSources { .. } => "GET, PUT",
            Self::OpenApi => "GET",
        }
    }
}

/// The route of a raw (percent-encoded) path; `Ok(None)` when no route matches.
pub fn route(raw_path: &str) -> Result<Option<Route>, ApiError> {
    let Some(start) = raw_path.find("/api/v2/") else {
        return Ok(None);
    };
    let segments: Vec<String> = raw_path[start + "/api/v2/".len()..]
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect::<Result<_, _>>()?;
    let strs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let keys = |project: &str, environment: &str| -> Result<(String, String), ApiError> {
        for (name, key) in [("projectKey", project), ("environmentKey", environment)] {
            if !is_valid_key(key) {
                let shown: String = key.chars().take(80).collect();
                return Err(ApiError::invalid(format!("{name} {shown:?} {KEY_RULE}")));
            }
        }
        Ok((project.to_owned(), environment.to_owned()))
    };
    let id = |id: &str| -> Result<String, ApiError> {
        if is_valid_id(id) {
            return Ok(id.to_owned());
        }
        let shown: String = id.chars().take(80).collect();
        Err(ApiError::invalid(format!("destination id {shown:?} {ID_RULE}")))
    };
    Ok(Some(match strs.as_slice() {
        ["destinations"] => Route::Destinations,
        ["openapi.json"] => Route::OpenApi,
        ["destinations", p, e] => {
            let (project, environment) = keys(p, e)?;
            Route::EnvironmentDestinations { project, environment }
        }
        ["destinations", p, e, i] => {
            let (project, environment) = keys(p, e)?;
            Route::Destination {
                project,
                environment,
                id: id(i)?,
            }
        }
        ["destinations", p, e, i, "test"] => {
            let (project, environment) = keys(p, e)?;
            Route::TestEvent {
                project,
                environment,
                id: id(i)?,
            }
        }
        ["destinations", p, e, i, "replays"] => {
            let (project, environment) = keys(p, e)?;
            Route::Replays {
                project,
                environment,
                id: id(i)?,
            }
        }
        ["destinations", p, e, i, "replays", r] => {
            let (project, environment) = keys(p, e)?;
            if !is_valid_id(r) {
                let shown: String = r.chars().take(80).collect();
                return Err(ApiError::invalid(format!(
                    "replay id {shown:?} must be 1 to 64 letters, digits, '-' or '_' (the _id this API returned)"
                )));
            }
            Route::Replay {
                project,
                environment,
                id: id(i)?,
                replay: (*r).to_owned(),
            }
        }
        ["event-sources", p, e] => {
            let (project, environment) = keys(p, e)?;
            Route::EventSources { project, environment }
        }
        ["data-export", p, e] => {
            let (project, environment) = keys(p, e)?;
            Route::Settings { project, environment }
        }
        _ => return Ok(None),
    }))
}

fn decode(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid(format!("path segment {segment:?} is not percent-encoded UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_ids_are_checked_before_any_store_call() {
        let long = format!("/api/v2/destinations/p/e/{}", "a".repeat(1100));
        let err = route(&long).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(
            err.message.contains("destination id") && err.message.len() < 300,
            "{}",
            err.message
        );
        assert!(route("/api/v2/destinations/p/e/a%20b/test").is_err());
        assert!(
            route("/api/v2/destinations/p/e/0f8f6d3e-5c4b-4a29-9e1d-2b7c8a6f4e10")
                .unwrap()
                .is_some()
        );
    }

    fn dest(p: &str, e: &str, id: &str) -> Option<Route> {
        Some(Route::Destination {
            project: p.into(),
            environment: e.into(),
            id: id.into(),
        })
    }

    #[test]
    fn works_behind_any_prefix() {
        for prefix in ["", "/prod", "/lambda-url/destinations", "/v1/stage"] {
            assert_eq!(
                route(&format!("{prefix}/api/v2/destinations")).unwrap(),
                Some(Route::Destinations)
            );
            assert_eq!(
                route(&format!("{prefix}/api/v2/destinations/p/e/d1")).unwrap(),
                dest("p", "e", "d1")
            );
        }
    }

    #[test]
    fn collapses_double_and_trailing_slashes() {
        assert_eq!(
            route("//api/v2/destinations/p//e/d1/").unwrap(),
            dest("p", "e", "d1")
        );
    }

    #[test]
    fn decodes_segments() {
        assert_eq!(
            route("/api/v2/destinations/p/e/id%2D1").unwrap(),
            dest("p", "e", "id-1")
        );
    }

    #[test]
    fn every_route() {
        assert_eq!(
            route("/api/v2/destinations/p/e").unwrap(),
            Some(Route::EnvironmentDestinations {
                project: "p".into(),
                environment: "e".into()
            })
        );
        assert_eq!(
            route("/api/v2/destinations/p/e/d/test").unwrap(),
            Some(Route::TestEvent {
                project: "p".into(),
                environment: "e".into(),
                id: "d".into()
            })
        );
        assert_eq!(
            route("/api/v2/data-export/p/e").unwrap(),
            Some(Route::Settings {
                project: "p".into(),
                environment: "e".into()
            })
        );
        assert_eq!(
            route("/api/v2/destinations/p/e/d/replays").unwrap(),
            Some(Route::Replays {
                project: "p".into(),
                environment: "e".into(),
                id: "d".into()
            })
        );
        assert_eq!(
            route("/api/v2/destinations/p/e/d/replays/r-1").unwrap(),
            Some(Route::Replay {
                project: "p".into(),
                environment: "e".into(),
                id: "d".into(),
                replay: "r-1".into()
            })
        );
        assert!(route("/api/v2/destinations/p/e/d/replays/r%201").is_err());
        assert_eq!(route("/api/v2/flags").unwrap(), None);
        assert_eq!(route("/health").unwrap(), None);
    }

    #[test]
    fn keys_that_break_the_pattern_are_refused() {
        let err = route("/api/v2/destinations/my%20proj/e").unwrap_err();
        assert_eq!(err.code, "invalid_request");
        assert!(err.message.contains("projectKey \"my proj\""), "{}", err.message);
        assert!(route("/api/v2/data-export/p/-e").is_err());
        assert!(is_valid_key(&"a".repeat(256)) && !is_valid_key(&"a".repeat(257)));
    }
}
