//! API tokens: callers send one in `Authorization`, as LaunchDarkly's API clients do
//! (the bare token, or `Bearer <token>`); the deployment knows only their SHA-256 digests
//! (`API_TOKEN_HASHES`, comma-separated hex), so no token is ever stored or logged.

use super::error::ApiError;
use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    /// From comma-separated hex SHA-256 digests; malformed entries are refused loudly.
    pub fn from_hashes(hashes: &str) -> Result<Self, String> {
        let digests = hashes
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| parse_digest(h).ok_or_else(|| format!("{h:.8}… is not a hex SHA-256 digest")))
            .collect::<Result<_, _>>()?;
        Ok(Self { digests })
    }

    /// From `API_TOKEN_HASHES`; unset means no token is accepted.
    pub fn from_env() -> Result<Self, String> {
        Self::from_hashes(&std::env::var("API_TOKEN_HASHES").unwrap_or_default())
    }

    /// Checks the `Authorization` header of a request.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
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
        let known = self
            .digests
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &digest));
        if known {
            Ok(())
        } else {
            Err(ApiError::unauthorized("the API access token is not valid"))
        }
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
        assert!(Tokens::from_hashes(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
