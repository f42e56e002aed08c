//! Property tests of request packing: no request ever breaks one of Segment's limits,
//! every message is sent exactly once, and few requests are used.

use proptest::prelude::*;
use shared::segment::batch::{
    MAX_BATCH_MESSAGES, MAX_BODY_BYTES, MAX_MESSAGE_BYTES, body, lower_bound, pack,
};
use shared::timestamp::Timestamp;

/// Sizes of serialized messages as an export sees them: mostly a few hundred bytes,
/// some large custom-data events, now and then one right at the limit.
fn realistic_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        85 => 150usize..2_000,
        12 => 2_000usize..20_000,
        3 => 20_000usize..=MAX_MESSAGE_BYTES,
    ]
}

/// Builds the real bodies of a packing and checks every limit on them.
fn check_limits(sizes: &[usize], groups: &[Vec<usize>]) {
    let messages: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![b'x'; n]).collect();
    let mut seen = vec![0u32; sizes.len()];
    for group in groups {
        assert!(!group.is_empty(), "an empty request");
        assert!(
            group.len() <= MAX_BATCH_MESSAGES,
            "{} messages in one request",
            group.len()
        );
        let b = body(group.iter().map(|&i| messages[i].as_slice()), Timestamp::now(), 0);
        assert!(b.len() <= MAX_BODY_BYTES, "a body of {} bytes", b.len());
        for &i in group {
            seen[i] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "every message exactly once");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn realistic_batches_stay_within_limits_and_within_one_request_of_the_minimum(
        sizes in prop::collection::vec(realistic_size(), 0..8_000)
    ) {
        let groups = pack(&sizes);
        check_limits(&sizes, &groups);
        prop_assert!(
            groups.len() <= lower_bound(&sizes) + 1,
            "{} requests where {} would do", groups.len(), lower_bound(&sizes)
        );
    }

    #[test]
    fn tiny_messages_are_bound_by_the_count_limit(n in 0usize..12_000, size in 2usize..40) {
        let sizes = vec![size; n];
        let groups = pack(&sizes);
        check_limits(&sizes, &groups);
        prop_assert_eq!(groups.len(), lower_bound(&sizes));
    }

    /// Any sizes at all (uniformly large ones included, where no packing reaches the
    /// byte bound): limits hold, and no request could have taken a message that went
    /// to a later one, so no two requests could be merged.
    #[test]
    fn any_batch_stays_within_limits_and_no_two_requests_could_be_merged(
        sizes in prop::collection::vec(1usize..=MAX_MESSAGE_BYTES, 0..600)
    ) {
        let groups = pack(&sizes);
        check_limits(&sizes, &groups);
        let bytes = |g: &Vec<usize>| g.iter().map(|&i| sizes[i] + 1).sum::<usize>();
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                let merged = a.len() + b.len() <= MAX_BATCH_MESSAGES
                    && bytes(a) + bytes(b) - 1 + shared::segment::batch::BODY_OVERHEAD <= MAX_BODY_BYTES;
                prop_assert!(!merged, "two requests would fit in one");
            }
        }
    }
}
