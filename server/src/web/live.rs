//! `GET /api/runs/{id}/live`: a run's live events as server-sent events, for the
//! run page; `GET /api/approvals/live`: a `changed` event whenever a request for
//! approval changes, for the approvals page and the navigation's count;
//! `GET /api/audit/live`: new audit events for the audit page's live tail. The
//! caller's session and role are checked like a server function's.
//! Each stream ends after a few minutes; the browser's EventSource reconnects at
//! once, and so a revoked session or role stops the stream soon after. Every
//! [`SESSION_CHECK`] the stream reads its session afresh and ends when the
//! session has ended (signed out, revoked, or idle: streams do not count as
//! activity, see [`super::activity`]). A user may hold at most
//! `max_live_streams_per_user` streams at once.

use super::limits::{Limits, StreamPermit};

use app::model::run_view::LiveEvent;
use app::ssr::authz::{authorize, Capability, ViewRuns};
use app::ssr::{session, AppState};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long one stream lasts before the browser reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// How often an open stream checks that its session is still valid.
pub const SESSION_CHECK: Duration = Duration::from_secs(10);

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

/// The caller's user name, if signed in with capability `C`; else the answer to give.
pub(crate) async fn caller<C: Capability>(
    state: &AppState,
    session: &tower_sessions::Session,
) -> Result<String, Response> {
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
        .map(|proof| proof.user().username.clone())
        .map_err(|e| (StatusCode::FORBIDDEN, format!("{e}\n")).into_response())
}

/// Completes once the session `id` no longer resolves to a signed-in user: read
/// afresh from the store every [`SESSION_CHECK`], since the stream's own copy
/// was read when it connected.
async fn session_ended(state: AppState, id: Option<tower_sessions::session::Id>) {
    let Some(id) = id else {
        return;
    };
    let store = Arc::new(tower_sessions_sqlx_store::PostgresStore::new(
        state.pool.clone(),
    ));
    loop {
        tokio::time::sleep(SESSION_CHECK).await;
        let fresh = tower_sessions::Session::new(Some(id), store.clone(), None);
        match session::resolve(&fresh, &state).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            // The browser reconnects, and is checked again then.
            Err(e) => {
                tracing::warn!(error = %e, "a live stream could not check its session");
                return;
            }
        }
    }
}

/// A signed-in caller with capability `C` and a free stream permit; else the
/// answer to give.
async fn open<C: Capability>(
    state: &AppState,
    limits: &Limits,
    session: &tower_sessions::Session,
) -> Result<StreamPermit, Response> {
    let who = caller::<C>(state, session).await?;
    limits.stream(&who).map_err(IntoResponse::into_response)
}

fn respond(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    permit: StreamPermit,
    state: AppState,
    session: &tower_sessions::Session,
) -> Response {
    let deadline = tokio::time::sleep(STREAM_LIFETIME);
    let ended = session_ended(state, session.id());
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(events.take_until(deadline).take_until(ended).map(move |e| {
            let _held = &permit;
            e
        }));
    Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A run's events.
pub async fn events(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    session: tower_sessions::Session,
    Path(run_id): Path<i64>,
) -> Response {
    let permit = match open::<ViewRuns>(&state, &limits, &session).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
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
    respond(first.chain(live), permit, state, &session)
}

/// Changes of requests for approval. Every signed-in user who follows runs may
/// listen (the navigation's count); what changed is not said, only that
/// something did, and the page asks for what it may see.
pub async fn approvals(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    session: tower_sessions::Session,
) -> Response {
    let permit = match open::<ViewRuns>(&state, &limits, &session).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
    let receiver = state.engine.subscribe_approvals();
    let changed = || Ok::<Event, Infallible>(event(&LiveEvent::Changed));
    let first = stream::once(async move { changed() });
    let live = stream::unfold(receiver, move |mut rx| async move {
        match rx.recv().await {
            Ok(()) | Err(RecvError::Lagged(_)) => Some((changed(), rx)),
            Err(RecvError::Closed) => None,
        }
    });
    respond(first.chain(live), permit, state, &session)
}

/// How often a live tail of the audit trail looks for new events.
const TAIL_POLL: Duration = Duration::from_secs(1);

/// `GET /api/audit/live?filters`: a `changed` event whenever an event matching
/// the viewer's filters is committed, for the audit page's live tail. Committed
/// events are polled for rather than announced, so events written by other
/// processes (the command line, a second portal) are seen too.
pub async fn audit_tail(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    session: tower_sessions::Session,
    axum::extract::Query(params): axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    let permit = match open::<app::ssr::authz::ReadAudit>(&state, &limits, &session).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
    let q = match app::model::audit_query::AuditQuery::parse(&params) {
        Ok(q) => q,
        Err(errors) => {
            let text: Vec<String> = errors.into_iter().map(|(_, m)| m).collect();
            return (StatusCode::BAD_REQUEST, format!("{}\n", text.join("\n"))).into_response();
        }
    };
    let head = match app::ssr::audit::query::head_id(&state.pool).await {
        Ok(head) => head,
        Err(e) => {
            tracing::error!(error = %e, "the audit tail could not read the chain's head");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal cannot reach its database right now.\n",
            )
                .into_response();
        }
    };
    let changed = |newest: i64| {
        Ok::<Event, Infallible>(Event::default().event("changed").data(newest.to_string()))
    };
    let first = stream::once(async move { changed(head) });
    let pool = state.pool.clone();
    let live = stream::unfold((pool, q, head), move |(pool, q, mut last)| async move {
        loop {
            tokio::time::sleep(TAIL_POLL).await;
            match app::ssr::audit::query::newest_after(&pool, &q, last).await {
                Ok(Some(newest)) => {
                    last = newest;
                    return Some((changed(newest), (pool, q, last)));
                }
                Ok(None) => {}
                // The browser reconnects and starts over.
                Err(e) => {
                    tracing::warn!(error = %e, "the audit tail stopped");
                    return None;
                }
            }
        }
    });
    respond(first.chain(live), permit, state, &session)
}
