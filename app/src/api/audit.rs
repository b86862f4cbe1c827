//! Reading the audit trail (auditor, supervisor, admin).

use crate::error::AppError;
use crate::model::audit::{AuditEventView, AuditPage};
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

/// One audit event with its chain hashes.
#[server(prefix = "/api", endpoint = "audit/event")]
pub async fn show_audit_event(id: i64) -> Result<AuditEventView, AppError> {
    require::<ReadAudit>().await?;
    let state = app_state()?;
    audit::query::one(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no audit event {id}.")))
}
