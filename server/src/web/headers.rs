//! Security headers on every response (pages, server functions, live streams,
//! downloads, static files): a Content-Security-Policy, `nosniff`, no framing and
//! a same-origin referrer.
//!
//! The policy allows scripts from the portal itself and inline scripts carrying
//! this response's nonce only: Leptos writes its hydration script and the data of
//! resources resolved on the server as inline `<script>`s, and gives them the
//! nonce found in the render's context, which [`provide_nonce`] sets to the one
//! this middleware put in the request. The wasm bundle needs `'wasm-unsafe-eval'`
//! (compiling WebAssembly), not `'unsafe-eval'`.

use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The nonce of the current request, for the page render.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

impl CspNonce {
    /// 128 random bits, base64url: what Leptos makes itself.
    fn fresh() -> Self {
        use base64::Engine as _;
        let bytes: [u8; 16] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// The Content-Security-Policy for a response whose inline scripts carry `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Adds the security headers to whatever the portal answers.
pub async fn secure(mut request: Request, next: Next) -> Response {
    let nonce = CspNonce::fresh();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (HeaderName::from_static("referrer-policy"), "same-origin"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&nonce.0)) {
        headers.insert(HeaderName::from_static("content-security-policy"), csp);
    }
    response
}

/// Makes the request's nonce the one Leptos writes into inline scripts. Called
/// in the render's context (after Leptos has provided the request and a nonce of
/// its own, which this replaces).
pub fn provide_nonce() {
    let nonce = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_the_portal_needs_and_nothing_more() {
        let csp = content_security_policy("abc");
        for part in [
            "default-src 'self'",
            "script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{part} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    }

    #[test]
    fn nonces_differ() {
        let (a, b) = (CspNonce::fresh(), CspNonce::fresh());
        assert_ne!(a.0, b.0);
        assert_eq!(a.0.len(), 22);
    }
}
