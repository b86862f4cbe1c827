//! The run engine: starts runs, moves their steps through the state machine on the
//! operator's commands, executes steps through an [`Executor`] and records what
//! happens, publishing every stored change to the run's live subscribers.
//!
//! - [`executor`]: the interface to whatever reaches a site (SSH and SFTP in the portal).
//! - [`outcome`]: judging a finished command (expectations, captures). Pure.
//! - [`view`]: a run as the run page shows it. Pure.
//!
//! - `gate`: the approval gate (requests, decisions, running under an approval).
//!
//! Rules kept here: steps run in order; a step whose `when` does not hold is
//! skipped by the engine; a destructive step starts only through a valid approval
//! (never from Run, Retry or a restart); output is stored before it is shown.

pub mod executor;
mod gate;
pub mod outcome;
pub mod view;

use super::audit::Actor;
use super::live::{LiveHub, Utf8Stream};
use super::runs::{self, RunRecord, TransitionInput};
use super::ServiceError;
use crate::error::AppError;
use crate::model::approval::Decider;
use crate::model::progress::Progress;
use crate::model::run::{current_step, RunState, StepEvent, StepState};
use crate::model::run_view::{
    LiveEvent, Outcome, OutputChunk, OutputTotals, RunFilter, RunSummary, RunView,
};
use executor::{CancelSignal, Emit, Ending, Executor, Finished, Job, OutputTx, SiteInfo};
use runbook::model::{Observation, ShellCommand, StepAction};
use runbook::render::{render, RenderedAction};
use runbook::{Runbook, Step};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the operator asks of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepCommand {
    /// Run the step (or retry it after a failure or interruption).
    Run,
    /// Confirm a manual step, with what was observed.
    Confirm { observation: String },
    /// Skip it, with a reason.
    Skip { reason: String },
    /// Declare an interrupted step done, with a reason.
    MarkDone { reason: String },
    /// Ask for a supervisor's approval of a destructive step, saying why.
    RequestApproval { justification: String },
    /// Run a destructive step under approval `approval`.
    RunApproved { approval: i64 },
    /// Take back the step's open request for approval.
    Withdraw { reason: String },
    /// Stop the running command.
    Stop,
}

/// The engine. One per portal.
pub struct Engine {
    pool: PgPool,
    executor: Arc<dyn Executor>,
    hub: LiveHub,
    /// Runbooks by content hash: those loaded at start, and those parsed from
    /// runs' stored text.
    runbooks: Mutex<HashMap<String, Arc<Runbook>>>,
    /// The runbooks loaded at start, by id: what new runs start from.
    current: HashMap<String, Arc<Runbook>>,
    /// The stop switch of every running step, by run and position.
    running: Mutex<HashMap<(i64, i32), watch::Sender<bool>>>,
    /// Told whenever a request for approval changes.
    approvals: tokio::sync::broadcast::Sender<()>,
    /// How long an approval stays valid once given, a request waits for its
    /// decisions, and break glass stays on.
    times: super::approvals::ApprovalTimes,
    /// The last progress reading of each attempt that reported one, by attempt
    /// id; kept in memory only (the output has the lines, the run the result).
    progress: Mutex<BTreeMap<i64, Progress>>,
    /// Tells approvers of new requests.
    notifier: Arc<super::notify::Notifier>,
    /// Output bytes of one attempt that are stored; the rest is counted and
    /// hashed only.
    output_limit: AtomicU64,
}

/// The default of `max_output_bytes_per_attempt`: 64 MiB.
pub const DEFAULT_OUTPUT_LIMIT: u64 = 64 * 1024 * 1024;

/// How many attempts' progress readings are remembered.
const PROGRESS_KEPT: usize = 10_000;

/// A step of a run, loaded for a command on it.
struct StepContext {
    run_id: i64,
    position: i32,
    record: RunRecord,
    step: Step,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// `step` rendered with the run's values as they are now.
fn render_now(
    step: &Step,
    position: i32,
    record: &RunRecord,
) -> Result<RenderedAction, ServiceError> {
    render(step, view::lookup(&record.parameters, &record.captures)).map_err(|u| {
        conflict(format!(
            "Step {} needs the value {}, which no earlier step captured.",
            i64::from(position) + 1,
            u.0
        ))
    })
}

/// Refuses anyone but the run's owner: a run has one operator at a time, and
/// another takes it over first (with a reason, audited) instead of acting
/// beside them.
fn owned_by(record: &RunRecord, user_id: i64) -> Result<(), ServiceError> {
    if record.owner_id == user_id {
        Ok(())
    } else {
        Err(AppError::NotRunOwner {
            run: record.summary.id,
            owner: record.summary.owner.clone(),
        }
        .into())
    }
}

fn conflict(message: impl Into<String>) -> ServiceError {
    AppError::Conflict(message.into()).into()
}

/// A person's free text (`field` names it in the error), refused when it holds
/// a control character that cannot be stored.
pub(crate) fn checked_text(field: &str, value: &str) -> Result<String, ServiceError> {
    crate::model::text::free_text(value).map_err(|message| ServiceError::invalid(field, message))
}

impl StepCommand {
    /// The command with its text checked (see [`checked_text`]).
    fn checked(self) -> Result<Self, ServiceError> {
        Ok(match self {
            StepCommand::Confirm { observation } => StepCommand::Confirm {
                observation: checked_text("Observation", &observation)?,
            },
            StepCommand::Skip { reason } => StepCommand::Skip {
                reason: checked_text("Reason", &reason)?,
            },
            StepCommand::MarkDone { reason } => StepCommand::MarkDone {
                reason: checked_text("Reason", &reason)?,
            },
            StepCommand::RequestApproval { justification } => StepCommand::RequestApproval {
                justification: checked_text("Justification", &justification)?,
            },
            StepCommand::Withdraw { reason } => StepCommand::Withdraw {
                reason: checked_text("Reason", &reason)?,
            },
            other => other,
        })
    }
}

impl Engine {
    /// An engine over `pool` that knows `runbooks` and reaches sites through
    /// `executor`; approvals, requests and break glass last as `times` says, and
    /// requests for approval are notified through `notifier`.
    pub fn new(
        pool: PgPool,
        runbooks: &[Runbook],
        executor: Arc<dyn Executor>,
        times: super::approvals::ApprovalTimes,
        notifier: Arc<super::notify::Notifier>,
    ) -> Arc<Self> {
        let current: HashMap<String, Arc<Runbook>> = runbooks
            .iter()
            .map(|r| (r.id.clone(), Arc::new(r.clone())))
            .collect();
        let known = current
            .values()
            .map(|r| (r.source.sha256.clone(), r.clone()))
            .collect();
        Arc::new(Self {
            pool,
            executor,
            hub: LiveHub::default(),
            runbooks: Mutex::new(known),
            current,
            running: Mutex::new(HashMap::new()),
            approvals: tokio::sync::broadcast::channel(64).0,
            times,
            progress: Mutex::new(BTreeMap::new()),
            notifier,
            output_limit: AtomicU64::new(DEFAULT_OUTPUT_LIMIT),
        })
    }

    /// Stores at most `bytes` of each attempt's output from now on.
    pub fn limit_output(&self, bytes: u64) {
        self.output_limit.store(bytes.max(1), Ordering::Relaxed);
    }

    /// Where live events are published.
    pub fn hub(&self) -> &LiveHub {
        &self.hub
    }

    /// The sites runs can be started on.
    pub fn sites(&self) -> Vec<SiteInfo> {
        self.executor.sites()
    }

    /// The runbook a run was started from: its stored text, parsed once.
    fn runbook_of(&self, record: &RunRecord) -> Result<Arc<Runbook>, ServiceError> {
        let mut known = self.runbooks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rb) = known.get(&record.runbook_sha256) {
            return Ok(rb.clone());
        }
        let name = format!("run {} ({})", record.summary.id, record.summary.runbook_id);
        let rb = runbook::load_str(&name, &record.runbook_source).map_err(|d| {
            ServiceError::Internal(format!(
                "the stored runbook of run {} no longer loads: {}",
                record.summary.id,
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        let rb = Arc::new(rb);
        known.insert(record.runbook_sha256.clone(), rb.clone());
        Ok(rb)
    }

    /// Starts a run of runbook `runbook_id` on `site` with the operator's input.
    pub async fn start(
        self: &Arc<Self>,
        user_id: i64,
        actor: &Actor,
        runbook_id: &str,
        site: &str,
        input: &BTreeMap<String, String>,
    ) -> Result<i64, ServiceError> {
        let runbook =
            self.current.get(runbook_id).cloned().ok_or_else(|| {
                AppError::NotFound(format!("There is no runbook {runbook_id:?}."))
            })?;
        let mut problems: Vec<(String, String)> = Vec::new();
        if !self.sites().iter().any(|s| s.name == site) {
            problems.push((
                "site".into(),
                format!("Site: {site:?} is not a configured site"),
            ));
        }
        let values =
            match runbook::params::resolve(&runbook, input, chrono::Local::now().date_naive()) {
                Ok(v) => Some(v),
                Err(errors) => {
                    problems.extend(
                        errors
                            .into_iter()
                            .map(|e| (format!("params[{}]", e.parameter), e.to_string())),
                    );
                    None
                }
            };
        let values = match (values, problems.is_empty()) {
            (Some(v), true) => v,
            _ => return Err(AppError::Fields(problems).into()),
        };
        let id = runs::start(&self.pool, user_id, actor, &runbook, site, &values).await?;
        self.advance(id).await?;
        Ok(id)
    }

    /// The runs list.
    pub async fn list(
        &self,
        filter: RunFilter,
        runbook: Option<&str>,
    ) -> Result<Vec<RunSummary>, ServiceError> {
        runs::list(&self.pool, filter, runbook, 200).await
    }

    /// One run as the run page shows it (the end of long output only).
    pub async fn view(&self, run_id: i64) -> Result<RunView, ServiceError> {
        self.view_with(run_id, false).await
    }

    /// One run with every attempt's stored output whole (for its report).
    pub async fn view_whole(&self, run_id: i64) -> Result<RunView, ServiceError> {
        self.view_with(run_id, true).await
    }

    async fn view_with(&self, run_id: i64, whole: bool) -> Result<RunView, ServiceError> {
        let record = runs::load(&self.pool, run_id).await?;
        let runbook = self.runbook_of(&record)?;
        let mut attempts = if whole {
            runs::attempts_whole(&self.pool, run_id).await?
        } else {
            runs::attempts(&self.pool, run_id).await?
        };
        {
            let progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
            for a in attempts.values_mut().flatten() {
                a.progress = progress.get(&a.id).cloned();
            }
        }
        let approvals = super::approvals::for_run(&self.pool, run_id).await?;
        let openstack = self
            .sites()
            .iter()
            .any(|s| s.name == record.summary.site && s.openstack);
        let break_glass = super::approvals::break_glass(&self.pool)
            .await?
            .remove(&record.summary.site);
        Ok(view::run_view(
            record,
            &runbook,
            attempts,
            approvals,
            break_glass,
            openstack,
        ))
    }

    /// Refuses OpenStack steps on a site without a cloud, saying how to add one.
    fn openstack_available(&self, site: &str) -> Result<(), ServiceError> {
        if self.sites().iter().any(|s| s.name == site && s.openstack) {
            Ok(())
        } else {
            Err(conflict(view::openstack_not_available(site)))
        }
    }

    /// Carries out the operator's (`who`'s) `command` on step `position` of run
    /// `run_id`.
    pub async fn command(
        self: &Arc<Self>,
        run_id: i64,
        position: i32,
        command: StepCommand,
        who: Decider,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let command = command.checked()?;
        let user_id = who.user_id;
        let record = runs::load(&self.pool, run_id).await?;
        let runbook = self.runbook_of(&record)?;
        let row = record
            .steps
            .get(usize::try_from(position).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "Run {run_id} has no step {}.",
                    i64::from(position) + 1
                ))
            })?
            .clone();
        let step = runbook
            .steps
            .iter()
            .find(|s| s.id == row.step_id)
            .ok_or_else(|| {
                ServiceError::Internal(format!(
                    "step {} is not in run {run_id}'s runbook",
                    row.step_id
                ))
            })?
            .clone();
        if record.summary.state != RunState::Active {
            return Err(conflict(format!(
                "Run {run_id} is {}; its steps cannot change.",
                match record.summary.state {
                    RunState::Completed => "completed",
                    _ => "cancelled",
                }
            )));
        }
        // A withdrawal only ends a request; the gate's own rule (its requester or a
        // supervisor) decides it. Everything else changes the run: its owner only.
        if !matches!(command, StepCommand::Withdraw { .. }) {
            owned_by(&record, user_id)?;
        }
        let states: Vec<StepState> = record.steps.iter().map(|s| s.state).collect();
        let in_order = || -> Result<(), ServiceError> {
            match current_step(&states) {
                Some(c) if c as i32 != position => Err(conflict(format!(
                    "Step {} ({}) comes first: finish or skip it before step {}.",
                    c + 1,
                    record.steps[c].step_id,
                    i64::from(position) + 1
                ))),
                _ => Ok(()),
            }
        };
        match command {
            StepCommand::Stop => {
                let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                match running.get(&(run_id, position)) {
                    Some(stop) => {
                        let _ = stop.send(true);
                        Ok(())
                    }
                    None => Err(conflict(format!(
                        "Step {} is not running.",
                        i64::from(position) + 1
                    ))),
                }
            }
            StepCommand::Skip { ref reason } | StepCommand::MarkDone { ref reason } => {
                let event = if matches!(command, StepCommand::Skip { .. }) {
                    StepEvent::Skip
                } else {
                    StepEvent::MarkDone
                };
                self.transition(
                    run_id,
                    position,
                    event,
                    actor,
                    TransitionInput {
                        reason: Some(reason),
                        owner: Some(user_id),
                        ..Default::default()
                    },
                )
                .await?;
                self.advance(run_id).await
            }
            StepCommand::RequestApproval { justification } => {
                in_order()?;
                let ctx = StepContext {
                    run_id,
                    position,
                    record,
                    step,
                };
                self.request_approval(&ctx, &justification, user_id, actor)
                    .await
            }
            StepCommand::RunApproved { approval } => {
                in_order()?;
                let ctx = StepContext {
                    run_id,
                    position,
                    record,
                    step,
                };
                self.run_approved(ctx, approval, user_id, actor).await
            }
            StepCommand::Withdraw { reason } => {
                let open = super::approvals::for_run(&self.pool, run_id)
                    .await?
                    .remove(&position)
                    .and_then(|v| v.into_iter().rev().find(|a| a.state.is_open()));
                match open {
                    Some(a) => self.withdraw(a.id, who, actor, &reason).await,
                    None => Err(conflict(format!(
                        "Step {} has no open request for approval to withdraw.",
                        i64::from(position) + 1
                    ))),
                }
            }
            StepCommand::Confirm { observation } => {
                in_order()?;
                let StepAction::Manual {
                    observation: needed,
                    records,
                } = &step.action
                else {
                    return Err(conflict(format!(
                        "Step {} is not a manual step; run it instead.",
                        i64::from(position) + 1
                    )));
                };
                let observation = observation.trim().to_string();
                if *needed == Observation::Required && observation.is_empty() {
                    return Err(ServiceError::invalid(
                        "Observation",
                        "is required: write what you saw",
                    ));
                }
                let event = if row.state == StepState::Pending {
                    StepEvent::Run
                } else {
                    StepEvent::Retry
                };
                let mut outcome = Outcome {
                    passed: true,
                    ending: "confirmed".into(),
                    observation: (!observation.is_empty()).then(|| observation.clone()),
                    ..Outcome::default()
                };
                if let Some(name) = records {
                    outcome.captures.insert(name.clone(), observation);
                }
                // Started and finished in one transaction: a write that fails
                // leaves the step as it was, never `running` with nothing running.
                let mut tx = self.pool.begin().await?;
                runs::transition_in(
                    &mut tx,
                    run_id,
                    position,
                    event,
                    actor,
                    TransitionInput {
                        action: Some("kind=manual"),
                        owner: Some(user_id),
                        ..Default::default()
                    },
                )
                .await?;
                let done = runs::transition_in(
                    &mut tx,
                    run_id,
                    position,
                    StepEvent::Passed,
                    actor,
                    // Begun as the owner's: finished even if a takeover came
                    // between, so the step is never left running.
                    TransitionInput {
                        outcome: Some(&outcome),
                        ..Default::default()
                    },
                )
                .await?;
                tx.commit().await?;
                self.hub.changed(run_id);
                if done.run_state != RunState::Active {
                    self.executor.end_run(run_id);
                }
                self.advance(run_id).await
            }
            StepCommand::Run => {
                in_order()?;
                if let StepAction::OpenStack { .. } = step.action {
                    self.openstack_available(&record.summary.site)?;
                }
                if let StepAction::Manual { .. } = step.action {
                    return Err(conflict(format!(
                        "Step {} is a manual step: confirm it instead.",
                        i64::from(position) + 1
                    )));
                }
                if step.destructive {
                    return Err(super::approvals::refuse_without_approval(
                        &self.pool, run_id, &step.id, actor,
                    )
                    .await);
                }
                let event = match row.state {
                    StepState::Failed | StepState::Interrupted => StepEvent::Retry,
                    _ => StepEvent::Run,
                };
                let action = render_now(&step, position, &record)?;
                let canonical = action.canonical();
                let host = gate::host_of(&action);
                let ctx = StepContext {
                    run_id,
                    position,
                    record,
                    step,
                };
                self.launch(ctx, action, || {
                    self.transition(
                        run_id,
                        position,
                        event,
                        actor,
                        TransitionInput {
                            host: host.as_deref(),
                            action: Some(&canonical),
                            owner: Some(user_id),
                            ..Default::default()
                        },
                    )
                })
                .await
            }
        }
    }

    /// Starts an attempt of the step in `ctx` through `start` (which moves the step
    /// to running and opens the attempt) and executes it in the background. The
    /// stop switch exists before the step is marked running, so a Stop that
    /// arrives at once is not lost.
    async fn launch<F, Fut>(
        self: &Arc<Self>,
        ctx: StepContext,
        action: RenderedAction,
        start: F,
    ) -> Result<(), ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<runs::Transitioned, ServiceError>>,
    {
        let (run_id, position) = (ctx.run_id, ctx.position);
        let (stop, cancel) = CancelSignal::new();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(&(run_id, position)) {
                return Err(conflict(format!(
                    "Step {} is already running.",
                    i64::from(position) + 1
                )));
            }
            running.insert((run_id, position), stop);
        }
        let started = match start().await {
            Ok(t) if t.state == StepState::Running => t,
            other => {
                self.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&(run_id, position));
                return other.map(|_| ());
            }
        };
        let attempt_id = started
            .attempt_id
            .ok_or_else(|| ServiceError::Internal("a running step without an attempt".into()))?;
        let engine = self.clone();
        let site = ctx.record.summary.site.clone();
        let step = ctx.step;
        tokio::spawn(async move {
            engine
                .execute(run_id, position, attempt_id, site, step, action, cancel)
                .await;
        });
        Ok(())
    }

    /// Cancels run `run_id`: its current step is cancelled (and stopped if it runs).
    pub async fn cancel_run(
        self: &Arc<Self>,
        run_id: i64,
        user_id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let reason = &checked_text("Reason", reason)?;
        let record = runs::load(&self.pool, run_id).await?;
        owned_by(&record, user_id)?;
        if reason.trim().is_empty() {
            return Err(ServiceError::invalid(
                "Reason",
                "is required to cancel a run",
            ));
        }
        let states: Vec<StepState> = record.steps.iter().map(|s| s.state).collect();
        let position = current_step(&states)
            .ok_or_else(|| conflict(format!("Run {run_id} has no step left to cancel.")))?
            as i32;
        // Stopped first, so nothing starts on the site once the run is cancelled.
        if let Some(stop) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(run_id, position))
        {
            let _ = stop.send(true);
        }
        self.transition(
            run_id,
            position,
            StepEvent::Cancel,
            actor,
            TransitionInput {
                reason: Some(reason),
                owner: Some(user_id),
                ..Default::default()
            },
        )
        .await?;
        self.executor.end_run(run_id);
        Ok(())
    }

    async fn transition(
        &self,
        run_id: i64,
        position: i32,
        event: StepEvent,
        actor: &Actor,
        input: TransitionInput<'_>,
    ) -> Result<runs::Transitioned, ServiceError> {
        let result = runs::transition(&self.pool, run_id, position, event, actor, input).await;
        if result.is_ok() {
            self.hub.changed(run_id);
        }
        if let Ok(t) = &result {
            if t.run_state != RunState::Active {
                self.executor.end_run(run_id);
            }
        }
        result
    }

    /// Skips the pending steps at the front of the run whose `when` does not hold.
    async fn advance(&self, run_id: i64) -> Result<(), ServiceError> {
        loop {
            let record = runs::load(&self.pool, run_id).await?;
            if record.summary.state != RunState::Active {
                return Ok(());
            }
            let runbook = self.runbook_of(&record)?;
            let states: Vec<StepState> = record.steps.iter().map(|s| s.state).collect();
            let Some(c) = current_step(&states) else {
                return Ok(());
            };
            let row = &record.steps[c];
            let step = runbook.steps.iter().find(|s| s.id == row.step_id);
            let values = view::lookup(&record.parameters, &record.captures);
            match step.and_then(|s| s.when.as_ref()) {
                Some(when) if row.state == StepState::Pending && !when.holds(&values) => {
                    let skipped = self
                        .transition(
                            run_id,
                            c as i32,
                            StepEvent::ConditionFalse,
                            &Actor::System,
                            TransitionInput::default(),
                        )
                        .await;
                    match skipped {
                        // Someone else moved the step meanwhile: look again.
                        Err(ServiceError::Client(AppError::Conflict(_))) => {}
                        other => {
                            other?;
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Runs one attempt to its end and records the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        self: Arc<Self>,
        run_id: i64,
        position: i32,
        attempt_id: i64,
        site: String,
        step: Step,
        action: RenderedAction,
        cancel: CancelSignal,
    ) {
        let limit = self.output_limit.load(Ordering::Relaxed);
        let mut output = OutputWriter::new(self.clone(), run_id, position, attempt_id, limit);
        let outcome = match (&step.action, action) {
            (
                StepAction::Ssh(cmd) | StepAction::Esc(cmd),
                RenderedAction::Shell {
                    host,
                    command,
                    timeout_seconds,
                },
            ) => {
                let job = Job::Shell {
                    host,
                    command,
                    timeout_seconds,
                };
                self.run_once(run_id, &site, job, cmd, &mut output, cancel)
                    .await
            }
            (
                StepAction::Wait { check, .. },
                RenderedAction::Wait {
                    host,
                    command,
                    interval_seconds,
                    timeout_seconds,
                },
            ) => {
                let deadline =
                    tokio::time::Instant::now() + Duration::from_secs(u64::from(timeout_seconds));
                let mut checks = 0u32;
                loop {
                    checks += 1;
                    let job = Job::Shell {
                        host: host.clone(),
                        command: command.clone(),
                        timeout_seconds: check.timeout_seconds,
                    };
                    let mut o = self
                        .run_once(run_id, &site, job, check, &mut output, cancel.clone())
                        .await;
                    o.checks = Some(checks);
                    // A host that cannot be reached counts as a failed check: waiting
                    // for a VM to come back is what wait steps are for.
                    if o.passed || o.ending == "cancelled" {
                        break o;
                    }
                    if tokio::time::Instant::now()
                        + Duration::from_secs(u64::from(interval_seconds))
                        > deadline
                    {
                        break outcome::gave_up(o, timeout_seconds, checks);
                    }
                    output
                        .note(&format!(
                            "— check {checks} did not pass; next check in {interval_seconds} s —\n"
                        ))
                        .await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(u64::from(interval_seconds))) => {}
                        _ = cancel.clone().cancelled() => break Outcome { ending: "cancelled".into(), checks: Some(checks), ..o },
                    }
                }
            }
            (StepAction::OpenStack { .. }, RenderedAction::OpenStack { action, args }) => {
                let job = Job::OpenStack { action, args };
                let (tx, rx) = OutputTx::channel();
                let run = self.executor.execute(run_id, &site, job, tx, cancel);
                let (result, _) = tokio::join!(run, output.drain(rx));
                match result {
                    Ok(f) => Outcome {
                        passed: f.ending == Ending::Exited,
                        exit_status: f.exit_status,
                        ending: match f.ending {
                            Ending::Exited => "exited",
                            Ending::Cancelled => "cancelled",
                            Ending::TimedOut => "timed_out",
                        }
                        .into(),
                        transfer: f.transfer,
                        ..Outcome::default()
                    },
                    Err(message) => {
                        output.note(&format!("{message}\n")).await;
                        outcome::could_not_run(&message)
                    }
                }
            }
            (StepAction::Transfer { .. }, RenderedAction::Transfer { from, to }) => {
                let job = Job::Transfer { from, to };
                let (tx, rx) = OutputTx::channel();
                let run = self.executor.execute(run_id, &site, job, tx, cancel);
                let (result, _) = tokio::join!(run, output.drain(rx));
                match result {
                    Ok(Finished {
                        ending: Ending::Exited,
                        transfer: Some(t),
                        ..
                    }) => Outcome {
                        passed: true,
                        ending: "exited".into(),
                        transfer: Some(t),
                        ..Outcome::default()
                    },
                    Ok(f) => Outcome {
                        passed: false,
                        ending: match f.ending {
                            Ending::Cancelled => "cancelled",
                            _ => "timed_out",
                        }
                        .into(),
                        ..Outcome::default()
                    },
                    Err(message) => outcome::could_not_run(&message),
                }
            }
            (_, other) => outcome::could_not_run(&format!(
                "the engine cannot execute {other:?} for a {} step",
                step.action.kind()
            )),
        };
        let outcome = match output.failure.take() {
            Some(e) => Outcome {
                passed: false,
                error: Some(format!(
                    "the output could not be stored, so the step counts as failed: {e}"
                )),
                ..outcome
            },
            None => outcome,
        };
        let outcome = Outcome {
            output: Some(output.totals()),
            ..outcome
        };
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(run_id, position));
        let event = if outcome.passed {
            StepEvent::Passed
        } else {
            StepEvent::Failed
        };
        let finished = self
            .transition(
                run_id,
                position,
                event,
                &Actor::System,
                TransitionInput {
                    outcome: Some(&outcome),
                    ..Default::default()
                },
            )
            .await;
        match finished {
            Ok(_) => {
                if let Err(e) = self.advance(run_id).await {
                    tracing::error!(run_id, error = %e, "cannot advance the run");
                }
            }
            Err(e) => {
                // The run was cancelled meanwhile: keep the result with its attempt.
                tracing::warn!(run_id, position, error = %e, "step finished after its run changed");
                if let Err(e) = runs::record_outcome(&self.pool, attempt_id, &outcome).await {
                    tracing::error!(run_id, attempt_id, error = %e, "cannot record an outcome");
                }
                self.hub.changed(run_id);
            }
        }
    }

    async fn run_once(
        &self,
        run_id: i64,
        site: &str,
        job: Job,
        command: &ShellCommand,
        output: &mut OutputWriter,
        cancel: CancelSignal,
    ) -> Outcome {
        let (tx, rx) = OutputTx::channel();
        let run = self.executor.execute(run_id, site, job, tx, cancel);
        let (result, (stdout, stderr)) = tokio::join!(run, output.drain(rx));
        match result {
            Ok(finished) => outcome::judge(command, &finished, &stdout, &stderr),
            Err(message) => {
                output.note(&format!("{message}\n")).await;
                outcome::could_not_run(&message)
            }
        }
    }
}

/// Stores an attempt's output in order and publishes it once stored: the
/// first `limit` bytes; everything after is only counted and hashed, so a host
/// printing without end fills neither the database nor the portal's memory.
struct OutputWriter {
    engine: Arc<Engine>,
    run_id: i64,
    position: i32,
    attempt_id: i64,
    seq: i32,
    /// The first storage failure; the step then fails.
    failure: Option<String>,
    limit: u64,
    /// Bytes received and bytes stored.
    total: u64,
    stored: u64,
    /// Over every byte received, in order.
    digest: sha2::Sha256,
}

impl OutputWriter {
    fn new(engine: Arc<Engine>, run_id: i64, position: i32, attempt_id: i64, limit: u64) -> Self {
        use sha2::Digest;
        Self {
            engine,
            run_id,
            position,
            attempt_id,
            seq: 0,
            failure: None,
            limit,
            total: 0,
            stored: 0,
            digest: sha2::Sha256::new(),
        }
    }

    /// The output's totals so far.
    fn totals(&self) -> OutputTotals {
        use sha2::Digest;
        OutputTotals {
            bytes: self.total,
            stored_bytes: self.stored,
            sha256: hex::encode(self.digest.clone().finalize()),
        }
    }

    /// How many of `len` more bytes may still be stored.
    fn room(&self, len: usize) -> usize {
        let left = self.limit.saturating_sub(self.stored);
        usize::try_from(left).map_or(len, |left| left.min(len))
    }

    async fn write(&mut self, stderr: bool, bytes: &[u8], text: String) {
        use sha2::Digest;
        self.total += bytes.len() as u64;
        self.digest.update(bytes);
        let room = self.room(bytes.len());
        if room == 0 {
            return;
        }
        let (bytes, text) = if room < bytes.len() {
            let kept = &bytes[..room];
            (kept, String::from_utf8_lossy(kept).into_owned())
        } else {
            (bytes, text)
        };
        self.stored += bytes.len() as u64;
        let seq = self.seq;
        self.seq += 1;
        let received_at_ms = chrono::Utc::now().timestamp_millis();
        match runs::append_output(&self.engine.pool, self.attempt_id, seq, stderr, bytes).await {
            Ok(()) => self.engine.hub.publish(
                self.run_id,
                LiveEvent::Output {
                    position: self.position,
                    attempt_id: self.attempt_id,
                    chunk: OutputChunk { seq, stderr, text },
                    received_at_ms,
                },
            ),
            Err(e) => {
                tracing::error!(attempt_id = self.attempt_id, error = %e, "cannot store output");
                self.failure.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Remembers the reading for the run view and shows it to open pages.
    fn progress(&self, progress: Progress) {
        {
            let mut kept = self
                .engine
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            kept.insert(self.attempt_id, progress.clone());
            while kept.len() > PROGRESS_KEPT {
                kept.pop_first();
            }
        }
        self.engine.hub.publish(
            self.run_id,
            LiveEvent::Progress {
                position: self.position,
                attempt_id: self.attempt_id,
                progress,
            },
        );
    }

    /// A line of the portal's own (between checks, why a host was unreachable), on stderr.
    async fn note(&mut self, text: &str) {
        self.write(true, text.as_bytes(), text.to_string()).await;
    }

    /// Stores what `rx` brings until the job drops its sender; returns the
    /// stdout and stderr text to judge the command by: what was stored of it
    /// (expectations and captures look at no more than the page shows).
    async fn drain(&mut self, mut rx: mpsc::Receiver<Emit>) -> (String, String) {
        let (mut out, mut err) = (Utf8Stream::default(), Utf8Stream::default());
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(emitted) = rx.recv().await {
            let (is_err, bytes) = match emitted {
                Emit::Output { stderr, bytes } => (stderr, bytes),
                Emit::Progress(progress) => {
                    self.progress(progress);
                    continue;
                }
            };
            if self.room(bytes.len()) == 0 {
                // Counted and hashed only; nothing kept in memory.
                self.write(is_err, &bytes, String::new()).await;
                continue;
            }
            let text = if is_err {
                err.push(&bytes)
            } else {
                out.push(&bytes)
            };
            if is_err {
                stderr.push_str(&text)
            } else {
                stdout.push_str(&text)
            }
            self.write(is_err, &bytes, text).await;
        }
        stdout.push_str(&out.finish());
        stderr.push_str(&err.finish());
        (stdout, stderr)
    }
}
