//! Approvals: supervisors review and decide requests for destructive steps;
//! admins switch a site's break-glass mode.

use crate::error::AppError;
use crate::model::approval::{ApprovalDetail, ApprovalsOverview};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::model::approval::{Decider, Decision};
#[cfg(feature = "ssr")]
use crate::ssr::{
    audit::Actor,
    authz::{require, ApproveDestructiveSteps, ManageSites, ViewRuns},
    respond::redirect_plain_form,
    state::app_state,
};

/// Open requests with their runs, and the latest decided ones.
#[server(prefix = "/api", endpoint = "approvals/list")]
pub async fn list_approvals() -> Result<ApprovalsOverview, AppError> {
    require::<ApproveDestructiveSteps>().await?;
    let state = app_state()?;
    Ok(state.engine.approvals_overview().await?)
}

/// The open requests as [`list_approvals`] gives them, read again by the
/// approvals page because its live stream announced a change: not a person's
/// activity, so it does not keep the session from going idle.
#[server(prefix = "/api", endpoint = "approvals/refresh")]
pub async fn refresh_approvals() -> Result<ApprovalsOverview, AppError> {
    require::<ApproveDestructiveSteps>().await?;
    let state = app_state()?;
    Ok(state.engine.approvals_overview().await?)
}

/// One request with its run.
#[server(prefix = "/api", endpoint = "approvals/show")]
pub async fn show_approval(id: i64) -> Result<ApprovalDetail, AppError> {
    require::<ViewRuns>().await?;
    let state = app_state()?;
    Ok(state.engine.approval_detail(id).await?)
}

/// How many requests the caller could decide now (the navigation's badge); 0
/// for roles that decide none.
#[server(prefix = "/api", endpoint = "approvals/count")]
pub async fn count_approvals() -> Result<i64, AppError> {
    let caller = require::<ViewRuns>().await?;
    let user = caller.user();
    if !user
        .role
        .permits(crate::model::Permission::ApproveDestructiveSteps)
    {
        return Ok(0);
    }
    let state = app_state()?;
    Ok(state.engine.awaiting(user.id).await?)
}

/// A decision on request `id`: `approve` (text: an optional comment;
/// `break_glass_reason` to approve one's own request in break-glass mode) or
/// `reject` (text: the required reason). Any signed-in user may ask; the rules
/// refuse, and audit, everyone but a supervisor other than the requester.
#[server(prefix = "/api", endpoint = "approvals/decide")]
pub async fn decide_approval(
    id: i64,
    decision: String,
    #[server(default)] text: String,
    #[server(default)] break_glass_reason: Option<String>,
) -> Result<(), AppError> {
    let caller = require::<ViewRuns>().await?;
    let state = app_state()?;
    let decision = match decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => {
            return Err(AppError::invalid(
                "decision",
                format!("{other:?} is not one of approve, reject"),
            ))
        }
    };
    let user = caller.user();
    state
        .engine
        .decide(
            id,
            Decider {
                user_id: user.id,
                role: user.role,
            },
            &Actor::User(user.username.clone()),
            decision,
            &text,
            break_glass_reason
                .as_deref()
                .filter(|r| !r.trim().is_empty()),
        )
        .await?;
    redirect_plain_form("/approvals");
    Ok(())
}

/// Switches break-glass mode of a site on or off, with a reason (admins).
#[server(prefix = "/api", endpoint = "sites/break_glass")]
pub async fn set_break_glass(
    site: String,
    #[server(default)] enabled: bool,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    let user = caller.user();
    state
        .engine
        .set_break_glass(
            &site,
            enabled,
            &reason,
            user.id,
            &Actor::User(user.username.clone()),
        )
        .await?;
    redirect_plain_form("/sites");
    Ok(())
}
