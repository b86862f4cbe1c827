//! Requests for approval in PostgreSQL: the one place where the rules of
//! [`crate::model::approval`] are enforced. Every function reads the facts it
//! decides on under row locks, in the transaction that records the outcome and its
//! audit event; locks are always taken request first, then step.
//!
//! A refused decision or execution is audited in a transaction of its own (the
//! refused one is rolled back), and a refusal that ends a request (an expired
//! approval, a changed action) records that too.

use super::audit::{self, Actor, NewEvent};
use super::runs::{self, TransitionInput, Transitioned};
use super::ServiceError;
use crate::error::AppError;
use crate::model::approval::{
    check_decision, check_execution, ApprovalFacts, ApprovalState, ApprovalView, BreakGlass,
    BreakGlassView, Decider, Decision, DecisionEffect, DecisionView, ExecutionTarget, Refusal,
    RequestFacts,
};
use crate::model::audit::{ApprovalEvent, AuditAction};
use crate::model::run::StepEvent;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::BTreeMap;

/// The audit subject of a request.
fn subject(run_id: i64, step_id: &str, id: i64) -> String {
    format!("run:{run_id}/step:{step_id}/approval:{id}")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The SHA-256 (hex) of an action's fingerprint.
pub fn action_hash(fingerprint: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(fingerprint.as_bytes()))
}

/// How long the parts of the gate last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApprovalTimes {
    /// An approval stays valid this long once given.
    pub validity: Duration,
    /// A request expires if its decisions have not come this long after it was
    /// made: the site it was made for has moved on since.
    pub decide_within: Duration,
    /// Break glass switches itself off this long after an admin switched it on.
    pub break_glass_for: Duration,
}

impl Default for ApprovalTimes {
    fn default() -> Self {
        Self {
            validity: Duration::minutes(15),
            decide_within: Duration::hours(24),
            break_glass_for: Duration::hours(1),
        }
    }
}

/// A new request, as the engine renders it.
#[derive(Clone, Debug)]
pub struct NewRequest<'a> {
    pub run_id: i64,
    pub position: i32,
    pub step_id: &'a str,
    pub site: &'a str,
    pub host: Option<&'a str>,
    pub runbook_sha256: &'a str,
    /// The canonical rendered action.
    pub action: &'a str,
    pub action_hash: &'a str,
    pub quorum: u8,
    pub justification: &'a str,
    pub user_id: i64,
    /// The approvals page, which notifications link to.
    pub approvals_page: &'a str,
    /// The request expires if not decided within this.
    pub decide_within: Duration,
}

/// Records a request: the step moves to awaiting-approval, and its notifications
/// are queued for the site's channels, in the same transaction. Returns the
/// request's id.
pub async fn request(pool: &PgPool, r: NewRequest<'_>, actor: &Actor) -> Result<i64, ServiceError> {
    let justification = r.justification.trim();
    if justification.is_empty() {
        return Err(ServiceError::invalid(
            "Justification",
            "is required: say why this step must run now",
        ));
    }
    let mut tx = pool.begin().await?;
    let t = runs::transition_in(
        &mut tx,
        r.run_id,
        r.position,
        StepEvent::RequestApproval,
        actor,
        TransitionInput {
            host: r.host,
            action: Some(r.action),
            owner: Some(r.user_id),
            ..Default::default()
        },
    )
    .await?;
    let attempt = t.attempts + 1;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO approval_requests (run_id, position, step_id, attempt, site, host, runbook_sha256, action, action_hash, quorum, justification, requested_by, decide_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, clock_timestamp() + $13::float8 * interval '1 second') RETURNING id",
    )
    .bind(r.run_id)
    .bind(r.position)
    .bind(r.step_id)
    .bind(attempt)
    .bind(r.site)
    .bind(r.host)
    .bind(r.runbook_sha256)
    .bind(r.action)
    .bind(r.action_hash)
    .bind(i16::from(r.quorum.clamp(1, 2)))
    .bind(justification)
    .bind(r.user_id)
    .bind(r.decide_within.num_milliseconds() as f64 / 1000.0)
    .fetch_one(&mut *tx)
    .await?;
    super::notify::outbox::enqueue_approval(&mut tx, id, r.approvals_page).await?;
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::Approval(ApprovalEvent::Requested),
            subject(r.run_id, r.step_id, id),
            json!({
                "approval": id, "run": r.run_id, "step": r.step_id, "attempt": attempt,
                "site": r.site, "host": r.host, "action": r.action, "action_hash": r.action_hash,
                "runbook_sha256": r.runbook_sha256, "quorum": r.quorum, "justification": justification,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The database's clock: expiry is set, checked and swept on one clock.
async fn database_now(tx: &mut Transaction<'_, Postgres>) -> Result<DateTime<Utc>, ServiceError> {
    Ok(sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut **tx)
        .await?)
}

/// A request read under lock.
struct Locked {
    facts: ApprovalFacts,
    step_id: String,
    site: String,
}

async fn lock(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<Option<Locked>, ServiceError> {
    let Some(row) = sqlx::query(
        "SELECT run_id, position, step_id, attempt, site, runbook_sha256, action_hash, quorum, requested_by, state, expires_at, decide_by \
         FROM approval_requests WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    // An approval counts only while its supervisor still is one: approvals of
    // users disabled or demoted since (a suspect approval, a departed colleague)
    // are void. Read under the request's lock, in the transaction that uses it.
    let approvers = sqlx::query(
        "SELECT d.user_id, u.username, (u.disabled OR u.role <> 'supervisor') AS void \
         FROM approval_decisions d JOIN users u ON u.id = d.user_id \
         WHERE d.request_id = $1 AND d.decision = 'approve' ORDER BY d.id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let mut approved_by = Vec::new();
    let mut void_approvers = Vec::new();
    for a in &approvers {
        if a.try_get::<bool, _>("void")? {
            void_approvers.push(a.try_get::<String, _>("username")?);
        } else {
            approved_by.push(a.try_get::<i64, _>("user_id")?);
        }
    }
    let state: String = row.try_get("state")?;
    Ok(Some(Locked {
        facts: ApprovalFacts {
            request: RequestFacts {
                state: ApprovalState::parse(&state).ok_or_else(|| {
                    ServiceError::Internal(format!("approval_requests.state {state:?}"))
                })?,
                requested_by: row.try_get("requested_by")?,
                quorum: u8::try_from(row.try_get::<i16, _>("quorum")?).unwrap_or(1),
                approved_by,
                void_approvers,
                expires_at: row.try_get("expires_at")?,
                decide_by: row.try_get("decide_by")?,
            },
            run_id: row.try_get("run_id")?,
            position: row.try_get("position")?,
            attempt: row.try_get("attempt")?,
            runbook_sha256: row.try_get("runbook_sha256")?,
            action_hash: row.try_get("action_hash")?,
        },
        step_id: row.try_get("step_id")?,
        site: row.try_get("site")?,
    }))
}

/// What a decision's caller writes.
#[derive(Clone, Copy, Debug)]
pub struct DecisionInput<'a> {
    pub decision: Decision,
    /// The approval's comment or the rejection's reason.
    pub text: &'a str,
    /// Why a supervisor approves their own request (break-glass mode only).
    pub break_glass_reason: Option<&'a str>,
}

/// Records a supervisor's decision on request `id`. Returns the run it belongs to.
pub async fn decide(
    pool: &PgPool,
    id: i64,
    who: Decider,
    actor: &Actor,
    input: DecisionInput<'_>,
    validity: Duration,
) -> Result<i64, ServiceError> {
    // Said before anything about the request, so nobody else learns which exist.
    if !who
        .role
        .permits(crate::model::Permission::ApproveDestructiveSteps)
    {
        let refusal = Refusal::NotASupervisor {
            role: who.role.as_str().to_string(),
        };
        return Err(refuse(
            pool,
            id,
            None,
            actor,
            refusal,
            input.decision.as_str(),
            Target::default(),
        )
        .await);
    }
    let mut tx = pool.begin().await?;
    let Some(locked) = lock(&mut tx, id).await? else {
        drop(tx);
        return Err(refuse(
            pool,
            id,
            None,
            actor,
            Refusal::Unknown,
            input.decision.as_str(),
            Target::default(),
        )
        .await);
    };
    let site_enabled = break_glass_enabled(&mut tx, &locked.site).await?;
    let now = database_now(&mut tx).await?;
    let text = input.text.trim();
    let reason = input
        .break_glass_reason
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let effect = match check_decision(
        who,
        &locked.facts.request,
        input.decision,
        text,
        BreakGlass {
            site_enabled,
            reason,
        },
        now,
    ) {
        Ok(effect) => effect,
        Err(refusal) => {
            drop(tx);
            return Err(refuse(
                pool,
                id,
                Some(&locked),
                actor,
                refusal,
                input.decision.as_str(),
                Target::default(),
            )
            .await);
        }
    };
    let run_id = locked.facts.run_id;
    let subject = subject(run_id, &locked.step_id, id);
    let break_glass = matches!(
        effect,
        DecisionEffect::Approval {
            break_glass: true,
            ..
        }
    );
    sqlx::query(
        "INSERT INTO approval_decisions (request_id, user_id, decision, text, break_glass_reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (request_id, user_id) DO UPDATE SET decision = $3, text = $4, break_glass_reason = $5, at = now()",
    )
    .bind(id)
    .bind(who.user_id)
    .bind(input.decision.as_str())
    .bind(text)
    .bind(if break_glass { reason } else { None })
    .execute(&mut *tx)
    .await?;
    match effect {
        DecisionEffect::Approval { complete, .. } => {
            let expires_at = complete.then(|| now + validity);
            sqlx::query(
                "UPDATE approval_requests SET break_glass = break_glass OR $2, \
                 state = CASE WHEN $3 THEN 'approved' ELSE state END, \
                 approved_at = CASE WHEN $3 THEN now() ELSE approved_at END, expires_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(break_glass)
            .bind(complete)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            audit::append(
                &mut tx,
                NewEvent::new(
                    actor,
                    AuditAction::Approval(ApprovalEvent::Approved),
                    subject,
                    json!({
                        "approval": id, "comment": text, "approvals": locked.facts.request.approved_by.len() + 1,
                        "quorum": locked.facts.request.quorum, "complete": complete,
                        "expires_at": expires_at.map(rfc3339),
                        "break_glass": break_glass, "break_glass_reason": if break_glass { reason } else { None },
                    }),
                ),
            )
            .await?;
        }
        DecisionEffect::Rejection => {
            sqlx::query(
                "UPDATE approval_requests SET state = 'rejected', ended_at = now(), ended_by = $2, ended_reason = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(actor.as_column())
            .bind(text)
            .execute(&mut *tx)
            .await?;
            runs::transition_in(
                &mut tx,
                run_id,
                locked.facts.position,
                StepEvent::ApprovalEnded,
                actor,
                TransitionInput::default(),
            )
            .await?;
            audit::append(
                &mut tx,
                NewEvent::new(
                    actor,
                    AuditAction::Approval(ApprovalEvent::Rejected),
                    subject,
                    json!({ "approval": id, "reason": text }),
                ),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(run_id)
}

/// Withdraws request `id` (pending, or approved and not used): the step returns to
/// pending. Returns the run it belongs to.
pub async fn withdraw(
    pool: &PgPool,
    id: i64,
    who: Decider,
    actor: &Actor,
    reason: &str,
) -> Result<i64, ServiceError> {
    let mut tx = pool.begin().await?;
    let Some(locked) = lock(&mut tx, id).await? else {
        return Err(AppError::NotFound(format!("There is no approval request {id}.")).into());
    };
    if who.user_id != locked.facts.request.requested_by
        && !who
            .role
            .permits(crate::model::Permission::ApproveDestructiveSteps)
    {
        drop(tx);
        return Err(refuse(
            pool,
            id,
            Some(&locked),
            actor,
            Refusal::NotRequesterOrSupervisor,
            "withdraw",
            Target::default(),
        )
        .await);
    }
    let state = locked.facts.request.state;
    if !state.is_open() {
        return Err(AppError::Conflict(format!(
            "Approval request {id} is {state}; there is nothing to withdraw."
        ))
        .into());
    }
    let reason = Some(reason.trim()).filter(|r| !r.is_empty());
    end_locked(
        &mut tx,
        id,
        &locked,
        ApprovalState::Withdrawn,
        actor,
        reason.unwrap_or("withdrawn"),
    )
    .await?;
    tx.commit().await?;
    Ok(locked.facts.run_id)
}

/// Ends a locked open request in state `end` and returns its step to pending.
async fn end_locked(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    locked: &Locked,
    end: ApprovalState,
    actor: &Actor,
    why: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE approval_requests SET state = $2, ended_at = now(), ended_by = $3, ended_reason = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(end.as_str())
    .bind(actor.as_column())
    .bind(why)
    .execute(&mut **tx)
    .await?;
    runs::transition_in(
        tx,
        locked.facts.run_id,
        locked.facts.position,
        StepEvent::ApprovalEnded,
        actor,
        TransitionInput::default(),
    )
    .await?;
    let event = match end {
        ApprovalState::Expired => ApprovalEvent::Expired,
        ApprovalState::Voided => ApprovalEvent::Voided,
        _ => ApprovalEvent::Withdrawn,
    };
    audit::append(
        tx,
        NewEvent::new(
            actor,
            AuditAction::Approval(event),
            subject(locked.facts.run_id, &locked.step_id, id),
            json!({ "approval": id, "reason": why }),
        ),
    )
    .await?;
    Ok(())
}

/// Ends the open request of a step that leaves awaiting-approval another way
/// (skipped, or its run cancelled), inside that transition's transaction.
pub(crate) async fn close_open(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    position: i32,
    actor: &Actor,
    why: &str,
) -> Result<(), ServiceError> {
    let rows = sqlx::query(
        "UPDATE approval_requests SET state = 'withdrawn', ended_at = now(), ended_by = $3, ended_reason = $4 \
         WHERE run_id = $1 AND position = $2 AND state IN ('pending', 'approved') RETURNING id, step_id",
    )
    .bind(run_id)
    .bind(position)
    .bind(actor.as_column())
    .bind(why)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let step_id: String = row.try_get("step_id")?;
        audit::append(
            tx,
            NewEvent::new(
                actor,
                AuditAction::Approval(ApprovalEvent::Withdrawn),
                subject(run_id, &step_id, id),
                json!({ "approval": id, "reason": why }),
            ),
        )
        .await?;
    }
    Ok(())
}

/// Voids the open request of step `position` if its action hash is no longer
/// `current_hash`, inside the caller's transaction (a parameter change).
/// Returns whether one was voided.
pub(crate) async fn void_if_changed(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    position: i32,
    current_hash: Option<&str>,
    actor: &Actor,
    why: &str,
) -> Result<bool, ServiceError> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM approval_requests WHERE run_id = $1 AND position = $2 AND state IN ('pending', 'approved') \
         AND ($3::text IS NULL OR action_hash <> $3)",
    )
    .bind(run_id)
    .bind(position)
    .bind(current_hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    let Some(locked) = lock(tx, id).await? else {
        return Ok(false);
    };
    // Decided, used or withdrawn while this waited for the lock: nothing to void.
    if !locked.facts.request.state.is_open()
        || current_hash.is_some_and(|h| h == locked.facts.action_hash)
    {
        return Ok(false);
    }
    end_locked(tx, id, &locked, ApprovalState::Voided, actor, why).await?;
    Ok(true)
}

/// Voids every approved, unused request that `user_id` approved, inside the
/// caller's transaction: the user was just disabled or lost the supervisor role,
/// so their approvals no longer count (requests still pending simply no longer
/// count them). Returns the runs whose requests were voided.
pub(crate) async fn void_approved_by(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
    actor: &Actor,
    why: &str,
) -> Result<Vec<i64>, ServiceError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM approval_requests a WHERE a.state = 'approved' AND EXISTS ( \
             SELECT 1 FROM approval_decisions d WHERE d.request_id = a.id AND d.user_id = $1 AND d.decision = 'approve') \
         ORDER BY a.id",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut runs = Vec::new();
    for id in ids {
        let Some(locked) = lock(tx, id).await? else {
            continue;
        };
        if locked.facts.request.state != ApprovalState::Approved {
            continue;
        }
        end_locked(tx, id, &locked, ApprovalState::Voided, actor, why).await?;
        runs.push(locked.facts.run_id);
    }
    Ok(runs)
}

/// The step about to run under an approval, as the engine renders it now.
#[derive(Clone, Debug)]
pub struct Execution<'a> {
    pub run_id: i64,
    pub position: i32,
    pub runbook_sha256: &'a str,
    pub host: Option<&'a str>,
    /// The canonical rendered action and its fingerprint's hash.
    pub action: &'a str,
    pub action_hash: &'a str,
    pub user_id: i64,
}

/// Starts step `e.position` under approval `id`: the approval is checked, marked
/// used, the attempt opened and "executed under approval" audited in one
/// transaction. Only once that has committed may the caller execute anything.
pub async fn start_under(
    pool: &PgPool,
    id: i64,
    e: Execution<'_>,
    actor: &Actor,
) -> Result<Transitioned, ServiceError> {
    let mut tx = pool.begin().await?;
    let Some(locked) = lock(&mut tx, id).await? else {
        drop(tx);
        return Err(refuse(
            pool,
            id,
            None,
            actor,
            Refusal::Unknown,
            "execute",
            Target {
                run_id: Some(e.run_id),
                position: Some(e.position),
            },
        )
        .await);
    };
    let attempts: Option<i32> = sqlx::query_scalar(
        "SELECT attempts FROM run_steps WHERE run_id = $1 AND position = $2 FOR UPDATE",
    )
    .bind(e.run_id)
    .bind(e.position)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(attempts) = attempts else {
        return Err(AppError::NotFound(format!(
            "Run {} has no step {}.",
            e.run_id,
            i64::from(e.position) + 1
        ))
        .into());
    };
    let target = ExecutionTarget {
        run_id: e.run_id,
        position: e.position,
        attempt: attempts + 1,
        runbook_sha256: e.runbook_sha256,
        action_hash: e.action_hash,
        user_id: e.user_id,
    };
    let now = database_now(&mut tx).await?;
    if let Err(refusal) = check_execution(id, &locked.facts, &target, now) {
        drop(tx);
        return Err(refuse(
            pool,
            id,
            Some(&locked),
            actor,
            refusal,
            "execute",
            Target {
                run_id: Some(e.run_id),
                position: Some(e.position),
            },
        )
        .await);
    }
    let recorded: Result<Transitioned, ServiceError> = async {
        sqlx::query(
            "UPDATE approval_requests SET state = 'used', ended_at = now(), ended_by = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(actor.as_column())
        .execute(&mut *tx)
        .await?;
        let t = runs::transition_in(
            &mut tx,
            e.run_id,
            e.position,
            StepEvent::Approved,
            actor,
            TransitionInput {
                host: e.host,
                action: Some(e.action),
                approval_id: Some(id),
                owner: Some(e.user_id),
                ..Default::default()
            },
        )
        .await?;
        audit::append(
            &mut tx,
            NewEvent::new(
                actor,
                AuditAction::Approval(ApprovalEvent::Used),
                subject(e.run_id, &locked.step_id, id),
                json!({
                    "approval": id, "message": format!("step executed under approval {id}"),
                    "attempt": t.attempts, "host": e.host, "action": e.action, "action_hash": e.action_hash,
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    }
    .await;
    recorded.map_err(|err| match err {
        // A rule of the state machine (a step already running): said as it is.
        ServiceError::Client(app) => ServiceError::Client(app),
        internal => {
            let reference = super::error::log_with_reference(&internal);
            AppError::NotExecuted { reference }.into()
        }
    })
}

/// Where a refused call was aimed: the run and step it named, when it named one.
#[derive(Clone, Copy, Debug, Default)]
struct Target {
    run_id: Option<i64>,
    position: Option<i32>,
}

/// Audits a refusal, then ends the request when the refusal means it can never be
/// used (each in a transaction of its own, so the audit event is written even when
/// ending the request fails); returns the error the caller answers with.
async fn refuse(
    pool: &PgPool,
    id: i64,
    locked: Option<&Locked>,
    actor: &Actor,
    refusal: Refusal,
    during: &str,
    target: Target,
) -> ServiceError {
    let subject_of = match locked {
        Some(l) => subject(l.facts.run_id, &l.step_id, id),
        None => format!("approval:{id}"),
    };
    let event = NewEvent::new(
        actor,
        AuditAction::Approval(ApprovalEvent::Refused),
        subject_of,
        json!({
            "approval": id, "during": during, "refusal": refusal.to_string(), "rule": refusal,
            "target_run": target.run_id, "target_step": target.position.map(|p| i64::from(p) + 1),
        }),
    );
    if let Err(e) = audit::append_alone(pool, event).await {
        tracing::error!(approval = id, error = %e, "a refusal could not be audited");
    }
    if let (Some(end), Some(_)) = (refusal.ends_request(), locked) {
        let ended: Result<(), ServiceError> = async {
            let mut tx = pool.begin().await?;
            // Read again under lock: it may have changed since the refused transaction.
            if let Some(again) = lock(&mut tx, id).await? {
                if again.facts.request.state.is_open() {
                    end_locked(
                        &mut tx,
                        id,
                        &again,
                        end,
                        &Actor::System,
                        &refusal.to_string(),
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = ended {
            tracing::error!(approval = id, error = %e, "a refused approval could not be ended");
        }
    }
    match refusal {
        Refusal::NotASupervisor { role } => AppError::Forbidden {
            role,
            needed: "approve or reject destructive steps".into(),
        }
        .into(),
        Refusal::NotRequesterOrSupervisor => AppError::Forbidden {
            role: "operator".into(),
            needed: "withdraw another operator's request (only its requester or a supervisor may)"
                .into(),
        }
        .into(),
        Refusal::RejectionNeedsReason => {
            AppError::invalid("Reason", Refusal::RejectionNeedsReason).into()
        }
        Refusal::BreakGlassNeedsReason => {
            AppError::invalid("Break-glass reason", Refusal::BreakGlassNeedsReason).into()
        }
        Refusal::Unknown => {
            AppError::NotFound(format!("Approval {id} was refused: {}.", Refusal::Unknown)).into()
        }
        other => AppError::Conflict(format!("Approval {id} was refused: {other}.")).into(),
    }
}

/// At start: steps awaiting approval without an open request (left by an older
/// portal, or by a crash between two writes) go back to pending, audited, so the
/// operator can request approval again. Returns how many.
pub async fn release_stranded(pool: &PgPool) -> Result<usize, ServiceError> {
    let stranded: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT s.run_id, s.position FROM run_steps s JOIN runs r ON r.id = s.run_id \
         WHERE s.state = 'awaiting_approval' AND r.state = 'active' AND NOT EXISTS \
         (SELECT 1 FROM approval_requests a WHERE a.run_id = s.run_id AND a.position = s.position \
          AND a.state IN ('pending', 'approved'))",
    )
    .fetch_all(pool)
    .await?;
    for (run_id, position) in &stranded {
        runs::transition(
            pool,
            *run_id,
            *position,
            StepEvent::ApprovalEnded,
            &Actor::System,
            TransitionInput {
                reason: None,
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(stranded.len())
}

/// A destructive step was asked to run without an approval: audited and refused.
pub async fn refuse_without_approval(
    pool: &PgPool,
    run_id: i64,
    step_id: &str,
    actor: &Actor,
) -> ServiceError {
    let message = crate::model::run::TransitionError::NeedsApproval.to_string();
    let event = NewEvent::new(
        actor,
        AuditAction::Approval(ApprovalEvent::Refused),
        format!("run:{run_id}/step:{step_id}"),
        json!({ "during": "run", "refusal": message }),
    );
    if let Err(e) = audit::append_alone(pool, event).await {
        tracing::error!(run_id, error = %e, "a refusal could not be audited");
    }
    AppError::Conflict(format!("Step {step_id}: {message}.")).into()
}

/// Expires every approval not used in time: each returns its step to pending.
/// Returns the runs that changed.
pub async fn expire_due(pool: &PgPool) -> Result<Vec<i64>, ServiceError> {
    let mut runs_changed = Vec::new();
    let mut after = 0i64;
    loop {
        let mut tx = pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM approval_requests WHERE id > $1 AND ( \
                 (state = 'approved' AND expires_at <= clock_timestamp()) \
                 OR (state = 'pending' AND decide_by <= clock_timestamp())) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(after)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(runs_changed);
        };
        after = id;
        // One request that cannot be expired (logged) does not hold up the others;
        // execution refuses it by its time anyway.
        let expired: Result<i64, ServiceError> = async {
            let locked = lock(&mut tx, id)
                .await?
                .ok_or_else(|| ServiceError::Internal(format!("approval {id} vanished")))?;
            let why = if locked.facts.request.state == ApprovalState::Pending {
                "not decided in time: ask again if the step must still run"
            } else {
                "not used before it expired"
            };
            end_locked(
                &mut tx,
                id,
                &locked,
                ApprovalState::Expired,
                &Actor::System,
                why,
            )
            .await?;
            tx.commit().await?;
            Ok(locked.facts.run_id)
        }
        .await;
        match expired {
            Ok(run_id) => runs_changed.push(run_id),
            Err(e) => tracing::error!(approval = id, error = %e, "cannot expire an approval"),
        }
    }
}

async fn break_glass_enabled(
    tx: &mut Transaction<'_, Postgres>,
    site: &str,
) -> Result<bool, ServiceError> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT enabled AND expires_at > clock_timestamp() FROM site_break_glass WHERE site = $1",
    )
    .bind(site)
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or(false))
}

/// Every site's break-glass setting, by site.
pub async fn break_glass(pool: &PgPool) -> Result<BTreeMap<String, BreakGlassView>, ServiceError> {
    let rows = sqlx::query(
        "SELECT b.site, b.enabled AND b.expires_at > clock_timestamp() AS enabled, b.reason, u.username, b.changed_at, \
         CASE WHEN b.enabled THEN b.expires_at END AS expires_at \
         FROM site_break_glass b JOIN users u ON u.id = b.changed_by",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("site")?,
                BreakGlassView {
                    enabled: r.try_get("enabled")?,
                    reason: r.try_get("reason")?,
                    changed_by: r.try_get("username")?,
                    changed_at: rfc3339(r.try_get("changed_at")?),
                    until: r
                        .try_get::<Option<DateTime<Utc>>, _>("expires_at")?
                        .map(rfc3339),
                },
            ))
        })
        .collect()
}

/// Switches break-glass mode of `site` on (for `lasts`, after which it is off by
/// itself: an emergency measure must not outlive the emergency) or off, with a
/// written reason.
pub async fn set_break_glass(
    pool: &PgPool,
    site: &str,
    enabled: bool,
    reason: &str,
    user_id: i64,
    actor: &Actor,
    lasts: Duration,
) -> Result<(), ServiceError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::invalid(
            "Reason",
            "is required to switch break-glass mode on or off",
        ));
    }
    let mut tx = pool.begin().await?;
    let until = sqlx::query(
        "INSERT INTO site_break_glass (site, enabled, reason, changed_by, expires_at) \
         VALUES ($1, $2, $3, $4, clock_timestamp() + $5::float8 * interval '1 second') \
         ON CONFLICT (site) DO UPDATE SET enabled = $2, reason = $3, changed_by = $4, changed_at = now(), \
             expires_at = EXCLUDED.expires_at \
         RETURNING expires_at",
    )
    .bind(site)
    .bind(enabled)
    .bind(reason)
    .bind(user_id)
    .bind(lasts.num_milliseconds() as f64 / 1000.0)
    .fetch_one(&mut *tx)
    .await?;
    let until: DateTime<Utc> = until.try_get("expires_at")?;
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::BreakGlassChanged,
            format!("site:{site}"),
            json!({ "enabled": enabled, "reason": reason, "until": enabled.then(|| rfc3339(until)) }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

const VIEW_SELECT: &str = "SELECT a.id, a.run_id, a.position, a.step_id, s.title AS step_title, a.site, a.host, a.attempt, \
     a.state, a.quorum, u.username AS requested_by, a.requested_by AS requested_by_id, a.requested_at, a.justification, \
     a.action, a.action_hash, a.runbook_sha256, a.expires_at, a.ended_at, a.ended_by, a.ended_reason, a.break_glass \
     FROM approval_requests a JOIN users u ON u.id = a.requested_by \
     JOIN run_steps s ON s.run_id = a.run_id AND s.position = a.position";

async fn views(
    pool: &PgPool,
    condition: &str,
    bind: i64,
) -> Result<Vec<ApprovalView>, ServiceError> {
    let rows = sqlx::query(&format!("{VIEW_SELECT} WHERE {condition}"))
        .bind(bind)
        .fetch_all(pool)
        .await?;
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let decisions = sqlx::query(
        "SELECT d.request_id, u.username, d.decision, d.text, d.at, d.break_glass_reason \
         FROM approval_decisions d JOIN users u ON u.id = d.user_id WHERE d.request_id = ANY($1) ORDER BY d.id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_request: BTreeMap<i64, Vec<DecisionView>> = BTreeMap::new();
    for d in &decisions {
        let decision: String = d.try_get("decision")?;
        by_request
            .entry(d.try_get("request_id")?)
            .or_default()
            .push(DecisionView {
                by: d.try_get("username")?,
                decision: if decision == "reject" {
                    Decision::Reject
                } else {
                    Decision::Approve
                },
                text: d.try_get("text")?,
                at: rfc3339(d.try_get("at")?),
                break_glass_reason: d.try_get("break_glass_reason")?,
            });
    }
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let state: String = r.try_get("state")?;
            let expires_at: Option<DateTime<Utc>> = r.try_get("expires_at")?;
            let state = ApprovalState::parse(&state).ok_or_else(|| {
                ServiceError::Internal(format!("approval_requests.state {state:?}"))
            })?;
            // Past its time but not swept yet: shown as what it is.
            let state = match (state, expires_at) {
                (ApprovalState::Approved, Some(at)) if at <= Utc::now() => ApprovalState::Expired,
                (s, _) => s,
            };
            Ok(ApprovalView {
                id,
                run_id: r.try_get("run_id")?,
                position: r.try_get("position")?,
                step_id: r.try_get("step_id")?,
                step_title: r.try_get("step_title")?,
                site: r.try_get("site")?,
                host: r.try_get("host")?,
                attempt: r.try_get("attempt")?,
                state,
                quorum: u8::try_from(r.try_get::<i16, _>("quorum")?).unwrap_or(1),
                requested_by: r.try_get("requested_by")?,
                requested_by_id: r.try_get("requested_by_id")?,
                requested_at: rfc3339(r.try_get("requested_at")?),
                justification: r.try_get("justification")?,
                action: r.try_get("action")?,
                action_hash: r.try_get("action_hash")?,
                runbook_sha256: r.try_get("runbook_sha256")?,
                decisions: by_request.remove(&id).unwrap_or_default(),
                expires_at: expires_at.map(rfc3339),
                ended_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("ended_at")?
                    .map(rfc3339),
                ended_by: r.try_get("ended_by")?,
                ended_reason: r.try_get("ended_reason")?,
                break_glass: r.try_get("break_glass")?,
            })
        })
        .collect()
}

/// Every request of run `run_id`, oldest first, by step position.
pub async fn for_run(
    pool: &PgPool,
    run_id: i64,
) -> Result<BTreeMap<i32, Vec<ApprovalView>>, ServiceError> {
    let mut by_step: BTreeMap<i32, Vec<ApprovalView>> = BTreeMap::new();
    for v in views(pool, "a.run_id = $1 ORDER BY a.id", run_id).await? {
        by_step.entry(v.position).or_default().push(v);
    }
    Ok(by_step)
}

/// Request `id`.
pub async fn one(pool: &PgPool, id: i64) -> Result<ApprovalView, ServiceError> {
    views(pool, "a.id = $1", id)
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("There is no approval request {id}.")).into())
}

/// The open requests, oldest first.
pub async fn open(pool: &PgPool) -> Result<Vec<ApprovalView>, ServiceError> {
    views(
        pool,
        "a.state IN ('pending', 'approved') AND $1 = $1 ORDER BY a.id",
        0,
    )
    .await
}

/// The latest `limit` requests that have ended, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<ApprovalView>, ServiceError> {
    views(
        pool,
        "a.state NOT IN ('pending', 'approved') ORDER BY a.id DESC LIMIT $1",
        limit,
    )
    .await
}

/// How many pending requests user `user_id` could decide: not their own, not
/// approved by them already.
pub async fn awaiting(pool: &PgPool, user_id: i64) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM approval_requests a WHERE a.state = 'pending' AND a.requested_by <> $1 \
         AND NOT EXISTS (SELECT 1 FROM approval_decisions d WHERE d.request_id = a.id AND d.user_id = $1)",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?)
}
