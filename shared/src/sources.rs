//! Event sources: the LaunchDarkly SDK keys, mobile keys and client-side IDs whose events
//! belong to an environment, for the `ingest` function to resolve (README, "The API").
//! SDK and mobile keys are secrets: only their SHA-256 digests are kept.

pub mod origin;

pub use origin::{AllowedOrigins, Origin, OriginError};
use sha2::{Digest, Sha256};

/// What kind of credential an SDK sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Server-side SDKs: `Authorization: <SDK key>`.
    Sdk,
    /// Mobile SDKs: `Authorization: <mobile key>`.
    Mobile,
    /// The browser SDK: the client-side ID in the path; not a secret.
    ClientSide,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sdk => "sdk",
            Self::Mobile => "mobile",
            Self::ClientSide => "client",
        }
    }
}

/// The event sources of one environment: digests of its SDK and mobile keys (lowercase
/// hex), and its client-side IDs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventSources {
    pub sdk_keys: Vec<String>,
    pub mobile_keys: Vec<String>,
    pub client_side_ids: Vec<String>,
    /// 0: never set.
    pub version: u64,
}

impl EventSources {
    /// Every (kind, lookup id) this environment answers to.
    pub fn lookups(&self) -> Vec<(SourceKind, String)> {
        let mut out = Vec::new();
        out.extend(self.sdk_keys.iter().map(|d| (SourceKind::Sdk, d.clone())));
        out.extend(self.mobile_keys.iter().map(|d| (SourceKind::Mobile, d.clone())));
        out.extend(
            self.client_side_ids
                .iter()
                .map(|id| (SourceKind::ClientSide, id.clone())),
        );
        out
    }
}

/// The lowercase hex SHA-256 digest of a key: what is stored and looked up.
pub fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an SDK's credential is looked up by: the digest of a secret key, or the
/// client-side ID itself.
pub fn lookup_id(kind: SourceKind, credential: &str) -> String {
    match kind {
        SourceKind::ClientSide => credential.to_owned(),
        SourceKind::Sdk | SourceKind::Mobile => key_digest(credential),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_looked_up_by_digest_and_client_side_ids_as_they_are() {
        let d = lookup_id(SourceKind::Sdk, "sdk-1234");
        assert_eq!(d.len(), 64);
        assert!(!d.contains("sdk-1234"));
        assert_eq!(d, lookup_id(SourceKind::Mobile, "sdk-1234"));
        assert_eq!(lookup_id(SourceKind::ClientSide, "5f0a1b2c"), "5f0a1b2c");
    }
}
