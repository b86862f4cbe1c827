//! Checking what an admin types for a channel, each mistake named at its field
//! (the form's field name, a message that names the field). Pure.

use lettre::Address;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use url::{Host, Url};

/// A secret shorter than this is refused: the signature is only as strong as it.
pub const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 512;
const MAX_URL_CHARS: usize = 2000;

/// A field and what is wrong with it.
pub type FieldErrors = Vec<(String, String)>;

/// A checked webhook: its URL as normalised, and its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// Where webhooks may post: the admin's allow-list (`webhook_allowed_hosts`).
///
/// Empty (the default): any host, but never a loopback, link-local or
/// unspecified address, checked again on every address a name resolves to when
/// a message is sent. Not empty: only the hosts it names (`hooks.example.net`,
/// `*.example.net` for its subdomains) or addresses in its networks
/// (`10.1.2.0/24`, `127.0.0.1`), and a name's addresses must then not be
/// loopback, link-local, unspecified or private unless a listed network holds
/// them. So an admin cannot make the portal scan its own machine or the cloud's
/// metadata service, and a name that later resolves elsewhere (DNS rebinding)
/// does not reach those either.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    rules: Vec<HostRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    /// Exactly this host name.
    Name(String),
    /// Any name under this domain (written `*.domain`).
    Under(String),
    /// An address in this network.
    Net(IpAddr, u8),
}

fn host_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Loopback, link-local (169.254.0.0/16 with the clouds' metadata service,
/// fe80::/10), unspecified ("this host"), multicast and broadcast: never a
/// webhook receiver unless the allow-list names them.
fn local_only(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 0
                || v4.is_multicast()
                || v4 == Ipv4Addr::BROADCAST
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// RFC 1918, shared (100.64.0.0/10) and unique local (fc00::/7) addresses.
fn private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private() || in_net(IpAddr::V4(v4), IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10)
        }
        IpAddr::V6(v6) => in_net(
            IpAddr::V6(v6),
            IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
            7,
        ),
    }
}

impl AllowedHosts {
    /// Parses the setting: entries separated by commas or blanks. An entry is a
    /// host name, `*.domain`, an IP address, or a network `ADDRESS/BITS`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let lower = entry.to_ascii_lowercase();
            let rule = if let Some((addr, bits)) = lower.split_once('/') {
                let ip = addr
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{entry:?}: {addr:?} is not an IP address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{entry:?}: the prefix must be 0 to {max} bits"))?;
                HostRule::Net(ip, bits)
            } else if let Ok(ip) = lower
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
            {
                HostRule::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
            } else if let Some(domain) = lower.strip_prefix("*.") {
                if !host_name_ok(domain) {
                    return Err(format!("{entry:?} is not `*.` followed by a domain name"));
                }
                HostRule::Under(domain.to_string())
            } else if host_name_ok(&lower) {
                HostRule::Name(lower)
            } else {
                return Err(format!(
                    "{entry:?} is not a host name, `*.domain`, an IP address or a network such as 10.0.0.0/8"
                ));
            };
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn covers_address(&self, ip: IpAddr) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, HostRule::Net(net, bits) if in_net(ip, *net, *bits)))
    }

    fn covers_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|r| match r {
            HostRule::Name(n) => *n == name,
            HostRule::Under(d) => name
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.ends_with('.')),
            HostRule::Net(..) => false,
        })
    }

    /// Whether a webhook may be sent to address `ip` (a URL's literal address,
    /// or one a host name resolved to).
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        if self.covers_address(ip) {
            return true;
        }
        !local_only(ip) && (self.is_empty() || !private(ip))
    }

    /// Checks a URL's host before anything is sent (when a webhook is added, and
    /// again before each delivery, as the list may have changed since).
    pub fn check_host(&self, host: &Host<&str>) -> Result<(), String> {
        let ip = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
            Host::Domain(_) => None,
        };
        match (ip, host) {
            (Some(ip), _) if self.allows_address(ip) && (self.is_empty() || self.covers_address(ip)) => Ok(()),
            (Some(ip), _) if local_only(ip) => Err(format!(
                "{ip} is a loopback, link-local or unspecified address: webhooks do not go there unless webhook_allowed_hosts lists it"
            )),
            (Some(ip), _) => Err(format!("{ip} is not in webhook_allowed_hosts")),
            (None, Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if self.covers_name(&name) {
                    Ok(())
                } else if !self.is_empty() {
                    Err(format!("{name} is not in webhook_allowed_hosts"))
                } else if name == "localhost" || name.ends_with(".localhost") {
                    Err(format!(
                        "{name} is this machine: webhooks do not go there unless webhook_allowed_hosts lists it"
                    ))
                } else {
                    Ok(())
                }
            }
            (None, _) => Err("must name a host".into()),
        }
    }
}

/// What the portal shows and logs of a webhook URL: scheme, host and port, and
/// the last four characters of the rest, which may hold a token.
pub fn redacted_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let origin = u.origin().ascii_serialization();
            let rest = &u[url::Position::BeforePath..];
            if rest.is_empty() || rest == "/" {
                return format!("{origin}/");
            }
            let chars: Vec<char> = rest.chars().collect();
            let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
            format!("{origin}/…/…{tail}")
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// What the audit trail records of a webhook URL: never its path or query,
/// which may carry a token, but enough to tell which receiver it was.
pub fn audited_url(url: &str) -> serde_json::Value {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    match Url::parse(url) {
        Ok(u) => serde_json::json!({
            "scheme": u.scheme(),
            "host": u.host_str(),
            "port": u.port_or_known_default(),
            "url_sha256": digest,
        }),
        Err(_) => serde_json::json!({ "url_sha256": digest }),
    }
}

/// Checks a webhook's URL and secret; every mistake is reported at once.
pub fn webhook(url: &str, secret: &str, allowed: &AllowedHosts) -> Result<Webhook, FieldErrors> {
    let mut errors = FieldErrors::new();
    let url = match webhook_url(url, allowed) {
        Ok(u) => Some(u),
        Err(message) => {
            errors.push(("url".into(), format!("URL: {message}")));
            None
        }
    };
    let secret = secret.trim();
    let chars = secret.chars().count();
    if secret.is_empty() {
        errors.push((
            "secret".into(),
            "Secret: is required: the receiver checks each message's signature with it".into(),
        ));
    } else if chars < MIN_SECRET_CHARS {
        errors.push((
            "secret".into(),
            format!("Secret: must have at least {MIN_SECRET_CHARS} characters (it has {chars})"),
        ));
    } else if chars > MAX_SECRET_CHARS {
        errors.push((
            "secret".into(),
            format!("Secret: must have at most {MAX_SECRET_CHARS} characters"),
        ));
    } else if secret.chars().any(char::is_control) {
        errors.push((
            "secret".into(),
            "Secret: must not contain control characters".into(),
        ));
    }
    match (url, errors.is_empty()) {
        (Some(url), true) => Ok(Webhook {
            url,
            secret: secret.to_string(),
        }),
        _ => Err(errors),
    }
}

fn webhook_url(text: &str, allowed: &AllowedHosts) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required, such as https://chat.example.net/hooks/portal".into());
    }
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("must have at most {MAX_URL_CHARS} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "must start with https:// or http://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold a user name or password: the receiver knows the portal by the signature"
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment (it is never sent)".into());
    }
    if let Some(host) = url.host() {
        allowed.check_host(&host)?;
    }
    Ok(url.to_string())
}

/// Checks a recipient's address (`name@example.net`, no display name).
pub fn email(address: &str) -> Result<String, FieldErrors> {
    let address = address.trim();
    let problem = if address.is_empty() {
        Some("is required, such as oncall@example.net".to_string())
    } else {
        match Address::from_str(address) {
            Ok(a) => return Ok(a.to_string()),
            Err(e) => Some(format!("{address:?} is not an e-mail address ({e})")),
        }
    };
    Err(problem
        .map(|m| vec![("address".to_string(), format!("Address: {m}"))])
        .unwrap_or_default())
}

/// What the portal shows of a secret: its last four characters.
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-long-enough";

    /// With the default (empty) allow-list.
    fn webhook(url: &str, secret: &str) -> Result<Webhook, FieldErrors> {
        super::webhook(url, secret, &AllowedHosts::default())
    }

    fn fields(r: Result<impl std::fmt::Debug, FieldErrors>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn a_good_webhook_is_normalised() {
        let w = webhook(
            " https://Hooks.Example.NET:8443/portal?x=1 ",
            &format!(" {SECRET} "),
        )
        .unwrap();
        assert_eq!(w.url, "https://hooks.example.net:8443/portal?x=1");
        assert_eq!(w.secret, SECRET);
        assert!(webhook("http://10.1.2.3:9000/hook", SECRET).is_ok());
        let local = AllowedHosts::parse("127.0.0.1").unwrap();
        assert!(super::webhook("http://127.0.0.1:9000/hook", SECRET, &local).is_ok());
    }

    fn url_error(url: &str, allowed: &AllowedHosts) -> String {
        let errors = super::webhook(url, SECRET, allowed).unwrap_err();
        assert_eq!(errors.len(), 1, "{url}: {errors:?}");
        assert_eq!(errors[0].0, "url");
        errors[0].1.clone()
    }

    #[test]
    fn without_an_allow_list_local_addresses_are_refused() {
        let none = AllowedHosts::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://0.0.0.0/",
            "http://[::1]:9000/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:3000/",
            "http://api.localhost/",
        ] {
            let e = url_error(url, &none);
            assert!(
                e.contains("loopback, link-local or unspecified") || e.contains("is this machine"),
                "{url}: {e}"
            );
        }
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
        ] {
            assert!(!none.allows_address(ip.parse().unwrap()), "{ip}");
        }
        // Private networks are where company chat servers live.
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "2001:db8::1",
        ] {
            assert!(none.allows_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn an_allow_list_admits_only_what_it_names() {
        let list = AllowedHosts::parse(
            "hooks.example.net, *.chat.example.org 10.20.0.0/16,127.0.0.1 [::1]",
        )
        .unwrap();
        for url in [
            "https://hooks.example.net/x",
            "https://HOOKS.example.net./x",
            "https://a.chat.example.org/x",
            "https://b.a.chat.example.org/x",
            "http://10.20.3.4/x",
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
        ] {
            assert!(super::webhook(url, SECRET, &list).is_ok(), "{url}");
        }
        for url in [
            "https://example.net/x",
            "https://chat.example.org/x",
            "https://evilchat.example.org/x",
            "https://hooks.example.net.evil.test/x",
            "http://10.21.0.1/x",
            "http://8.8.8.8/x",
        ] {
            assert!(
                url_error(url, &list).contains("is not in webhook_allowed_hosts"),
                "{url}"
            );
        }
        assert!(url_error("http://169.254.169.254/", &list).contains("link-local"));
        // At delivery: a listed name resolving to a loopback, link-local or
        // private address not covered by a listed network is refused.
        for (ip, ok) in [
            ("127.0.0.1", true),
            ("10.20.9.9", true),
            ("93.184.216.34", true),
            ("127.0.0.2", false),
            ("169.254.169.254", false),
            ("10.21.0.1", false),
            ("192.168.0.10", false),
            ("fd00::1", false),
        ] {
            assert_eq!(list.allows_address(ip.parse().unwrap()), ok, "{ip}");
        }
    }

    #[test]
    fn bad_allow_list_entries_are_named() {
        for (text, says) in [
            ("10.0.0.0/33", "0 to 32 bits"),
            ("nonsense/8", "is not an IP address"),
            ("*.", "`*.` followed by a domain"),
            ("hooks!.example.net", "is not a host name"),
            ("http://x", "is not an IP address"),
        ] {
            let e = AllowedHosts::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(AllowedHosts::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn urls_are_shown_and_audited_without_their_tokens() {
        let url = "https://hooks.example.net/services/T0/B0/TOPSECRETabcd?token=TOPSECRET";
        let shown = redacted_url(url);
        assert_eq!(shown, "https://hooks.example.net/…/…CRET");
        let shown = redacted_url("https://hooks.example.net/services/TOPSECRETabcd");
        assert_eq!(shown, "https://hooks.example.net/…/…abcd");
        assert_eq!(
            redacted_url("http://127.0.0.1:9000/"),
            "http://127.0.0.1:9000/"
        );
        let audited = audited_url(url);
        assert!(!audited.to_string().contains("TOPSECRET"), "{audited}");
        assert_eq!(audited["host"], "hooks.example.net");
        assert_eq!(audited["port"], 443);
        assert_eq!(audited["scheme"], "https");
        assert_eq!(audited["url_sha256"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn bad_urls_are_refused_at_the_url_field() {
        for (url, says) in [
            ("", "is required"),
            (
                "ftp://example.net/x",
                "must start with https:// or http://, not ftp://",
            ),
            ("javascript:alert(1)", "must start with https://"),
            ("example.net/hook", "is not a URL"),
            (
                "https://user:pw@example.net/",
                "must not hold a user name or password",
            ),
            ("https://example.net/#top", "#fragment"),
        ] {
            let errors = webhook(url, SECRET).unwrap_err();
            assert_eq!(errors.len(), 1, "{url}: {errors:?}");
            assert_eq!(errors[0].0, "url");
            assert!(errors[0].1.starts_with("URL: "), "{errors:?}");
            assert!(errors[0].1.contains(says), "{url}: {errors:?}");
        }
    }

    #[test]
    fn secrets_must_be_there_and_long_enough() {
        let e = webhook("https://example.net/", "   ").unwrap_err();
        assert_eq!(
            e[0],
            (
                "secret".into(),
                "Secret: is required: the receiver checks each message's signature with it".into()
            )
        );
        let e = webhook("https://example.net/", "short").unwrap_err();
        assert!(
            e[0].1.contains("at least 16 characters (it has 5)"),
            "{e:?}"
        );
        assert_eq!(
            fields(webhook("https://example.net/", &"x".repeat(600))),
            ["secret"]
        );
        assert_eq!(
            fields(webhook("https://example.net/", "0123456789abcdef\u{7}")),
            ["secret"]
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        assert_eq!(fields(webhook("gopher://x", "")), ["url", "secret"]);
    }

    #[test]
    fn email_addresses() {
        assert_eq!(email(" oncall@example.net ").unwrap(), "oncall@example.net");
        for bad in [
            "",
            "oncall",
            "oncall@",
            "@example.net",
            "On Call <oncall@example.net>",
            "a b@example.net",
        ] {
            let e = email(bad).unwrap_err();
            assert_eq!(e[0].0, "address", "{bad}");
            assert!(e[0].1.starts_with("Address: "), "{e:?}");
        }
    }

    #[test]
    fn a_hint_shows_four_characters_at_most() {
        assert_eq!(secret_hint(SECRET), "…ough");
        assert_eq!(secret_hint("ab"), "…ab");
        assert_eq!(secret_hint("ééééé"), "…éééé");
    }
}
