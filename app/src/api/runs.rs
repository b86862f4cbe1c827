//! Runs: starting them, following them, and the operator's commands on their steps.

use crate::error::AppError;
use crate::model::run_view::{RunSummary, RunView, SiteView};
use leptos::prelude::*;
use std::collections::BTreeMap;

#[cfg(feature = "ssr")]
use crate::ssr::{
    audit::Actor,
    authz::{require, RunRecoveries, ViewRuns},
    engine::StepCommand as Command,
    respond::redirect_plain_form,
    state::app_state,
};

/// The sites runs can be started on.
#[server(prefix = "/api", endpoint = "runs/sites")]
pub async fn list_sites() -> Result<Vec<SiteView>, AppError> {
    require::<RunRecoveries>().await?;
    let state = app_state()?;
    Ok(state
        .engine
        .sites()
        .into_iter()
        .map(|s| SiteView {
            name: s.name,
            description: s.description,
        })
        .collect())
}

/// Starts a run; answers its id. Every unacceptable value is named.
#[server(prefix = "/api", endpoint = "runs/start")]
pub async fn start_run(
    runbook: String,
    site: String,
    #[server(default)] params: BTreeMap<String, String>,
) -> Result<i64, AppError> {
    let caller = require::<RunRecoveries>().await?;
    let state = app_state()?;
    let user = caller.user();
    let id = state
        .engine
        .start(
            user.id,
            &Actor::User(user.username.clone()),
            &runbook,
            &site,
            &params,
        )
        .await?;
    redirect_plain_form(&format!("/runs/{id}"));
    Ok(id)
}

/// Runs, newest first: `active`, `finished` or `all`, optionally of one runbook.
#[server(prefix = "/api", endpoint = "runs/list")]
pub async fn list_runs(
    #[server(default)] filter: String,
    #[server(default)] runbook: Option<String>,
) -> Result<Vec<RunSummary>, AppError> {
    require::<ViewRuns>().await?;
    let state = app_state()?;
    let filter = crate::model::run_view::RunFilter::parse(&filter);
    let runbook = runbook.filter(|r| !r.is_empty());
    Ok(state.engine.list(filter, runbook.as_deref()).await?)
}

/// One run with its steps, attempts and output.
#[server(prefix = "/api", endpoint = "runs/show")]
pub async fn show_run(id: i64) -> Result<RunView, AppError> {
    require::<ViewRuns>().await?;
    let state = app_state()?;
    Ok(state.engine.view(id).await?)
}

/// A run as [`show_run`] gives it, read again by an open run page because its live
/// stream announced a change: made by the page on its own, so it does not keep
/// the session from going idle (`server/src/web/activity.rs`).
#[server(prefix = "/api", endpoint = "runs/refresh")]
pub async fn refresh_run(id: i64) -> Result<RunView, AppError> {
    require::<ViewRuns>().await?;
    let state = app_state()?;
    Ok(state.engine.view(id).await?)
}

/// The operator's command on a step: `run` (with `approval`: run a destructive
/// step under that approval), `confirm` (text: the observation), `skip` and
/// `mark_done` (text: the reason), `request_approval` (text: the justification),
/// `withdraw` (text: why), `stop`.
#[server(prefix = "/api", endpoint = "runs/step")]
pub async fn command_step(
    run: i64,
    position: i32,
    command: String,
    #[server(default)] text: String,
    #[server(default)] approval: Option<i64>,
) -> Result<(), AppError> {
    let caller = require::<RunRecoveries>().await?;
    let state = app_state()?;
    let command = match (command.as_str(), approval) {
        ("run", Some(approval)) => Command::RunApproved { approval },
        ("run", None) => Command::Run,
        ("confirm", _) => Command::Confirm { observation: text },
        ("skip", _) => Command::Skip { reason: text },
        ("mark_done", _) => Command::MarkDone { reason: text },
        ("request_approval", _) => Command::RequestApproval {
            justification: text,
        },
        ("withdraw", _) => Command::Withdraw { reason: text },
        ("stop", _) => Command::Stop,
        (other, _) => {
            return Err(AppError::invalid(
                "command",
                format!(
                    "{other:?} is not one of run, confirm, skip, mark_done, request_approval, withdraw, stop"
                ),
            ))
        }
    };
    let user = caller.user();
    state
        .engine
        .command(
            run,
            position,
            command,
            crate::model::approval::Decider {
                user_id: user.id,
                role: user.role,
            },
            &Actor::User(user.username.clone()),
        )
        .await?;
    redirect_plain_form(&format!("/runs/{run}"));
    Ok(())
}

/// Changes a parameter of an active run, with a reason. An open request for
/// approval whose action changes with it is voided.
#[server(prefix = "/api", endpoint = "runs/parameter")]
pub async fn change_parameter(
    run: i64,
    name: String,
    value: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let caller = require::<RunRecoveries>().await?;
    let state = app_state()?;
    state
        .engine
        .change_parameter(
            run,
            caller.user().id,
            &name,
            &value,
            &reason,
            &Actor::User(caller.user().username.clone()),
        )
        .await?;
    redirect_plain_form(&format!("/runs/{run}"));
    Ok(())
}

/// Cancels a run, with a reason.
#[server(prefix = "/api", endpoint = "runs/cancel")]
pub async fn cancel_run(run: i64, #[server(default)] reason: String) -> Result<(), AppError> {
    let caller = require::<RunRecoveries>().await?;
    let state = app_state()?;
    state
        .engine
        .cancel_run(
            run,
            caller.user().id,
            &reason,
            &Actor::User(caller.user().username.clone()),
        )
        .await?;
    redirect_plain_form(&format!("/runs/{run}"));
    Ok(())
}

/// Takes an active run over from its owner, with a reason (audited): from then
/// on only the caller may act on it. The previous owner's open request for
/// approval is voided.
#[server(prefix = "/api", endpoint = "runs/take_over")]
pub async fn take_over_run(run: i64, #[server(default)] reason: String) -> Result<(), AppError> {
    let caller = require::<RunRecoveries>().await?;
    let state = app_state()?;
    state
        .engine
        .take_over(
            run,
            caller.user().id,
            &reason,
            &Actor::User(caller.user().username.clone()),
        )
        .await?;
    redirect_plain_form(&format!("/runs/{run}"));
    Ok(())
}

/// An attempt's output before chunk `before_seq`, a page at a time (the run
/// page shows the end of long output and loads the rest when asked).
#[server(prefix = "/api", endpoint = "runs/output")]
pub async fn attempt_output(
    attempt: i64,
    before_seq: i32,
) -> Result<crate::model::run_view::OutputPage, AppError> {
    require::<ViewRuns>().await?;
    let state = app_state()?;
    let (_, page) = crate::ssr::runs::output_page(&state.pool, attempt, before_seq).await?;
    Ok(page)
}
