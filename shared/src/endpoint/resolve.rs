//! Where an endpoint's name resolves, checked by the outbound rules: once when the API
//! stores the endpoint ([`Outbound::check`]) and before every connection
//! ([`GuardedResolver`], the resolver of the client that sends to endpoints).

use super::address::refused_class;
use super::{Endpoint, OutboundPolicy, Refused};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: OutboundPolicy = OutboundPolicy {
        allow_loopback: false,
    };

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
