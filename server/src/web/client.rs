//! Identifies each request's client (address, https) once, for every layer and
//! server function after it, and marks the session cookie `Secure` whenever the
//! client reached the portal over https, also through a trusted reverse proxy.

use app::ssr::client::TrustedProxies;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// What the client layer needs to know.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub trusted_proxies: TrustedProxies,
    /// The portal's public URL is https: every client reached it over https.
    pub https_by_default: bool,
}

/// The middleware: puts a [`ClientInfo`] into the request's extensions.
pub async fn identify(
    State(settings): State<Arc<ClientSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer: IpAddr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        // Only a server built without connect info lacks it; all its clients
        // then share one address, which is safe (stricter), never looser.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let headers = request.headers();
    let forwarded_for: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let hops: Vec<&str> = forwarded_for.iter().map(String::as_str).collect();
    let client = settings.trusted_proxies.client(
        peer,
        &hops,
        forwarded_proto.as_deref(),
        settings.https_by_default,
    );
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https {
        secure_cookies(&mut response);
    }
    response
}

/// Adds `Secure` to every cookie the response sets without it.
fn secure_cookies(response: &mut Response) {
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secured = match cookie.to_str() {
            Ok(text)
                if !text
                    .split(';')
                    .any(|attr| attr.trim().eq_ignore_ascii_case("secure")) =>
            {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            }
            _ => cookie,
        };
        headers.append(header::SET_COOKIE, secured);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_without_secure_get_it_once() {
        let mut r = Response::new(axum::body::Body::empty());
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("portal_session=abc; HttpOnly; Path=/"),
        );
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("other=1; Secure"),
        );
        secure_cookies(&mut r);
        let got: Vec<&str> = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            got,
            [
                "portal_session=abc; HttpOnly; Path=/; Secure",
                "other=1; Secure"
            ]
        );
    }
}
