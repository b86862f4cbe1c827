//! The engine's side of the approval gate: requesting approval of a destructive
//! step with the action rendered now, running it under an approval, supervisors'
//! decisions, withdrawals, changed parameters (which void approvals of changed
//! actions) and the expiry of unused approvals. The rules and their records are
//! in [`crate::ssr::approvals`]; this adds rendering and live updates.

use super::{checked_text, conflict, owned_by, render_now, Engine, StepContext};
use crate::error::AppError;
use crate::model::approval::{
    action_fingerprint, ApprovalDetail, ApprovalView, ApprovalsOverview, Decider, Decision,
};
use crate::model::audit::AuditAction;
use crate::model::run::{RunState, StepState};
use crate::ssr::approvals::{self, DecisionInput, Execution, NewRequest};
use crate::ssr::audit::{self, Actor, NewEvent};
use crate::ssr::runs::{self, RunRecord};
use crate::ssr::ServiceError;
use runbook::model::StepAction;
use runbook::render::RenderedAction;
use serde_json::json;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often unused approvals are checked for expiry.
const EXPIRY_SWEEP: Duration = Duration::from_secs(2);

/// The host a rendered action runs on, if it runs on one.
pub(super) fn host_of(action: &RenderedAction) -> Option<String> {
    match action {
        RenderedAction::Shell { host, .. } | RenderedAction::Wait { host, .. } => {
            Some(host.clone())
        }
        _ => None,
    }
}

/// The canonical text of a step's action as rendered now, and its approval hash.
fn fingerprinted(record: &RunRecord, step_id: &str, action: &RenderedAction) -> (String, String) {
    let canonical = action.canonical();
    let hash = approvals::action_hash(&action_fingerprint(
        &record.summary.site,
        &record.runbook_sha256,
        step_id,
        &canonical,
    ));
    (canonical, hash)
}

impl Engine {
    /// Tells the approvals pages (and navigation counts) that requests changed.
    pub(super) fn approvals_changed(&self) {
        let _ = self.approvals.send(());
    }

    /// Subscribes to changes of requests for approval.
    pub fn subscribe_approvals(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.approvals.subscribe()
    }

    fn published(&self, run_id: i64) {
        self.hub.changed(run_id);
        self.approvals_changed();
    }

    /// The operator asks for approval of the destructive step in `ctx`.
    pub(super) async fn request_approval(
        &self,
        ctx: &StepContext,
        justification: &str,
        user_id: i64,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        if let StepAction::OpenStack { .. } = ctx.step.action {
            self.openstack_available(&ctx.record.summary.site)?;
        }
        let action = render_now(&ctx.step, ctx.position, &ctx.record)?;
        let (canonical, hash) = fingerprinted(&ctx.record, &ctx.step.id, &action);
        let host = host_of(&action);
        let approvals_page = self.notifier.approvals_page();
        approvals::request(
            &self.pool,
            NewRequest {
                run_id: ctx.run_id,
                position: ctx.position,
                step_id: &ctx.step.id,
                site: &ctx.record.summary.site,
                host: host.as_deref(),
                runbook_sha256: &ctx.record.runbook_sha256,
                action: &canonical,
                action_hash: &hash,
                quorum: ctx.step.approvals.max(1),
                justification,
                user_id,
                approvals_page: &approvals_page,
                decide_within: self.times.decide_within,
            },
            actor,
        )
        .await?;
        self.notifier.queued();
        self.published(ctx.run_id);
        Ok(())
    }

    /// Runs the destructive step in `ctx` under approval `approval`, which must be
    /// valid for exactly the action as it renders now.
    pub(super) async fn run_approved(
        self: &Arc<Self>,
        ctx: StepContext,
        approval: i64,
        user_id: i64,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let action = render_now(&ctx.step, ctx.position, &ctx.record)?;
        let (canonical, hash) = fingerprinted(&ctx.record, &ctx.step.id, &action);
        let host = host_of(&action);
        let pool = self.pool.clone();
        let (run_id, position) = (ctx.run_id, ctx.position);
        let runbook_sha256 = ctx.record.runbook_sha256.clone();
        let started = self
            .launch(ctx, action, || async {
                approvals::start_under(
                    &pool,
                    approval,
                    Execution {
                        run_id,
                        position,
                        runbook_sha256: &runbook_sha256,
                        host: host.as_deref(),
                        action: &canonical,
                        action_hash: &hash,
                        user_id,
                    },
                    actor,
                )
                .await
            })
            .await;
        // Refused or not, the request may have changed (used, expired, voided).
        self.published(run_id);
        started
    }

    /// A supervisor decides request `id`.
    pub async fn decide(
        &self,
        id: i64,
        who: Decider,
        actor: &Actor,
        decision: Decision,
        text: &str,
        break_glass_reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        let text = &checked_text("Comment", text)?;
        let break_glass_reason = break_glass_reason
            .map(|r| checked_text("Break-glass reason", r))
            .transpose()?;
        let break_glass_reason = break_glass_reason.as_deref();
        let result = approvals::decide(
            &self.pool,
            id,
            who,
            actor,
            DecisionInput {
                decision,
                text,
                break_glass_reason,
            },
            self.times.validity,
        )
        .await;
        if let Ok(run_id) = &result {
            self.hub.changed(*run_id);
        }
        self.approvals_changed();
        result.map(|_| ())
    }

    /// Withdraws request `id` (its requester, or a supervisor).
    pub async fn withdraw(
        &self,
        id: i64,
        who: Decider,
        actor: &Actor,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let result = approvals::withdraw(&self.pool, id, who, actor, reason).await;
        if let Ok(run_id) = &result {
            self.hub.changed(*run_id);
        }
        self.approvals_changed();
        result.map(|_| ())
    }

    /// Changes parameter `name` of active run `run_id`. An open request whose
    /// action renders differently with the new value is voided in the same
    /// transaction.
    pub async fn change_parameter(
        &self,
        run_id: i64,
        user_id: i64,
        name: &str,
        value: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let reason = &checked_text("Reason", reason)?;
        let mut record = runs::load(&self.pool, run_id).await?;
        owned_by(&record, user_id)?;
        if record.summary.state != RunState::Active {
            return Err(conflict(format!(
                "Run {run_id} has finished; its parameters cannot change."
            )));
        }
        let runbook = self.runbook_of(&record)?;
        let field = format!("params[{name}]");
        let Some(param) = runbook.parameter(name) else {
            return Err(AppError::Fields(vec![(
                "name".into(),
                format!("Parameter: the runbook has no parameter {name:?}"),
            )])
            .into());
        };
        let value = runbook::params::check_value(param, value).map_err(|message| {
            AppError::Fields(vec![(field.clone(), format!("{}: {message}", param.label))])
        })?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::invalid(
                "Reason",
                "is required to change a parameter of a run",
            ));
        }
        let old = record.parameters.insert(name.to_string(), value.clone());
        if old.as_deref() == Some(value.as_str()) {
            return Err(ServiceError::invalid(
                &field,
                format!("{} is {value:?} already", param.label),
            ));
        }
        // Every step whose request is open, with its action as it renders now.
        let open: Vec<(i32, Option<String>)> = record
            .steps
            .iter()
            .filter(|s| s.state == StepState::AwaitingApproval)
            .map(|row| {
                let hash = runbook
                    .steps
                    .iter()
                    .find(|s| s.id == row.step_id)
                    .and_then(|step| {
                        render_now(step, row.position, &record)
                            .ok()
                            .map(|a| fingerprinted(&record, &step.id, &a).1)
                    });
                (row.position, hash)
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let why = format!("parameter {name} changed from {old:?} to {value:?}");
        for (position, hash) in &open {
            approvals::void_if_changed(&mut tx, run_id, *position, hash.as_deref(), actor, &why)
                .await?;
        }
        let updated = sqlx::query(
            "UPDATE runs SET parameters = jsonb_set(parameters, ARRAY[$2], to_jsonb($3::text)) WHERE id = $1 AND state = 'active' AND owner = $4",
        )
        .bind(run_id)
        .bind(name)
        .bind(&value)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(conflict(format!(
                "Run {run_id} has finished or was taken over meanwhile; its parameters did not change."
            )));
        }
        audit::append(
            &mut tx,
            NewEvent::new(
                actor,
                AuditAction::RunParameterChanged,
                format!("run:{run_id}"),
                json!({ "parameter": name, "from": old, "to": value, "reason": reason }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.published(run_id);
        Ok(())
    }

    /// `user_id` takes active run `run_id` over from its owner, with a reason:
    /// from now on only they may act on it (the previous owner takes it back the
    /// same way). An open request for approval (pending, or approved and unused)
    /// was the previous owner's and is voided in the same transaction, so the new
    /// owner asks anew under their own name.
    pub async fn take_over(
        &self,
        run_id: i64,
        user_id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let record = runs::load(&self.pool, run_id).await?;
        if record.summary.state != RunState::Active {
            return Err(conflict(format!(
                "Run {run_id} has finished; there is nothing to take over."
            )));
        }
        if record.owner_id == user_id {
            return Err(conflict(format!("Run {run_id} is yours already.")));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::invalid(
                "Reason",
                format!(
                    "is required to take over run {run_id} from {}",
                    record.summary.owner
                ),
            ));
        }
        let from = record.summary.owner.clone();
        let mut tx = self.pool.begin().await?;
        // Requests first, then the run: the order every other path locks in.
        let open: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT id, position FROM approval_requests WHERE run_id = $1 AND state IN ('pending', 'approved') ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await?;
        let why = format!("run {run_id} was taken over from {from}");
        let mut voided = Vec::new();
        for (id, position) in open {
            if approvals::void_if_changed(&mut tx, run_id, position, None, actor, &why).await? {
                voided.push(id);
            }
        }
        let owner: Option<(i64, String)> =
            sqlx::query_as("SELECT owner, state FROM runs WHERE id = $1 FOR UPDATE")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some((owner, state)) if state == "active" && owner == record.owner_id => {}
            Some((_, state)) if state != "active" => {
                return Err(conflict(format!(
                    "Run {run_id} has finished; there is nothing to take over."
                )))
            }
            _ => {
                return Err(conflict(format!(
                    "Run {run_id} changed hands meanwhile; look at it again."
                )))
            }
        }
        sqlx::query("UPDATE runs SET owner = $2 WHERE id = $1")
            .bind(run_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            NewEvent::new(
                actor,
                AuditAction::RunTakenOver,
                format!("run:{run_id}"),
                json!({ "from": from, "to": actor.as_column(), "reason": reason, "voided_approvals": voided }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.published(run_id);
        Ok(())
    }

    /// One request with its run, for a supervisor to decide.
    pub async fn approval_detail(&self, id: i64) -> Result<ApprovalDetail, ServiceError> {
        let approval = approvals::one(&self.pool, id).await?;
        self.detail(approval).await
    }

    async fn detail(&self, approval: ApprovalView) -> Result<ApprovalDetail, ServiceError> {
        let run = self.view(approval.run_id).await?;
        Ok(ApprovalDetail {
            site_break_glass: run.break_glass.is_some(),
            approval,
            run,
        })
    }

    /// The approvals page: open requests with their runs, and the latest ended ones.
    pub async fn approvals_overview(&self) -> Result<ApprovalsOverview, ServiceError> {
        let mut open = Vec::new();
        for approval in approvals::open(&self.pool).await? {
            open.push(self.detail(approval).await?);
        }
        Ok(ApprovalsOverview {
            open,
            recent: approvals::recent(&self.pool, 20).await?,
        })
    }

    /// How many requests `user_id` could decide now.
    pub async fn awaiting(&self, user_id: i64) -> Result<i64, ServiceError> {
        approvals::awaiting(&self.pool, user_id).await
    }

    /// Switches break-glass mode of `site`.
    pub async fn set_break_glass(
        &self,
        site: &str,
        enabled: bool,
        reason: &str,
        user_id: i64,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        let reason = &checked_text("Reason", reason)?;
        if !self.sites().iter().any(|s| s.name == site) {
            return Err(ServiceError::invalid(
                "Site",
                format!("{site:?} is not a configured site"),
            ));
        }
        approvals::set_break_glass(
            &self.pool,
            site,
            enabled,
            reason,
            user_id,
            actor,
            self.times.break_glass_for,
        )
        .await?;
        self.approvals_changed();
        Ok(())
    }

    /// Expires unused approvals from now on, every few seconds, for as long as the
    /// engine exists.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let engine: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(EXPIRY_SWEEP).await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match approvals::expire_due(&engine.pool).await {
                    Ok(runs) => {
                        for run_id in runs {
                            engine.published(run_id);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot expire approvals"),
                }
            }
        });
    }
}
