//! What the receiver remembers: the messages it accepted, every request it saw, and
//! the faults still planned per write key.

use super::faults::{Fault, FaultPlan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// One message the receiver accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub write_key: String,
    pub message: Value,
    /// `sentAt` of the batch it came in.
    pub sent_at: Option<String>,
}

/// One request the receiver saw, whatever it answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub write_key: Option<String>,
    pub path: String,
    /// Milliseconds since the receiver started.
    pub at_ms: u64,
    /// 0 when the connection was dropped.
    pub status: u16,
    pub messages: usize,
    pub bytes: usize,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Default)]
pub(super) struct Memory {
    accepted: Vec<Accepted>,
    requests: Vec<RequestRecord>,
    faults: HashMap<String, FaultPlan>,
    /// What the CDN's settings route says of a key, when not that it knows it.
    pub(super) cdn: HashMap<String, CdnKey>,
}

/// What Segment's CDN says of a write key (`GET /v1/projects/{key}/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CdnKey {
    /// 200 with the source's settings: every key, unless told otherwise.
    #[default]
    Known,
    /// 404 "Invalid path or write key provided.", as Segment answers a key it does not know.
    Unknown,
    /// 503: the CDN is down.
    Down,
}

impl Memory {
    /// Replaces the plan of its write key.
    pub(super) fn set_faults(&mut self, plan: FaultPlan) {
        self.faults.insert(plan.write_key.clone(), plan);
    }

    /// The fault for the next request with `write_key`, taken from its plan.
    pub(super) fn next_fault(&mut self, write_key: &str) -> Option<Fault> {
        self.faults.get_mut(write_key)?.next()
    }

    /// The events whose messages make a request of this write key invalid.
    pub(super) fn refused_events(&self, write_key: &str) -> Vec<String> {
        self.faults
            .get(write_key)
            .map(|plan| plan.refuse_event_ids.clone())
            .unwrap_or_default()
    }

    pub(super) fn record(&mut self, request: RequestRecord) {
        self.requests.push(request);
    }

    /// Keeps `messages` that came in one batch.
    pub(super) fn accept(&mut self, write_key: &str, messages: Vec<Value>, sent_at: Option<String>) {
        self.accepted.extend(messages.into_iter().map(|message| Accepted {
            write_key: write_key.to_owned(),
            message,
            sent_at: sent_at.clone(),
        }));
    }

    /// Accepted messages, for one write key or all.
    pub(super) fn messages(&self, write_key: Option<&str>) -> Vec<Accepted> {
        self.accepted
            .iter()
            .filter(|a| write_key.is_none_or(|k| a.write_key == k))
            .cloned()
            .collect()
    }

    /// Requests seen, for one write key or all.
    pub(super) fn requests(&self, write_key: Option<&str>) -> Vec<RequestRecord> {
        self.requests
            .iter()
            .filter(|r| write_key.is_none_or(|k| r.write_key.as_deref() == Some(k)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(write_key: Option<&str>, status: u16) -> RequestRecord {
        RequestRecord {
            write_key: write_key.map(str::to_owned),
            path: "/v1/batch".into(),
            at_ms: 0,
            status,
            messages: 0,
            bytes: 0,
            user_agent: None,
            content_type: None,
        }
    }

    #[test]
    fn filters_by_write_key() {
        let mut memory = Memory::default();
        memory.accept("a", vec![json!({"n": 1}), json!({"n": 2})], Some("t".into()));
        memory.accept("b", vec![json!({"n": 3})], None);
        memory.record(request(Some("a"), 200));
        memory.record(request(None, 401));
        assert_eq!(memory.messages(None).len(), 3);
        let a = memory.messages(Some("a"));
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|m| m.sent_at.as_deref() == Some("t")));
        assert_eq!(memory.messages(Some("c")).len(), 0);
        assert_eq!(memory.requests(None).len(), 2);
        assert_eq!(memory.requests(Some("a"))[0].status, 200);
    }

    #[test]
    fn faults_are_planned_per_write_key() {
        let mut memory = Memory::default();
        memory.set_faults(FaultPlan {
            write_key: "a".into(),
            faults: [Fault::status(500)].into(),
            always: None,
            refuse_event_ids: Vec::new(),
        });
        assert_eq!(memory.next_fault("b"), None);
        assert_eq!(memory.next_fault("a"), Some(Fault::status(500)));
        assert_eq!(memory.next_fault("a"), None);
        memory.set_faults(FaultPlan {
            write_key: "a".into(),
            faults: Default::default(),
            always: Some(Fault::drop_connection()),
            refuse_event_ids: Vec::new(),
        });
        assert_eq!(memory.next_fault("a"), Some(Fault::drop_connection()));
    }

    #[test]
    fn wire_names_are_camel_case() {
        let wire = serde_json::to_value(request(Some("a"), 200)).unwrap();
        for name in ["writeKey", "atMs", "userAgent", "contentType"] {
            assert!(wire.get(name).is_some(), "{name} in {wire}");
        }
    }
}
