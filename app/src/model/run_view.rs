//! What the wizard shows of runs: the runs list, one run with its steps, and the
//! live events that keep an open run page current.

use super::run::{RunState, StepEvent, StepState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A run in the runs list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: i64,
    pub runbook_id: String,
    pub runbook_title: String,
    pub site: String,
    pub state: RunState,
    pub started_by: String,
    /// Who may act on it now: who started it, or who last took it over.
    pub owner: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub steps: usize,
    pub steps_done: usize,
    /// Title and state of the step the run is at.
    pub current: Option<(String, StepState)>,
}

/// Which runs the list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunFilter {
    #[default]
    Active,
    Finished,
    All,
}

impl RunFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            RunFilter::Active => "active",
            RunFilter::Finished => "finished",
            RunFilter::All => "all",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "finished" => RunFilter::Finished,
            "all" => RunFilter::All,
            _ => RunFilter::Active,
        }
    }
}

/// One run with everything the run page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub summary: RunSummary,
    pub runbook_sha256: String,
    pub parameters: BTreeMap<String, String>,
    /// Values captured so far by succeeded steps, by name.
    pub captures: BTreeMap<String, String>,
    pub steps: Vec<RunStepView>,
    /// Position of the step the run is at.
    pub current: Option<usize>,
    /// The run's site is in break-glass mode: shown in red.
    pub break_glass: Option<super::approval::BreakGlassView>,
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStepView {
    pub position: i32,
    pub id: String,
    pub title: String,
    pub kind: String,
    pub destructive: bool,
    pub state: StepState,
    pub instructions: String,
    /// The `when` condition, described, and whether it holds now.
    pub when: Option<(String, bool)>,
    /// The exact action as it would run now (host and command, or a description),
    /// or why it cannot be rendered yet.
    pub action: Result<ActionView, String>,
    /// Whether the operator must write an observation (manual steps).
    pub observation: Option<bool>,
    /// Why it was skipped or marked done.
    pub note: Option<String>,
    /// What the operator may do now (the buttons).
    pub actions: Vec<StepEvent>,
    /// Why the step cannot run from the portal yet, if it cannot.
    pub blocked: Option<String>,
    pub attempts: Vec<AttemptView>,
    /// How many supervisors must approve each attempt (0: not destructive).
    pub approvals_needed: u8,
    /// Every request for approval of the step, oldest first.
    pub approvals: Vec<super::approval::ApprovalView>,
}

impl RunStepView {
    /// The step's request that is still open, if any.
    pub fn open_approval(&self) -> Option<&super::approval::ApprovalView> {
        self.approvals.iter().rev().find(|a| a.state.is_open())
    }
}

/// A rendered action, as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionView {
    pub host: Option<String>,
    /// The command, transfer or call, exactly.
    pub text: String,
}

/// One attempt of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub id: i64,
    pub attempt: i32,
    pub host: Option<String>,
    pub action: String,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The approval the attempt ran under (destructive steps).
    pub approval_id: Option<i64>,
    pub outcome: Option<Outcome>,
    /// The output so far, in order; only its end when it is long (see
    /// `earlier_bytes`).
    pub output: Vec<OutputChunk>,
    /// Bytes of stored output before `output` that were not loaded (the page
    /// loads the rest when asked).
    #[serde(default)]
    pub earlier_bytes: u64,
    /// The first chunk loaded (earlier output is before it).
    #[serde(default)]
    pub loaded_from_seq: i32,
    /// The last progress reading of long work in it (transfers, snapshots),
    /// while the portal that ran it is up.
    pub progress: Option<super::progress::Progress>,
}

/// A page of an attempt's earlier output, loaded when the viewer asks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPage {
    pub chunks: Vec<OutputChunk>,
    /// Bytes before this page still not loaded.
    pub earlier_bytes: u64,
    /// The first chunk of this page.
    pub from_seq: i32,
}

/// A piece of a command's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub seq: i32,
    pub stderr: bool,
    pub text: String,
}

/// How an attempt ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub passed: bool,
    pub exit_status: Option<i32>,
    /// `exited`, `timed_out`, `cancelled`, or `error`.
    pub ending: String,
    /// Why the step could not run (connection refused, host key...).
    pub error: Option<String>,
    pub expectations: Vec<ExpectationView>,
    pub captures: BTreeMap<String, String>,
    /// Captures whose pattern did not match.
    pub missing_captures: Vec<String>,
    /// What the operator wrote (manual steps).
    pub observation: Option<String>,
    /// A transferred file: its size and SHA-256.
    pub transfer: Option<TransferRecord>,
    /// How many times a wait step checked.
    pub checks: Option<u32>,
    /// How much output the attempt produced and how much of it was kept.
    pub output: Option<OutputTotals>,
}

/// An attempt's output as a whole: every byte is counted and hashed, but only
/// the first `stored_bytes` are kept (`max_output_bytes_per_attempt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTotals {
    /// Bytes received (stdout, stderr and the portal's own lines).
    pub bytes: u64,
    /// Bytes stored and shown.
    pub stored_bytes: u64,
    /// SHA-256 (hex) of all the bytes, in the order they arrived.
    pub sha256: String,
}

impl OutputTotals {
    /// Whether output was left out.
    pub fn truncated(&self) -> bool {
        self.bytes > self.stored_bytes
    }

    /// What the run page and the report say of left-out output.
    pub fn truncation_note(&self) -> Option<String> {
        self.truncated().then(|| {
            format!(
                "output truncated after {} bytes; {} bytes in all, SHA-256 {}",
                self.stored_bytes, self.bytes, self.sha256
            )
        })
    }
}

/// One expectation and whether it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationView {
    pub description: String,
    pub passed: bool,
}

/// A file copied by a transfer step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub bytes: u64,
    pub sha256: String,
}

/// What an open run page hears, as server-sent events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// New output of a running attempt.
    Output {
        position: i32,
        attempt_id: i64,
        chunk: OutputChunk,
        /// When the portal received it from the host (ms since the Unix epoch), so
        /// a viewer can measure how late it arrives.
        received_at_ms: i64,
    },
    /// A progress reading of a running attempt's long work.
    Progress {
        position: i32,
        attempt_id: i64,
        progress: super::progress::Progress,
    },
    /// Something about the run changed (a step's state, a new attempt): reload it.
    Changed,
}

/// A site runs can be started on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    pub name: String,
    pub description: String,
}
