//! How messages are grouped into `SendMessageBatch` calls: at most ten, and at most SQS's
//! 256 KiB for the batch's messages (and their attributes) together. One helper for every
//! writer of the queues (`ingest`, the `redrive` tool).

use std::ops::Range;

/// Most messages in one `SendMessageBatch`.
pub const MAX_BATCH_MESSAGES: usize = 10;

/// The most a `SendMessageBatch` may carry in all (SQS's limit for the messages and their
/// attributes together), with room for the attributes' own encoding.
pub const MAX_BATCH_BYTES: usize = 256 * 1024 - 4 * 1024;

/// Groups messages of the given sizes into batches of at most [`MAX_BATCH_MESSAGES`] and
/// [`MAX_BATCH_BYTES`], in order; a message too big for any batch goes alone (and SQS
/// refuses it, as it would anyway).
pub fn batches(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages_and_the_byte_limit() {
        assert_eq!(batches(&[1; 25]), [0..10, 10..20, 20..25]);
        let kb100 = 100 * 1024;
        assert_eq!(batches(&[kb100; 5]), [0..2, 2..4, 4..5]);
        // Too big for any batch: alone.
        assert_eq!(batches(&[10, 300 * 1024, 10]), [0..1, 1..2, 2..3]);
        assert_eq!(batches(&[200_000; 3]), [0..1, 1..2, 2..3]);
        assert!(batches(&[]).is_empty());
    }
}
