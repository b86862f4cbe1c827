//! Cross-site request forgery protection for every state-changing request.
//!
//! Session cookies are `SameSite=Lax`; on top of that, a POST (or any method other
//! than GET, HEAD, OPTIONS) must show that it comes from the portal's own pages:
//! `Sec-Fetch-Site: same-origin` (every current browser sends it), or else an
//! `Origin` or `Referer` of the portal's public URL or of the `Host` it was sent to.
//! Requests with none of these are refused: a browser always sends one of them.
//! `Sec-Fetch-Site: none` (a request the user started outside any page) is
//! refused as well: no page of the portal posts that way.
//!
//! GET downloads that write an audit record (exports, reports) pass
//! [`check_download`]: a navigation another site started is refused.

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
    #[error("the request was not sent by one of the portal's pages (Sec-Fetch-Site: none)")]
    NotFromAPage,
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
            "same-origin" => Ok(()),
            "none" => Err(CsrfRejection::NotFromAPage),
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

/// Decides whether a GET that writes an audit record (a download) may run: not
/// when another site started it (`Sec-Fetch-Site: cross-site` or `same-site`),
/// since session cookies are sent on such a top-level navigation and would
/// make the user "download" a report, recorded in their name, without asking.
/// The portal's own pages (`same-origin`), a typed address or bookmark
/// (`none`) and clients that send no Fetch Metadata (curl, scripts) pass.
pub fn check_download(headers: &HeaderMap) -> Result<(), CsrfRejection> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site @ ("cross-site" | "same-site")) => Err(CsrfRejection::CrossSite(site.into())),
        _ => Ok(()),
    }
}

/// [`check_download`] as an answer: 403 with the reason, to open the download
/// from the portal instead; `None` when the download may go ahead.
pub fn refuse_foreign_download(headers: &HeaderMap) -> Option<Response> {
    let rejection = check_download(headers).err()?;
    tracing::warn!(%rejection, "refused a download another site started");
    Some(
        (
            StatusCode::FORBIDDEN,
            format!("Refused: {rejection}. Open the download from the portal's own pages.\n"),
        )
            .into_response(),
    )
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
    fn a_post_not_sent_by_a_page_is_refused() {
        // `none` is what a browser says of a request no page made; before, it
        // was let through as if it were the portal's own.
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[("sec-fetch-site", "none"), ("origin", PUBLIC)]),
                PUBLIC
            ),
            Err(CsrfRejection::NotFromAPage)
        );
    }

    #[test]
    fn downloads_started_by_another_site_are_refused() {
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                check_download(&headers(&[("sec-fetch-site", site)])),
                Err(CsrfRejection::CrossSite(site.into()))
            );
        }
        for ok in [
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            HeaderMap::new(),
        ] {
            assert_eq!(check_download(&ok), Ok(()));
        }
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
