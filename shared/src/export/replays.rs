//! What a batch did for replays (CONTRACT §4.4): each envelope that carries `replay`
//! adds its outcome to that replay's counts, once, when its outcome is final. A record
//! that comes back (whole, or as a remainder) is counted at the receipt that settles it,
//! so no event is counted twice: delivered and skipped events when their record is done
//! with (it succeeded, or what is left of it was put back as a remainder), failed ones
//! only when they are bound for the dead-letter queue.

use super::ledger::{EventOutcome, Ledger};
use super::parse::Parsed;
use crate::replay::{ReplayCounts, ReplayKey};
use crate::requeue;
use aws_lambda_events::sqs::SqsEvent;

/// The counts to add, per replay.
pub fn tally(
    batch: &SqsEvent,
    ledger: &Ledger,
    parsed: &Parsed<'_>,
    max_receives: u32,
    replaced: &[bool],
) -> Vec<(ReplayKey, ReplayCounts)> {
    let failed: Vec<bool> = {
        let mut failed = vec![false; batch.records.len()];
        for (record, _) in ledger.failed_records() {
            failed[record] = true;
        }
        failed
    };
    let mut tallies: Vec<(ReplayKey, ReplayCounts)> = Vec::new();
    for event in &parsed.events {
        let envelope = &event.envelope;
        let (Some(replay), Some([destination])) =
            (envelope.replay.as_deref(), envelope.destinations.as_deref())
        else {
            continue;
        };
        let record = event.record;
        let r = &batch.records[record];
        let last = requeue::receives(r) >= max_receives || requeue::sqs_receive_count(r) >= max_receives;
        // Whether this receipt settles the record's events: it succeeded, it was replaced
        // by its remainder, or it is at its last receipt.
        let settled = !failed[record] || replaced[record] || last;
        if !settled {
            continue;
        }
        let outcome = ledger.outcome(event.event);
        // Found by its borrowed parts: a key is built once per replay, not per event.
        let same = |k: &ReplayKey| {
            k.id == replay
                && k.destination == **destination
                && k.project == envelope.project
                && k.environment == envelope.environment
        };
        let at = match tallies.iter().position(|(k, _)| same(k)) {
            Some(at) => at,
            None => {
                let key = ReplayKey {
                    project: envelope.project.to_string(),
                    environment: envelope.environment.to_string(),
                    destination: destination.to_string(),
                    id: replay.to_owned(),
                };
                tallies.push((key, ReplayCounts::default()));
                tallies.len() - 1
            }
        };
        let counts = &mut tallies[at].1;
        match outcome {
            EventOutcome::Delivered => counts.delivered += 1,
            EventOutcome::Skipped => counts.skipped += 1,
            // A failed event of a replaced record lives on in its remainder, unless that
            // went to the dead-letter queue.
            EventOutcome::Failed if last => counts.failed += 1,
            EventOutcome::Failed => {}
        }
    }
    tallies.retain(|(_, c)| !c.is_empty());
    tallies
}
