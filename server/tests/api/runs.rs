//! Runs in the database: the step state machine enforced, attempts and output
//! recorded, one destructive step per host, restarts, and all of it audited.

use crate::helpers::*;
use app::model::run::{RunState, StepEvent, StepState};
use app::model::Role;
use app::ssr::audit::{self, Actor};
use app::ssr::runs::{self, TransitionInput};
use app::ssr::ServiceError;
use sqlx::PgPool;
use std::collections::BTreeMap;

fn runbook(id: &str) -> runbook::Runbook {
    shipped_runbooks().into_iter().find(|r| r.id == id).unwrap()
}

async fn operator(app: &TestApp) -> (i64, Actor) {
    app.add_user("olga", Role::Operator).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'olga'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (id, Actor::User("olga".into()))
}

fn params() -> BTreeMap<String, String> {
    [
        ("site", "fra1"),
        ("backup_date", "2026-11-26"),
        ("target", "cluman"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn running<'a>(host: &'a str, action: &'a str) -> TransitionInput<'a> {
    TransitionInput {
        host: Some(host),
        action: Some(action),
        reason: None,
        outcome: None,
    }
}

/// A transition that needs no host, action or reason.
async fn step(
    pool: &PgPool,
    run: i64,
    position: i32,
    event: StepEvent,
    actor: &Actor,
) -> Result<runs::Transitioned, ServiceError> {
    runs::transition(
        pool,
        run,
        position,
        event,
        actor,
        TransitionInput::default(),
    )
    .await
}

fn message(e: ServiceError) -> String {
    app::error::AppError::from(e).to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_run_moves_through_its_steps_and_is_audited(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (uid, olga) = operator(&app).await;
    let rb = runbook("restore-cron");
    let run = runs::start(&app.pool, uid, &olga, &rb, "fra1", &params())
        .await
        .unwrap();
    let (sha, source): (String, String) =
        sqlx::query_as("SELECT runbook_sha256, runbook_source FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (sha, source),
        (rb.source.sha256.clone(), rb.source.text.clone())
    );

    // Step 1 (show-current) runs and passes, with its output kept in order.
    let t = runs::transition(
        &app.pool,
        run,
        0,
        StepEvent::Run,
        &olga,
        running("cluman", "kind=shell\nhost=cluman\ncommand=crontab -l"),
    )
    .await
    .unwrap();
    assert_eq!(t.state, StepState::Running);
    let attempt = t.attempt_id.unwrap();
    runs::append_output(&app.pool, attempt, 0, false, b"0 3 * * * backup\n")
        .await
        .unwrap();
    runs::append_output(&app.pool, attempt, 1, true, b"warning\n")
        .await
        .unwrap();
    step(&app.pool, run, 0, StepEvent::Passed, &olga)
        .await
        .unwrap();

    // Skipping needs a reason, which is kept.
    let err = step(&app.pool, run, 1, StepEvent::Skip, &olga)
        .await
        .unwrap_err();
    assert_eq!(
        message(err),
        "Reason: is required to skip a step or mark it done"
    );
    let reason = TransitionInput {
        reason: Some("crontab copied by hand"),
        ..Default::default()
    };
    runs::transition(&app.pool, run, 1, StepEvent::Skip, &olga, reason)
        .await
        .unwrap();

    // The destructive step does not run without an approval.
    let err = runs::transition(
        &app.pool,
        run,
        2,
        StepEvent::Run,
        &olga,
        running("cluman", "x"),
    )
    .await
    .unwrap_err();
    assert!(message(err).contains("runs only with a supervisor's approval"));
    step(&app.pool, run, 2, StepEvent::RequestApproval, &olga)
        .await
        .unwrap();
    let t = runs::transition(
        &app.pool,
        run,
        2,
        StepEvent::Approved,
        &Actor::User("sam".into()),
        running(
            "cluman",
            "kind=shell\nhost=cluman\ncommand=crontab /var/tmp/c",
        ),
    )
    .await
    .unwrap();
    assert_eq!(t.state, StepState::Running);
    step(&app.pool, run, 2, StepEvent::Passed, &olga)
        .await
        .unwrap();
    runs::transition(
        &app.pool,
        run,
        3,
        StepEvent::Run,
        &olga,
        running("cluman", "kind=shell\nhost=cluman\ncommand=crontab -l"),
    )
    .await
    .unwrap();
    let last = step(&app.pool, run, 3, StepEvent::Passed, &olga)
        .await
        .unwrap();
    assert_eq!(last.run_state, RunState::Completed);

    let err = step(&app.pool, run, 3, StepEvent::Retry, &olga)
        .await
        .unwrap_err();
    assert!(message(err).contains("is completed; its steps cannot change"));

    let output: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT stream, data FROM step_output WHERE attempt_id = $1 ORDER BY seq")
            .bind(attempt)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        output,
        [
            ("stdout".into(), b"0 3 * * * backup\n".to_vec()),
            ("stderr".into(), b"warning\n".to_vec())
        ]
    );

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE subject LIKE $1 ORDER BY id")
            .bind(format!("run:{run}%"))
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "run.started",
            "step.run",
            "step.passed",
            "step.skipped",
            "step.approval_requested",
            "step.approved",
            "step.passed",
            "step.run",
            "step.passed",
            "run.completed"
        ]
    );
    assert_eq!(audit::verify(&app.pool, |_| {}).await.unwrap().broken, None);
}

#[sqlx::test(migrations = "../migrations")]
async fn two_runs_never_run_destructive_steps_on_one_host_at_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (uid, olga) = operator(&app).await;
    let rb = runbook("restore-cron");
    let a = runs::start(&app.pool, uid, &olga, &rb, "fra1", &params())
        .await
        .unwrap();
    let b = runs::start(&app.pool, uid, &olga, &rb, "fra1", &params())
        .await
        .unwrap();
    for run in [a, b] {
        step(&app.pool, run, 2, StepEvent::RequestApproval, &olga)
            .await
            .unwrap();
    }
    runs::transition(
        &app.pool,
        a,
        2,
        StepEvent::Approved,
        &olga,
        running("cluman", "a"),
    )
    .await
    .unwrap();
    let err = runs::transition(
        &app.pool,
        b,
        2,
        StepEvent::Approved,
        &olga,
        running("cluman", "b"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        message(err),
        "Another run is executing a destructive step on cluman right now; wait until it has finished."
    );
    // Another host is fine, and so is the same host once the first has finished.
    step(&app.pool, a, 2, StepEvent::Passed, &olga)
        .await
        .unwrap();
    runs::transition(
        &app.pool,
        b,
        2,
        StepEvent::Approved,
        &olga,
        running("cluman", "b"),
    )
    .await
    .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_restart_interrupts_running_steps_and_a_destructive_one_needs_approval_again(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let (uid, olga) = operator(&app).await;
    let rb = runbook("restore-cron");
    let run = runs::start(&app.pool, uid, &olga, &rb, "fra1", &params())
        .await
        .unwrap();
    runs::transition(
        &app.pool,
        run,
        0,
        StepEvent::Run,
        &olga,
        running("cluman", "x"),
    )
    .await
    .unwrap();
    step(&app.pool, run, 0, StepEvent::Passed, &olga)
        .await
        .unwrap();
    runs::transition(
        &app.pool,
        run,
        1,
        StepEvent::Skip,
        &olga,
        TransitionInput {
            reason: Some("copied"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    step(&app.pool, run, 2, StepEvent::RequestApproval, &olga)
        .await
        .unwrap();
    runs::transition(
        &app.pool,
        run,
        2,
        StepEvent::Approved,
        &olga,
        running("cluman", "x"),
    )
    .await
    .unwrap();

    assert_eq!(runs::interrupt_running(&app.pool).await.unwrap(), 1);
    let state: String =
        sqlx::query_scalar("SELECT state FROM run_steps WHERE run_id = $1 AND position = 2")
            .bind(run)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "interrupted");
    let actor: String =
        sqlx::query_scalar("SELECT actor FROM audit_events WHERE action = 'step.interrupted'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, "system");

    let retried = step(&app.pool, run, 2, StepEvent::Retry, &olga)
        .await
        .unwrap();
    assert_eq!(retried.state, StepState::AwaitingApproval);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM run_steps WHERE run_id = $1 AND position = 2")
            .bind(run)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        attempts, 1,
        "a new attempt begins only when the step runs again"
    );
}
