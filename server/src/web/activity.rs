//! What keeps a session from going idle: requests a person makes (pages, server
//! functions, downloads). Live event streams and the navigation's background
//! count are made by an open tab on its own, so they do not count; otherwise a
//! browser left open would stay signed in for the session's whole lifetime.

use app::ssr::{session, AppState};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

/// Whether a request to `path` is made by an open page on its own rather than by
/// the person using it.
pub fn is_background(path: &str) -> bool {
    path == "/api/approvals/live"
        || path == "/api/audit/live"
        || path == "/api/approvals/count"
        || path == "/api/users/notice_count"
        // Re-reads by an open page after its live stream announced a change.
        || path == "/api/runs/refresh"
        || path == "/api/approvals/refresh"
        || path == "/api/audit/refresh"
        || (path.starts_with("/api/runs/") && path.ends_with("/live"))
}

/// The middleware: records the person's activity before the request is handled
/// (and ends a session that has been idle too long).
pub async fn track(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if !is_background(request.uri().path()) {
        if let Err(e) = session::touch(&session, &state).await {
            tracing::error!(error = %e, "the session's activity could not be recorded");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal cannot reach its database right now. Try again in a moment.\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::is_background;

    #[test]
    fn streams_and_the_background_count_are_not_a_persons_requests() {
        for path in [
            "/api/runs/12/live",
            "/api/approvals/live",
            "/api/audit/live",
            "/api/approvals/count",
            "/api/users/notice_count",
            "/api/runs/refresh",
            "/api/approvals/refresh",
            "/api/audit/refresh",
        ] {
            assert!(is_background(path), "{path}");
        }
        for path in [
            "/runs/12",
            "/api/runs/show",
            "/api/runs/step",
            "/api/audit/export.csv",
            "/api/runs/12/report.pdf",
            "/api/auth/me",
            "/",
        ] {
            assert!(!is_background(path), "{path}");
        }
    }
}
