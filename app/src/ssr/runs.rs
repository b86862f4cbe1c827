//! Runs in PostgreSQL: starting one, moving its steps through the state machine of
//! [`crate::model::run`], recording attempts and output, and what a portal restart
//! does to steps that were running. Every change is audited in the same transaction.

use super::audit::{self, Actor, NewEvent};
use super::ServiceError;
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::run::{next, run_state, RunState, StepEvent, StepState};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;

/// Starts a run of `runbook` on `site` with checked parameter values; every step
/// starts pending. Returns the run's id.
pub async fn start(
    pool: &PgPool,
    user_id: i64,
    actor: &Actor,
    runbook: &runbook::Runbook,
    site: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<i64, ServiceError> {
    let mut tx = pool.begin().await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (runbook_id, runbook_title, runbook_sha256, runbook_source, site, parameters, started_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&runbook.id)
    .bind(&runbook.title)
    .bind(&runbook.source.sha256)
    .bind(&runbook.source.text)
    .bind(site)
    .bind(json!(parameters))
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    for (position, step) in runbook.steps.iter().enumerate() {
        sqlx::query(
            "INSERT INTO run_steps (run_id, position, step_id, title, kind, destructive) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run_id)
        .bind(position as i32)
        .bind(&step.id)
        .bind(&step.title)
        .bind(step.action.kind())
        .bind(step.destructive)
        .execute(&mut *tx)
        .await?;
    }
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::RunStarted,
            format!("run:{run_id}"),
            json!({ "runbook": runbook.id, "sha256": runbook.source.sha256, "site": site, "parameters": parameters }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(run_id)
}

/// What a step transition needs besides the event.
#[derive(Clone, Debug, Default)]
pub struct TransitionInput<'a> {
    /// The written reason of a skip or a mark-done.
    pub reason: Option<&'a str>,
    /// When the step starts running: the host and the canonical rendered action.
    pub host: Option<&'a str>,
    pub action: Option<&'a str>,
}

/// The result of a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transitioned {
    pub state: StepState,
    /// The new attempt's id, when the step started running.
    pub attempt_id: Option<i64>,
    pub run_state: RunState,
}

async fn step_states(conn: &mut PgConnection, run_id: i64) -> Result<Vec<StepState>, ServiceError> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT state FROM run_steps WHERE run_id = $1 ORDER BY position")
            .bind(run_id)
            .fetch_all(&mut *conn)
            .await?;
    names.iter().map(|n| parse_state(n)).collect()
}

fn parse_state(name: &str) -> Result<StepState, ServiceError> {
    StepState::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| ServiceError::Internal(format!("run_steps.state {name:?} in the database")))
}

/// Applies `event` to step `position` of run `run_id`, if the state machine allows
/// it, and records it. Entering `running` opens a new attempt; a second run's
/// destructive step on a host that already runs one is refused.
pub async fn transition(
    pool: &PgPool,
    run_id: i64,
    position: i32,
    event: StepEvent,
    actor: &Actor,
    input: TransitionInput<'_>,
) -> Result<Transitioned, ServiceError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT s.state, s.destructive, s.attempts, s.step_id, r.state AS run_state FROM run_steps s JOIN runs r ON r.id = s.run_id \
         WHERE s.run_id = $1 AND s.position = $2 FOR UPDATE OF s, r",
    )
    .bind(run_id)
    .bind(position)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("Run {run_id} has no step {}.", position + 1)))?;
    let run_state_name: String = row.try_get("run_state")?;
    if run_state_name != "active" {
        return Err(AppError::Conflict(format!(
            "Run {run_id} is {run_state_name}; its steps cannot change."
        ))
        .into());
    }
    let from = parse_state(&row.try_get::<String, _>("state")?)?;
    let destructive: bool = row.try_get("destructive")?;
    let attempts: i32 = row.try_get("attempts")?;
    let step_id: String = row.try_get("step_id")?;
    let to = next(from, event, destructive)
        .map_err(|e| AppError::Conflict(format!("Step {step_id}: {e}.")))?;
    let reason = input.reason.map(str::trim).filter(|r| !r.is_empty());
    if matches!(event, StepEvent::Skip | StepEvent::MarkDone) && reason.is_none() {
        return Err(ServiceError::invalid(
            "Reason",
            "is required to skip a step or mark it done",
        ));
    }

    let starts = to == StepState::Running;
    let attempt = if starts { attempts + 1 } else { attempts };
    let update = sqlx::query(
        "UPDATE run_steps SET state = $3, attempts = $4, host = CASE WHEN $5 THEN $6 ELSE host END, \
         note = COALESCE($7, note), updated_at = now() WHERE run_id = $1 AND position = $2",
    )
    .bind(run_id)
    .bind(position)
    .bind(to.as_str())
    .bind(attempt)
    .bind(starts)
    .bind(input.host)
    .bind(reason)
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(db)) = &update {
        if db.constraint() == Some("run_steps_one_destructive_per_host") {
            return Err(AppError::Conflict(format!(
                "Another run is executing a destructive step on {} right now; wait until it has finished.",
                input.host.unwrap_or("this host")
            ))
            .into());
        }
    }
    update?;

    let attempt_id = if starts {
        let action = input.action.ok_or_else(|| {
            ServiceError::Internal("a step starts running without its rendered action".into())
        })?;
        Some(
            sqlx::query_scalar(
                "INSERT INTO step_attempts (run_id, position, attempt, host, action, started_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(run_id)
            .bind(position)
            .bind(attempt)
            .bind(input.host)
            .bind(action)
            .bind(actor.as_column())
            .fetch_one(&mut *tx)
            .await?,
        )
    } else {
        None
    };

    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::Step(event),
            format!("run:{run_id}/step:{step_id}"),
            json!({ "from": from.as_str(), "to": to.as_str(), "attempt": attempt, "host": input.host, "action": input.action, "reason": reason }),
        ),
    )
    .await?;

    let states = step_states(&mut tx, run_id).await?;
    let now_state = run_state(&states);
    if now_state != RunState::Active {
        let (name, action) = match now_state {
            RunState::Completed => ("completed", AuditAction::RunCompleted),
            _ => ("cancelled", AuditAction::RunCancelled),
        };
        sqlx::query("UPDATE runs SET state = $2, finished_at = now() WHERE id = $1")
            .bind(run_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            NewEvent::new(actor, action, format!("run:{run_id}"), json!({})),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Transitioned {
        state: to,
        attempt_id,
        run_state: now_state,
    })
}

/// Stores one chunk of an attempt's output; `seq` orders the chunks.
pub async fn append_output(
    pool: &PgPool,
    attempt_id: i64,
    seq: i32,
    stderr: bool,
    data: &[u8],
) -> Result<(), ServiceError> {
    sqlx::query("INSERT INTO step_output (attempt_id, seq, stream, data) VALUES ($1, $2, $3, $4)")
        .bind(attempt_id)
        .bind(seq)
        .bind(if stderr { "stderr" } else { "stdout" })
        .bind(data)
        .execute(pool)
        .await?;
    Ok(())
}

/// At start: every step still marked running was cut off by the restart. It is
/// marked interrupted (never re-run on its own) for the operator to decide.
/// Returns how many steps were interrupted.
pub async fn interrupt_running(pool: &PgPool) -> Result<usize, ServiceError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "UPDATE run_steps SET state = 'interrupted', updated_at = now() WHERE state = 'running' RETURNING run_id, step_id, host",
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let run_id: i64 = row.try_get("run_id")?;
        let step_id: String = row.try_get("step_id")?;
        let host: Option<String> = row.try_get("host")?;
        audit::append(
            &mut tx,
            NewEvent::new(
                &Actor::System,
                AuditAction::Step(StepEvent::PortalRestarted),
                format!("run:{run_id}/step:{step_id}"),
                json!({ "from": "running", "to": "interrupted", "host": host }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}
