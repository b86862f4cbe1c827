//! `GET /api/audit/export.csv` and `GET /api/audit/export.jsonl`: the audit
//! events that match the query string's filters, streamed from the database as
//! they are read (the download starts at once and memory stays flat). Auditors,
//! supervisors and admins only; each export is itself audited.

use super::limits::Limits;
use super::live::caller;
use app::model::audit::AuditAction;
use app::model::audit_query::AuditQuery;
use app::ssr::audit::{self, export, query, Actor, NewEvent};
use app::ssr::authz::ReadAudit;
use app::ssr::AppState;
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The response header that carries the chain's head (`ID:HASH`) when the
/// export started. A header, not a line of the CSV: any extra line or column
/// would make the CSV something other than the events; the JSONL has it in its
/// trailer as well.
pub const CHAIN_HEAD_HEADER: &str = "x-audit-chain-head";

/// The two formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson; charset=utf-8",
        }
    }
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// The lines of an export of the events `events`, in order: for JSONL a header,
/// the events and a trailer with their count, the last hash and the whole
/// chain's head `chain_head` (read when the export started).
pub fn lines(
    format: Format,
    filters: BTreeMap<String, String>,
    chain_head: Option<(i64, String)>,
    events: futures_util::stream::BoxStream<
        'static,
        Result<(audit::chain::ChainedEvent, String), app::ssr::ServiceError>,
    >,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    let head = match format {
        Format::Csv => export::CSV_HEADER.to_string(),
        Format::Jsonl => export::jsonl_header(&filters),
    };
    struct Tail {
        events: futures_util::stream::BoxStream<
            'static,
            Result<(audit::chain::ChainedEvent, String), app::ssr::ServiceError>,
        >,
        count: u64,
        last: Option<String>,
        done: bool,
        chain_head: Option<(i64, String)>,
    }
    let body = futures_util::stream::unfold(
        Tail {
            events,
            count: 0,
            last: None,
            done: false,
            chain_head,
        },
        move |mut t| async move {
            if t.done {
                return None;
            }
            match t.events.next().await {
                Some(Ok((e, hash))) => {
                    let line = match format {
                        Format::Csv => export::csv_line(&e, &hash),
                        Format::Jsonl => export::jsonl_line(&e, &hash),
                    };
                    t.count += 1;
                    t.last = Some(hash);
                    Some((Ok(line), t))
                }
                // The download breaks off rather than ending like a whole
                // export: a JSONL without its trailer is refused offline.
                Some(Err(e)) => {
                    tracing::error!(error = %e, "an audit export stopped");
                    t.done = true;
                    Some((Err(std::io::Error::other(e.to_string())), t))
                }
                None => {
                    t.done = true;
                    match format {
                        Format::Csv => None,
                        Format::Jsonl => Some((
                            Ok(export::jsonl_trailer_with_head(
                                t.count,
                                t.last.as_deref(),
                                t.chain_head.as_ref().map(|(id, h)| (*id, h.as_str())),
                            )),
                            t,
                        )),
                    }
                }
            }
        },
    );
    futures_util::stream::once(async move { Ok(head) }).chain(body)
}

async fn respond(
    format: Format,
    state: AppState,
    limits: Arc<Limits>,
    session: tower_sessions::Session,
    headers: HeaderMap,
    params: BTreeMap<String, String>,
) -> Response {
    if let Some(refused) = super::csrf::refuse_foreign_download(&headers) {
        return refused;
    }
    let who = match caller::<ReadAudit>(&state, &session).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let q = match AuditQuery::parse(&params) {
        Ok(q) => q,
        Err(errors) => {
            let text = errors
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join("\n");
            return (StatusCode::BAD_REQUEST, format!("{text}\n")).into_response();
        }
    };
    let filters = q.to_params();
    // Held by the body until the download ends or the client goes away.
    let permit = match limits.export() {
        Ok(permit) => permit,
        Err(answer) => return answer.into_response(),
    };
    // Who took what out of the portal is part of the record.
    if let Err(e) = audit::append_alone(
        &state.pool,
        NewEvent::new(
            &Actor::User(who),
            AuditAction::AuditExported,
            "audit",
            serde_json::json!({ "format": format.extension(), "filters": filters }),
        ),
    )
    .await
    {
        tracing::error!(error = %e, "an audit export could not be audited");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "The export could not be recorded in the audit trail, so it was not started. Try again.\n",
        )
            .into_response();
    }
    // The head including the export's own event: what an auditor keeps to check
    // later that nothing up to it was removed (`audit verify --expect-head`).
    let chain_head = match audit::store::head(&state.pool).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "an audit export could not read the chain's head");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let events = query::stream(state.pool.clone(), q);
    let name = format!(
        "audit-{}.{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            CHAIN_HEAD_HEADER,
            chain_head
                .as_ref()
                .map(|(id, hash)| format!("{id}:{hash}"))
                .unwrap_or_default(),
        )
        .body(Body::from_stream(
            lines(format, filters, chain_head, events).map(move |line| {
                let _held = &permit;
                line
            }),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /api/audit/export.csv`
pub async fn csv(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    session: tower_sessions::Session,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    respond(Format::Csv, state, limits, session, headers, params).await
}

/// `GET /api/audit/export.jsonl`
pub async fn jsonl(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    session: tower_sessions::Session,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    respond(Format::Jsonl, state, limits, session, headers, params).await
}
