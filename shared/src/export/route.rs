//! Which destinations get an event (README, "How `export` handles a batch", step 3):
//! skipped kinds, the Data Export gate for flags, destinations that are on.

use super::ledger::{Cause, Ledger};
use super::outbox::Outboxes;
use super::parse::RecordEvent;
use super::skips::{Reason, Skips};
use crate::destination::{Destination, EnvironmentConfig};
use crate::event::{Envelope, Kind};
use crate::segment::ExportEvent;
use crate::segment::batch::MAX_MESSAGE_BYTES;
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::Arc;

/// The environments of one invocation, each read once, numbered in reading order.
#[derive(Default)]
pub struct Environments<'a> {
    numbers: HashMap<(&'a str, &'a str), usize>,
    configs: Vec<Result<Arc<EnvironmentConfig>, StoreError>>,
}

impl<'a> Environments<'a> {
    /// Destination items that could not be read, in the environments read.
    pub fn unreadable_destinations(&self) -> u64 {
        self.configs
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|c| u64::from(c.unreadable_destinations))
            .sum()
    }

    pub fn insert(&mut self, key: (&'a str, &'a str), config: Result<Arc<EnvironmentConfig>, StoreError>) {
        self.numbers.insert(key, self.configs.len());
        self.configs.push(config);
    }

    pub fn contains(&self, key: (&str, &str)) -> bool {
        self.numbers.contains_key(&key)
    }

    /// The destination at `slot` (an environment read, a destination of it).
    pub fn destination(&self, (number, index): super::outbox::DestinationSlot) -> Option<&Destination> {
        self.configs.get(number)?.as_ref().ok()?.destinations.get(index)
    }

    fn get(&self, project: &str, environment: &str) -> Option<(usize, &Arc<EnvironmentConfig>)> {
        let number = *self.numbers.get(&(project, environment))?;
        self.configs[number].as_ref().ok().map(|config| (number, config))
    }
}

/// Decides what happens to one event and writes its messages to the outboxes; counts
/// why each destination that does not get it does not.
pub fn route(
    event: &RecordEvent<'_>,
    environments: &Environments<'_>,
    ledger: &mut Ledger,
    outboxes: &mut Outboxes,
    skips: &mut Skips,
) {
    let (envelope, record) = (&event.envelope, event.record);
    let kind = Kind::of(&envelope.event.kind);
    let environment = environments.get(&envelope.project, &envelope.environment);
    if kind == Kind::Skipped {
        // Never a failure, even when the environment could not be read: nothing to send.
        if let Some((number, config)) = environment {
            for (index, destination) in config.destinations.iter().enumerate() {
                if envelope.is_for(&destination.id) {
                    let reason = if destination.is_active() {
                        Reason::KindNotExported
                    } else {
                        Reason::DestinationOff
                    };
                    skips.count((number, index), reason);
                }
            }
        }
        return;
    }
    // A bad event fails its record whether or not anyone would receive it.
    let export = match ExportEvent::new(envelope, kind, event.event_id()) {
        Ok(export) => export,
        Err(e) => {
            tracing::warn!(event_id = event.event_id(), error = %e, "bad event");
            ledger.fail_event(record, event.event, Cause::Bad);
            return;
        }
    };
    let Some((number, config)) = environment else {
        // The lookup failed: retry the record once the store answers again.
        ledger.fail_event(record, event.event, Cause::Transient);
        return;
    };
    let flag_off = kind == Kind::Feature && !feature_exported(envelope, config);
    for (index, destination) in config.destinations.iter().enumerate() {
        if !envelope.is_for(&destination.id) {
            continue;
        }
        if !destination.is_active() {
            skips.count((number, index), Reason::DestinationOff);
            continue;
        }
        if flag_off {
            let key = envelope.event.key.as_deref().unwrap_or_default();
            skips.count((number, index), Reason::FlagNotEnabled(key));
            continue;
        }
        ledger.queue_event(event.event);
        let (outbox_number, outbox) = outboxes.for_destination((number, index), config);
        let mut written = outbox.push(record, event.event, MAX_MESSAGE_BYTES, |buf| {
            export.write(destination, buf)
        });
        if written.is_ok() && export.has_experiment_viewed(destination) {
            written = outbox.push(record, event.event, MAX_MESSAGE_BYTES, |buf| {
                export.write_experiment_viewed(destination, buf)
            });
        }
        if let Err(bytes) = written {
            tracing::warn!(
                event_id = event.event_id(),
                bytes,
                "message over Segment's 32,000-byte limit"
            );
            ledger.miss(record, event.event, outbox_number, Cause::Bad);
        }
    }
}

/// Whether a `feature` event is exported: its flag or the whole environment is
/// enabled, or the evaluation is part of an experiment.
fn feature_exported(envelope: &Envelope, config: &EnvironmentConfig) -> bool {
    let event = &envelope.event;
    let in_experiment = event.reason.as_ref().and_then(|r| r.in_experiment) == Some(true);
    in_experiment
        || event
            .key
            .as_deref()
            .is_some_and(|k| config.settings.exports_flag(k))
}
