//! Delivery status per destination (README, "Delivery status"): what one `export`
//! invocation did for a destination ([`DeliveryReport`]), and what the API shows from the
//! reports so far ([`DeliveryStatus`]): the last delivery, the last failure and why, and
//! counts in hourly buckets of the last day. Bounded: 24 buckets and a short reason that
//! never holds a write key or an event's values (it is made from the failure's kind and
//! HTTP status only).

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Hourly buckets kept: a day.
pub const HOURS_KEPT: u64 = 24;
/// The longest failure reason kept.
pub const MAX_REASON_CHARS: usize = 200;
const HOUR_MS: u64 = 3_600_000;

/// The flag keys a report keeps of its skipped evaluations: the most skipped only, so
/// that a status item stays small however many flags an environment has.
pub const TOP_FLAGS_KEPT: usize = 3;

/// Events a destination did not get, by why (README, "Why an event was not exported").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// `feature` events whose flag is not enabled for Data Export in the environment.
    pub flag_not_enabled: u64,
    /// Events of a kind never exported (summary, index, identify, debug, alias, …).
    pub kind_not_exported: u64,
    /// Events the destination would have got, had it been on.
    pub destination_off: u64,
    /// Skipped evaluations by flag key (a report keeps the [`TOP_FLAGS_KEPT`] most).
    pub flags: BTreeMap<String, u64>,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.flag_not_enabled + self.kind_not_exported + self.destination_off
    }

    pub fn add(&mut self, other: &Skipped) {
        self.flag_not_enabled += other.flag_not_enabled;
        self.kind_not_exported += other.kind_not_exported;
        self.destination_off += other.destination_off;
        for (key, n) in &other.flags {
            *self.flags.entry(key.clone()).or_default() += n;
        }
    }

    /// The most skipped flags, most first (ties by key), at most `n`.
    pub fn top_flags(&self, n: usize) -> Vec<(&str, u64)> {
        let mut flags: Vec<(&str, u64)> = self.flags.iter().map(|(k, &c)| (k.as_str(), c)).collect();
        flags.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        flags.truncate(n);
        flags
    }

    /// Only the [`TOP_FLAGS_KEPT`] most skipped flags.
    pub fn keep_top_flags(&mut self) {
        let top: BTreeMap<String, u64> = self
            .top_flags(TOP_FLAGS_KEPT)
            .into_iter()
            .map(|(k, c)| (k.to_owned(), c))
            .collect();
        self.flags = top;
    }

    fn to_json(&self) -> Value {
        let top: Vec<Value> = self
            .top_flags(5)
            .into_iter()
            .map(|(key, count)| json!({"key": key, "count": count}))
            .collect();
        json!({
            "flagNotEnabled": self.flag_not_enabled,
            "kindNotExported": self.kind_not_exported,
            "destinationOff": self.destination_off,
            "topFlags": top,
        })
    }
}

/// What one invocation did for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
    /// What it did not get, and why.
    pub skipped: Skipped,
    /// Why the last failure of the invocation happened.
    pub failure: Option<String>,
    /// When (epoch ms).
    pub at: u64,
}

impl DeliveryReport {
    /// The bucket this report counts in: the start of its hour (epoch ms).
    pub fn hour(&self) -> u64 {
        self.at - self.at % HOUR_MS
    }

    /// Its ring slot (the buckets of a day, reused hour after hour).
    pub fn slot(&self) -> u64 {
        (self.at / HOUR_MS) % HOURS_KEPT
    }
}

/// Shortens a reason to [`MAX_REASON_CHARS`].
pub fn bounded_reason(reason: &str) -> String {
    reason.chars().take(MAX_REASON_CHARS).collect()
}

/// One hour's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// The hour's start (epoch ms).
    pub hour: u64,
    pub delivered: u64,
    pub failed: u64,
    pub skipped: Skipped,
}

impl HourCount {
    fn to_json(&self) -> Value {
        json!({
            "hour": self.hour,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped.to_json(),
        })
    }
}

/// A destination's delivery so far, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub last_delivered_at: Option<u64>,
    pub last_failed_at: Option<u64>,
    /// The first failure since the last delivery; none while delivering.
    pub failing_since: Option<u64>,
    pub last_failure: Option<String>,
    /// Every bucket as stored, whatever its age.
    pub hours: Vec<HourCount>,
}

impl DeliveryStatus {
    /// `failing` while every invocation since `failing_since` only failed; `delivering`
    /// once anything was delivered; `idle` before any event.
    pub fn state(&self) -> &'static str {
        if self.failing_since.is_some() {
            "failing"
        } else if self.last_delivered_at.is_some() {
            "delivering"
        } else {
            "idle"
        }
    }

    /// The status after `report`, as the table's update makes it (`store/delivery.rs`):
    /// an hour's bucket replaces the one a day older in its slot.
    pub fn apply(&mut self, report: &DeliveryReport) {
        let hour = report.hour();
        self.hours.retain(|h| h.hour + HOURS_KEPT * HOUR_MS > hour);
        match self.hours.iter_mut().find(|h| h.hour == hour) {
            Some(bucket) => {
                bucket.delivered += report.delivered;
                bucket.failed += report.failed;
                bucket.skipped.add(&report.skipped);
            }
            None => self.hours.push(HourCount {
                hour,
                delivered: report.delivered,
                failed: report.failed,
                skipped: report.skipped.clone(),
            }),
        }
        if report.delivered > 0 {
            self.last_delivered_at = Some(report.at);
            self.failing_since = None;
        }
        if report.failed > 0 {
            self.last_failed_at = Some(report.at);
            self.last_failure = Some(bounded_reason(
                report.failure.as_deref().unwrap_or("delivery failed"),
            ));
            if report.delivered == 0 {
                self.failing_since.get_or_insert(report.at);
            }
        }
    }

    /// The API's `_delivery`: the buckets of the day before `now`, most recent first.
    pub fn to_json(&self, now: u64) -> Value {
        let oldest = now.saturating_sub(HOURS_KEPT * HOUR_MS);
        let mut hours: Vec<&HourCount> = self
            .hours
            .iter()
            .filter(|h| h.hour > oldest && h.hour <= now && h.delivered + h.failed + h.skipped.total() > 0)
            .collect();
        hours.sort_by_key(|h| std::cmp::Reverse(h.hour));
        let hours: Vec<Value> = hours.into_iter().map(HourCount::to_json).collect();
        json!({
            "state": self.state(),
            "lastDeliveredAt": self.last_delivered_at,
            "lastFailedAt": self.last_failed_at,
            "failingSince": self.failing_since,
            "lastFailure": self.last_failure,
            "hours": hours,
        })
    }
}

/// The `_delivery` of a destination with no status yet.
pub fn idle_json() -> Value {
    DeliveryStatus::default().to_json(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_last_deliveries_and_failures() {
        let mut s = DeliveryStatus::default();
        assert_eq!(s.state(), "idle");
        s.last_delivered_at = Some(10);
        assert_eq!(s.state(), "delivering");
        s.failing_since = Some(20);
        assert_eq!(s.state(), "failing");
    }

    #[test]
    fn only_the_last_days_non_empty_buckets_are_shown_newest_first() {
        let now = 100 * HOUR_MS + 5;
        let s = DeliveryStatus {
            hours: vec![
                HourCount {
                    hour: 99 * HOUR_MS,
                    delivered: 3,
                    failed: 0,
                    skipped: crate::delivery_status::Skipped::default(),
                },
                HourCount {
                    hour: 100 * HOUR_MS,
                    delivered: 1,
                    failed: 2,
                    skipped: crate::delivery_status::Skipped::default(),
                },
                HourCount {
                    hour: 70 * HOUR_MS,
                    delivered: 9,
                    failed: 9,
                    skipped: crate::delivery_status::Skipped::default(),
                },
                HourCount {
                    hour: 98 * HOUR_MS,
                    delivered: 0,
                    failed: 0,
                    skipped: crate::delivery_status::Skipped::default(),
                },
            ],
            ..DeliveryStatus::default()
        };
        let v = s.to_json(now);
        let hours: Vec<u64> = v["hours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["hour"].as_u64().unwrap())
            .collect();
        assert_eq!(hours, [100 * HOUR_MS, 99 * HOUR_MS]);
    }

    #[test]
    fn a_report_counts_in_its_hour_and_slot() {
        let r = DeliveryReport {
            delivered: 1,
            failed: 0,
            skipped: crate::delivery_status::Skipped::default(),
            failure: None,
            at: 25 * HOUR_MS + 42,
        };
        assert_eq!((r.hour(), r.slot()), (25 * HOUR_MS, 1));
        assert_eq!(bounded_reason(&"x".repeat(500)).len(), MAX_REASON_CHARS);
    }
}
