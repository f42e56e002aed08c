//! Why a destination did not get an event (README, "Why an event was not exported"):
//! counted per destination in the invocation, then kept in its delivery status by hour.

use super::outbox::DestinationSlot;
use crate::delivery_status::Skipped;
use std::collections::HashMap;

/// The reason one event was not sent to one destination.
pub enum Reason<'a> {
    /// A `feature` event whose flag is not enabled for Data Export (its key).
    FlagNotEnabled(&'a str),
    /// A kind that is never exported.
    KindNotExported,
    /// The destination is off.
    DestinationOff,
}

/// The skips of one invocation, by destination slot.
#[derive(Default)]
pub struct Skips {
    by_slot: HashMap<DestinationSlot, Skipped>,
}

impl Skips {
    pub fn count(&mut self, slot: DestinationSlot, reason: Reason<'_>) {
        let skipped = self.by_slot.entry(slot).or_default();
        match reason {
            Reason::FlagNotEnabled(key) => {
                skipped.flag_not_enabled += 1;
                // Most skips are of a few flags: a lookup, and a key copied once per flag.
                match skipped.flags.get_mut(key) {
                    Some(n) => *n += 1,
                    None => _ = skipped.flags.insert(key.to_owned(), 1),
                }
            }
            Reason::KindNotExported => skipped.kind_not_exported += 1,
            Reason::DestinationOff => skipped.destination_off += 1,
        }
    }

    /// Every destination's skips, its flags cut to the most skipped.
    pub fn into_slots(self) -> impl Iterator<Item = (DestinationSlot, Skipped)> {
        self.by_slot.into_iter().map(|(slot, mut skipped)| {
            skipped.keep_top_flags();
            (slot, skipped)
        })
    }
}
