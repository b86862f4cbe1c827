//! Decides, before a page is rendered, whether the caller may see it: unsigned
//! callers go to sign-in, users who must change their password go to Account, and
//! a role without the page's permission gets the page's 403 view with status 403.
//! The rule per path is `app::pages::page_access`, shared with the client.

use app::pages::{page_access, PageAccess};
use app::ssr::{session, AppState};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The middleware.
pub async fn guard(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let access = page_access(request.uri().path());
    if access == PageAccess::Unknown {
        return next.run(request).await;
    }
    let user = match session::resolve(&session, &state).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "page guard could not read the session");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal cannot reach its database right now. Try again in a moment.\n",
            )
                .into_response();
        }
    };
    match (access, user) {
        (PageAccess::Public, Some(_)) => Redirect::to("/").into_response(),
        (PageAccess::Public, None) => next.run(request).await,
        (_, None) => {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let location = if target == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", encode_component(target))
            };
            Redirect::to(&location).into_response()
        }
        (PageAccess::Account, Some(_)) => next.run(request).await,
        (_, Some(user)) if user.must_change_password => Redirect::to("/account").into_response(),
        (PageAccess::Needs(permission), Some(user)) if !user.role.permits(permission) => {
            let mut response = next.run(request).await;
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
        _ => next.run(request).await,
    }
}
