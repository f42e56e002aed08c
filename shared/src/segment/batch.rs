//! Packing serialized messages into as few `/v1/batch` requests as Segment's limits
//! allow (README, "Limits").

use crate::timestamp::{self, Timestamp};

/// Segment's limit on one serialized message.
pub const MAX_MESSAGE_BYTES: usize = 32_000;
/// Segment's limit on one request body.
pub const MAX_BODY_BYTES: usize = 500_000;
/// Segment's limit on messages per batch request.
pub const MAX_BATCH_MESSAGES: usize = 2_500;

const BODY_START: &[u8] = b"{\"batch\":[";
const BODY_SENT_AT: &[u8] = b"],\"sentAt\":\"";
const BODY_END: &[u8] = b"\"}";
/// Bytes of a body around its messages and their separating commas.
pub const BODY_OVERHEAD: usize = BODY_START.len() + BODY_SENT_AT.len() + timestamp::LEN + BODY_END.len();

/// Groups messages of the given serialized sizes into requests; each group lists
/// indices into `sizes`. Every size must be at most [`MAX_MESSAGE_BYTES`].
///
/// First-fit decreasing: large messages are placed first and small ones fill the
/// gaps, so every request but the last few is filled to within a few bytes of the
/// limit. Segment orders events by `timestamp`, so the order inside a request does
/// not matter.
pub fn pack(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]));
    let mut requests: Vec<Request> = Vec::new();
    // Requests before `first_open` cannot take even the smallest message any more.
    let mut first_open = 0;
    let smallest = sizes.iter().copied().min().unwrap_or(0);
    for i in order {
        let size = sizes[i];
        debug_assert!(size <= MAX_MESSAGE_BYTES, "message over the limit reached pack");
        match requests[first_open..].iter_mut().find(|r| r.fits(size)) {
            Some(r) => r.push(i, size),
            None => {
                let mut r = Request::default();
                r.push(i, size);
                requests.push(r);
            }
        }
        while first_open < requests.len() && !requests[first_open].fits(smallest) {
            first_open += 1;
        }
    }
    requests.into_iter().map(|r| r.items).collect()
}

#[derive(Default)]
struct Request {
    items: Vec<usize>,
    body_bytes: usize,
}

impl Request {
    fn fits(&self, size: usize) -> bool {
        let comma = usize::from(!self.items.is_empty());
        self.items.len() < MAX_BATCH_MESSAGES
            && BODY_OVERHEAD + self.body_bytes + comma + size <= MAX_BODY_BYTES
    }

    fn push(&mut self, index: usize, size: usize) {
        self.body_bytes += size + usize::from(!self.items.is_empty());
        self.items.push(index);
    }
}

/// The fewest requests any packing could use for messages of these sizes: the bound
/// that the bytes and the count alone impose.
pub fn lower_bound(sizes: &[usize]) -> usize {
    if sizes.is_empty() {
        return 0;
    }
    let by_count = sizes.len().div_ceil(MAX_BATCH_MESSAGES);
    // A request of k messages carries at most MAX_BODY_BYTES - OVERHEAD - (k - 1) bytes of
    // them; charging every message one comma gives a bound that holds for any k.
    let bytes: usize = sizes.iter().map(|s| s + 1).sum();
    let by_bytes = bytes.div_ceil(MAX_BODY_BYTES - BODY_OVERHEAD + 1);
    by_count.max(by_bytes)
}

/// Writes the `/v1/batch` body `{"batch": [...], "sentAt": ...}` around the messages.
pub fn body<'m>(messages: impl Iterator<Item = &'m [u8]>, sent_at: Timestamp, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + BODY_OVERHEAD);
    out.extend_from_slice(BODY_START);
    for (i, m) in messages.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.extend_from_slice(BODY_SENT_AT);
    out.extend_from_slice(sent_at.as_str().as_bytes());
    out.extend_from_slice(BODY_END);
    out
}

/// Sets a body's `sentAt` to now, in place: a retried request must say when it was sent,
/// or Segment's clock-skew correction shifts its events by the retry delay.
pub fn refresh_sent_at(body: &mut [u8]) {
    if body.len() < BODY_OVERHEAD || !body.ends_with(BODY_END) {
        return;
    }
    let end = body.len() - BODY_END.len();
    let start = end - timestamp::LEN;
    if body[..start].ends_with(BODY_SENT_AT) {
        body[start..end].copy_from_slice(Timestamp::now().as_str().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_batch_envelope_and_overhead_is_exact() {
        let msgs: [&[u8]; 2] = [br#"{"a":1}"#, br#"{"b":2}"#];
        let ts = Timestamp::from_epoch_millis(0).unwrap();
        let b = body(msgs.into_iter(), ts, 0);
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"batch":[{"a":1},{"b":2}],"sentAt":"1970-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(b.len(), BODY_OVERHEAD + 7 + 1 + 7);
    }

    #[test]
    fn refreshing_sent_at_changes_only_the_timestamp() {
        let msgs: [&[u8]; 1] = [br#"{"a":1}"#];
        let mut b = body(msgs.into_iter(), Timestamp::from_epoch_millis(0).unwrap(), 0);
        refresh_sent_at(&mut b);
        let text = std::str::from_utf8(&b).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["batch"], serde_json::json!([{"a": 1}]));
        let sent_at = v["sentAt"].as_str().unwrap();
        assert!(
            sent_at.starts_with("20") && sent_at.ends_with('Z') && sent_at.len() == 24,
            "{sent_at}"
        );
    }

    #[test]
    fn fills_requests_to_the_byte_limit() {
        // Exactly enough bytes for one full body, then one more message.
        let per_body = MAX_BODY_BYTES - BODY_OVERHEAD;
        let n = 100;
        let size = (per_body - (n - 1)) / n;
        let mut sizes = vec![size; n];
        let used = size * n + (n - 1);
        sizes[0] += per_body - used;
        assert_eq!(pack(&sizes).len(), 1);
        sizes.push(1);
        assert_eq!(pack(&sizes).len(), 2);
    }

    #[test]
    fn never_more_than_2500_messages() {
        let groups = pack(&vec![10; 5001]);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [2500, 2500, 1]);
    }

    #[test]
    fn every_message_lands_in_exactly_one_request() {
        let sizes: Vec<usize> = (0..3000).map(|i| 100 + (i * 7919) % 31_000).collect();
        let mut seen: Vec<usize> = pack(&sizes).into_iter().flatten().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..3000).collect::<Vec<_>>());
    }

    #[test]
    fn lower_bound_counts_bytes_and_messages() {
        assert_eq!(lower_bound(&[]), 0);
        assert_eq!(lower_bound(&[1; 2501]), 2);
        assert_eq!(lower_bound(&[MAX_MESSAGE_BYTES; 16]), 2);
    }
}
