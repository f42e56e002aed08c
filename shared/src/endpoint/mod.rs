//! A destination's own Segment-compatible receiver (`config.endpoint`: RudderStack's data
//! plane, Jitsu, a self-hosted proxy) and the outbound rules that keep a write key from
//! reaching anything inside the network (README, "Segment-compatible endpoints"):
//! `https://` with a host name, no credentials, query or fragment; never an IP literal;
//! never a name that resolves to a loopback, private, link-local, unique-local, CGNAT,
//! metadata or otherwise special address. The name check runs when the API stores an
//! endpoint and again, through [`GuardedResolver`], before every connection, since DNS
//! can change between the two.

mod address;
mod resolve;

pub use address::refused_class;
pub use resolve::{
    ALLOW_LOOPBACK_VARIABLE, GuardedResolver, Lookup, Outbound, RefusedAddress, StaticLookup, SystemLookup,
    check_resolves, refused_by_resolver,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A receiver's base URL, as the API stores it. `/v1/batch` is appended when sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Endpoint(String);

impl JsonSchema for Endpoint {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Endpoint".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "uri",
            "maxLength": MAX_ENDPOINT_LEN,
            "description": "A Segment-compatible receiver's https:// base URL (RudderStack's data plane, Jitsu, a proxy); /v1/batch is appended. Never an IP address or a name of a private address.",
        })
    }
}

pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Which addresses a write key may be sent to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Local test runs only (`ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS`, which the template never
    /// sets): `http://` and loopback addresses are allowed too, so that an endpoint can
    /// name the Segment stand-in on 127.0.0.1. Every other rule still holds.
    pub allow_loopback: bool,
}

/// Why an endpoint was refused. Says what to fix; never holds a write key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config.endpoint {0}")]
pub struct Refused(String);

impl Refused {
    pub(super) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

impl Endpoint {
    /// Checks the URL itself (not where its name resolves: [`check_resolves`]).
    pub fn parse(text: &str, policy: OutboundPolicy) -> Result<Self, Refused> {
        let endpoint = Self(text.to_owned());
        endpoint.url(policy)?;
        Ok(endpoint)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed URL, checked again: a stored endpoint is never trusted as it is.
    pub fn url(&self, policy: OutboundPolicy) -> Result<reqwest::Url, Refused> {
        if self.0.len() > MAX_ENDPOINT_LEN {
            return Err(Refused::new(format!(
                "is longer than {MAX_ENDPOINT_LEN} characters"
            )));
        }
        let url = reqwest::Url::parse(&self.0).map_err(|e| {
            Refused::new(format!(
                "is not a URL ({e}): give the receiver's https:// address"
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_loopback => {}
            other => {
                return Err(Refused::new(format!(
                    "must use https://, not {other}://: a write key is only sent over TLS"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::new(
                "must not hold credentials (user:password@): the write key is the only credential sent",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Refused::new(
                "must not have a query or fragment: give the receiver's base URL, /v1/batch is appended",
            ));
        }
        match url.host() {
            Some(url::Host::Domain(_)) => {}
            // The URL parser reads every notation of an address (0x7f.1, 2130706433, [::1]).
            Some(url::Host::Ipv4(ip)) => check_ip_literal(IpAddr::V4(ip), policy)?,
            Some(url::Host::Ipv6(ip)) => check_ip_literal(IpAddr::V6(ip), policy)?,
            None => return Err(Refused::new("has no host name")),
        }
        Ok(url)
    }

    /// Where the batches go: the endpoint's path with `/v1/batch` appended.
    pub fn batch_url(&self, policy: OutboundPolicy) -> Result<String, Refused> {
        let url = self.url(policy)?;
        Ok(format!("{}/v1/batch", url.as_str().trim_end_matches('/')))
    }

    /// The host name to resolve.
    pub fn host(&self, policy: OutboundPolicy) -> Result<String, Refused> {
        Ok(self.url(policy)?.host_str().unwrap_or_default().to_owned())
    }
}

fn check_ip_literal(ip: IpAddr, policy: OutboundPolicy) -> Result<(), Refused> {
    if policy.allow_loopback && ip.is_loopback() {
        return Ok(());
    }
    Err(Refused::new(format!(
        "is an IP address ({ip}): give the receiver's host name"
    )))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: OutboundPolicy = OutboundPolicy {
        allow_loopback: false,
    };

    fn refused(text: &str) -> String {
        Endpoint::parse(text, STRICT).unwrap_err().to_string()
    }

    #[test]
    fn accepts_an_https_host_name_with_a_path_and_port() {
        let e = Endpoint::parse("https://hosted.rudderlabs.com:8443/segment/", STRICT).unwrap();
        assert_eq!(
            e.batch_url(STRICT).unwrap(),
            "https://hosted.rudderlabs.com:8443/segment/v1/batch"
        );
        assert_eq!(
            Endpoint::parse("https://jitsu.example.com", STRICT)
                .unwrap()
                .batch_url(STRICT)
                .unwrap(),
            "https://jitsu.example.com/v1/batch"
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_https_base_url() {
        assert!(refused("http://rudder.example.com").contains("https://"));
        assert!(refused("ftp://rudder.example.com").contains("https://"));
        assert!(refused("https://user:pw@rudder.example.com").contains("credentials"));
        assert!(refused("https://user@rudder.example.com").contains("credentials"));
        assert!(refused("https://rudder.example.com/?x=1").contains("query"));
        assert!(refused("https://rudder.example.com/#x").contains("fragment"));
        assert!(refused("rudder.example.com").contains("not a URL"));
    }

    #[test]
    fn refuses_ip_literals_in_every_notation() {
        for literal in [
            "https://127.0.0.1",
            "https://2130706433",
            "https://0x7f.0.0.1",
            "https://0177.0.0.1",
            "https://127.1",
            "https://[::1]",
            "https://[::ffff:127.0.0.1]",
            "https://10.0.0.1",
            "https://169.254.169.254",
            "https://8.8.8.8",
            "https://[2606:4700::1111]",
        ] {
            assert!(refused(literal).contains("IP address"), "{literal}");
        }
    }
}
