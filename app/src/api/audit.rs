//! Reading the audit trail (auditor, supervisor, admin).

use crate::error::AppError;
use crate::model::audit::{AuditEventDetail, AuditPage, VerificationStatus};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    audit,
    authz::{require, ReadAudit},
    state::app_state,
    ServiceError,
};

/// A page of audit events, newest first, matching `filters` (names of
/// [`crate::model::audit_query::FILTERS`] to the text typed), older than `before`.
#[server(prefix = "/api", endpoint = "audit/events")]
pub async fn list_audit_events(
    filters: Option<std::collections::BTreeMap<String, String>>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    require::<ReadAudit>().await?;
    let state = app_state()?;
    let q = crate::model::audit_query::AuditQuery::parse(&filters.unwrap_or_default())
        .map_err(|fields| AppError::from(ServiceError::Client(AppError::Fields(fields))))?;
    Ok(audit::query::page(&state.pool, &q, before).await?)
}

/// A page of events as [`list_audit_events`] gives it, read again by the live
/// tail because a new event matched: not a person's activity, so it does not keep
/// the session from going idle.
#[server(prefix = "/api", endpoint = "audit/refresh")]
pub async fn refresh_audit_events(
    filters: Option<std::collections::BTreeMap<String, String>>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    list_audit_events(filters, before).await
}

/// One audit event with its chain hashes, its hash recomputed, and its link to
/// the event before it checked.
#[server(prefix = "/api", endpoint = "audit/event")]
pub async fn show_audit_event(id: i64) -> Result<AuditEventDetail, AppError> {
    require::<ReadAudit>().await?;
    let state = app_state()?;
    audit::query::detail(&state.pool, id).await?.ok_or_else(|| {
        AppError::from(ServiceError::Client(AppError::NotFound(format!(
            "There is no audit event {id}."
        ))))
    })
}

/// The latest verification of the whole chain (perhaps running) and the last
/// finished one.
#[server(prefix = "/api", endpoint = "audit/verification")]
pub async fn chain_verification() -> Result<VerificationStatus, AppError> {
    require::<ReadAudit>().await?;
    let state = app_state()?;
    Ok(audit::verification::status(&state.pool, Some(&state.checkpoints)).await?)
}

/// Starts verifying the whole chain in the background (or joins the verification
/// already running); its progress and result are read with [`chain_verification`].
#[server(prefix = "/api", endpoint = "audit/verify")]
pub async fn verify_chain() -> Result<i64, AppError> {
    let caller = require::<ReadAudit>().await?;
    let state = app_state()?;
    let by = audit::Actor::User(caller.user().username.clone());
    let (id, new) = audit::verification::begin(&state.pool, &by).await?;
    if new {
        let pool = state.pool.clone();
        let checkpoints = state.checkpoints.clone();
        tokio::spawn(async move {
            let anchors = audit::verification::Anchors {
                checkpoints: Some(&checkpoints),
                expected: None,
            };
            if let Err(e) = audit::verification::run(&pool, id, &by, anchors, |_| {}).await {
                tracing::error!(error = %e, verification = id, "a chain verification failed");
            }
        });
    }
    crate::ssr::respond::redirect_plain_form("/audit/verify");
    Ok(id)
}

/// A run's report: the run, its approvals, attempts and outputs, its audit events,
/// and the chain verified over them.
#[server(prefix = "/api", endpoint = "runs/report")]
pub async fn show_run_report(id: i64) -> Result<crate::model::run_report::RunReport, AppError> {
    let caller = require::<ReadAudit>().await?;
    let state = app_state()?;
    let built = crate::ssr::report::build(
        &state.engine,
        &state.pool,
        id,
        &caller.user().username,
        false,
    )
    .await?;
    Ok(built.report)
}
