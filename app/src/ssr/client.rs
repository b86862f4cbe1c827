//! Who is on the other end of a request: the client's address and whether it
//! reached the portal over https.
//!
//! Directly connected, the client is the TCP peer and the scheme is the portal's
//! own (`public_url`). Behind a reverse proxy the peer is the proxy, so the
//! client comes from `X-Forwarded-For` and the scheme from `X-Forwarded-Proto`,
//! but only when the peer is listed in `trusted_proxies`: anyone else could write
//! those headers to pose as another address (and escape its sign-in throttle).

use ipnet::IpNet;
use std::net::IpAddr;

/// The request's client, put into the request's extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub address: IpAddr,
    /// Whether the client reached the portal over https.
    pub https: bool,
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list of addresses or CIDR ranges (`10.0.0.5`, `10.0.0.0/24`,
    /// `::1`); the message names the entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{e:?} is neither an IP address nor a CIDR range like 10.0.0.0/24")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with these forwarding
    /// headers, on a portal whose own scheme is https when `https_by_default`.
    ///
    /// `X-Forwarded-For` is read from the right: each proxy appends the address it
    /// received from, so the rightmost entry not written by a trusted proxy is the
    /// client. Entries left of it could have been written by the client itself.
    pub fn client(
        &self,
        peer: IpAddr,
        forwarded_for: &[&str],
        forwarded_proto: Option<&str>,
        https_by_default: bool,
    ) -> ClientInfo {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return ClientInfo {
                address: peer,
                https: https_by_default,
            };
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let mut address = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    address = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                // Garbage where an address should be: stop at the last good hop
                // rather than believe anything further left.
                None => break,
            }
        }
        // The scheme the first proxy saw is the last one it forwarded.
        let https = match forwarded_proto
            .and_then(|p| p.split(',').next_back())
            .map(|p| p.trim().to_ascii_lowercase())
        {
            Some(p) if p == "https" => true,
            Some(p) if p == "http" => false,
            _ => https_by_default,
        };
        ClientInfo { address, https }
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[::1]:80`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    let inner = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']'))?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("a test address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        let c = none.client(ip("192.0.2.9"), &["203.0.113.7"], Some("https"), false);
        assert_eq!(c.address, ip("192.0.2.9"));
        assert!(!c.https, "an untrusted peer cannot claim https");
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(&["127.0.0.1", "10.1.0.0/16"]).expect("valid");
        // The client wrote a fake first entry; the proxies appended the real hops.
        let c = t.client(
            ip("127.0.0.1"),
            &["198.51.100.66, 203.0.113.7", "10.1.2.3"],
            Some("https"),
            false,
        );
        assert_eq!(c.address, ip("203.0.113.7"));
        assert!(c.https);
    }

    #[test]
    fn without_forwarding_headers_a_trusted_proxy_is_the_client() {
        let t = TrustedProxies::parse(&["127.0.0.1"]).expect("valid");
        let c = t.client(ip("127.0.0.1"), &[], None, true);
        assert_eq!(
            c,
            ClientInfo {
                address: ip("127.0.0.1"),
                https: true
            }
        );
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk() {
        let t = TrustedProxies::parse(&["127.0.0.1"]).expect("valid");
        let c = t.client(ip("127.0.0.1"), &["203.0.113.7, nonsense"], None, false);
        assert_eq!(c.address, ip("127.0.0.1"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let t = TrustedProxies::parse(&["::1"]).expect("valid");
        let c = t.client(ip("::1"), &["203.0.113.7:4431"], Some("http"), true);
        assert_eq!(c.address, ip("203.0.113.7"));
        assert!(!c.https);
        let c = t.client(ip("::1"), &["[2001:db8::5]:443"], None, false);
        assert_eq!(c.address, ip("2001:db8::5"));
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("::ffff:192.0.2.1"), &[], None, false)
                .address,
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8", "proxy.example"]).unwrap_err();
        assert!(e.contains("\"proxy.example\""), "{e}");
    }
}
