//! The origins whose pages may post a client-side ID's events (README, "Pointing your SDKs
//! here"). An origin is what browsers send in `Origin`: `scheme://host[:port]`, the scheme
//! http or https, the host lower-cased, the scheme's default port left out; nothing else
//! (no path, query, fragment or credentials).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv6Addr;

/// Longer than any origin a browser sends for a host name (at most 253 characters).
const MAX_ORIGIN_CHARS: usize = 300;

/// One origin, in the form browsers send it, so that comparing is equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

/// Why a text is not an origin; each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("is not an origin: send scheme://host[:port], for example https://shop.example")]
    Form,
    #[error("is over {MAX_ORIGIN_CHARS} characters: send scheme://host[:port]")]
    TooLong,
    #[error("has the scheme {0:?}: an origin's scheme is http or https")]
    Scheme(String),
    #[error(
        "has a path, query or fragment: an origin is scheme://host[:port] only, without a trailing /, for example https://shop.example"
    )]
    Path,
    #[error("has credentials (user@): an origin is scheme://host[:port] only")]
    Credentials,
    #[error("has a wildcard: list each origin (scheme://host[:port]) in full")]
    Wildcard,
    #[error(
        "has the host {0:?}: a host is letters, digits, '-' and '.' (an internationalised name in its punycode form, xn--…), or an IP address ([…] for IPv6)"
    )]
    Host(String),
    #[error("has the port {0:?}: a port is a number from 1 to 65535")]
    Port(String),
}

impl Origin {
    /// The origin `text` names, normalised as browsers send it.
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        if text.chars().count() > MAX_ORIGIN_CHARS {
            return Err(OriginError::TooLong);
        }
        let (scheme, rest) = text.split_once("://").ok_or(OriginError::Form)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(OriginError::Form);
        }
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return Err(OriginError::Scheme(scheme)),
        };
        if rest.contains(['/', '?', '#']) {
            return Err(OriginError::Path);
        }
        if rest.contains('@') {
            return Err(OriginError::Credentials);
        }
        if rest.contains('*') {
            return Err(OriginError::Wildcard);
        }
        if rest.is_empty() || rest.chars().any(char::is_whitespace) {
            return Err(OriginError::Form);
        }
        let (host, port) = split_port(rest)?;
        let host = normal_host(host)?;
        Ok(Self(match port {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Origin {
    type Error = OriginError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> Self {
        origin.0
    }
}

/// The origins whose pages may post a client-side ID's events; none listed: any origin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AllowedOrigins(Vec<Origin>);

impl AllowedOrigins {
    /// Origins one client-side ID may list: enough for a site's hosts and its staging
    /// copies, and a lookup item well under DynamoDB's 400 KB.
    pub const MAX: usize = 50;

    /// `origins`, each once, in their order.
    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Self {
        let mut listed: Vec<Origin> = Vec::new();
        for origin in origins {
            if !listed.contains(&origin) {
                listed.push(origin);
            }
        }
        Self(listed)
    }

    /// No origin listed: pages on any origin may post.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    pub fn origins(&self) -> &[Origin] {
        &self.0
    }

    /// Whether a request with this `Origin` header (none: not sent) may post.
    pub fn admits(&self, origin: Option<&str>) -> bool {
        if self.is_any() {
            return true;
        }
        // `null` (a sandboxed page, a file), or anything else that is no origin: not listed.
        origin
            .and_then(|o| Origin::parse(o).ok())
            .is_some_and(|o| self.0.contains(&o))
    }
}

/// `host` and its port (without the `:`), if one is given; the port a number in 1..=65535.
fn split_port(rest: &str) -> Result<(&str, Option<String>), OriginError> {
    let (host, port) = if rest.starts_with('[') {
        match rest.find(']') {
            Some(end) => match &rest[end + 1..] {
                "" => (rest, None),
                tail => match tail.strip_prefix(':') {
                    Some(port) => (&rest[..=end], Some(port)),
                    None => return Err(OriginError::Host(rest.to_owned())),
                },
            },
            None => return Err(OriginError::Host(rest.to_owned())),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n.to_string()),
            _ => return Err(OriginError::Port(p.to_owned())),
        },
    };
    Ok((host, port))
}

/// The host lower-cased: a name of letters, digits and '-' in non-empty labels, or an IP
/// address (IPv6 in brackets, in its canonical form).
fn normal_host(host: &str) -> Result<String, OriginError> {
    let refused = || OriginError::Host(host.to_owned());
    if let Some(inner) = host.strip_prefix('[') {
        let address: Ipv6Addr = inner
            .strip_suffix(']')
            .and_then(|a| a.parse().ok())
            .ok_or_else(refused)?;
        return Ok(format!("[{address}]"));
    }
    let name = host.to_ascii_lowercase();
    let label_ok =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(refused());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        Origin::parse(text)
            .unwrap_or_else(|e| panic!("{text} {e}"))
            .to_string()
    }

    #[test]
    fn an_origin_is_normalised_as_browsers_send_it() {
        assert_eq!(parsed("https://shop.example"), "https://shop.example");
        assert_eq!(parsed("HTTPS://Shop.Example"), "https://shop.example");
        assert_eq!(parsed("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(parsed("https://shop.example:443"), "https://shop.example");
        assert_eq!(parsed("http://shop.example:80"), "http://shop.example");
        assert_eq!(parsed("http://shop.example:443"), "http://shop.example:443");
        assert_eq!(parsed("https://127.0.0.1:8443"), "https://127.0.0.1:8443");
        assert_eq!(parsed("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(parsed("https://[2001:DB8::1]"), "https://[2001:db8::1]");
        assert_eq!(
            parsed("https://xn--bcher-kva.example"),
            "https://xn--bcher-kva.example"
        );
    }

    #[test]
    fn what_is_no_origin_says_what_to_send() {
        for (text, error) in [
            ("shop.example", OriginError::Form),
            ("https://", OriginError::Form),
            ("", OriginError::Form),
            (" https://shop.example", OriginError::Form),
            ("ftp://shop.example", OriginError::Scheme("ftp".into())),
            (
                "chrome-extension://abc",
                OriginError::Scheme("chrome-extension".into()),
            ),
            ("https://shop.example/", OriginError::Path),
            ("https://shop.example/cart", OriginError::Path),
            ("https://shop.example?a=1", OriginError::Path),
            ("https://shop.example#top", OriginError::Path),
            ("https://ann:pw@shop.example", OriginError::Credentials),
            ("https://*.shop.example", OriginError::Wildcard),
            ("https://shop..example", OriginError::Host("shop..example".into())),
            (
                "https://bücher.example",
                OriginError::Host("bücher.example".into()),
            ),
            (
                "https://shop_1.example",
                OriginError::Host("shop_1.example".into()),
            ),
            ("https://[::1", OriginError::Host("[::1".into())),
            ("https://[not-ip]", OriginError::Host("[not-ip]".into())),
            ("https://shop.example:0", OriginError::Port("0".into())),
            ("https://shop.example:65536", OriginError::Port("65536".into())),
            ("https://shop.example:", OriginError::Port("".into())),
            ("https://shop.example:8o", OriginError::Port("8o".into())),
        ] {
            assert_eq!(Origin::parse(text), Err(error), "{text:?}");
        }
        let long = format!("https://{}.example", "a".repeat(300));
        assert_eq!(Origin::parse(&long), Err(OriginError::TooLong));
        assert!(OriginError::Path.to_string().contains("https://shop.example"));
    }

    #[test]
    fn a_list_admits_its_origins_only_and_no_list_admits_any() {
        let any = AllowedOrigins::default();
        assert!(any.is_any());
        assert!(any.admits(Some("https://anywhere.example")));
        assert!(any.admits(None), "no list: a post without Origin, as today");

        let listed = AllowedOrigins::new(
            [
                "https://shop.example",
                "http://localhost:3000",
                "https://shop.example:443",
            ]
            .map(|o| Origin::parse(o).unwrap()),
        );
        assert_eq!(listed.origins().len(), 2, "each once");
        assert!(listed.admits(Some("https://shop.example")));
        assert!(listed.admits(Some("http://localhost:3000")));
        for refused in [
            None,
            Some("null"),
            Some(""),
            Some("http://shop.example"),
            Some("https://shop.example:8443"),
            Some("https://evil.shop.example"),
            Some("https://shop.example.evil"),
            Some("http://localhost:3001"),
        ] {
            assert!(!listed.admits(refused), "{refused:?}");
        }
    }

    #[test]
    fn a_list_reads_back_as_written_and_a_stored_non_origin_is_an_error() {
        let listed = AllowedOrigins::new([Origin::parse("https://shop.example").unwrap()]);
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json, serde_json::json!(["https://shop.example"]));
        assert_eq!(serde_json::from_value::<AllowedOrigins>(json).unwrap(), listed);
        assert!(serde_json::from_value::<AllowedOrigins>(serde_json::json!(["shop.example"])).is_err());
    }
}
