//! The runbook catalogue (operators and supervisors).

use crate::error::AppError;
use crate::model::runbook::{RunbookDetail, RunbookSummary};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    authz::{require, RunRecoveries},
    catalogue,
    state::app_state,
};

/// Every runbook the portal loaded.
#[server(prefix = "/api", endpoint = "runbooks/list")]
pub async fn list_runbooks() -> Result<Vec<RunbookSummary>, AppError> {
    require::<RunRecoveries>().await?;
    let state = app_state()?;
    Ok(catalogue::list(&state.runbooks))
}

/// One runbook with its parameters and steps.
#[server(prefix = "/api", endpoint = "runbooks/show")]
pub async fn show_runbook(id: String) -> Result<RunbookDetail, AppError> {
    require::<RunRecoveries>().await?;
    let state = app_state()?;
    Ok(catalogue::detail(&state.runbooks, &id)?)
}
