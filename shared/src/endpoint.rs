//! A destination's own Segment-compatible receiver (`config.endpoint`: RudderStack's data
//! plane, Jitsu, a self-hosted proxy) and the outbound rules that keep a write key from
//! reaching anything inside the network (README, "Segment-compatible endpoints"):
//! `https://` with a host name, no credentials, query or fragment; never an IP literal;
//! never a name that resolves to a loopback, private, link-local, unique-local, CGNAT,
//! metadata or otherwise special address. The name check runs when the API stores an
//! endpoint and again, through [`GuardedResolver`], before every connection, since DNS
//! can change between the two.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

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
    fn new(why: impl Into<String>) -> Self {
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

/// Why an address may not receive a write key, or `None` when it may.
pub fn refused_class(ip: IpAddr, policy: OutboundPolicy) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4, policy),
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address are judged by it.
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
                return v4_class(v4, policy);
            }
            v6_class(v6, policy)
        }
    }
}

fn v4_class(ip: Ipv4Addr, policy: OutboundPolicy) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        return (!policy.allow_loopback).then_some("loopback");
    }
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some("cloud metadata");
    }
    Some(match () {
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if a == 100 && (64..128).contains(&b) => "CGNAT (shared address space)",
        _ if a == 0 || ip.is_unspecified() => "unspecified (\"this network\")",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ if ip.is_multicast() => "multicast",
        _ if a == 192 && b == 0 && c == 0 => "IETF protocol assignments",
        _ if a == 198 && (b == 18 || b == 19) => "benchmarking",
        _ if ip.is_documentation() => "documentation",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr, policy: OutboundPolicy) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        return (!policy.allow_loopback).then_some("loopback");
    }
    Some(match () {
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud metadata",
        _ if ip.is_unspecified() => "unspecified",
        _ if (first & 0xfe00) == 0xfc00 => "unique-local",
        _ if (first & 0xffc0) == 0xfe80 => "link-local",
        _ if (first & 0xffc0) == 0xfec0 => "site-local",
        _ if ip.is_multicast() => "multicast",
        _ if first == 0x2001 && ip.segments()[1] == 0x0db8 => "documentation",
        // IPv4-compatible (::a.b.c.d, deprecated) and other reserved low addresses.
        _ if ip.segments()[..6].iter().all(|&s| s == 0) => "reserved",
        _ => return None,
    })
}

/// The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(from(s[6], s[7]));
    }
    (s[0] == 0x2002).then(|| from(s[1], s[2]))
}

/// Looks a host name up. The system's resolver in production; a fixed table in tests, so
/// that every class of address can be shown refused without any traffic to it.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (getaddrinfo, through Tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed hosts table; names not in it do not resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticLookup(pub HashMap<String, Vec<IpAddr>>);

impl Lookup for StaticLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.0.get(host.trim_end_matches('.')).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// The addresses `host` resolves to, refused when any of them may not receive a write key
/// (one bad address among good ones is how DNS rebinding works). A name that does not
/// resolve is `Ok(None)`: the API accepts it and sending checks again.
pub async fn check_resolves(
    lookup: &dyn Lookup,
    host: &str,
    policy: OutboundPolicy,
) -> Result<Option<Vec<IpAddr>>, Refused> {
    let Ok(addrs) = lookup.lookup(host.to_owned()).await else {
        return Ok(None);
    };
    for ip in &addrs {
        if let Some(class) = refused_class(*ip, policy) {
            return Err(Refused::new(format!(
                "resolves to a {class} address ({ip}): a write key is only sent to public receivers"
            )));
        }
    }
    Ok(Some(addrs))
}

/// The outbound rules and the resolver they use: held by the API (to check an endpoint
/// when it is stored) and by the Segment client (to check it before each connection).
#[derive(Clone)]
pub struct Outbound {
    pub policy: OutboundPolicy,
    pub lookup: Arc<dyn Lookup>,
}

/// How long the API waits for an endpoint's name to resolve.
const LOOKUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The variable of the test-only policy (README, "Configuration"); the template never sets it.
pub const ALLOW_LOOPBACK_VARIABLE: &str = "ENDPOINT_ALLOW_LOOPBACK_FOR_TESTS";

impl Default for Outbound {
    fn default() -> Self {
        Self::new(OutboundPolicy::default())
    }
}

impl Outbound {
    /// The system's resolver.
    pub fn new(policy: OutboundPolicy) -> Self {
        Self {
            policy,
            lookup: Arc::new(SystemLookup),
        }
    }

    pub fn with_lookup(mut self, lookup: impl Lookup) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The URL's rules, then where its name resolves now.
    pub async fn check(&self, endpoint: &Endpoint) -> Result<(), Refused> {
        let host = endpoint.host(self.policy)?;
        if !matches!(endpoint.url(self.policy)?.host(), Some(url::Host::Domain(_))) {
            return Ok(()); // a loopback literal, allowed by the test-only policy
        }
        // A lookup that hangs must not hold the API's answer: past the budget, the name
        // counts as not resolving now (accepted; sending checks it again).
        let checked = check_resolves(&*self.lookup, &host, self.policy);
        match tokio::time::timeout(LOOKUP_BUDGET, checked).await {
            Ok(checked) => checked.map(|_| ()),
            Err(_) => Ok(()),
        }
    }

    /// The resolver for the HTTP client that sends to endpoints.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            lookup: self.lookup.clone(),
            policy: self.policy,
        }
    }
}

/// The error a refused connection carries, so that sending can tell it from a network
/// failure and fail at once instead of retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RefusedAddress(pub Refused);

/// A `reqwest` resolver that refuses the addresses above at connect time, for the client
/// that sends to `config.endpoint`s.
pub struct GuardedResolver {
    pub lookup: Arc<dyn Lookup>,
    pub policy: OutboundPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.lookup.clone();
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = match check_resolves(&*lookup, &host, policy).await {
                Ok(Some(addrs)) if !addrs.is_empty() => addrs,
                Ok(_) => {
                    return Err(Box::new(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} does not resolve"),
                    )) as _);
                }
                Err(refused) => return Err(Box::new(RefusedAddress(refused)) as _),
            };
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Whether a request failed because [`GuardedResolver`] refused its address.
pub fn refused_by_resolver(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return Some(refused.0.to_string());
        }
        source = e.source();
    }
    None
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

    #[test]
    fn classes_of_addresses() {
        let class = |ip: &str| refused_class(ip.parse().unwrap(), STRICT);
        assert_eq!(class("127.0.0.1"), Some("loopback"));
        assert_eq!(class("::1"), Some("loopback"));
        assert_eq!(class("10.1.2.3"), Some("private"));
        assert_eq!(class("172.16.0.1"), Some("private"));
        assert_eq!(class("192.168.1.1"), Some("private"));
        assert_eq!(class("169.254.10.10"), Some("link-local"));
        assert_eq!(class("fe80::1"), Some("link-local"));
        assert_eq!(class("fd12:3456::1"), Some("unique-local"));
        assert_eq!(class("100.64.0.1"), Some("CGNAT (shared address space)"));
        assert_eq!(class("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(class("fd00:ec2::254"), Some("cloud metadata"));
        assert_eq!(class("100.100.100.200"), Some("cloud metadata"));
        assert_eq!(class("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(class("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(class("64:ff9b::a00:1"), Some("private"), "NAT64 of 10.0.0.1");
        assert_eq!(class("2002:7f00:1::"), Some("loopback"), "6to4 of 127.0.0.1");
        assert_eq!(class("::"), Some("unspecified"));
        assert_eq!(class("8.8.8.8"), None);
        assert_eq!(class("2606:4700::1111"), None);
        assert_eq!(class("100.128.0.1"), None);
        let lenient = OutboundPolicy { allow_loopback: true };
        assert_eq!(refused_class("127.0.0.1".parse().unwrap(), lenient), None);
        assert_eq!(
            refused_class("10.0.0.1".parse().unwrap(), lenient),
            Some("private")
        );
    }

    #[tokio::test]
    async fn a_name_is_refused_when_any_of_its_addresses_is() {
        let hosts = StaticLookup(HashMap::from([
            ("public.test".into(), vec!["8.8.8.8".parse().unwrap()]),
            (
                "rebind.test".into(),
                vec!["8.8.8.8".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            ),
        ]));
        assert!(
            check_resolves(&hosts, "public.test", STRICT)
                .await
                .unwrap()
                .is_some()
        );
        let err = check_resolves(&hosts, "rebind.test", STRICT).await.unwrap_err();
        assert!(err.to_string().contains("loopback address (127.0.0.1)"), "{err}");
        assert_eq!(check_resolves(&hosts, "nowhere.test", STRICT).await, Ok(None));
    }

    /// A resolver that never answers.
    struct Hanging;

    impl Lookup for Hanging {
        fn lookup(&self, _: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_hangs_does_not_hold_the_api_past_its_budget() {
        let outbound = Outbound::new(STRICT).with_lookup(Hanging);
        let endpoint = Endpoint::parse("https://slow-dns.example.com", STRICT).unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(outbound.check(&endpoint).await, Ok(()));
        assert_eq!(started.elapsed(), LOOKUP_BUDGET);
    }
}
