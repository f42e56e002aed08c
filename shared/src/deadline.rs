//! The time an invocation has left.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When the runtime gives no usable deadline (local emulators report 0), this much time from
/// the start of the invocation stands in for it (README, "How `export` handles a batch", step
/// 6).
pub const FALLBACK_BUDGET: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// From the Lambda context's deadline in epoch milliseconds, for an invocation that
    /// started at `started`.
    pub fn from_epoch_millis(deadline_ms: u64, started: Instant) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if deadline_ms <= now_ms {
            return Self {
                at: started + FALLBACK_BUDGET,
            };
        }
        Self {
            at: Instant::now() + Duration::from_millis(deadline_ms - now_ms),
        }
    }

    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_past_deadline_uses_the_fallback_budget() {
        let started = Instant::now();
        for reported in [0, 1_000] {
            let r = Deadline::from_epoch_millis(reported, started).remaining();
            assert!(
                r > FALLBACK_BUDGET - Duration::from_secs(1) && r <= FALLBACK_BUDGET,
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_future_deadline_is_used_as_is() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let r = Deadline::from_epoch_millis(now_ms + 3_000, Instant::now()).remaining();
        assert!(
            r > Duration::from_millis(2_500) && r <= Duration::from_secs(3),
            "{r:?}"
        );
    }
}
