//! Runbooks as the catalogue shows them.

use serde::{Deserialize, Serialize};

/// One runbook in the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub expected_duration_minutes: u32,
    pub steps: usize,
    pub destructive_steps: usize,
}

/// A runbook with its parameters and steps, for previewing a procedure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookDetail {
    pub summary: RunbookSummary,
    /// SHA-256 of the file the portal loaded.
    pub sha256: String,
    pub source_path: String,
    pub parameters: Vec<ParameterView>,
    pub steps: Vec<StepView>,
}

/// A parameter the operator fills in when starting a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParameterView {
    pub name: String,
    pub label: String,
    /// string, integer, enum, host, path or date.
    pub kind: String,
    pub required: bool,
    pub default: Option<String>,
    pub pattern: Option<String>,
    /// The choices of an enum.
    pub values: Vec<String>,
    pub help: String,
}

/// A step as written in the runbook (not yet rendered with values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub id: String,
    pub title: String,
    /// ssh, esc, openstack, manual, wait or transfer.
    pub kind: String,
    /// The host, for steps that run on one (a name or `{{ parameter }}`).
    pub host: Option<String>,
    /// The command, OpenStack call or transfer, as the runbook writes it.
    pub action: String,
    pub destructive: bool,
    /// The condition under which the step applies, in words.
    pub when: Option<String>,
    pub instructions: String,
}
