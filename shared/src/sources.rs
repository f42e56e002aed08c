//! Event sources: the LaunchDarkly SDK keys, mobile keys and client-side IDs whose events
//! belong to an environment, for the `ingest` function to resolve (README, "The API").
//! SDK and mobile keys are secrets: only their SHA-256 digests are kept.

pub mod origin;

pub use origin::{AllowedOrigins, Origin, OriginError};
use serde::{Deserialize, Serialize};
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
    pub client_side_ids: Vec<ClientSideId>,
    /// 0: never set.
    pub version: u64,
}

/// A client-side ID and the origins whose pages may post its events. As JSON (the API's
/// and the table's), the ID alone when any origin may, else
/// `{"id": …, "allowedOrigins": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ClientSideIdForm", into = "ClientSideIdForm")]
pub struct ClientSideId {
    pub id: String,
    pub allowed_origins: AllowedOrigins,
}

impl ClientSideId {
    /// A client-side ID whose events pages on any origin may post.
    pub fn any_origin(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ClientSideIdForm {
    Id(String),
    #[serde(rename_all = "camelCase")]
    Restricted {
        id: String,
        #[serde(default)]
        allowed_origins: AllowedOrigins,
    },
}

impl From<ClientSideIdForm> for ClientSideId {
    fn from(form: ClientSideIdForm) -> Self {
        match form {
            ClientSideIdForm::Id(id) => Self::any_origin(id),
            ClientSideIdForm::Restricted { id, allowed_origins } => Self { id, allowed_origins },
        }
    }
}

impl From<ClientSideId> for ClientSideIdForm {
    fn from(c: ClientSideId) -> Self {
        if c.allowed_origins.is_any() {
            Self::Id(c.id)
        } else {
            Self::Restricted {
                id: c.id,
                allowed_origins: c.allowed_origins,
            }
        }
    }
}

/// One credential's lookup: what it is looked up by, and what it answers with besides its
/// environment (for a client-side ID, the origins allowed; any for keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub kind: SourceKind,
    pub id: String,
    pub allowed_origins: AllowedOrigins,
}

impl Lookup {
    /// The same credential (whatever its origins).
    pub fn same_credential(&self, other: &Lookup) -> bool {
        self.kind == other.kind && self.id == other.id
    }
}

/// What a credential resolves to, in one read: its environment and, for a client-side ID,
/// the origins whose pages may post its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub project: String,
    pub environment: String,
    pub allowed_origins: AllowedOrigins,
}

impl EventSources {
    /// Every credential this environment answers to.
    pub fn lookups(&self) -> Vec<Lookup> {
        let key = |kind| {
            move |d: &String| Lookup {
                kind,
                id: d.clone(),
                allowed_origins: AllowedOrigins::default(),
            }
        };
        let mut out = Vec::new();
        out.extend(self.sdk_keys.iter().map(key(SourceKind::Sdk)));
        out.extend(self.mobile_keys.iter().map(key(SourceKind::Mobile)));
        out.extend(self.client_side_ids.iter().map(|c| Lookup {
            kind: SourceKind::ClientSide,
            id: c.id.clone(),
            allowed_origins: c.allowed_origins.clone(),
        }));
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

    #[test]
    fn a_client_side_id_is_its_id_alone_unless_it_lists_origins() {
        let any = ClientSideId::any_origin("5f0a1b2c");
        assert_eq!(serde_json::to_value(&any).unwrap(), serde_json::json!("5f0a1b2c"));
        let listed = ClientSideId {
            id: "5f0a1b2c".into(),
            allowed_origins: AllowedOrigins::new([Origin::parse("https://shop.example").unwrap()]),
        };
        let json = serde_json::json!({"id": "5f0a1b2c", "allowedOrigins": ["https://shop.example"]});
        assert_eq!(serde_json::to_value(&listed).unwrap(), json);
        for (form, read) in [(json, &listed), (serde_json::json!("5f0a1b2c"), &any)] {
            assert_eq!(&serde_json::from_value::<ClientSideId>(form).unwrap(), read);
        }
        let empty = serde_json::json!({"id": "5f0a1b2c", "allowedOrigins": []});
        assert_eq!(serde_json::from_value::<ClientSideId>(empty).unwrap(), any);
    }
}
