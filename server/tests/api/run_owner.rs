//! Who may act on a run: its owner only (who started it, or who took it over
//! with a reason). Anyone else is refused with a message naming the owner and
//! changes nothing; a takeover is audited and voids the previous owner's open
//! request for approval.

use crate::helpers::*;
use crate::lab_portal::*;
use app::error::AppError;
use app::model::approval::ApprovalState;
use app::model::run::{RunState, StepState};
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Asserts a refusal because `owner` owns run `run`.
async fn not_owner(r: reqwest::Response, run: i64, owner: &str) {
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let error: AppError = serde_json::from_value(body.clone()).expect("an AppError");
    assert_eq!(
        error.to_string(),
        format!("Run {run} belongs to {owner}; take it over (with a reason) to act on it.")
    );
}

async fn take_over(b: &Browser, run: i64, reason: &str) -> reqwest::Response {
    b.call(
        "/api/runs/take_over",
        &[("run", &run.to_string()), ("reason", reason)],
    )
    .await
}

async fn page(b: &Browser, run: i64) -> String {
    b.get(&format!("/runs/{run}")).await.text().await.unwrap()
}

async fn audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn taken_over(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT actor, details FROM audit_events WHERE action = 'run.taken_over' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn running(b: &Browser, run: i64, position: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while show(b, run).await.steps[position].state != StepState::Running {
        assert!(Instant::now() < deadline, "step {position} never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn only_the_owner_acts_and_a_takeover_with_a_reason_hands_the_run_over(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let oscar = p.app.signed_in("oscar", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let aude = p.app.signed_in("aude", Role::Auditor).await;

    // olga's run, its first step hanging on the host.
    p.lab.faults().set(
        lab::Fault::CommandHangs {
            pattern: "diagnostics.sh".into(),
        },
        true,
    );
    let run = start(&olga, "verify-recovery", &[]).await;
    let v = show(&olga, run).await;
    assert_eq!(v.summary.owner, "olga");
    assert_eq!(
        command(&olga, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    running(&olga, run, 0).await;
    // And a run with parameters.
    let cron = start(
        &olga,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;

    // Another operator, and a supervisor, are refused everything; nothing
    // changes and nothing is recorded (a refusal changes nothing, and recording
    // each would let any signed-in user fill the trail).
    let before = audit_count(&p.app).await;
    for b in [&oscar, &sam] {
        not_owner(command(b, run, 0, "stop", "").await, run, "olga").await;
        not_owner(command(b, run, 1, "skip", "not needed").await, run, "olga").await;
        not_owner(command(b, run, 0, "mark_done", "done").await, run, "olga").await;
        not_owner(command(b, cron, 0, "run", "").await, cron, "olga").await;
        not_owner(
            command(b, cron, 2, "request_approval", "lost crontab").await,
            cron,
            "olga",
        )
        .await;
        not_owner(
            b.call(
                "/api/runs/cancel",
                &[("run", &run.to_string()), ("reason", "mine now")],
            )
            .await,
            run,
            "olga",
        )
        .await;
        not_owner(
            b.call(
                "/api/runs/parameter",
                &[
                    ("run", &cron.to_string()),
                    ("name", "backup_date"),
                    ("value", "2026-11-25"),
                    ("reason", "the day before"),
                ],
            )
            .await,
            cron,
            "olga",
        )
        .await;
    }
    assert_eq!(audit_count(&p.app).await, before, "refusals change nothing");
    let v = show(&oscar, run).await;
    assert_eq!(v.summary.state, RunState::Active);
    assert_eq!(v.steps[0].state, StepState::Running);
    assert_eq!(v.steps[1].state, StepState::Pending);
    let c = show(&oscar, cron).await;
    assert_eq!(c.parameters["backup_date"], "2026-11-26");
    assert_eq!(c.steps[0].state, StepState::Pending);

    // The run page names the owner and offers others the takeover, with a reason.
    let theirs = page(&oscar, run).await;
    assert!(theirs.contains("owner olga"), "{theirs}");
    assert!(theirs.contains(&format!(
        "Run {run} belongs to olga; take it over (with a reason) to act on it."
    )));
    assert!(theirs.contains(">Take over</button>"));
    let own = page(&olga, run).await;
    assert!(own.contains("owner olga") && !own.contains(">Take over</button>"));
    assert!(!page(&aude, run).await.contains(">Take over</button>"));

    // Viewing stays open to every role; admins and auditors cannot take over.
    for b in [&ada, &aude] {
        assert_eq!(show(b, run).await.summary.owner, "olga");
        let (status, _) = error_text(take_over(b, run, "curious").await).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // A takeover needs a reason; the owner cannot take over their own run.
    let (status, body) = error_text(take_over(&oscar, run, "  ").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("Reason"), "{body}");
    let (status, body) = error_text(take_over(&olga, run, "mine").await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(taken_over(&p.app).await.is_empty());
    assert_eq!(show(&oscar, run).await.summary.owner, "olga");

    // oscar takes it over: now he acts, and olga is refused.
    let r = take_over(&oscar, run, "olga went off shift").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(show(&olga, run).await.summary.owner, "oscar");
    let events = taken_over(&p.app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "oscar");
    assert_eq!(events[0].1["from"], "olga");
    assert_eq!(events[0].1["to"], "oscar");
    assert_eq!(events[0].1["reason"], "olga went off shift");
    not_owner(command(&olga, run, 0, "stop", "").await, run, "oscar").await;
    assert_eq!(
        command(&oscar, run, 0, "stop", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&oscar, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Failed);
    not_owner(command(&olga, run, 0, "skip", "why").await, run, "oscar").await;
    assert_eq!(
        command(&oscar, run, 0, "skip", "diagnostics hang; checked by hand")
            .await
            .status(),
        StatusCode::OK
    );
    // The cron run is still olga's.
    not_owner(command(&oscar, cron, 0, "run", "").await, cron, "olga").await;

    // olga takes it back the same way; a supervisor may take over too.
    assert_eq!(
        take_over(&olga, run, "back on shift").await.status(),
        StatusCode::OK
    );
    not_owner(command(&oscar, run, 1, "skip", "x").await, run, "olga").await;
    assert_eq!(
        take_over(&sam, run, "escalated to me").await.status(),
        StatusCode::OK
    );
    let r = sam
        .call(
            "/api/runs/cancel",
            &[("run", &run.to_string()), ("reason", "drill over")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(show(&sam, run).await.summary.state, RunState::Cancelled);
    let (status, _) = error_text(take_over(&olga, run, "again").await).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a finished run is not taken over"
    );
    let froms: Vec<(String, String)> = taken_over(&p.app)
        .await
        .into_iter()
        .map(|(actor, d)| (actor, d["from"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        froms,
        [
            ("oscar".to_string(), "olga".to_string()),
            ("olga".to_string(), "oscar".to_string()),
            ("sam".to_string(), "olga".to_string()),
        ]
    );
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_takeover_voids_the_previous_owners_requests_for_approval(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let oscar = p.app.signed_in("oscar", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let run = start(
        &olga,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;
    for position in 0..2 {
        let r = command(&olga, run, position, "run", "").await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let v = settled(&olga, run, position as usize).await;
        assert_eq!(v.steps[position as usize].state, StepState::Succeeded);
    }

    // A pending request of olga's is voided when oscar takes over.
    let pending = request(&olga, run, 2, "the crontab was lost").await;
    assert_eq!(
        take_over(&oscar, run, "olga is ill").await.status(),
        StatusCode::OK
    );
    let v = show(&oscar, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    assert_eq!(v.steps[2].approvals[0].id, pending.id);
    assert_eq!(v.steps[2].approvals[0].state, ApprovalState::Voided);
    let (status, _) = error_text(decide(&sam, pending.id, "approve", "", None).await).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a voided request is not decided"
    );

    // oscar's own request, approved; then olga takes the run back: the approval
    // was oscar's and is voided, so neither of them can use it.
    let mine = request(&oscar, run, 2, "the crontab was lost").await;
    assert_eq!(
        decide(&sam, mine.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        open_approval(&show(&oscar, run).await, 2).state,
        ApprovalState::Approved
    );
    assert_eq!(
        take_over(&olga, run, "back from the doctor").await.status(),
        StatusCode::OK
    );
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    assert_eq!(v.steps[2].approvals[1].state, ApprovalState::Voided);
    not_owner(run_under(&oscar, run, 2, mine.id).await, run, "olga").await;
    let (status, body) = error_text(run_under(&olga, run, 2, mine.id).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(show(&olga, run).await.steps[2].attempts.len(), 0);

    // Each takeover recorded what it voided.
    let voided: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details->'voided_approvals' FROM audit_events WHERE action = 'run.taken_over' ORDER BY id",
    )
    .fetch_all(&p.app.pool)
    .await
    .unwrap();
    assert_eq!(
        voided,
        [
            serde_json::json!([pending.id]),
            serde_json::json!([mine.id])
        ]
    );
    let voided_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'approval.voided'")
            .fetch_one(&p.app.pool)
            .await
            .unwrap();
    assert_eq!(voided_events, 2);

    // The owner asks anew and runs under their own approval.
    let again = request(&olga, run, 2, "the crontab was lost").await;
    assert_eq!(
        decide(&sam, again.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    let r = run_under(&olga, run, 2, again.id).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, 2).await;
    assert_eq!(v.steps[2].state, StepState::Succeeded);
    p.lab.shutdown().await;
}

/// The owner is checked again under the run's row lock, where the change is
/// made: a takeover that commits between the engine's first look and the
/// change wins.
#[sqlx::test(migrations = "../migrations")]
async fn a_takeover_that_commits_first_wins_over_a_command_in_flight(pool: PgPool) {
    use app::model::run::StepEvent;
    use app::ssr::audit::Actor;
    use app::ssr::runs::{self, TransitionInput};
    use app::ssr::ServiceError;
    let app = spawn_app(pool).await;
    app.add_user("olga", Role::Operator).await;
    app.add_user("oscar", Role::Operator).await;
    let id = |name: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (olga, oscar) = (id("olga").await, id("oscar").await);
    let rb = shipped_runbooks()
        .into_iter()
        .find(|r| r.id == "verify-recovery")
        .unwrap();
    let run = runs::start(
        &app.pool,
        olga,
        &Actor::User("olga".into()),
        &rb,
        "fra1",
        &Default::default(),
    )
    .await
    .unwrap();
    // oscar's takeover commits while olga's skip is on its way.
    sqlx::query("UPDATE runs SET owner = $2 WHERE id = $1")
        .bind(run)
        .bind(oscar)
        .execute(&app.pool)
        .await
        .unwrap();
    let skip = |owner: i64| {
        let pool = app.pool.clone();
        async move {
            runs::transition(
                &pool,
                run,
                0,
                StepEvent::Skip,
                &Actor::User("someone".into()),
                TransitionInput {
                    reason: Some("not needed"),
                    owner: Some(owner),
                    ..Default::default()
                },
            )
            .await
        }
    };
    match skip(olga).await {
        Err(ServiceError::Client(AppError::NotRunOwner { run: r, owner })) => {
            assert_eq!((r, owner.as_str()), (run, "oscar"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let state: String =
        sqlx::query_scalar("SELECT state FROM run_steps WHERE run_id = $1 AND position = 0")
            .bind(run)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "pending");
    assert!(skip(oscar).await.is_ok());
}
