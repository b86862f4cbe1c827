//! `GET /api/runs/{id}/report.pdf` and `GET /api/runs/{id}/report.jsonl`: a run's
//! report as a PDF (its outputs' JSONL attached inside) and the JSONL alone.
//! Auditors, supervisors and admins; each download is audited before it is sent,
//! and refused when that record cannot be written.

use super::live::caller;
use crate::report;
use app::error::AppError;
use app::model::audit::AuditAction;
use app::model::run_report::{jsonl_name, pdf_name};
use app::ssr::audit::{self, Actor, NewEvent};
use app::ssr::authz::ReadAudit;
use app::ssr::{report::Built, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, text).into_response()
}

/// The report of run `id` for a caller who may read the audit trail, with the
/// download recorded first.
async fn built(
    state: &AppState,
    session: &tower_sessions::Session,
    headers: &HeaderMap,
    id: i64,
    format: &str,
) -> Result<Built, Response> {
    if let Some(refused) = super::csrf::refuse_foreign_download(headers) {
        return Err(refused);
    }
    let who = caller::<ReadAudit>(state, session).await?;
    let built = app::ssr::report::build(&state.engine, &state.pool, id, &who, true)
        .await
        .map_err(|e| {
            let e = AppError::from(e);
            let status =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            plain(status, e.to_string())
        })?;
    audit::append_alone(
        &state.pool,
        NewEvent::new(
            &Actor::User(who),
            AuditAction::ReportExported,
            format!("report:run:{id}"),
            serde_json::json!({
                "run": id,
                "site": built.report.run.summary.site,
                "format": format,
                "last_event": built.report.chain.last.as_ref().map(|e| e.id),
            }),
        ),
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "a report download could not be audited");
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The download could not be recorded in the audit trail, so it was not sent. Try again.",
        )
    })?;
    Ok(built)
}

fn download(content_type: &str, name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/runs/{id}/report.pdf`
pub async fn pdf(
    State(state): State<AppState>,
    session: tower_sessions::Session,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let built = match built(&state, &session, &headers, id, "pdf").await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    // Laying out and compressing a long run's output is CPU work.
    let made =
        tokio::task::spawn_blocking(move || report::render_pdf(&built.report, &built.jsonl)).await;
    match made {
        Ok(Ok(bytes)) => download("application/pdf", &pdf_name(id), bytes),
        Ok(Err(e)) => {
            tracing::error!(error = %e, run = id, "a run report could not be made");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The PDF of run {id} could not be made: {e}. The HTML report and the JSONL still work."),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, run = id, "the PDF task failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The PDF of run {id} could not be made."),
            )
        }
    }
}

/// `GET /api/runs/{id}/report.jsonl`
pub async fn jsonl(
    State(state): State<AppState>,
    session: tower_sessions::Session,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    match built(&state, &session, &headers, id, "jsonl").await {
        Ok(b) => download(
            "application/x-ndjson; charset=utf-8",
            &jsonl_name(id),
            b.jsonl.into_bytes(),
        ),
        Err(answer) => answer,
    }
}
