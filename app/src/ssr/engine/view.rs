//! A run as the run page shows it, from what is stored and the runbook it was
//! started from. Pure.

use super::super::runs::RunRecord;
use crate::model::approval::{ApprovalView, BreakGlassView};
use crate::model::run::{current_step, operator_actions, StepState};
use crate::model::run_view::{ActionView, AttemptView, RunStepView, RunView};
use runbook::model::{Observation, StepAction};
use runbook::render::{render, RenderedAction, RenderedEndpoint};
use runbook::Runbook;
use std::collections::BTreeMap;

/// Why an OpenStack step cannot run on `site` from this portal.
pub fn openstack_not_available(site: &str) -> String {
    format!("Site {site} has no OpenStack cloud configured in this portal (cloud = \"<name>\" in the sites file), so its OpenStack steps cannot run from here. Do this step with the openstack CLI and skip it here with a reason that says what you did.")
}

/// The values a step's templates and conditions see: parameters, then captures.
pub fn lookup<'a>(
    parameters: &'a BTreeMap<String, String>,
    captures: &'a BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<&'a str> + Copy {
    move |name| {
        captures
            .get(name)
            .or_else(|| parameters.get(name))
            .map(String::as_str)
    }
}

fn endpoint(e: &RenderedEndpoint) -> String {
    match e {
        RenderedEndpoint::Host { host, path } => format!("{host}:{path}"),
        RenderedEndpoint::Store { path } => format!("backup store:{path}"),
    }
}

/// How a rendered action is shown: its host and its exact text.
pub fn action_view(action: &RenderedAction) -> ActionView {
    match action {
        RenderedAction::Shell { host, command, .. } => ActionView {
            host: Some(host.clone()),
            text: command.clone(),
        },
        RenderedAction::Wait {
            host,
            command,
            interval_seconds,
            timeout_seconds,
        } => ActionView {
            host: Some(host.clone()),
            text: format!("{command}\n# repeated every {interval_seconds} s until it passes, for up to {timeout_seconds} s"),
        },
        RenderedAction::OpenStack { action, args } => ActionView {
            host: None,
            text: std::iter::once(action.clone())
                .chain(args.iter().map(|(k, v)| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" "),
        },
        RenderedAction::Manual => ActionView {
            host: None,
            text: "The operator does this and confirms it.".into(),
        },
        RenderedAction::Transfer { from, to } => ActionView {
            host: None,
            text: format!("copy {} → {}", endpoint(from), endpoint(to)),
        },
    }
}

/// The run page's view of a run.
pub fn run_view(
    record: RunRecord,
    runbook: &Runbook,
    mut attempts: BTreeMap<i32, Vec<AttemptView>>,
    mut approvals: BTreeMap<i32, Vec<ApprovalView>>,
    break_glass: Option<BreakGlassView>,
    openstack: bool,
) -> RunView {
    let values = lookup(&record.parameters, &record.captures);
    let states: Vec<StepState> = record.steps.iter().map(|s| s.state).collect();
    let active = record.summary.state == crate::model::run::RunState::Active;
    let steps = record
        .steps
        .iter()
        .map(|row| {
            let step = runbook.steps.iter().find(|s| s.id == row.step_id);
            let attempts = attempts.remove(&row.position).unwrap_or_default();
            let approvals = approvals.remove(&row.position).unwrap_or_default();
            let Some(step) = step else {
                return RunStepView {
                    position: row.position,
                    id: row.step_id.clone(),
                    title: row.step_id.clone(),
                    kind: "unknown".into(),
                    destructive: row.destructive,
                    state: row.state,
                    instructions: String::new(),
                    when: None,
                    action: Err("This step is not in the runbook the run was started from.".into()),
                    observation: None,
                    note: row.note.clone(),
                    actions: Vec::new(),
                    blocked: None,
                    attempts,
                    approvals_needed: 0,
                    approvals,
                };
            };
            let action = render(step, values).map(|a| action_view(&a)).map_err(|u| {
                format!(
                    "Waits for the value {}, which an earlier step captures.",
                    u.0
                )
            });
            let blocked = match &step.action {
                StepAction::OpenStack { .. } if !openstack => {
                    Some(openstack_not_available(&record.summary.site))
                }
                _ => None,
            };
            RunStepView {
                position: row.position,
                id: step.id.clone(),
                title: step.title.clone(),
                kind: step.action.kind().into(),
                destructive: step.destructive,
                state: row.state,
                instructions: step.instructions.trim().to_string(),
                when: step.when.as_ref().map(|c| (c.describe(), c.holds(&values))),
                action,
                observation: match &step.action {
                    StepAction::Manual { observation, .. } => {
                        Some(*observation == Observation::Required)
                    }
                    _ => None,
                },
                note: row.note.clone(),
                actions: if active {
                    operator_actions(row.state, step.destructive)
                } else {
                    Vec::new()
                },
                blocked,
                attempts,
                approvals_needed: step.approvals,
                approvals,
            }
        })
        .collect();
    RunView {
        current: if active { current_step(&states) } else { None },
        summary: record.summary,
        runbook_sha256: record.runbook_sha256,
        parameters: record.parameters,
        captures: record.captures,
        steps,
        break_glass: break_glass.filter(|b| b.enabled),
    }
}
