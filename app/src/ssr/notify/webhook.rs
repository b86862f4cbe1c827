//! Sending one notification to a webhook: a JSON POST of the stored body,
//! signed, within the timeout. Redirects are not followed: the portal signs for
//! the URL the admin gave, not for wherever it points. Only `http`/`https` to a
//! host the allow-list admits, and only to addresses it admits once the name is
//! resolved (the resolver below), so a name that resolves to this machine or
//! the metadata service at sending time is not reached. A receiver's error
//! answer is reduced to its status: its body would make the portal an oracle
//! for what runs behind it.

use super::outbox::{Attempt, Claimed};
use super::signature::{
    self, ATTEMPT_HEADER, EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use super::validate::AllowedHosts;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Resolves host names like the system does, then keeps only the addresses
/// the allow-list admits.
struct Guarded {
    allowed: Arc<AllowedHosts>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let admitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed.allows_address(a.ip()))
                .collect();
            if admitted.is_empty() && !found.is_empty() {
                return Err(format!(
                    "{host} resolves only to addresses webhooks may not reach (loopback, link-local, unspecified{}); webhook_allowed_hosts decides",
                    if allowed.is_empty() { "" } else { " or private" }
                )
                .into());
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client deliveries share.
pub fn client(timeout: Duration, allowed: &AllowedHosts) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Guarded {
            allowed: Arc::new(allowed.clone()),
        }))
        .user_agent(concat!("recovery-portal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// The URL's scheme and host checked again before sending: the allow-list may
/// have changed since the webhook was added, and an address in the URL itself
/// never goes through the resolver.
fn admitted(target: &str, allowed: &AllowedHosts) -> Result<(), String> {
    let url = url::Url::parse(target).map_err(|e| format!("the URL cannot be read ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{}:// is not http:// or https://", url.scheme()));
    }
    match url.host() {
        Some(host) => allowed.check_host(&host),
        None => Err("the URL names no host".into()),
    }
}

/// Posts `c`'s body to its URL; any answer but 2xx is a failure, described.
pub async fn send(
    http: &reqwest::Client,
    c: &Claimed,
    timeout: Duration,
    allowed: &AllowedHosts,
) -> Attempt {
    let Some(secret) = c.secret.as_deref() else {
        return Attempt::Refused("the webhook has no secret to sign with".into());
    };
    if let Err(why) = admitted(&c.target, allowed) {
        return Attempt::Refused(format!("not sent: {why}"));
    }
    let answer = http
        .post(&c.target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &c.event)
        .header(EVENT_ID_HEADER, &c.event_id)
        .header(TIMESTAMP_HEADER, chrono::Utc::now().timestamp().to_string())
        .header(ATTEMPT_HEADER, c.attempt.to_string())
        .header(
            SIGNATURE_HEADER,
            signature::sign(secret.as_bytes(), c.body.as_bytes()),
        )
        .body(c.body.clone())
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => return Attempt::Failed(describe(&e, timeout)),
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let mut message = format!("the receiver answered HTTP {status}");
    if status.is_redirection() {
        message.push_str(" (redirects are not followed: configure the final URL)");
    }
    Attempt::Failed(message)
}

/// A transport failure in words, with its causes.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    // Not the error's own text: it names the URL, whose path may hold a token.
    if e.is_timeout() {
        return format!("no answer within {} s (timed out)", timeout.as_secs_f32());
    }
    let mut message = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}
