//! `GET /api/runs/{id}/live`: a run's live events as server-sent events, for the
//! run page; `GET /api/approvals/live`: a `changed` event whenever a request for
//! approval changes, for the approvals page and the navigation's count. The
//! caller's session and role are checked like a server function's.
//! Each stream ends after a few minutes; the browser's EventSource reconnects at
//! once, and so a revoked session or role stops the stream soon after.

use app::model::run_view::LiveEvent;
use app::ssr::authz::{authorize, Capability, ViewRuns};
use app::ssr::{session, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long one stream lasts before the browser reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

fn event(e: &LiveEvent) -> Event {
    let name = match e {
        LiveEvent::Output { .. } => "output",
        LiveEvent::Progress { .. } => "progress",
        LiveEvent::Changed => "changed",
    };
    Event::default()
        .event(name)
        .data(serde_json::to_string(e).unwrap_or_else(|_| "{}".into()))
}

/// The caller, if signed in with capability `C`; else the answer to give.
pub(crate) async fn caller<C: Capability>(
    state: &AppState,
    session: &tower_sessions::Session,
) -> Result<(), Response> {
    let user = match session::resolve(session, state).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Err((StatusCode::UNAUTHORIZED, "Please sign in to continue.\n").into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "live events could not read the session");
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal cannot reach its database right now.\n",
            )
                .into_response());
        }
    };
    authorize::<C>(user)
        .map(|_| ())
        .map_err(|e| (StatusCode::FORBIDDEN, format!("{e}\n")).into_response())
}

fn respond(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let deadline = tokio::time::sleep(STREAM_LIFETIME);
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(events.take_until(deadline));
    Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A run's events.
pub async fn events(
    State(state): State<AppState>,
    session: tower_sessions::Session,
    Path(run_id): Path<i64>,
) -> Response {
    if let Err(answer) = caller::<ViewRuns>(&state, &session).await {
        return answer;
    }
    let receiver = state.engine.hub().subscribe(run_id);
    // First a `changed`, so a page that subscribes after loading the run reloads
    // it and misses nothing that happened in between.
    let first = stream::once(async { Ok::<Event, Infallible>(event(&LiveEvent::Changed)) });
    let live = stream::unfold(receiver, |mut rx| async move {
        let e = match rx.recv().await {
            Ok(e) => e,
            // Too far behind: the page reloads the run instead.
            Err(RecvError::Lagged(_)) => LiveEvent::Changed,
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<Event, Infallible>(event(&e)), rx))
    });
    respond(first.chain(live))
}

/// Changes of requests for approval. Every signed-in user who follows runs may
/// listen (the navigation's count); what changed is not said, only that
/// something did, and the page asks for what it may see.
pub async fn approvals(
    State(state): State<AppState>,
    session: tower_sessions::Session,
) -> Response {
    if let Err(answer) = caller::<ViewRuns>(&state, &session).await {
        return answer;
    }
    let receiver = state.engine.subscribe_approvals();
    let changed = || Ok::<Event, Infallible>(event(&LiveEvent::Changed));
    let first = stream::once(async move { changed() });
    let live = stream::unfold(receiver, move |mut rx| async move {
        match rx.recv().await {
            Ok(()) | Err(RecvError::Lagged(_)) => Some((changed(), rx)),
            Err(RecvError::Closed) => None,
        }
    });
    respond(first.chain(live))
}
