//! The life of a run's steps: the states, what may happen in each, and what
//! follows. Pure, shared by the engine (which enforces it) and the wizard (which
//! offers only the buttons it allows).
//!
//! Two rules matter most: a destructive step only ever starts through an approval
//! (never by Run, Retry or a restart), and a step interrupted by a portal restart
//! waits for the operator to decide.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of one step of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    /// A destructive step waiting for a supervisor's approval.
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
    /// It was running when the portal stopped; the operator decides what follows.
    Interrupted,
}

impl StepState {
    /// Every state.
    pub const ALL: [StepState; 8] = [
        StepState::Pending,
        StepState::AwaitingApproval,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Skipped,
        StepState::Cancelled,
        StepState::Interrupted,
    ];

    /// The name stored in the database and shown in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::AwaitingApproval => "awaiting_approval",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
            StepState::Interrupted => "interrupted",
        }
    }

    /// Nothing more happens to the step.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Skipped | StepState::Cancelled
        )
    }

    /// The run can move past the step.
    pub fn is_done(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped)
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Something that happens to a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepEvent {
    /// The operator runs a step that is not destructive.
    Run,
    /// The operator asks for approval of a destructive step.
    RequestApproval,
    /// A valid approval lets the destructive step run (the attempt starts).
    Approved,
    /// The request was rejected, withdrawn or expired.
    ApprovalEnded,
    /// The step finished and met its expectations.
    Passed,
    /// The step finished and missed an expectation, or could not run.
    Failed,
    /// The operator tries a failed or interrupted step again (a new attempt).
    Retry,
    /// The operator skips the step, with a written reason.
    Skip,
    /// The step's `when` does not hold.
    ConditionFalse,
    /// The operator declares an interrupted step done, with a written reason.
    MarkDone,
    /// The run is cancelled.
    Cancel,
    /// The portal started and found the step running.
    PortalRestarted,
}

/// Why an event does not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TransitionError {
    #[error("a destructive step runs only with a supervisor's approval: request approval instead")]
    NeedsApproval,
    #[error("only destructive steps need approval")]
    NotDestructive,
    #[error("a step that is {state} cannot be {action}")]
    NotAllowed { state: StepState, action: String },
}

fn verb(event: StepEvent) -> &'static str {
    match event {
        StepEvent::Run => "run",
        StepEvent::RequestApproval => "sent for approval",
        StepEvent::Approved => "approved",
        StepEvent::ApprovalEnded => "returned from approval",
        StepEvent::Passed => "marked passed",
        StepEvent::Failed => "marked failed",
        StepEvent::Retry => "retried",
        StepEvent::Skip => "skipped",
        StepEvent::ConditionFalse => "skipped by its condition",
        StepEvent::MarkDone => "marked done",
        StepEvent::Cancel => "cancelled",
        StepEvent::PortalRestarted => "interrupted",
    }
}

/// The state after `event`, for a step that is `destructive` or not.
pub fn next(
    state: StepState,
    event: StepEvent,
    destructive: bool,
) -> Result<StepState, TransitionError> {
    use StepEvent as E;
    use StepState as S;
    let refused = || TransitionError::NotAllowed {
        state,
        action: verb(event).to_string(),
    };
    match (state, event) {
        (S::Pending, E::Run) if destructive => Err(TransitionError::NeedsApproval),
        (S::Pending, E::Run) => Ok(S::Running),
        (S::Pending | S::Failed | S::Interrupted, E::RequestApproval) if !destructive => {
            Err(TransitionError::NotDestructive)
        }
        // A new attempt of a destructive step starts with a new request.
        (S::Pending | S::Failed | S::Interrupted, E::RequestApproval) => Ok(S::AwaitingApproval),
        (S::AwaitingApproval, E::Approved) => Ok(S::Running),
        (S::AwaitingApproval, E::ApprovalEnded) => Ok(S::Pending),
        (S::Running, E::Passed) => Ok(S::Succeeded),
        (S::Running, E::Failed) => Ok(S::Failed),
        (S::Running, E::PortalRestarted) => Ok(S::Interrupted),
        (S::Failed | S::Interrupted, E::Retry) if destructive => {
            Err(TransitionError::NeedsApproval)
        }
        (S::Failed | S::Interrupted, E::Retry) => Ok(S::Running),
        (S::Interrupted, E::MarkDone) => Ok(S::Succeeded),
        (S::Pending | S::AwaitingApproval | S::Failed | S::Interrupted, E::Skip) => Ok(S::Skipped),
        (S::Pending, E::ConditionFalse) => Ok(S::Skipped),
        (S::Pending | S::AwaitingApproval | S::Running | S::Failed | S::Interrupted, E::Cancel) => {
            Ok(S::Cancelled)
        }
        _ => Err(refused()),
    }
}

/// What the operator may do with a step now (the buttons the wizard shows).
pub fn operator_actions(state: StepState, destructive: bool) -> Vec<StepEvent> {
    [
        StepEvent::Run,
        StepEvent::RequestApproval,
        StepEvent::Retry,
        StepEvent::Skip,
        StepEvent::MarkDone,
    ]
    .into_iter()
    .filter(|e| next(state, *e, destructive).is_ok())
    .collect()
}

/// The step the run is at: the first that is not done, if any.
pub fn current_step(states: &[StepState]) -> Option<usize> {
    states.iter().position(|s| !s.is_done())
}

/// The state of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Steps remain.
    Active,
    /// Every step succeeded or was skipped.
    Completed,
    Cancelled,
}

/// The run's state from its steps' states.
pub fn run_state(states: &[StepState]) -> RunState {
    if states.contains(&StepState::Cancelled) {
        RunState::Cancelled
    } else if states.iter().all(|s| s.is_done()) {
        RunState::Completed
    } else {
        RunState::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepEvent as E;
    use StepState as S;

    #[test]
    fn a_plain_step_runs_and_finishes() {
        assert_eq!(next(S::Pending, E::Run, false), Ok(S::Running));
        assert_eq!(next(S::Running, E::Passed, false), Ok(S::Succeeded));
        assert_eq!(next(S::Running, E::Failed, false), Ok(S::Failed));
        assert_eq!(next(S::Failed, E::Retry, false), Ok(S::Running));
    }

    #[test]
    fn a_destructive_step_only_runs_through_an_approval() {
        assert_eq!(
            next(S::Pending, E::Run, true),
            Err(TransitionError::NeedsApproval)
        );
        assert_eq!(
            next(S::Pending, E::RequestApproval, true),
            Ok(S::AwaitingApproval)
        );
        assert_eq!(next(S::AwaitingApproval, E::Approved, true), Ok(S::Running));
        assert_eq!(
            next(S::AwaitingApproval, E::ApprovalEnded, true),
            Ok(S::Pending)
        );
        // No state but awaiting-approval leads to running for a destructive step,
        // except through an approval.
        for state in StepState::ALL {
            for event in [
                E::Run,
                E::Retry,
                E::PortalRestarted,
                E::MarkDone,
                E::RequestApproval,
                E::Skip,
                E::Cancel,
            ] {
                if let Ok(after) = next(state, event, true) {
                    assert_ne!(after, S::Running, "{state} --{event:?}--> running");
                }
            }
        }
        // A new attempt needs a new request, with its own justification.
        assert_eq!(
            next(S::Failed, E::Retry, true),
            Err(TransitionError::NeedsApproval)
        );
        assert_eq!(
            next(S::Interrupted, E::RequestApproval, true),
            Ok(S::AwaitingApproval)
        );
        assert_eq!(
            next(S::Failed, E::RequestApproval, true),
            Ok(S::AwaitingApproval)
        );
    }

    #[test]
    fn approval_is_only_for_destructive_steps() {
        assert_eq!(
            next(S::Pending, E::RequestApproval, false),
            Err(TransitionError::NotDestructive)
        );
    }

    #[test]
    fn an_interrupted_step_waits_for_the_operator() {
        assert_eq!(
            next(S::Running, E::PortalRestarted, false),
            Ok(S::Interrupted)
        );
        assert_eq!(
            operator_actions(S::Interrupted, false),
            [E::Retry, E::Skip, E::MarkDone]
        );
        assert_eq!(next(S::Interrupted, E::MarkDone, false), Ok(S::Succeeded));
        assert_eq!(
            next(S::Interrupted, E::Passed, false)
                .unwrap_err()
                .to_string(),
            "a step that is interrupted cannot be marked passed"
        );
    }

    #[test]
    fn final_states_accept_nothing() {
        for state in [S::Succeeded, S::Skipped, S::Cancelled] {
            assert!(state.is_final());
            for event in [
                E::Run,
                E::RequestApproval,
                E::Approved,
                E::ApprovalEnded,
                E::Passed,
                E::Failed,
                E::Retry,
                E::Skip,
                E::ConditionFalse,
                E::MarkDone,
                E::Cancel,
                E::PortalRestarted,
            ] {
                assert!(
                    next(state, event, false).is_err() && next(state, event, true).is_err(),
                    "{state} {event:?}"
                );
            }
        }
    }

    #[test]
    fn the_wizard_offers_what_the_rules_allow() {
        assert_eq!(operator_actions(S::Pending, false), [E::Run, E::Skip]);
        assert_eq!(
            operator_actions(S::Pending, true),
            [E::RequestApproval, E::Skip]
        );
        assert_eq!(
            operator_actions(S::Failed, true),
            [E::RequestApproval, E::Skip]
        );
        assert_eq!(operator_actions(S::AwaitingApproval, true), [E::Skip]);
        assert_eq!(operator_actions(S::Running, false), Vec::<StepEvent>::new());
    }

    #[test]
    fn run_progress_follows_its_steps() {
        assert_eq!(
            current_step(&[S::Succeeded, S::Skipped, S::Pending, S::Pending]),
            Some(2)
        );
        assert_eq!(run_state(&[S::Succeeded, S::Failed]), RunState::Active);
        assert_eq!(run_state(&[S::Succeeded, S::Skipped]), RunState::Completed);
        assert_eq!(current_step(&[S::Succeeded, S::Skipped]), None);
        assert_eq!(
            run_state(&[S::Succeeded, S::Cancelled, S::Cancelled]),
            RunState::Cancelled
        );
    }
}
