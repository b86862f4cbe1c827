//! Reading the audit trail (auditor, supervisor, admin).

use crate::error::AppError;
use crate::model::audit::AuditPage;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    audit,
    authz::{require, ReadAudit},
    state::app_state,
};

/// A page of audit events, newest first, optionally filtered.
#[server(prefix = "/api", endpoint = "audit/events")]
pub async fn list_audit_events(
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    require::<ReadAudit>().await?;
    let state = app_state()?;
    let clean = |s: Option<String>| s.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let filter = audit::AuditFilter {
        actor: clean(actor),
        action: clean(action),
        before,
    };
    Ok(audit::page(&state.pool, &filter).await?)
}
