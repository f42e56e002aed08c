//! Segment destinations and the Data Export settings of an environment, as the
//! export pipeline sees them.

use crate::endpoint::{Endpoint, OutboundPolicy};
use crate::segment::verify::KeyCheck;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// The only destination kind this service exports to.
pub const SEGMENT_KIND: &str = "segment";

/// A registered Segment destination of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub id: String,
    pub project: String,
    pub environment: String,
    pub name: String,
    pub kind: String,
    pub on: bool,
    pub version: u64,
    /// Epoch milliseconds.
    pub created_at: u64,
    pub config: SegmentConfig,
    /// What Segment said of the write key, when last asked (`_writeKey`).
    pub write_key_check: KeyCheck,
}

impl Destination {
    /// Whether `export` sends this environment's events here.
    pub fn is_active(&self) -> bool {
        self.on && self.kind == SEGMENT_KIND
    }
}

/// `config` of a Segment destination: the one type for the API's request and response
/// (`writeKey` serializes masked), the stored item's attributes (`store/item.rs`) and the
/// mapping's input (`segment/message.rs`). Its rules are in [`SegmentConfig::validate`],
/// its OpenAPI schema is generated from it. README, "Adding a destination option".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentConfig {
    /// The Segment source's write key (Segment: Settings → API Keys).
    pub write_key: WriteKey,
    /// Segment's data-residency region.
    #[serde(default)]
    pub region: Region,
    /// The context kind whose key is `userId` (default `user`).
    #[serde(
        rename = "userIDContextKind",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id_context_kind: Option<String>,
    /// The context kind whose key is `anonymousId`.
    #[serde(
        rename = "anonymousIDContextKind",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub anonymous_id_context_kind: Option<String>,
    /// Whether custom events' `data` goes in `properties.data`.
    #[serde(default)]
    pub include_custom_data: bool,
    /// Whether experiment evaluations also send Segment's A/B-testing "Experiment Viewed".
    #[serde(default)]
    pub experiment_viewed: bool,
    /// A Segment-compatible receiver to send to instead of Segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

impl SegmentConfig {
    pub fn user_id_context_kind(&self) -> &str {
        self.user_id_context_kind.as_deref().unwrap_or("user")
    }

    /// Every rule a config must meet beyond its JSON types. `current` is the stored config
    /// when this is the result of a PATCH: its masked key stands for the stored key.
    pub fn validate(mut self, current: Option<&Self>, policy: OutboundPolicy) -> Result<Self, String> {
        self.write_key = match current.map(|c| &c.write_key) {
            Some(stored) if stored.is_masked_form(self.write_key.expose()) => stored.clone(),
            _ => WriteKey::parse(self.write_key.expose())?,
        };
        for (field, kind) in [
            ("userIDContextKind", &self.user_id_context_kind),
            ("anonymousIDContextKind", &self.anonymous_id_context_kind),
        ] {
            if let Some(kind) = kind {
                check_context_kind(field, kind)?;
            }
        }
        if let Some(endpoint) = &self.endpoint {
            Endpoint::parse(endpoint.as_str(), policy).map_err(|e| e.to_string())?;
        }
        Ok(self)
    }
}

/// The longest context kind a config may name, as for project and environment keys: it
/// bounds the size of a destination, so that of a page of them (README, "Pages").
pub const MAX_CONTEXT_KIND_LEN: usize = 256;

fn check_context_kind(field: &str, kind: &str) -> Result<(), String> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_CONTEXT_KIND_LEN
        && kind != "kind"
        && kind != "multi"
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "config.{field} must be a context kind: at most {MAX_CONTEXT_KIND_LEN} letters, digits, '.', '_' or '-', not \"kind\" or \"multi\""
        ))
    }
}

/// Segment's data-residency regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
}

impl Region {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
        }
    }

    /// Segment's HTTP Tracking API host for this region.
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Us => "https://api.segment.io",
            Self::Eu => "https://events.eu1.segmentapis.com",
        }
    }
}

/// A Segment write key. It has no `Display` and its `Debug` is masked, so it cannot
/// reach a log line or an error message by accident; `expose` is the one way out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WriteKey(String);

impl WriteKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A key as a client sent it, checked against what a Segment write key can be:
    /// printable ASCII without spaces, of a length Segment's keys have (README, "The API").
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.trim().is_empty() {
            return Err("config.writeKey must not be empty: copy it from your LaunchDarkly source in Segment (Settings → API Keys)".into());
        }
        if key.contains('*') {
            return Err(
                "config.writeKey looks masked (it contains '*'): send the full write key from Segment".into(),
            );
        }
        let len = key.chars().count();
        if let Some(c) = key.chars().find(|c| c.is_whitespace() || c.is_control()) {
            let what = if c.is_whitespace() {
                "whitespace"
            } else {
                "a control character"
            };
            return Err(format!(
                "config.writeKey contains {what}: copy the key exactly from Segment (Settings → API Keys)"
            ));
        }
        if !(MIN_WRITE_KEY_LEN..=MAX_WRITE_KEY_LEN).contains(&len) || !key.is_ascii() {
            return Err(format!(
                "config.writeKey is {len} characters: Segment write keys are {MIN_WRITE_KEY_LEN} to {MAX_WRITE_KEY_LEN} ASCII letters, digits and symbols"
            ));
        }
        Ok(Self(key.to_owned()))
    }

    /// The form shown in API responses: every character but the last four replaced by
    /// `*`, and every one of them for a key shorter than 12.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// Whether `candidate` is what a client got back from `masked` (and sent back unchanged).
    pub fn is_masked_form(&self, candidate: &str) -> bool {
        candidate.contains('*') && candidate == self.masked()
    }
}

/// The lengths a write key may have: Segment's are 32 characters; older and regional keys
/// differ a little, so there is room either way.
pub const MIN_WRITE_KEY_LEN: usize = 12;
pub const MAX_WRITE_KEY_LEN: usize = 128;

fn mask(key: &str) -> String {
    let n = key.chars().count();
    let shown = if n < 12 { 0 } else { 4 };
    key.chars()
        .enumerate()
        .map(|(i, c)| if i + shown < n { '*' } else { c })
        .collect()
}

/// Serialized masked, so that an API response (or anything else serialized) never shows
/// the key; the stored item writes it with [`WriteKey::expose`].
impl Serialize for WriteKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// Read as it is: [`SegmentConfig::validate`] checks what a client sent.
impl<'de> Deserialize<'de> for WriteKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

impl JsonSchema for WriteKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WriteKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": MIN_WRITE_KEY_LEN,
            "maxLength": MAX_WRITE_KEY_LEN,
            "pattern": "^[!-~]+$",
        })
    }
}

impl fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteKey({})", self.masked())
    }
}

/// Which flags' `feature` events an environment exports (README, "The API").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportSettings {
    pub all_flags: bool,
    pub flags: BTreeMap<String, bool>,
    pub version: u64,
}

impl ExportSettings {
    pub fn exports_flag(&self, flag_key: &str) -> bool {
        self.all_flags || self.flags.get(flag_key).copied().unwrap_or(false)
    }
}

/// Everything `export` needs to know about one environment, read in one query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvironmentConfig {
    pub destinations: Vec<Destination>,
    pub settings: ExportSettings,
    /// Destination items of the environment that could not be read: left out (and logged)
    /// so that one bad item never stops the others' events; counted in the metrics.
    pub unreadable_destinations: u32,
}

impl EnvironmentConfig {
    pub fn active_destinations(&self) -> impl Iterator<Item = &Destination> {
        self.destinations.iter().filter(|d| d.is_active())
    }
}

/// A destination that is on, for the library's own tests.
#[cfg(test)]
pub(crate) fn test_destination(id: &str, config: SegmentConfig) -> Destination {
    Destination {
        id: id.into(),
        project: "p".into(),
        environment: "e".into(),
        name: "n".into(),
        kind: SEGMENT_KIND.into(),
        on: true,
        version: 1,
        created_at: 0,
        write_key_check: crate::segment::verify::KeyCheck::never(),
        config,
    }
}

/// A stored destination with a long write key, as the API's tests read it back.
#[cfg(test)]
pub(crate) fn stored_test_destination() -> Destination {
    let config = SegmentConfig {
        write_key: WriteKey::new("secret-key-f00d"),
        ..SegmentConfig::default()
    };
    Destination {
        version: 2,
        created_at: 1,
        ..test_destination("d1", config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_characters() {
        assert_eq!(WriteKey::new("abcdef0123f00d").masked(), "**********f00d");
        assert_eq!(WriteKey::new("abc").masked(), "***", "nothing of a short key");
        assert_eq!(WriteKey::new("abcdefghijk").masked(), "***********");
        assert_eq!(WriteKey::new("abcdefghijkl").masked(), "********ijkl");
        assert_eq!(WriteKey::new("éééééééééééé").masked(), "********éééé");
    }

    #[test]
    fn write_keys_are_checked_against_what_segment_keys_can_be() {
        assert!(WriteKey::parse("9zuqY2VJH3GFaN6zkq3O6Lk4i5nwRJl7").is_ok());
        for bad in [
            "short",
            " 9zuqY2VJH3GFaN6zkq3O6Lk4",
            "9zuqY2VJH3GF aN6zkq3O6Lk4",
            "9zuqY2VJH3GFaN6zkq3\u{7}",
            &"x".repeat(129),
        ] {
            assert!(WriteKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            WriteKey::parse("tab\there-0123456")
                .unwrap_err()
                .contains("whitespace")
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", WriteKey::new("secret-write-key-1234"));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.ends_with("1234)"));
    }

    #[test]
    fn recognises_its_masked_form() {
        let key = WriteKey::new("abcdef0123f00d");
        assert!(key.is_masked_form("**********f00d"));
        assert!(!key.is_masked_form("*********f00d"));
        assert!(!WriteKey::new("abc").is_masked_form("abc"));
        assert!(WriteKey::new("abc").is_masked_form("***"));
    }

    #[test]
    fn flag_gate() {
        let mut s = ExportSettings::default();
        assert!(!s.exports_flag("a"));
        s.flags.insert("a".into(), true);
        s.flags.insert("b".into(), false);
        assert!(s.exports_flag("a") && !s.exports_flag("b"));
        s.all_flags = true;
        assert!(s.exports_flag("b") && s.exports_flag("zzz"));
    }

    #[test]
    fn only_segment_destinations_that_are_on_are_active() {
        let d = Destination {
            id: "d".into(),
            project: "p".into(),
            environment: "e".into(),
            name: String::new(),
            kind: SEGMENT_KIND.into(),
            on: true,
            version: 1,
            created_at: 0,
            write_key_check: crate::segment::verify::KeyCheck::never(),
            config: SegmentConfig::default(),
        };
        assert!(d.is_active());
        assert!(
            !Destination {
                on: false,
                ..d.clone()
            }
            .is_active()
        );
        assert!(
            !Destination {
                kind: "kinesis".into(),
                ..d
            }
            .is_active()
        );
    }
}
