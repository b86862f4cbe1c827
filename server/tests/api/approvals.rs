//! The approval gate over HTTP, against the lab: who may decide, four eyes,
//! rejections, replays, expiry, forged ids, changed parameters, quorum, break
//! glass, fail-closed execution, and every destructive step of every runbook.

use crate::helpers::*;
use crate::lab_portal::*;
use app::model::approval::ApprovalState;
use app::model::run::{RunState, StepState};
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const CRONTAB: &str = "/var/spool/cron/root";
const INSTALL: &str = "crontab /var/tmp/crontab_pcrfclient01_2026-11-26.txt";

/// A cron restore of pcrfclient01 on the lab; `copy` runs the first two steps
/// (the crontab is copied), else they are skipped.
async fn cron_run(p: &LabPortal, b: &Browser, copy: bool) -> i64 {
    // What the procedure repairs: pcrfclient01 has lost its jobs.
    p.lab
        .state()
        .write_file("pcrfclient01", CRONTAB, b"")
        .unwrap();
    let run = start(
        b,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;
    for position in 0..2 {
        if copy {
            let r = command(b, run, position, "run", "").await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
            let v = settled(b, run, position as usize).await;
            assert_eq!(v.steps[position as usize].state, StepState::Succeeded);
        } else {
            let r = command(b, run, position, "skip", "rehearsal").await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    run
}

async fn refusal(r: reqwest::Response, status: StatusCode, says: &str) {
    let (got, body) = error_text(r).await;
    assert_eq!(got, status, "{body}");
    assert!(
        body.to_string().contains(says),
        "expected {says:?} in {body}"
    );
}

async fn audited(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar("SELECT details FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn crontab(p: &LabPortal) -> Vec<u8> {
    p.lab
        .state()
        .read_file("pcrfclient01", CRONTAB)
        .unwrap_or_default()
}

#[sqlx::test(migrations = "../migrations")]
async fn only_another_supervisor_approves_and_a_rejection_needs_a_new_request(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let aldo = p.app.signed_in("aldo", Role::Auditor).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let oscar = p.app.signed_in("oscar", Role::Operator).await;
    let run = cron_run(&p, &olga, true).await;
    let before = crontab(&p);
    assert!(before.is_empty());

    // The request records the exact action and its hash.
    let a = request(&olga, run, 2, "crontab lost in the VM rebuild").await;
    assert_eq!(a.state, ApprovalState::Pending);
    assert_eq!(a.attempt, 1);
    assert_eq!(a.action_hash.len(), 64);
    assert!(a.action.contains(INSTALL), "{}", a.action);
    assert!(a.action.contains("host=pcrfclient01"), "{}", a.action);
    let requested = audited(&p.app, "approval.requested").await;
    assert_eq!(requested[0]["action_hash"], a.action_hash);
    assert_eq!(
        requested[0]["justification"],
        "crontab lost in the VM rebuild"
    );

    // Operators, auditors and admins may not decide; each refusal is audited.
    for who in [&olga, &oscar, &aldo, &ada] {
        refusal(
            decide(who, a.id, "approve", "", None).await,
            StatusCode::FORBIDDEN,
            "approve or reject destructive steps",
        )
        .await;
    }
    assert_eq!(audited(&p.app, "approval.refused").await.len(), 4);
    // So is a decision on a request that does not exist.
    refusal(
        decide(&sam, 999_999, "approve", "", None).await,
        StatusCode::NOT_FOUND,
        "no such approval",
    )
    .await;
    assert_eq!(audited(&p.app, "approval.refused").await.len(), 5);
    // The supervisors' page is theirs alone.
    assert_eq!(
        olga.call("/api/approvals/list", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let list: serde_json::Value = sam
        .call("/api/approvals/list", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["open"][0]["approval"]["id"], a.id);
    let count: i64 = sam
        .call("/api/approvals/count", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count, 1);

    // A rejection needs a reason; with one the step goes back to pending.
    refusal(
        decide(&sam, a.id, "reject", " ", None).await,
        StatusCode::BAD_REQUEST,
        "needs a reason",
    )
    .await;
    assert_eq!(
        decide(&sam, a.id, "reject", "use yesterday's backup", None)
            .await
            .status(),
        StatusCode::OK
    );
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    let rejected = &v.steps[2].approvals[0];
    assert_eq!(rejected.state, ApprovalState::Rejected);
    assert_eq!(
        rejected.ended_reason.as_deref(),
        Some("use yesterday's backup")
    );
    // A rejected approval runs nothing, nor can it be decided again.
    refusal(
        run_under(&olga, run, 2, a.id).await,
        StatusCode::CONFLICT,
        "rejected",
    )
    .await;
    refusal(
        decide(&sam, a.id, "approve", "", None).await,
        StatusCode::CONFLICT,
        "can no longer be decided",
    )
    .await;

    // Requested again, approved, run by the requester only.
    let b = request(&olga, run, 2, "checked: this is the right backup").await;
    assert_ne!(b.id, a.id);
    assert_eq!(
        decide(&sam, b.id, "approve", "go ahead", None)
            .await
            .status(),
        StatusCode::OK
    );
    let approved = open_approval(&show(&olga, run).await, 2);
    assert_eq!(approved.state, ApprovalState::Approved);
    assert_eq!(approved.decisions[0].text, "go ahead");
    assert!(approved.expires_at.is_some());
    // Another operator may not act on olga's run at all (the gate would also
    // refuse him as not the requester).
    refusal(
        run_under(&oscar, run, 2, b.id).await,
        StatusCode::FORBIDDEN,
        r#""NotRunOwner":{"owner":"olga""#,
    )
    .await;
    // Nor may another operator withdraw it.
    refusal(
        command(&oscar, run, 2, "withdraw", "mine now").await,
        StatusCode::FORBIDDEN,
        "only its requester or a supervisor",
    )
    .await;
    let refused = audited(&p.app, "approval.refused").await;
    assert_eq!(refused.last().unwrap()["during"], "withdraw");
    assert_eq!(crontab(&p), before, "nothing ran yet");

    let r = run_under(&olga, run, 2, b.id).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, 2).await;
    assert_eq!(v.steps[2].state, StepState::Succeeded, "{}", output(&v, 2));
    assert_eq!(v.steps[2].attempts[0].approval_id, Some(b.id));
    assert_eq!(v.steps[2].approvals[1].state, ApprovalState::Used);
    let saved = std::fs::read(p.store.join("lab/2026-11-26/crontab_pcrfclient01.txt")).unwrap();
    assert_eq!(crontab(&p), saved, "the saved crontab is installed");
    let used = audited(&p.app, "approval.used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(
        used[0]["message"],
        format!("step executed under approval {}", b.id)
    );
    assert_eq!(used[0]["action_hash"], b.action_hash);
    assert_eq!(
        app::ssr::audit::verify(&p.app.pool, |_| {})
            .await
            .unwrap()
            .broken,
        None
    );
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn used_expired_and_forged_approvals_are_refused(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    // Without the copy, the install fails: the step can be tried again.
    let run = cron_run(&p, &olga, false).await;

    // Running a destructive step without an approval is refused and audited.
    refusal(
        command(&olga, run, 2, "run", "").await,
        StatusCode::CONFLICT,
        "runs only with a supervisor's approval",
    )
    .await;
    assert_eq!(audited(&p.app, "approval.refused").await.len(), 1);

    let a = request(&olga, run, 2, "first try").await;
    assert_eq!(
        decide(&sam, a.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        run_under(&olga, run, 2, a.id).await.status(),
        StatusCode::OK
    );
    let v = settled(&olga, run, 2).await;
    assert_eq!(
        v.steps[2].state,
        StepState::Failed,
        "the file was never copied"
    );
    assert!(p
        .lab
        .state()
        .commands_received("pcrfclient01")
        .iter()
        .any(|c| c.contains(INSTALL)));

    // Replayed: used once already.
    refusal(
        run_under(&olga, run, 2, a.id).await,
        StatusCode::CONFLICT,
        "used already",
    )
    .await;
    // A retry is a new attempt and needs its own request.
    refusal(
        command(&olga, run, 2, "run", "").await,
        StatusCode::CONFLICT,
        "approval",
    )
    .await;

    // Expired: approved, then not used in time.
    let b = request(&olga, run, 2, "second try").await;
    assert_eq!(b.attempt, 2);
    assert_eq!(
        decide(&sam, b.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    sqlx::query(
        "UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(b.id)
    .execute(&p.app.pool)
    .await
    .unwrap();
    refusal(
        run_under(&olga, run, 2, b.id).await,
        StatusCode::CONFLICT,
        "expired",
    )
    .await;
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending, "back to pending");
    assert_eq!(v.steps[2].approvals[1].state, ApprovalState::Expired);
    assert_eq!(audited(&p.app, "approval.expired").await.len(), 1);

    // The portal expires unused approvals by itself too.
    let c = request(&olga, run, 2, "third try").await;
    assert_eq!(
        decide(&sam, c.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    sqlx::query("UPDATE approval_requests SET expires_at = now() WHERE id = $1")
        .bind(c.id)
        .execute(&p.app.pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = show(&olga, run).await;
        if v.steps[2].state == StepState::Pending {
            assert_eq!(v.steps[2].approvals[2].state, ApprovalState::Expired);
            break;
        }
        assert!(Instant::now() < deadline, "the approval did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(audited(&p.app, "approval.expired").await.len(), 2);

    // Forged: an id that does not exist, and the approval of another run's step.
    let d = request(&olga, run, 2, "fourth try").await;
    refusal(
        run_under(&olga, run, 2, 999_999).await,
        StatusCode::NOT_FOUND,
        "no such approval",
    )
    .await;
    let other = cron_run(&p, &olga, false).await;
    let e = request(&olga, other, 2, "other run").await;
    assert_eq!(
        decide(&sam, e.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    refusal(
        run_under(&olga, run, 2, e.id).await,
        StatusCode::CONFLICT,
        "is for another step",
    )
    .await;
    // A pending approval runs nothing either.
    refusal(
        run_under(&olga, run, 2, d.id).await,
        StatusCode::CONFLICT,
        "0 of the 1 supervisor approvals",
    )
    .await;
    // Skipping the step ends its open request.
    assert_eq!(
        command(&olga, run, 2, "skip", "done by hand")
            .await
            .status(),
        StatusCode::OK
    );
    let v = show(&olga, run).await;
    assert_eq!(
        v.steps[2].approvals.last().map(|a| (a.id, a.state)),
        Some((d.id, ApprovalState::Withdrawn))
    );
    let refused = audited(&p.app, "approval.refused").await;
    let rules: Vec<&str> = refused
        .iter()
        .filter_map(|d| match &d["rule"] {
            serde_json::Value::String(unit) => Some(unit.as_str()),
            serde_json::Value::Object(o) => o.keys().next().map(String::as_str),
            _ => None,
        })
        .collect();
    for rule in [
        "AlreadyUsed",
        "Expired",
        "Unknown",
        "OtherStep",
        "QuorumNotMet",
    ] {
        assert!(rules.contains(&rule), "{rule} not audited: {rules:?}");
    }
    // Only one attempt ever ran.
    let runs_of_install = p
        .lab
        .state()
        .commands_received("pcrfclient01")
        .iter()
        .filter(|c| c.contains(INSTALL))
        .count();
    assert_eq!(runs_of_install, 1);
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_parameter_change_voids_an_approval_of_an_action_it_changes(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let run = cron_run(&p, &olga, false).await;
    let a = request(&olga, run, 2, "restore").await;
    assert_eq!(
        decide(&sam, a.id, "approve", "", None).await.status(),
        StatusCode::OK
    );

    let change = |name: &'static str, value: &'static str, reason: &'static str| {
        let olga = &olga;
        async move {
            olga.call(
                "/api/runs/parameter",
                &[
                    ("run", &run.to_string()),
                    ("name", name),
                    ("value", value),
                    ("reason", reason),
                ],
            )
            .await
        }
    };
    // Bad values are named at their field.
    let (status, body) = error_text(change("backup_date", "yesterday", "typo").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["Fields"][0][0], "params[backup_date]", "{body}");
    refusal(
        change("backup_date", "2026-11-25", "").await,
        StatusCode::BAD_REQUEST,
        "Reason",
    )
    .await;

    // A parameter the approved action does not use leaves the approval valid.
    assert_eq!(
        change("site", "lab2", "store folder renamed")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        open_approval(&show(&olga, run).await, 2).state,
        ApprovalState::Approved
    );
    // One it uses voids it, in the same transaction as the change.
    assert_eq!(
        change("backup_date", "2026-11-25", "the 26th backup is incomplete")
            .await
            .status(),
        StatusCode::OK
    );
    let v = show(&olga, run).await;
    assert_eq!(v.parameters["backup_date"], "2026-11-25");
    assert_eq!(v.steps[2].state, StepState::Pending);
    assert_eq!(v.steps[2].approvals[0].state, ApprovalState::Voided);
    refusal(
        run_under(&olga, run, 2, a.id).await,
        StatusCode::CONFLICT,
        "voided",
    )
    .await;
    assert_eq!(audited(&p.app, "approval.voided").await.len(), 1);
    assert_eq!(audited(&p.app, "run.parameter_changed").await.len(), 2);
    // The new request is for the new action.
    let b = request(&olga, run, 2, "restore from the 25th").await;
    assert!(
        b.action.contains("crontab_pcrfclient01_2026-11-25.txt"),
        "{}",
        b.action
    );
    assert_ne!(b.action_hash, a.action_hash);
    assert!(!p
        .lab
        .state()
        .commands_received("pcrfclient01")
        .iter()
        .any(|c| c.contains("crontab /var/tmp")));
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn four_eyes_quorum_withdrawal_and_break_glass(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let sue = p.app.signed_in("sue", Role::Supervisor).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;

    // A supervisor's own request needs another supervisor.
    let run = cron_run(&p, &sam, false).await;
    let a = request(&sam, run, 2, "I run this one myself").await;
    refusal(
        decide(&sam, a.id, "approve", "", Some("nobody else awake")).await,
        StatusCode::CONFLICT,
        "four eyes",
    )
    .await;
    refusal(
        decide(&sam, a.id, "reject", "no", None).await,
        StatusCode::CONFLICT,
        "withdraw it instead",
    )
    .await;

    // Break glass: an admin switches it on for the site, with a reason; then the
    // supervisor may approve their own request, with a reason of their own.
    refusal(
        ada.call(
            "/api/sites/break_glass",
            &[("site", "lab"), ("enabled", "true"), ("reason", "")],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Reason",
    )
    .await;
    assert_eq!(
        ada.call(
            "/api/sites/break_glass",
            &[
                ("site", "lab"),
                ("enabled", "true"),
                ("reason", "site isolated, one supervisor on call")
            ],
        )
        .await
        .status(),
        StatusCode::OK
    );
    refusal(
        decide(&sam, a.id, "approve", "", None).await,
        StatusCode::BAD_REQUEST,
        "written reason",
    )
    .await;
    assert_eq!(
        decide(&sam, a.id, "approve", "", Some("nobody else reachable"))
            .await
            .status(),
        StatusCode::OK
    );
    let v = show(&sam, run).await;
    assert!(v.break_glass.is_some());
    let approved = open_approval(&v, 2);
    assert_eq!(approved.state, ApprovalState::Approved);
    assert!(approved.break_glass);
    assert_eq!(
        approved.decisions[0].break_glass_reason.as_deref(),
        Some("nobody else reachable")
    );
    let audited_bg = audited(&p.app, "approval.approved").await;
    assert_eq!(audited_bg[0]["break_glass"], true);
    assert_eq!(audited(&p.app, "site.break_glass_changed").await.len(), 1);

    // Withdrawn: the step is pending again and the approval runs nothing.
    let r = command(&sam, run, 2, "withdraw", "not needed after all").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = show(&sam, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    assert_eq!(v.steps[2].approvals[0].state, ApprovalState::Withdrawn);
    refusal(
        run_under(&sam, run, 2, a.id).await,
        StatusCode::CONFLICT,
        "withdrawn",
    )
    .await;
    assert_eq!(
        ada.call(
            "/api/sites/break_glass",
            &[("site", "lab"), ("reason", "a second supervisor is back")],
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert!(show(&sam, run).await.break_glass.is_none());

    // The database import needs two different supervisors.
    let db = start_on_lab(&olga, "restore-database").await;
    let position = loop {
        let v = show(&olga, db).await;
        let current = v.current.unwrap();
        if v.steps[current].destructive {
            break current as i32;
        }
        let r = command(&olga, db, current as i32, "skip", "rehearsal").await;
        assert_eq!(r.status(), StatusCode::OK);
    };
    let q = request(&olga, db, position, "the sessions are corrupt").await;
    assert_eq!(q.quorum, 2);
    assert_eq!(
        decide(&sam, q.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    let half = open_approval(&show(&olga, db).await, position as usize);
    assert_eq!(half.state, ApprovalState::Pending, "one of two");
    refusal(
        decide(&sam, q.id, "approve", "", None).await,
        StatusCode::CONFLICT,
        "approved this request already",
    )
    .await;
    refusal(
        run_under(&olga, db, position, q.id).await,
        StatusCode::CONFLICT,
        "1 of the 2 supervisor approvals",
    )
    .await;
    // A supervisor may change their mind: the rejection ends the request.
    assert_eq!(
        decide(
            &sam,
            q.id,
            "reject",
            "second thoughts: check the backup first",
            None
        )
        .await
        .status(),
        StatusCode::OK
    );
    let v = show(&olga, db).await;
    assert_eq!(v.steps[position as usize].state, StepState::Pending);
    let q = request(&olga, db, position, "backup checked").await;
    assert_eq!(
        decide(&sam, q.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        decide(&sue, q.id, "approve", "", None).await.status(),
        StatusCode::OK
    );
    let full = open_approval(&show(&olga, db).await, position as usize);
    assert_eq!(full.state, ApprovalState::Approved);
    assert_eq!(full.decisions.len(), 2);
    // Cancelling the run ends its open request.
    let r = olga
        .call(
            "/api/runs/cancel",
            &[("run", &db.to_string()), ("reason", "drill over")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = show(&olga, db).await;
    assert_eq!(v.summary.state, RunState::Cancelled);
    assert_eq!(
        v.steps[position as usize].approvals[1].state,
        ApprovalState::Withdrawn
    );
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn when_the_audit_record_cannot_be_written_nothing_is_executed(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let run = cron_run(&p, &olga, true).await;
    let before = crontab(&p);
    let a = request(&olga, run, 2, "restore").await;
    assert_eq!(
        decide(&sam, a.id, "approve", "", None).await.status(),
        StatusCode::OK
    );

    // The audit store refuses the "executed under approval" event.
    sqlx::query(
        "CREATE FUNCTION refuse_used() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'audit store unavailable'; END; $$",
    )
    .execute(&p.app.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_used BEFORE INSERT ON audit_events FOR EACH ROW \
         WHEN (NEW.action = 'approval.used') EXECUTE FUNCTION refuse_used()",
    )
    .execute(&p.app.pool)
    .await
    .unwrap();
    refusal(
        run_under(&olga, run, 2, a.id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "NotExecuted",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !p.lab
            .state()
            .commands_received("pcrfclient01")
            .iter()
            .any(|c| c.contains(INSTALL)),
        "the command reached the host"
    );
    assert_eq!(crontab(&p), before);
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::AwaitingApproval);
    assert!(v.steps[2].attempts.is_empty(), "no attempt was recorded");
    assert_eq!(
        open_approval(&v, 2).state,
        ApprovalState::Approved,
        "still unused"
    );

    // Once the audit store works again, the same approval runs the step once.
    sqlx::query("DROP TRIGGER refuse_used ON audit_events")
        .execute(&p.app.pool)
        .await
        .unwrap();
    assert_eq!(
        run_under(&olga, run, 2, a.id).await.status(),
        StatusCode::OK
    );
    let v = settled(&olga, run, 2).await;
    assert_eq!(v.steps[2].state, StepState::Succeeded, "{}", output(&v, 2));
    assert_ne!(crontab(&p), before);
    p.lab.shutdown().await;
}

/// Walks run `run` to its end, skipping every step; at each destructive step it
/// first tries to run it without an approval and with a made-up one. Returns the
/// destructive steps it reached.
async fn gate_walk(b: &Browser, rb: &runbook::Runbook, run: i64) -> BTreeSet<String> {
    let mut gated = BTreeSet::new();
    loop {
        let v = show(b, run).await;
        let Some(current) = v.current else { break };
        let s = &v.steps[current];
        if s.destructive {
            let (status, body) = error_text(command(b, run, s.position, "run", "").await).await;
            assert_eq!(status, StatusCode::CONFLICT, "{} {}: {body}", rb.id, s.id);
            // A made-up approval is refused too; a step whose action cannot be
            // rendered yet (its captures were skipped here) is refused before that.
            let (status, body) = error_text(run_under(b, run, s.position, 999_999).await).await;
            let expected = if s.action.is_ok() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            };
            assert_eq!(status, expected, "{} {}: {body}", rb.id, s.id);
            gated.insert(s.id.clone());
        }
        let r = command(b, run, s.position, "skip", "gate check").await;
        assert_eq!(r.status(), StatusCode::OK, "{} {}", rb.id, s.id);
    }
    gated
}

#[sqlx::test(migrations = "../migrations")]
async fn every_destructive_step_of_every_runbook_waits_for_an_approval(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let mut gated = 0;
    for rb in shipped_runbooks() {
        let all: BTreeSet<String> = rb
            .steps
            .iter()
            .filter(|s| s.destructive)
            .map(|s| s.id.clone())
            .collect();
        // Steps on branches of an enum parameter (`when = { var = "role", equals =
        // "qns" }`) are reached with each of its values in turn.
        let mut variants: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
        for param in &rb.parameters {
            if let runbook::model::ParamKind::Enum(values) = &param.kind {
                for v in values {
                    variants.push(vec![(param.name.as_str(), v.as_str())]);
                }
            }
        }
        let mut reached = BTreeSet::new();
        for overrides in variants {
            if reached == all {
                break;
            }
            let run = start_on_lab_with(&olga, &rb.id, &overrides).await;
            reached.extend(gate_walk(&olga, &rb, run).await);
        }
        assert_eq!(reached, all, "{}: destructive steps not reached", rb.id);
        gated += reached.len();
    }
    assert!(gated >= 22, "{gated}");
    assert!(p.lab.state().commands_received("cluman").is_empty());
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn procedure_3_runs_to_the_end_with_an_operator_and_a_supervisor(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    p.lab.seed_backup_store(&p.store, "lab", &date).unwrap();
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let rb = shipped_runbooks()
        .into_iter()
        .find(|r| r.id == "restore-patches")
        .unwrap();
    let run = start_on_lab(&olga, &rb.id).await;
    let mut approved = 0;
    loop {
        let v = show(&olga, run).await;
        let Some(current) = v.current else { break };
        let s = v.steps[current].clone();
        if s.destructive {
            let a = request(&olga, run, s.position, "patches restored from the backup").await;
            assert_eq!(
                decide(&sam, a.id, "approve", "", None).await.status(),
                StatusCode::OK
            );
            let r = run_under(&olga, run, s.position, a.id).await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
            approved += 1;
        } else {
            let r = command(&olga, run, s.position, "run", "").await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
        let v = settled(&olga, run, current).await;
        assert_eq!(
            v.steps[current].state,
            StepState::Succeeded,
            "{}: {}",
            s.id,
            output(&v, current)
        );
    }
    let v = show(&olga, run).await;
    assert_eq!(v.summary.state, RunState::Completed);
    assert_eq!(approved, rb.destructive_steps());
    assert!(
        p.lab.state().all_monitored(),
        "monit watches everything again"
    );
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_step_left_awaiting_approval_without_a_request_is_released_at_start(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let run = cron_run(&p, &olga, false).await;
    // As an older portal left it: awaiting approval, with no request.
    sqlx::query(
        "UPDATE run_steps SET state = 'awaiting_approval' WHERE run_id = $1 AND position = 2",
    )
    .bind(run)
    .execute(&p.app.pool)
    .await
    .unwrap();
    assert_eq!(
        app::ssr::approvals::release_stranded(&p.app.pool)
            .await
            .unwrap(),
        1
    );
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    let ended: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_events WHERE action = 'step.approval_ended' ORDER BY id",
    )
    .fetch_all(&p.app.pool)
    .await
    .unwrap();
    assert_eq!(ended, ["system"]);
    // A step with its request open is left alone.
    let a = request(&olga, run, 2, "now properly").await;
    assert_eq!(
        app::ssr::approvals::release_stranded(&p.app.pool)
            .await
            .unwrap(),
        0
    );
    assert_eq!(open_approval(&show(&olga, run).await, 2).id, a.id);
    p.lab.shutdown().await;
}

/// Four eyes that one admin cannot get round: an approval by a supervisor who has
/// since been disabled or demoted no longer counts, requests nobody decides
/// expire, break glass switches itself off, and an admin cannot reset their own
/// password.
#[sqlx::test(migrations = "../migrations")]
async fn approvals_of_demoted_or_disabled_supervisors_are_void_and_nothing_lasts_forever(
    pool: PgPool,
) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let sue = p.app.signed_in("sue", Role::Supervisor).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let run = cron_run(&p, &olga, true).await;

    // sam approves, then an admin demotes sam: the approval cannot be used.
    let a = request(&olga, run, 2, "crontab lost").await;
    assert_eq!(
        decide(&sam, a.id, "approve", "ok", None).await.status(),
        StatusCode::OK
    );
    let r = ada
        .call(
            "/api/users/change_role",
            &[("username", "sam"), ("role", "operator")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The demotion voided it at once, saying why.
    let v = show(&olga, run).await;
    assert_eq!(
        v.steps[2].state,
        StepState::Pending,
        "the request was voided"
    );
    assert!(audited(&p.app, "approval.voided").await.iter().any(|d| {
        d["approval"] == a.id && d["reason"] == "sam, who approved it, is no longer a supervisor"
    }));
    refusal(
        run_under(&olga, run, 2, a.id).await,
        StatusCode::CONFLICT,
        "voided",
    )
    .await;
    assert!(crontab(&p).is_empty(), "nothing was installed");

    // The same for a supervisor disabled after approving.
    let b = request(&olga, run, 2, "again").await;
    assert_eq!(
        decide(&sue, b.id, "approve", "ok", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        ada.call("/api/users/disable", &[("username", "sue")])
            .await
            .status(),
        StatusCode::OK
    );
    refusal(
        run_under(&olga, run, 2, b.id).await,
        StatusCode::CONFLICT,
        "voided",
    )
    .await;
    assert!(audited(&p.app, "approval.voided")
        .await
        .iter()
        .any(|d| d["approval"] == b.id && d["reason"] == "sue, who approved it, was disabled"));

    // Should a request of a quorum of two still be pending when its first
    // approver is demoted, that approval no longer counts towards it either:
    // the execution rule refuses it by name (unit-tested in model::approval).
    assert!(crontab(&p).is_empty(), "nothing was installed");

    // A request nobody decides in time expires (the clock moved for the test).
    let c = request(&olga, run, 2, "third time").await;
    sqlx::query(
        "UPDATE approval_requests SET decide_by = now() - interval '1 second' WHERE id = $1",
    )
    .bind(c.id)
    .execute(&p.app.pool)
    .await
    .unwrap();
    let tom = p.app.signed_in("tom", Role::Supervisor).await;
    refusal(
        decide(&tom, c.id, "approve", "late", None).await,
        StatusCode::CONFLICT,
        "expired",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while show(&olga, run).await.steps[2].state != StepState::Pending {
        assert!(Instant::now() < deadline, "the sweeper did not expire it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(audited(&p.app, "approval.expired")
        .await
        .iter()
        .any(|d| d["approval"] == c.id
            && d["reason"]
                .as_str()
                .unwrap_or("")
                .contains("not decided in time")));

    // Break glass lasts as configured (60 minutes by default), then lets nobody
    // approve their own request any more.
    let r = ada
        .call(
            "/api/sites/break_glass",
            &[("site", "lab"), ("enabled", "true"), ("reason", "storm")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let until: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT expires_at FROM site_break_glass WHERE site = 'lab'")
            .fetch_one(&p.app.pool)
            .await
            .unwrap();
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(59) && left <= chrono::Duration::minutes(60),
        "{left}"
    );
    let own_run = cron_run(&p, &tom, true).await;
    let d = request(&tom, own_run, 2, "my own").await;
    sqlx::query("UPDATE site_break_glass SET expires_at = now() - interval '1 second'")
        .execute(&p.app.pool)
        .await
        .unwrap();
    refusal(
        decide(&tom, d.id, "approve", "alone", Some("no one else awake")).await,
        StatusCode::CONFLICT,
        "another supervisor must decide it",
    )
    .await;

    // An admin cannot reset their own password (only change it, knowing it).
    refusal(
        ada.call(
            "/api/users/reset_password",
            &[("username", "ada"), ("password", "Another-pass-456-long")],
        )
        .await,
        StatusCode::CONFLICT,
        "your own account",
    )
    .await;
}
