//! The runbooks the portal loaded at start, as the catalogue shows them.

use crate::error::AppError;
use crate::model::runbook::{ParameterView, RunbookDetail, RunbookSummary, StepView};
use crate::ssr::ServiceError;
use runbook::model::{Endpoint, HostRef, ParamKind, StepAction};
use runbook::Runbook;

fn summary(rb: &Runbook) -> RunbookSummary {
    RunbookSummary {
        id: rb.id.clone(),
        title: rb.title.clone(),
        description: rb.description.trim().to_string(),
        expected_duration_minutes: rb.expected_duration_minutes,
        steps: rb.steps.len(),
        destructive_steps: rb.destructive_steps(),
    }
}

fn host(h: &HostRef) -> String {
    match h {
        HostRef::Named(name) => name.clone(),
        HostRef::Param(p) => format!("{{{{ {p} }}}}"),
    }
}

fn endpoint(e: &Endpoint) -> String {
    match e {
        Endpoint::Host { host: h, path } => format!("{}:{}", host(h), path.source()),
        Endpoint::Store { path } => format!("backup store:{}", path.source()),
    }
}

fn step_view(step: &runbook::Step) -> StepView {
    let (host_name, action) = match &step.action {
        StepAction::Ssh(c) | StepAction::Esc(c) => {
            (Some(host(&c.host)), c.command.source().to_string())
        }
        StepAction::Wait {
            check,
            interval_seconds,
            timeout_seconds,
        } => (
            Some(host(&check.host)),
            format!(
                "{}  (every {interval_seconds} s, up to {timeout_seconds} s)",
                check.command.source()
            ),
        ),
        StepAction::OpenStack { action, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{k}={}", v.source()))
                .collect();
            (
                None,
                format!("{} {}", action.name(), args.join(" "))
                    .trim_end()
                    .to_string(),
            )
        }
        StepAction::Manual { .. } => (None, "the operator confirms".to_string()),
        StepAction::Transfer { from, to } => {
            (None, format!("{} → {}", endpoint(from), endpoint(to)))
        }
    };
    StepView {
        id: step.id.clone(),
        title: step.title.clone(),
        kind: step.action.kind().to_string(),
        host: host_name,
        action,
        destructive: step.destructive,
        when: step.when.as_ref().map(|c| c.describe()),
        instructions: step.instructions.trim().to_string(),
    }
}

/// Every runbook, in file order.
pub fn list(runbooks: &[Runbook]) -> Vec<RunbookSummary> {
    runbooks.iter().map(summary).collect()
}

/// One runbook with parameters and steps.
pub fn detail(runbooks: &[Runbook], id: &str) -> Result<RunbookDetail, ServiceError> {
    let rb = runbooks
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::NotFound(format!("There is no runbook {id:?}.")))?;
    Ok(RunbookDetail {
        summary: summary(rb),
        sha256: rb.source.sha256.clone(),
        source_path: rb.source.path.clone(),
        parameters: rb
            .parameters
            .iter()
            .map(|p| ParameterView {
                name: p.name.clone(),
                label: p.label.clone(),
                kind: p.kind.name().to_string(),
                required: p.required,
                default: p.default.clone(),
                pattern: p.pattern.as_ref().map(|p| p.source().to_string()),
                values: match &p.kind {
                    ParamKind::Enum(values) => values.clone(),
                    _ => Vec::new(),
                },
                help: p.help.clone(),
            })
            .collect(),
        steps: rb.steps.iter().map(step_view).collect(),
    })
}
