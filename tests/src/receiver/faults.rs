//! Faults injected per write key: a status (with `Retry-After` and a body), a delay, or a
//! dropped connection, queued one per request, with an optional fault for every request
//! after the queue.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A fault to inject into one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Self {
            status: Some(status),
            retry_after: Some(seconds.to_string()),
            ..Self::default()
        }
    }

    pub fn delay(ms: u64) -> Self {
        Self {
            delay_ms: Some(ms),
            ..Self::default()
        }
    }

    pub fn drop_connection() -> Self {
        Self {
            drop: true,
            ..Self::default()
        }
    }
}

/// The faults planned for one write key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    pub write_key: String,
    #[serde(default)]
    pub faults: VecDeque<Fault>,
    #[serde(default)]
    pub always: Option<Fault>,
    /// A request holding a message of one of these events (`properties.eventId`) is
    /// refused with 400, as Segment refuses a batch with one invalid message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refuse_event_ids: Vec<String>,
}

impl FaultPlan {
    /// The fault for the next request: the first queued one, then `always`.
    pub(super) fn next(&mut self) -> Option<Fault> {
        self.faults.pop_front().or_else(|| self.always.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queued_faults_come_first_then_always() {
        let mut plan = FaultPlan {
            write_key: "k".into(),
            faults: [Fault::status(500), Fault::drop_connection()].into(),
            always: Some(Fault::delay(10)),
            refuse_event_ids: Vec::new(),
        };
        assert_eq!(plan.next(), Some(Fault::status(500)));
        assert_eq!(plan.next(), Some(Fault::drop_connection()));
        assert_eq!(plan.next(), Some(Fault::delay(10)));
        assert_eq!(plan.next(), Some(Fault::delay(10)));
        plan.always = None;
        assert_eq!(plan.next(), None);
    }

    #[test]
    fn reads_the_control_api_json() {
        let plan: FaultPlan = serde_json::from_value(json!({
            "writeKey": "k",
            "faults": [{"status": 429, "retryAfter": "2", "body": "slow down"}, {"drop": true}],
            "always": {"delayMs": 3000}
        }))
        .unwrap();
        assert_eq!(plan.write_key, "k");
        let slow_down = Fault {
            body: Some("slow down".into()),
            ..Fault::retry_after(429, 2)
        };
        assert_eq!(plan.faults[0], slow_down);
        assert_eq!(plan.faults[1], Fault::drop_connection());
        assert_eq!(plan.always, Some(Fault::delay(3000)));
        assert_eq!(
            serde_json::to_value(Fault::drop_connection()).unwrap(),
            json!({"drop": true})
        );
    }
}
