//! Runs in PostgreSQL: starting one, moving its steps through the state machine of
//! [`crate::model::run`], recording attempts and output, and what a portal restart
//! does to steps that were running. Every change is audited in the same transaction.

use super::audit::{self, Actor, NewEvent};
use super::ServiceError;
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::run::{next, run_state, RunState, StepEvent, StepState};
use crate::model::run_view::{
    AttemptView, Outcome, OutputChunk, OutputPage, RunFilter, RunSummary,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
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
        "INSERT INTO runs (runbook_id, runbook_title, runbook_sha256, runbook_source, site, parameters, started_by, owner) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
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
            "INSERT INTO run_steps (run_id, position, step_id, title, kind, destructive, site) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run_id)
        .bind(position as i32)
        .bind(&step.id)
        .bind(&step.title)
        .bind(step.action.kind())
        .bind(step.destructive)
        .bind(site)
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
    /// When the step finishes (passed or failed): how its attempt ended. Stored
    /// with the attempt and in the audit event, in the same transaction.
    pub outcome: Option<&'a Outcome>,
    /// When a destructive step starts: the approval it runs under.
    pub approval_id: Option<i64>,
    /// A user's command: it applies only while this user owns the run, checked
    /// under the run's row lock, so a takeover that committed first wins.
    pub owner: Option<i64>,
}

/// The result of a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transitioned {
    pub state: StepState,
    /// The new attempt's id, when the step started running.
    pub attempt_id: Option<i64>,
    /// The step's attempt count after the transition.
    pub attempts: i32,
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
    let done = transition_in(&mut tx, run_id, position, event, actor, input).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`transition`] inside the caller's transaction, for changes that must commit
/// together with it (an approval used and its step started).
pub async fn transition_in(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    position: i32,
    event: StepEvent,
    actor: &Actor,
    input: TransitionInput<'_>,
) -> Result<Transitioned, ServiceError> {
    // Locks are taken request first, then step and run, everywhere (see
    // `approvals`): a skip or cancel that ends an open request must not wait for
    // the step while a supervisor's decision holds the request.
    sqlx::query(
        "SELECT id FROM approval_requests WHERE run_id = $1 AND position = $2 AND state IN ('pending', 'approved') FOR UPDATE",
    )
    .bind(run_id)
    .bind(position)
    .fetch_all(&mut **tx)
    .await?;
    let row = sqlx::query(
        "SELECT s.state, s.destructive, s.attempts, s.step_id, r.state AS run_state, r.owner, \
         (SELECT username FROM users WHERE id = r.owner) AS owner_name FROM run_steps s JOIN runs r ON r.id = s.run_id \
         WHERE s.run_id = $1 AND s.position = $2 FOR UPDATE OF s, r",
    )
    .bind(run_id)
    .bind(position)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("Run {run_id} has no step {}.", i64::from(position) + 1)))?;
    let run_state_name: String = row.try_get("run_state")?;
    if run_state_name != "active" {
        return Err(AppError::Conflict(format!(
            "Run {run_id} is {run_state_name}; its steps cannot change."
        ))
        .into());
    }
    if let Some(user) = input.owner {
        if row.try_get::<i64, _>("owner")? != user {
            return Err(AppError::NotRunOwner {
                run: run_id,
                owner: row.try_get("owner_name")?,
            }
            .into());
        }
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
    .execute(&mut **tx)
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
                "INSERT INTO step_attempts (run_id, position, attempt, host, action, started_by, approval_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(run_id)
            .bind(position)
            .bind(attempt)
            .bind(input.host)
            .bind(action)
            .bind(actor.as_column())
            .bind(input.approval_id)
            .fetch_one(&mut **tx)
            .await?,
        )
    } else {
        None
    };

    // A step leaving awaiting-approval other than by its approval (skipped, the run
    // cancelled) takes its open request with it.
    if from == StepState::AwaitingApproval
        && !matches!(event, StepEvent::Approved | StepEvent::ApprovalEnded)
    {
        super::approvals::close_open(
            tx,
            run_id,
            position,
            actor,
            &format!("the step was {}", to.as_str()),
        )
        .await?;
    }

    if let Some(outcome) = input.outcome {
        sqlx::query(
            "UPDATE step_attempts SET finished_at = now(), outcome = $4 WHERE run_id = $1 AND position = $2 AND attempt = $3",
        )
        .bind(run_id)
        .bind(position)
        .bind(attempt)
        .bind(storable(json!(outcome)))
        .execute(&mut **tx)
        .await?;
    }

    let mut details = json!({ "from": from.as_str(), "to": to.as_str(), "attempt": attempt, "host": input.host, "action": input.action, "reason": reason });
    if let Some(id) = input.approval_id {
        details["approval"] = json!(id);
    }
    if let Some(outcome) = input.outcome {
        details["outcome"] = json!(outcome);
    }
    let details = storable(details);
    audit::append(
        tx,
        NewEvent::new(
            actor,
            AuditAction::Step(event),
            format!("run:{run_id}/step:{step_id}"),
            details,
        ),
    )
    .await?;

    let states = step_states(tx, run_id).await?;
    let now_state = run_state(&states);
    if now_state != RunState::Active {
        let (name, action) = match now_state {
            RunState::Completed => ("completed", AuditAction::RunCompleted),
            _ => ("cancelled", AuditAction::RunCancelled),
        };
        sqlx::query("UPDATE runs SET state = $2, finished_at = now() WHERE id = $1")
            .bind(run_id)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        audit::append(
            tx,
            NewEvent::new(actor, action, format!("run:{run_id}"), json!({})),
        )
        .await?;
    }
    Ok(Transitioned {
        state: to,
        attempt_id,
        attempts: attempt,
        run_state: now_state,
    })
}

/// `value` with every NUL in its strings (and keys) replaced, since JSONB cannot
/// hold one: a capture from remote output or an API's error message may carry
/// one, and the step's outcome must still be stored.
pub fn storable(value: serde_json::Value) -> serde_json::Value {
    use crate::model::text::without_nul;
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(without_nul(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(storable).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (without_nul(&k).into_owned(), storable(v)))
                .collect(),
        ),
        other => other,
    }
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
    // Their open attempts end here: nobody knows how the command ended.
    let interrupted = Outcome {
        passed: false,
        ending: "interrupted".into(),
        error: Some(
            "the portal stopped while the step was running; what happened on the host is not known"
                .into(),
        ),
        ..Outcome::default()
    };
    sqlx::query(
        "UPDATE step_attempts SET finished_at = now(), outcome = $1 WHERE finished_at IS NULL",
    )
    .bind(json!(interrupted))
    .execute(&mut *tx)
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

/// Stores how an attempt ended when its step can no longer change (the run was
/// cancelled while it ran), so the result is not lost.
pub async fn record_outcome(
    pool: &PgPool,
    attempt_id: i64,
    outcome: &Outcome,
) -> Result<(), ServiceError> {
    sqlx::query("UPDATE step_attempts SET finished_at = now(), outcome = $2 WHERE id = $1 AND outcome IS NULL")
        .bind(attempt_id)
        .bind(storable(json!(outcome)))
        .execute(pool)
        .await?;
    Ok(())
}

/// A step of a run as stored.
#[derive(Clone, Debug)]
pub struct StepRow {
    pub position: i32,
    pub step_id: String,
    pub state: StepState,
    pub destructive: bool,
    pub note: Option<String>,
}

/// A run as stored, with what its steps need to render.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub summary: RunSummary,
    /// The user id of `summary.owner`: the only user who may act on the run.
    pub owner_id: i64,
    pub runbook_sha256: String,
    pub runbook_source: String,
    pub parameters: BTreeMap<String, String>,
    pub steps: Vec<StepRow>,
    /// Values captured by the last attempt of every succeeded step.
    pub captures: BTreeMap<String, String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn summary_from(row: &sqlx::postgres::PgRow) -> Result<RunSummary, ServiceError> {
    let state: String = row.try_get("state")?;
    let current_state: Option<String> = row.try_get("current_state")?;
    let current_title: Option<String> = row.try_get("current_title")?;
    Ok(RunSummary {
        id: row.try_get("id")?,
        runbook_id: row.try_get("runbook_id")?,
        runbook_title: row.try_get("runbook_title")?,
        site: row.try_get("site")?,
        state: match state.as_str() {
            "completed" => RunState::Completed,
            "cancelled" => RunState::Cancelled,
            _ => RunState::Active,
        },
        started_by: row.try_get("started_by")?,
        owner: row.try_get("owner")?,
        started_at: rfc3339(row.try_get("started_at")?),
        finished_at: row
            .try_get::<Option<DateTime<Utc>>, _>("finished_at")?
            .map(rfc3339),
        steps: usize::try_from(row.try_get::<i64, _>("steps")?).unwrap_or(0),
        steps_done: usize::try_from(row.try_get::<i64, _>("steps_done")?).unwrap_or(0),
        current: match (current_title, current_state) {
            (Some(t), Some(s)) => Some((t, parse_state(&s)?)),
            _ => None,
        },
    })
}

const SUMMARY_SELECT: &str = "SELECT r.id, r.runbook_id, r.runbook_title, r.site, r.state, u.username AS started_by, \
     o.username AS owner, r.owner AS owner_id, r.started_at, r.finished_at, \
     (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id) AS steps, \
     (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id AND s.state IN ('succeeded', 'skipped')) AS steps_done, \
     c.title AS current_title, c.state AS current_state \
     FROM runs r JOIN users u ON u.id = r.started_by JOIN users o ON o.id = r.owner \
     LEFT JOIN LATERAL (SELECT title, state FROM run_steps s WHERE s.run_id = r.id AND s.state NOT IN ('succeeded', 'skipped') ORDER BY position LIMIT 1) c ON true";

/// The runs the list shows, newest first; at most `limit`.
pub async fn list(
    pool: &PgPool,
    filter: RunFilter,
    runbook: Option<&str>,
    limit: i64,
) -> Result<Vec<RunSummary>, ServiceError> {
    let states: &[&str] = match filter {
        RunFilter::Active => &["active"],
        RunFilter::Finished => &["completed", "cancelled"],
        RunFilter::All => &["active", "completed", "cancelled"],
    };
    let rows = sqlx::query(&format!(
        "{SUMMARY_SELECT} WHERE r.state = ANY($1) AND ($2::text IS NULL OR r.runbook_id = $2) ORDER BY r.started_at DESC, r.id DESC LIMIT $3"
    ))
    .bind(states)
    .bind(runbook)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(summary_from).collect()
}

/// Run `run_id` with its steps and captured values.
pub async fn load(pool: &PgPool, run_id: i64) -> Result<RunRecord, ServiceError> {
    let row = sqlx::query(&format!("{SUMMARY_SELECT} WHERE r.id = $1"))
        .bind(run_id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no run {run_id}.")))?;
    let summary = summary_from(&row)?;
    let owner_id: i64 = row.try_get("owner_id")?;
    let extra =
        sqlx::query("SELECT runbook_sha256, runbook_source, parameters FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(pool)
            .await?;
    let parameters: serde_json::Value = extra.try_get("parameters")?;
    let parameters: BTreeMap<String, String> = serde_json::from_value(parameters)
        .map_err(|e| ServiceError::Internal(format!("runs.parameters of run {run_id}: {e}")))?;
    let steps = sqlx::query(
        "SELECT position, step_id, state, destructive, note FROM run_steps WHERE run_id = $1 ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(StepRow {
            position: r.try_get("position")?,
            step_id: r.try_get("step_id")?,
            state: parse_state(&r.try_get::<String, _>("state")?)?,
            destructive: r.try_get("destructive")?,
            note: r.try_get("note")?,
        })
    })
    .collect::<Result<Vec<_>, ServiceError>>()?;
    // The values of the last attempt of each succeeded step, in step order, so a
    // later step's capture of the same name wins.
    let outcomes: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT a.outcome FROM run_steps s JOIN LATERAL \
         (SELECT outcome FROM step_attempts a WHERE a.run_id = s.run_id AND a.position = s.position ORDER BY attempt DESC LIMIT 1) a ON true \
         WHERE s.run_id = $1 AND s.state = 'succeeded' AND a.outcome IS NOT NULL ORDER BY s.position",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let mut captures = BTreeMap::new();
    for o in outcomes {
        if let Ok(outcome) = serde_json::from_value::<Outcome>(o) {
            captures.extend(outcome.captures);
        }
    }
    Ok(RunRecord {
        summary,
        owner_id,
        runbook_sha256: extra.try_get("runbook_sha256")?,
        runbook_source: extra.try_get("runbook_source")?,
        parameters,
        steps,
        captures,
    })
}

/// How much of an attempt's output is loaded at once: the run page shows the
/// last mebibyte and loads earlier output page by page when asked.
pub const OUTPUT_WINDOW_BYTES: i64 = 1024 * 1024;

/// Raw chunks as read: sequence number, stderr, bytes.
type Chunks = Vec<(i32, bool, Vec<u8>)>;

/// The last `window` bytes of the chunks that `scope` selects from
/// `step_output o` (bound to `$1` and `$2`), by attempt, with the bytes left
/// before them. Sizes are summed without reading the chunks' data.
async fn output_tails(
    pool: &PgPool,
    scope: &str,
    first: i64,
    second: i32,
    window: i64,
) -> Result<BTreeMap<i64, (Chunks, u64)>, ServiceError> {
    let rows = sqlx::query(&format!(
        "WITH sizes AS ( \
           SELECT o.attempt_id, o.seq, octet_length(o.data)::bigint AS len, \
             (sum(octet_length(o.data)) OVER (PARTITION BY o.attempt_id ORDER BY o.seq DESC))::bigint AS from_end, \
             (sum(octet_length(o.data)) OVER (PARTITION BY o.attempt_id))::bigint AS total \
           FROM step_output o WHERE {scope}) \
         SELECT s.attempt_id, s.seq, s.total, o.stream, o.data FROM sizes s \
         JOIN step_output o ON o.attempt_id = s.attempt_id AND o.seq = s.seq \
         WHERE s.from_end - s.len < $3 ORDER BY s.attempt_id, s.seq"
    ))
    .bind(first)
    .bind(second)
    .bind(window)
    .fetch_all(pool)
    .await?;
    let mut tails: BTreeMap<i64, (Chunks, u64)> = BTreeMap::new();
    for r in &rows {
        let total: i64 = r.try_get("total")?;
        let data: Vec<u8> = r.try_get("data")?;
        let entry = tails
            .entry(r.try_get("attempt_id")?)
            .or_insert_with(|| (Vec::new(), u64::try_from(total).unwrap_or(0)));
        entry.1 = entry.1.saturating_sub(data.len() as u64);
        entry.0.push((
            r.try_get("seq")?,
            r.try_get::<String, _>("stream")? == "stderr",
            data,
        ));
    }
    Ok(tails)
}

/// Every attempt of every step of a run, with the end of its output (see
/// [`OUTPUT_WINDOW_BYTES`]), by step position.
pub async fn attempts(
    pool: &PgPool,
    run_id: i64,
) -> Result<BTreeMap<i32, Vec<AttemptView>>, ServiceError> {
    attempts_with(pool, run_id, OUTPUT_WINDOW_BYTES).await
}

/// Every attempt of every step of a run with all its stored output (the
/// report, which keeps it whole).
pub async fn attempts_whole(
    pool: &PgPool,
    run_id: i64,
) -> Result<BTreeMap<i32, Vec<AttemptView>>, ServiceError> {
    attempts_with(pool, run_id, i64::MAX).await
}

async fn attempts_with(
    pool: &PgPool,
    run_id: i64,
    window: i64,
) -> Result<BTreeMap<i32, Vec<AttemptView>>, ServiceError> {
    let rows = sqlx::query(
        "SELECT id, position, attempt, host, action, started_by, started_at, finished_at, outcome, approval_id \
         FROM step_attempts WHERE run_id = $1 ORDER BY position, attempt",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let mut output = output_tails(
        pool,
        "o.attempt_id IN (SELECT id FROM step_attempts WHERE run_id = $1) AND o.seq < $2",
        run_id,
        i32::MAX,
        window,
    )
    .await?;
    let mut by_step: BTreeMap<i32, Vec<AttemptView>> = BTreeMap::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let outcome: Option<serde_json::Value> = r.try_get("outcome")?;
        let (chunks, earlier_bytes) = output.remove(&id).unwrap_or_default();
        let loaded_from_seq = chunks.first().map(|c| c.0).unwrap_or(0);
        by_step
            .entry(r.try_get("position")?)
            .or_default()
            .push(AttemptView {
                id,
                attempt: r.try_get("attempt")?,
                host: r.try_get("host")?,
                action: r.try_get("action")?,
                started_by: r.try_get("started_by")?,
                started_at: rfc3339(r.try_get("started_at")?),
                finished_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("finished_at")?
                    .map(rfc3339),
                approval_id: r.try_get("approval_id")?,
                outcome: outcome.and_then(|o| serde_json::from_value(o).ok()),
                output: merge_chunks(chunks),
                earlier_bytes,
                loaded_from_seq,
                progress: None,
            });
    }
    Ok(by_step)
}

/// The output of attempt `attempt_id` before chunk `before_seq`: its last
/// [`OUTPUT_WINDOW_BYTES`], and how much is left before that. Also the run the
/// attempt belongs to.
pub async fn output_page(
    pool: &PgPool,
    attempt_id: i64,
    before_seq: i32,
) -> Result<(i64, OutputPage), ServiceError> {
    let run_id: i64 = sqlx::query_scalar("SELECT run_id FROM step_attempts WHERE id = $1")
        .bind(attempt_id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no attempt {attempt_id}.")))?;
    let mut tails = output_tails(
        pool,
        "o.attempt_id = $1 AND o.seq < $2",
        attempt_id,
        before_seq,
        OUTPUT_WINDOW_BYTES,
    )
    .await?;
    let (chunks, earlier_bytes) = tails.remove(&attempt_id).unwrap_or_default();
    let from_seq = chunks.first().map(|c| c.0).unwrap_or(0);
    Ok((
        run_id,
        OutputPage {
            chunks: merge_chunks(chunks),
            earlier_bytes,
            from_seq,
        },
    ))
}

/// Joins consecutive chunks of the same stream, decoding each stream's bytes
/// whole so that no character is cut.
fn merge_chunks(chunks: Vec<(i32, bool, Vec<u8>)>) -> Vec<OutputChunk> {
    let mut merged: Vec<(i32, bool, Vec<u8>)> = Vec::new();
    for (seq, stderr, data) in chunks {
        match merged.last_mut() {
            Some(last) if last.1 == stderr => {
                last.0 = seq;
                last.2.extend_from_slice(&data);
            }
            _ => merged.push((seq, stderr, data)),
        }
    }
    merged
        .into_iter()
        .map(|(seq, stderr, data)| OutputChunk {
            seq,
            stderr,
            text: String::from_utf8_lossy(&data).into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::storable;
    use serde_json::json;

    #[test]
    fn nul_characters_are_replaced_wherever_they_are() {
        let value = json!({
            "captures": { "a\u{0}": "x\u{0}y" },
            "error": "no\u{0}pe",
            "list": ["\u{0}", 1, null],
        });
        assert_eq!(
            storable(value),
            json!({
                "captures": { "a\u{FFFD}": "x\u{FFFD}y" },
                "error": "no\u{FFFD}pe",
                "list": ["\u{FFFD}", 1, null],
            })
        );
    }
}
