//! Whether Segment knows a write key (CONTRACT §4.1). Segment's tracking API answers 200 to
//! any key and drops what a key it does not know sends, so a typo would lose everything
//! silently. Segment's own tools ask its CDN for the source's settings instead:
//! `GET https://cdn.segment.com/v1/projects/{writeKey}/settings` is 200 for a key it knows
//! and 404 for one it does not, for US and EU workspaces alike. The URL holds the key, so it
//! is never logged, and errors are stripped of it.

use super::client::USER_AGENT;
use crate::answer_body;
use crate::destination::WriteKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Segment's CDN; `SEGMENT_CDN_URL` replaces it locally.
pub const CDN_URL: &str = "https://cdn.segment.com";

/// The most a check may take: a write never waits longer on Segment's CDN.
pub const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// What is known of a destination's write key, shown read-only as `_writeKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyCheck {
    pub status: KeyStatus,
    /// When Segment was asked (epoch ms); none when it never was.
    pub checked_at: Option<u64>,
    /// Why the key is unchecked, in words a person can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Segment knows the key.
    Verified,
    /// Not asked, or no answer: the key may be right or wrong.
    Unchecked,
    /// Segment stopped knowing a stored key (found by a later check).
    Rejected,
}

impl KeyCheck {
    /// The check of a destination written before checks existed.
    pub fn never() -> Self {
        Self {
            status: KeyStatus::Unchecked,
            checked_at: None,
            reason: Some("not checked yet: send a test event to check it".into()),
        }
    }

    /// A destination with its own `endpoint`: Segment is not the receiver, so not asked.
    pub fn own_endpoint() -> Self {
        Self {
            status: KeyStatus::Unchecked,
            checked_at: None,
            reason: Some("sends to its own endpoint, so Segment is not asked".into()),
        }
    }
}

/// What Segment's CDN said of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// 404: Segment does not know the key.
    Unknown,
    /// Anything else, or nothing within [`CHECK_BUDGET`]: why, without the URL.
    NoAnswer(String),
}

impl Verdict {
    /// The check to keep for this verdict, made at `at`. An unknown key is `rejected`: a
    /// write refuses it, so only a key already stored can end so.
    pub fn check(&self, at: u64) -> KeyCheck {
        let (status, reason) = match self {
            Verdict::Known => (KeyStatus::Verified, None),
            Verdict::Unknown => (
                KeyStatus::Rejected,
                Some("Segment does not know this write key".to_owned()),
            ),
            Verdict::NoAnswer(why) => (KeyStatus::Unchecked, Some(why.clone())),
        };
        KeyCheck {
            status,
            checked_at: Some(at),
            reason,
        }
    }
}

/// Asks Segment's CDN about write keys; or, made with [`KeyVerifier::off`], never asks.
#[derive(Clone, Default)]
pub struct KeyVerifier {
    cdn: Option<(reqwest::Client, reqwest::Url)>,
}

impl KeyVerifier {
    /// Asks the CDN at `base` (`SEGMENT_CDN_URL`, else [`CDN_URL`]).
    pub fn new(base: &str) -> Result<Self, url::ParseError> {
        let base = reqwest::Url::parse(base)?;
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(CHECK_BUDGET)
            .connect_timeout(CHECK_BUDGET)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with a timeout builds");
        Ok(Self {
            cdn: Some((client, base)),
        })
    }

    /// Never asks: every key stays `unchecked` (in-process tests of other things).
    pub fn off() -> Self {
        Self::default()
    }

    pub async fn verify(&self, key: &WriteKey) -> Verdict {
        let Some((client, base)) = &self.cdn else {
            return Verdict::NoAnswer("checking write keys is off here".into());
        };
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("an http(s) base has a path")
            .pop_if_empty()
            .extend(["v1", "projects", key.expose(), "settings"]);
        let answer = tokio::time::timeout(CHECK_BUDGET, async {
            let response = client.get(url).send().await?;
            let status = response.status();
            // Read a little and drop the rest: only the status matters.
            let _ = answer_body::read_capped(response, 1024).await;
            Ok::<_, reqwest::Error>(status)
        })
        .await;
        match answer {
            Ok(Ok(status)) if status.is_success() => Verdict::Known,
            Ok(Ok(status)) if status == reqwest::StatusCode::NOT_FOUND => Verdict::Unknown,
            Ok(Ok(status)) => Verdict::NoAnswer(format!("Segment's CDN answered {}", status.as_u16())),
            Ok(Err(e)) if !e.is_timeout() => {
                tracing::info!(error = %e.without_url(), "Segment's CDN could not be reached");
                Verdict::NoAnswer("Segment's CDN could not be reached".into())
            }
            _ => Verdict::NoAnswer(format!(
                "Segment's CDN did not answer within {} s",
                CHECK_BUDGET.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_rejected_and_no_answer_unchecked_with_why() {
        assert_eq!(Verdict::Known.check(5).status, KeyStatus::Verified);
        assert_eq!(Verdict::Unknown.check(5).status, KeyStatus::Rejected);
        let none = Verdict::NoAnswer("Segment's CDN answered 500".into()).check(5);
        assert_eq!(none.status, KeyStatus::Unchecked);
        assert_eq!(none.checked_at, Some(5));
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            serde_json::json!({"status": "unchecked", "checkedAt": 5, "reason": "Segment's CDN answered 500"})
        );
    }

    #[tokio::test]
    async fn off_never_asks() {
        let verdict = KeyVerifier::off().verify(&WriteKey::new("k")).await;
        assert!(matches!(verdict, Verdict::NoAnswer(_)));
    }
}
