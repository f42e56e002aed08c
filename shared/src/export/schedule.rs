//! Sending the outboxes fairly (README, "How `export` handles a batch", step 5). At most
//! [`MAX_CONCURRENT_REQUESTS`] requests are in flight, whatever the number of destinations:
//! so the connections (and descriptors) and the request bodies in memory stay bounded.
//! Each destination has its own lane, with a share of the slots (all of them split evenly,
//! at least one), and the lanes take the free slots round-robin: with up to that many
//! destinations, every destination's first request starts at once; with more, each gets
//! its turn before any gets another, and a slow or dead destination never holds more than
//! its share. A destination that fails in a way that says it is down gets no more requests
//! this invocation: its remaining records fail at once, to come back on the queue's
//! schedule. A request Segment refuses as invalid (400, 413) is split in halves until the
//! offending messages are alone.

use super::ledger::{Cause, Ledger};
use super::outbox::Outbox;
use crate::deadline::Deadline;
use crate::segment::batch;
use crate::segment::{Accepted, DeliveryError, SegmentApi};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::VecDeque;

/// Requests in flight at once across all destinations, however many there are.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;

/// One destination's work: the requests not yet started, and how it is doing.
struct Lane<'o> {
    /// The outbox's number, which the ledger knows the destination by.
    number: usize,
    outbox: &'o Outbox,
    waiting: VecDeque<Vec<usize>>,
    in_flight: usize,
    /// Why the destination is taken for down, once it is.
    down: Option<String>,
    /// Messages refused alone so far: past [`MAX_POISON`], the destination refuses
    /// everything, and splitting further would only multiply requests.
    refused_alone: Vec<usize>,
    /// What became of its messages, for its delivery status.
    delivered: u64,
    failed: u64,
    failure: Option<String>,
}

impl Lane<'_> {
    /// Fails messages that will come back on the queue's schedule.
    fn fail(&mut self, group: &[usize], ledger: &mut Ledger) {
        fail_group(self.number, self.outbox, group, ledger);
        self.failed += group.len() as u64;
    }
}

/// What one destination's messages came to in one invocation.
pub struct LaneOutcome<'o> {
    pub outbox: &'o Outbox,
    pub delivered: u64,
    pub failed: u64,
    pub failure: Option<String>,
}

/// Single messages a destination may refuse in one invocation before it counts as
/// refusing everything (a proxy or endpoint answering 400 to all), not as poison.
pub const MAX_POISON: usize = 8;

/// What came back from one request.
struct Sent {
    lane: usize,
    group: Vec<usize>,
    bytes: usize,
    result: Result<Accepted, DeliveryError>,
}

/// Sends every outbox's messages, packed into requests, and records what failed; says
/// what became of each destination's messages.
pub async fn deliver<'o, Se: SegmentApi>(
    segment: &Se,
    outboxes: &'o [Outbox],
    ledger: &mut Ledger,
    deadline: Deadline,
) -> Vec<LaneOutcome<'o>> {
    let mut lanes: Vec<Lane> = outboxes
        .iter()
        .enumerate()
        .map(|(number, outbox)| Lane {
            number,
            outbox,
            waiting: batch::pack(&outbox.sizes()).into(),
            in_flight: 0,
            down: None,
            refused_alone: Vec::new(),
            delivered: 0,
            failed: 0,
            failure: None,
        })
        .collect();
    let total_slots = MAX_CONCURRENT_REQUESTS;
    let per_lane = (total_slots / lanes.len().max(1)).max(1);
    let mut running = FuturesUnordered::new();
    let mut next_lane = 0;
    loop {
        // Round-robin: one request per lane per turn, while slots are free.
        let mut idle_turns = 0;
        let count = lanes.len();
        while running.len() < total_slots && idle_turns < count {
            let index = next_lane;
            next_lane = (next_lane + 1) % count;
            let lane = &mut lanes[index];
            if lane.down.is_some() || lane.in_flight >= per_lane {
                idle_turns += 1;
                continue;
            }
            let Some(group) = lane.waiting.pop_front() else {
                idle_turns += 1;
                continue;
            };
            idle_turns = 0;
            lane.in_flight += 1;
            running.push(send(segment, index, lane.outbox, group, deadline));
        }
        let Some(sent) = running.next().await else {
            break;
        };
        settle(&mut lanes[sent.lane], sent, ledger);
    }
    // Whatever was never sent fails, to come back: nothing is dropped silently.
    for lane in &mut lanes {
        let left: Vec<Vec<usize>> = lane.waiting.drain(..).collect();
        for group in left {
            lane.fail(&group, ledger);
            lane.failure
                .get_or_insert_with(|| "not sent before the invocation ended".into());
        }
    }
    lanes
        .into_iter()
        .map(|lane| LaneOutcome {
            outbox: lane.outbox,
            delivered: lane.delivered,
            failed: lane.failed,
            failure: lane.failure,
        })
        .collect()
}

async fn send<Se: SegmentApi>(
    segment: &Se,
    lane: usize,
    outbox: &Outbox,
    group: Vec<usize>,
    deadline: Deadline,
) -> Sent {
    let body = outbox.body(&group);
    let bytes = body.len();
    let result = segment
        .send_batch(outbox.destination(), Bytes::from(body), deadline)
        .await;
    Sent {
        lane,
        group,
        bytes,
        result,
    }
}

/// Books one answer: counts, failed events, a split, or a destination taken for down.
fn settle(lane: &mut Lane, sent: Sent, ledger: &mut Ledger) {
    lane.in_flight -= 1;
    ledger.stats.segment_bytes += sent.bytes as u64;
    let error = match sent.result {
        Ok(delivery) => {
            ledger.stats.segment_requests += u64::from(delivery.attempts);
            lane.delivered += sent.group.len() as u64;
            return;
        }
        Err(e) => e,
    };
    ledger.stats.segment_requests += u64::from(error.attempts());
    let destination = &lane.outbox.destination().id;
    // Once a destination is down, nothing of it is split or sent again this invocation.
    let poison_left = lane.refused_alone.len() < MAX_POISON && lane.down.is_none();
    if error.is_invalid_request() && sent.group.len() > 1 && poison_left {
        // Somewhere in here is a message Segment refuses: split until it is alone.
        let mut first = sent.group;
        let second = first.split_off(first.len() / 2);
        tracing::info!(destination = %destination, messages = first.len() + second.len(), error = %error, "splitting a refused request");
        lane.waiting.push_front(second);
        lane.waiting.push_front(first);
        return;
    }
    if error.is_invalid_request() && poison_left {
        // Alone and still refused: this message is the poison.
        lane.refused_alone.push(sent.group[0]);
        let m = &lane.outbox.messages[sent.group[0]];
        tracing::warn!(destination = %destination, record = m.record, error = %error, "Segment refused a message as invalid");
        ledger.miss(m.record as usize, m.event as usize, lane.number, Cause::Bad);
        lane.failed += 1;
        lane.failure = Some(error.reason());
        return;
    }
    tracing::warn!(destination = %destination, messages = sent.group.len(), error = %error, "delivery to Segment failed");
    // The reason of a failure only: a refusal that ends in a split is not one.
    lane.failure = Some(error.reason());
    lane.fail(&sent.group, ledger);
    let refuses_everything = error.is_invalid_request();
    if refuses_everything {
        // Not poison after all: the messages refused alone retry like the rest.
        let refused = std::mem::take(&mut lane.refused_alone);
        fail_group(lane.number, lane.outbox, &refused, ledger);
    }
    if (error.means_down() || refuses_everything) && lane.down.is_none() {
        let left: usize = lane.waiting.iter().map(Vec::len).sum();
        tracing::warn!(destination = %destination, messages_not_sent = left, error = %error, "destination is down: no more requests to it this invocation");
        let left: Vec<Vec<usize>> = lane.waiting.drain(..).collect();
        for group in left {
            lane.fail(&group, ledger);
        }
        lane.down = Some(error.to_string());
    }
}

fn fail_group(number: usize, outbox: &Outbox, group: &[usize], ledger: &mut Ledger) {
    for &m in group {
        let message = &outbox.messages[m];
        ledger.miss(
            message.record as usize,
            message.event as usize,
            number,
            Cause::Transient,
        );
    }
}
