//! Whether a browser's request may post a client-side ID's events: when the ID lists
//! `allowedOrigins`, only a request whose `Origin` is one of them (README, "Pointing your
//! SDKs here"). A request from another origin, or with none, is a 403 and queues nothing.

use crate::sources::AllowedOrigins;
use crate::web::{ApiError, ApiRequest, header};

/// How much of a refused `Origin` the message repeats.
const SHOWN_CHARS: usize = 100;

/// `Ok` when `request`'s origin may post, else the 403 that says how to allow it.
pub fn check(request: &ApiRequest, allowed: &AllowedOrigins) -> Result<(), ApiError> {
    let origin = header(request, http::header::ORIGIN);
    if allowed.admits(origin) {
        return Ok(());
    }
    let what = match origin {
        Some(o) => format!(
            "the origin {:?} is",
            o.chars().take(SHOWN_CHARS).collect::<String>()
        ),
        None => "a request without Origin is".to_owned(),
    };
    Err(ApiError::forbidden(format!(
        "{what} not allowed for this client-side ID: add the page's origin (scheme://host[:port]) to the ID's allowedOrigins with PUT /api/v2/event-sources/{{projectKey}}/{{environmentKey}}, or list none to allow any origin"
    )))
}
