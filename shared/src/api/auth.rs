//! API tokens: callers send one in `Authorization`, as LaunchDarkly's API clients do
//! (the bare token, or `Bearer <token>`); the deployment knows only their SHA-256 digests
//! (`API_TOKEN_HASHES`, comma-separated hex), so no token is ever stored or logged. A
//! digest written `ro:<hex>` is a read-only token's: for dashboards and audits, it may read
//! but any write is a 403.

use crate::web::ApiError;
use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<([u8; 32], Access)>,
}

/// How many, never which.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.digests.len())
            .finish()
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
        }
    }

    /// A read-only token may only read.
    pub fn permits(self, method: &http::Method) -> Result<(), ApiError> {
        if self == Self::ReadOnly && !matches!(*method, http::Method::GET | http::Method::HEAD) {
            return Err(ApiError::forbidden(format!(
                "this API token is read-only: it can read destinations and settings but not {method} them; use a read-write token"
            )));
        }
        Ok(())
    }
}

/// The prefix of a read-only token's digest in `API_TOKEN_HASHES`.
pub const READ_ONLY_PREFIX: &str = "ro:";

impl Tokens {
    /// From comma-separated hex SHA-256 digests; malformed entries are refused loudly, by
    /// their position only (the list is a secret: neither it nor any part of it is shown).
    pub fn from_hashes(hashes: &str) -> Result<Self, String> {
        let entries: Vec<&str> = hashes
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let digests = entries
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let (hex, access) = match h.strip_prefix(READ_ONLY_PREFIX) {
                    Some(hex) => (hex, Access::ReadOnly),
                    None => (*h, Access::ReadWrite),
                };
                parse_digest(hex).map(|d| (d, access)).ok_or_else(|| {
                    format!(
                        "entry {} of {} is not a hex SHA-256 digest (optionally after ro:)",
                        i + 1,
                        entries.len()
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { digests })
    }

    /// Checks the `Authorization` header of a request; what the token may do.
    pub fn check(&self, authorization: Option<&str>) -> Result<Access, ApiError> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: send an API access token",
            ));
        };
        if self.digests.is_empty() {
            return Err(ApiError::unauthorized(
                "this deployment accepts no API token yet: set the ApiTokenHashes parameter (API_TOKEN_HASHES)",
            ));
        }
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or(header)
            .trim();
        let digest = sha256(token);
        // Compare every digest in full, so timing tells nothing.
        let known = self.digests.iter().fold(None, |found, (d, access)| {
            if constant_time_eq(d, &digest) {
                Some(*access)
            } else {
                found
            }
        });
        known.ok_or_else(|| ApiError::unauthorized("the API access token is not valid"))
    }
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex digest to put in `API_TOKEN_HASHES` for a token.
pub fn token_hash_hex(token: &str) -> String {
    sha256(token).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_tokens_bare_or_as_bearer() {
        let tokens =
            Tokens::from_hashes(&format!("{},{}", token_hash_hex("t1"), token_hash_hex("t2"))).unwrap();
        assert!(tokens.check(Some("t1")).is_ok());
        assert!(tokens.check(Some("Bearer t2")).is_ok());
        assert_eq!(tokens.check(Some("t3")).unwrap_err().code, "unauthorized");
        assert!(
            tokens
                .check(None)
                .unwrap_err()
                .message
                .contains("missing Authorization")
        );
    }

    #[test]
    fn read_only_tokens_may_read_but_not_write() {
        let tokens =
            Tokens::from_hashes(&format!("{},ro:{}", token_hash_hex("rw"), token_hash_hex("ro"))).unwrap();
        assert_eq!(tokens.check(Some("rw")).unwrap(), Access::ReadWrite);
        let ro = tokens.check(Some("ro")).unwrap();
        assert_eq!(ro, Access::ReadOnly);
        assert!(ro.permits(&http::Method::GET).is_ok());
        for method in [http::Method::POST, http::Method::PATCH, http::Method::DELETE] {
            let err = ro.permits(&method).unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (403, "forbidden"));
            assert!(err.message.contains("read-only"));
        }
        assert!(Access::ReadWrite.permits(&http::Method::DELETE).is_ok());
    }

    #[test]
    fn no_configured_token_refuses_everything() {
        let err = Tokens::from_hashes("")
            .unwrap()
            .check(Some("anything"))
            .unwrap_err();
        assert!(err.message.contains("ApiTokenHashes"));
    }

    #[test]
    fn malformed_digests_are_refused() {
        assert!(Tokens::from_hashes("abc").is_err());
        let err = Tokens::from_hashes(&format!("{}, {}", token_hash_hex("t1"), "zz".repeat(32))).unwrap_err();
        assert!(err.contains("entry 2 of 2"), "{err}");
        assert!(
            !err.contains("zz") && !err.contains(&token_hash_hex("t1")[..8]),
            "{err}"
        );
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
