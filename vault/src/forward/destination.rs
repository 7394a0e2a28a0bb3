//! Where a forward may go: an https URL whose host is on the account's allow-list, named by a
//! DNS name (never an IP literal) that resolves only to public addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{ApiCode, ApiError};
use crate::store::{self, Store};

/// The https port, the only one allowed unless the allow-list entry names another.
const DEFAULT_PORT: u16 = 443;

/// Most allow-list entries an account may have.
pub const MAX_HOSTS: usize = 50;

/// A checked destination URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Lower case, no trailing dot.
    pub host: String,
    /// 443 unless the URL names one.
    pub port: u16,
    /// `/path?query`, at least `/`.
    pub path_and_query: String,
}

impl Destination {
    /// The `Host` header: the port only when it is not the default.
    pub fn authority(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The refusal of a destination; `why` is a fixed sentence.
pub fn not_allowed(why: &'static str) -> ApiError {
    ApiError::invalid_request(ApiCode::ForwardDestinationNotAllowed, why).param("destination")
}

fn invalid() -> ApiError {
    ApiError::invalid_request(
        ApiCode::ParameterInvalid,
        "destination must be an absolute https URL such as https://api.psp.example/v1/payments.",
    )
    .param("destination")
}

/// A DNS name: letters, digits and hyphens in dot-separated labels, whose last label is not
/// all digits (`127.1` or `2130706433` would be read as IPv4 by some resolvers).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

fn looks_like_ip(host: &str) -> bool {
    host.starts_with('[')
        || host.parse::<IpAddr>().is_ok()
        // Hex and octal IPv4 forms (0x7f.1) that resolvers accept.
        || host.split('.').all(|l| {
            !l.is_empty()
                && (l.bytes().all(|b| b.is_ascii_digit())
                    || l.strip_prefix("0x").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
        })
}

/// Parses `https://host[:port]/path?query`. Plain http, user info, fragments and IP literals
/// are refused.
pub fn parse(url: &str) -> Result<Destination, ApiError> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower == "https://" {
        &url[8..]
    } else if lower.starts_with("http://") {
        return Err(not_allowed(
            "Forwarding is https only: the card would cross the network in clear.",
        ));
    } else {
        return Err(invalid());
    };
    if url.len() > 2048 || url.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
        return Err(invalid());
    }
    if url.contains('#') {
        return Err(invalid());
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(invalid());
    }
    if authority.starts_with('[') {
        return Err(not_allowed(
            "IP addresses are refused as destinations: name the processor by its host name.",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(invalid)?,
        ),
        None => (authority, DEFAULT_PORT),
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if looks_like_ip(&host) {
        return Err(not_allowed(
            "IP addresses are refused as destinations: name the processor by its host name.",
        ));
    }
    if !is_dns_name(&host) {
        return Err(invalid());
    }
    let path_and_query = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(Destination {
        host,
        port,
        path_and_query,
    })
}

/// Normalises an allow-list entry: `host`, `*.domain`, either with an optional `:port`.
pub fn normalize_host_pattern(entry: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "forward host \"{entry}\" must look like api.psp.example, *.psp.example or localhost:8443 (no scheme, no IP address)"
        )
    };
    let entry_lc = entry.trim().to_ascii_lowercase();
    let (host, port) = match entry_lc.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
        ),
        None => (entry_lc.as_str(), None),
    };
    let name = host.strip_prefix("*.").unwrap_or(host);
    if looks_like_ip(name) || !is_dns_name(name) || (host.starts_with("*.") && !name.contains('.'))
    {
        return Err(bad());
    }
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// Whether `dest` is on the allow-list: the exact host or a `*.domain` entry for one of its
/// subdomains (at any depth, never the domain itself), and the port the entry names (443 when
/// it names none).
pub fn allowed(dest: &Destination, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let (host, port) = match p.rsplit_once(':') {
            Some((h, port)) => (h, port.parse::<u16>().ok()),
            None => (p.as_str(), Some(DEFAULT_PORT)),
        };
        if port != Some(dest.port) {
            return false;
        }
        match host.strip_prefix("*.") {
            Some(domain) => dest
                .host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => dest.host == host,
        }
    })
}

/// Whether an address may be reached without `--forward-allow-private`. The source is IANA's:
/// every block of the IPv4 and IPv6 Special-Purpose Address Registries is refused (even the
/// few marked globally reachable, anycast services where no processor lives), and so are
/// IPv4 multicast and, in IPv6, everything outside global unicast `2000::/3` (the IPv6 Address
/// Space registry). The two forms that carry traffic to an embedded IPv4 address, IPv4-mapped
/// `::ffff:0:0/96` and the well-known NAT64 prefix `64:ff9b::/96`, are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// The IANA IPv4 Special-Purpose Address Registry (2025), and multicast.
const SPECIAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private use
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // shared address space (carrier NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link local (cloud metadata)
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private use
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 31, 196, 0), 24), // AS112-v4
    (Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private use
    (Ipv4Addr::new(192, 175, 48, 0), 24), // direct delegation AS112 service
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),  // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),  // reserved
    (Ipv4Addr::new(255, 255, 255, 255), 32), // limited broadcast
];

/// The IANA IPv6 Special-Purpose Address Registry (2025), the blocks inside `2000::/3`
/// (everything outside it is refused anyway).
const SPECIAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // TEREDO
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128), // port control protocol anycast
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2), 128), // TURN anycast
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 3), 128), // DNS-SD service registration anycast
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48), // benchmarking
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32), // AMT
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48), // AS112-v6
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28), // deprecated ORCHID
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28), // ORCHIDv2
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28), // drone remote ID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48), // direct delegation AS112
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // segment routing (SRv6) SIDs
];

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !SPECIAL_V4.iter().any(|&block| in_v4(ip, block))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped: the socket connects to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // The well-known NAT64 prefix reaches the IPv4 address it embeds (a vault on an
    // IPv6-only network reaches IPv4 processors through it). The local-use NAT64 prefix
    // 64:ff9b:1::/48 and IPv4-translated ::ffff:0:a.b.c.d fall outside 2000::/3 below.
    if in_v6(ip, (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)) {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    in_v6(ip, (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3))
        && !SPECIAL_V6.iter().any(|&block| in_v6(ip, block))
}

/// Resolves the destination once and checks every address it gives: one refused address
/// refuses the destination, so that a name cannot mix a public address with an internal one.
/// The connection then goes to these addresses, never to a second lookup's.
pub async fn resolve(dest: &Destination, allow_private: bool) -> Result<Vec<SocketAddr>, ApiError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((dest.host.as_str(), dest.port))
        .await
        .map_err(|_| {
            ApiError {
                status: axum::http::StatusCode::BAD_GATEWAY,
                kind: "api_error",
                ..ApiError::invalid_request(
                    ApiCode::UpstreamDnsFailed,
                    "The destination's host name did not resolve.",
                )
            }
            .param("destination")
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ApiError {
            status: axum::http::StatusCode::BAD_GATEWAY,
            kind: "api_error",
            ..ApiError::invalid_request(
                ApiCode::UpstreamDnsFailed,
                "The destination's host name did not resolve.",
            )
        }
        .param("destination"));
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(not_allowed(
            "The destination resolves to a loopback, private, link-local or metadata address.",
        ));
    }
    Ok(addrs)
}

/// Replaces an account's forward allow-list; returns it normalised.
pub async fn set_forward_hosts(
    store: &dyn Store,
    account_id: &str,
    hosts: &[String],
) -> Result<Vec<String>, String> {
    let mut hosts = hosts
        .iter()
        .map(|h| normalize_host_pattern(h))
        .collect::<Result<Vec<_>, _>>()?;
    hosts.sort();
    hosts.dedup();
    if hosts.len() > MAX_HOSTS {
        return Err(format!("at most {MAX_HOSTS} forward hosts"));
    }
    let (id, kept) = (account_id.to_owned(), hosts.clone());
    match store::write(store, move |tx| tx.set_forward_hosts(&id, &kept)).await {
        Ok(true) => Ok(hosts),
        Ok(false) => Err(format!("no account {account_id}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_with_a_host_name() {
        let d = parse("https://API.psp.example./v1/pay?x=1").unwrap();
        assert_eq!(d.host, "api.psp.example");
        assert_eq!(d.port, 443);
        assert_eq!(d.path_and_query, "/v1/pay?x=1");
        assert_eq!(d.authority(), "api.psp.example");
        let d = parse("https://localhost:8443").unwrap();
        assert_eq!((d.port, d.path_and_query.as_str()), (8443, "/"));
        assert_eq!(d.authority(), "localhost:8443");
        for (url, code) in [
            ("http://api.psp.example/", "forward_destination_not_allowed"),
            ("https://127.0.0.1/", "forward_destination_not_allowed"),
            ("https://[::1]:443/", "forward_destination_not_allowed"),
            ("https://0x7f.1/", "forward_destination_not_allowed"),
            ("https://2130706433/", "forward_destination_not_allowed"),
            ("https://user@api.psp.example/", "parameter_invalid"),
            ("https://api.psp.example/#frag", "parameter_invalid"),
            ("https://api.psp.example:0/", "parameter_invalid"),
            ("https://api psp/", "parameter_invalid"),
            ("ftp://api.psp.example/", "parameter_invalid"),
        ] {
            assert_eq!(parse(url).unwrap_err().code.as_str(), code, "{url}");
        }
    }

    #[test]
    fn the_allow_list_matches_hosts_wildcards_and_ports() {
        let list: Vec<String> = ["api.stripe.com", "*.adyen.com", "localhost:8443"]
            .iter()
            .map(|s| normalize_host_pattern(s).unwrap())
            .collect();
        let ok = |u: &str| allowed(&parse(u).unwrap(), &list);
        assert!(ok("https://api.stripe.com/v1/payment_methods"));
        assert!(!ok("https://api.stripe.com:8443/"));
        assert!(!ok("https://evil-api.stripe.com/"));
        assert!(ok("https://checkout-test.adyen.com/v71/payments"));
        assert!(ok("https://a.b.adyen.com/"));
        assert!(!ok("https://adyen.com/"));
        assert!(!ok("https://evil-adyen.com/"));
        assert!(ok("https://localhost:8443/"));
        assert!(!ok("https://localhost/"));
        for bad in [
            "https://x.example",
            "10.0.0.1",
            "*",
            "*.com:x",
            "a..b",
            "*.com",
        ] {
            assert!(normalize_host_pattern(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_host_pattern(" API.Example ").unwrap(),
            "api.example"
        );
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
