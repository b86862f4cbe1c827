//! Cross-site request forgery protection for every state-changing request.
//!
//! Session cookies are `SameSite=Lax`; on top of that, a POST (or any method other
//! than GET, HEAD, OPTIONS) must show that it comes from the portal's own pages:
//! `Sec-Fetch-Site: same-origin` (every current browser sends it), or else an
//! `Origin` or `Referer` of the portal's public URL or of the `Host` it was sent to.
//! Requests with none of these are refused: a browser always sends one of them.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfRejection {
    #[error("the request came from another site (Sec-Fetch-Site: {0})")]
    CrossSite(String),
    #[error("the request came from another origin ({0})")]
    ForeignOrigin(String),
    #[error("the request carries neither Sec-Fetch-Site, Origin nor Referer")]
    NoOrigin,
}

fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// Decides whether a request may change state. `public_origin` is the portal's
/// configured origin, such as `https://portal.example.net`.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    public_origin: &str,
) -> Result<(), CsrfRejection> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Some(site) = text("sec-fetch-site") {
        return match site.as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(CsrfRejection::CrossSite(site)),
        };
    }
    let claimed = match text(header::ORIGIN.as_str()) {
        Some(origin) => origin,
        None => match text(header::REFERER.as_str()) {
            Some(referer) => origin_of(&referer).unwrap_or(referer),
            None => return Err(CsrfRejection::NoOrigin),
        },
    };
    let host = text(header::HOST.as_str());
    let same_host = host
        .as_deref()
        .is_some_and(|h| claimed == format!("http://{h}") || claimed == format!("https://{h}"));
    if claimed == public_origin || same_host {
        Ok(())
    } else {
        Err(CsrfRejection::ForeignOrigin(claimed))
    }
}

/// The middleware: answers 403 with the reason when [`check`] refuses.
pub async fn protect(
    State(public_origin): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    match check(request.method(), request.headers(), &public_origin) {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            tracing::warn!(path = %request.uri().path(), %rejection, "refused a cross-site request");
            (
                StatusCode::FORBIDDEN,
                format!("Refused: {rejection}. State-changing requests must come from the portal's own pages.\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PUBLIC: &str = "https://portal.example.net";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn safe_methods_pass() {
        assert_eq!(check(&Method::GET, &HeaderMap::new(), PUBLIC), Ok(()));
    }

    #[test]
    fn same_origin_fetch_metadata_passes_and_cross_site_does_not() {
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[("sec-fetch-site", "same-origin")]),
                PUBLIC
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", PUBLIC)]),
                PUBLIC
            ),
            Err(CsrfRejection::CrossSite("cross-site".into()))
        );
        assert!(check(
            &Method::POST,
            &headers(&[("sec-fetch-site", "same-site")]),
            PUBLIC
        )
        .is_err());
    }

    #[test]
    fn origin_must_be_the_portal() {
        assert_eq!(
            check(&Method::POST, &headers(&[("origin", PUBLIC)]), PUBLIC),
            Ok(())
        );
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[
                    ("origin", "http://127.0.0.1:3000"),
                    ("host", "127.0.0.1:3000")
                ]),
                PUBLIC
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[
                    ("origin", "https://evil.example"),
                    ("host", "portal.example.net")
                ]),
                PUBLIC
            ),
            Err(CsrfRejection::ForeignOrigin("https://evil.example".into()))
        );
        assert!(check(&Method::POST, &headers(&[("origin", "null")]), PUBLIC).is_err());
    }

    #[test]
    fn referer_is_the_fallback_and_nothing_is_refused() {
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[("referer", "https://portal.example.net/users")]),
                PUBLIC
            ),
            Ok(())
        );
        assert!(check(
            &Method::POST,
            &headers(&[("referer", "https://evil.example/x")]),
            PUBLIC
        )
        .is_err());
        assert_eq!(
            check(&Method::POST, &HeaderMap::new(), PUBLIC),
            Err(CsrfRejection::NoOrigin)
        );
        assert_eq!(
            check(&Method::DELETE, &HeaderMap::new(), PUBLIC),
            Err(CsrfRejection::NoOrigin)
        );
    }
}
