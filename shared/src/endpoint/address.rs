//! Which addresses may receive a write key: every class that is inside a network, or
//! special, is refused (README, "Destination options").

use super::OutboundPolicy;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: OutboundPolicy = OutboundPolicy {
        allow_loopback: false,
    };

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
}
