//! Serialized messages waiting to be sent, one outbox per destination of the
//! invocation, each a single buffer of messages back to back.

use crate::destination::{Destination, EnvironmentConfig};
use crate::segment::batch;
use crate::timestamp::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a destination's outbox is found: the environment's number in this invocation
/// and the destination's index in that environment's config.
pub type DestinationSlot = (usize, usize);

#[derive(Default)]
pub struct Outboxes {
    pub boxes: Vec<Outbox>,
    by_slot: HashMap<DestinationSlot, usize>,
}

pub struct Outbox {
    config: Arc<EnvironmentConfig>,
    index: usize,
    buf: Vec<u8>,
    pub messages: Vec<OutboxMessage>,
}

/// One message: its bytes in the outbox's buffer and the event it came from.
#[derive(Clone, Copy)]
pub struct OutboxMessage {
    start: u32,
    len: u32,
    pub record: u32,
    pub event: u32,
}

impl Outboxes {
    /// The destination's outbox, made on first use, with its number.
    pub fn for_destination(
        &mut self,
        slot: DestinationSlot,
        config: &Arc<EnvironmentConfig>,
    ) -> (usize, &mut Outbox) {
        let boxes = &mut self.boxes;
        let i = *self.by_slot.entry(slot).or_insert_with(|| {
            boxes.push(Outbox {
                config: config.clone(),
                index: slot.1,
                buf: Vec::new(),
                messages: Vec::new(),
            });
            boxes.len() - 1
        });
        (i, &mut self.boxes[i])
    }
}

impl Outbox {
    pub fn destination(&self) -> &Destination {
        &self.config.destinations[self.index]
    }

    /// Writes one message with `write`; when it comes out over `limit` bytes it is
    /// not kept, and its size is the error.
    pub fn push(
        &mut self,
        record: usize,
        event: usize,
        limit: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), usize> {
        let start = self.buf.len();
        write(&mut self.buf);
        let len = self.buf.len() - start;
        if len > limit {
            self.buf.truncate(start);
            return Err(len);
        }
        self.messages.push(OutboxMessage {
            start: start as u32,
            len: len as u32,
            record: record as u32,
            event: event as u32,
        });
        Ok(())
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.messages.iter().map(|m| m.len as usize).collect()
    }

    fn message(&self, i: usize) -> &[u8] {
        let m = self.messages[i];
        &self.buf[m.start as usize..(m.start + m.len) as usize]
    }

    /// The `/v1/batch` body of the messages at `group`.
    pub fn body(&self, group: &[usize]) -> Vec<u8> {
        let bytes: usize = group.iter().map(|&m| self.messages[m].len as usize + 1).sum();
        batch::body(group.iter().map(|&m| self.message(m)), Timestamp::now(), bytes)
    }
}
