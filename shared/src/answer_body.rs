//! Reading the body of an outbound call's answer (Segment's, a Segment-compatible
//! endpoint's, LaunchDarkly's events service's) up to a small cap: an answer is read to
//! its end so that the connection can serve the next request, but a body without end, or
//! a huge one, must cost neither the invocation's time nor its memory.

/// The most of an answer's body that is read: far more than any of these services says.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Up to `cap` bytes of the body. When there is more, the rest is left unread and the
/// connection is dropped rather than reused.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}
