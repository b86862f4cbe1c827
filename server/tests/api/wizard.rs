//! The wizard end to end over HTTP, against the lab over real SSH: start runs,
//! run steps, watch output arrive live, failed expectations, retry, skip with a
//! reason, transfers over SFTP, the approval wait of a destructive step.

use crate::helpers::*;
use crate::lab_portal::*;
use app::model::run::{RunState, StepState};
use app::model::Role;
use reqwest::StatusCode;
use server::exec::executor::SiteExecutor;
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[sqlx::test(migrations = "../migrations")]
async fn verify_runs_on_the_lab_with_live_output_and_a_failed_expectation(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let b = p.app.signed_in("olga", Role::Operator).await;
    let run = start(&b, "verify-recovery", &[]).await;

    // Another viewer (an auditor) follows the run live.
    let auditor = p.app.signed_in("aldo", Role::Auditor).await;
    let live = auditor
        .http
        .get(format!("{}/api/runs/{run}/live", p.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let mut events = live;

    let r = command(&b, run, 0, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let mut heard = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !heard.contains("[PASS]") {
        assert!(Instant::now() < deadline, "no live output: {heard}");
        match tokio::time::timeout(Duration::from_secs(10), events.chunk()).await {
            Ok(Ok(Some(bytes))) => heard.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("live stream ended: {other:?}; heard {heard}"),
        }
    }
    assert!(heard.contains("event: output"), "{heard}");

    let v = settled(&b, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Succeeded, "{}", output(&v, 0));
    assert!(output(&v, 0).contains("[PASS]"));
    let outcome = v.steps[0].attempts[0].outcome.clone().unwrap();
    assert!(outcome.expectations.iter().all(|e| e.passed));

    // A fault makes the replica check fail, visibly; a retry after the repair passes.
    p.lab.faults().set(lab::Fault::ReplicaSetUnhealthy, true);
    let r = command(&b, run, 1, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = settled(&b, run, 1).await;
    assert_eq!(v.steps[1].state, StepState::Failed, "{}", output(&v, 1));
    let failed: Vec<String> = v.steps[1].attempts[0]
        .outcome
        .clone()
        .unwrap()
        .expectations
        .into_iter()
        .filter(|e| !e.passed)
        .map(|e| e.description)
        .collect();
    assert!(
        failed.iter().any(|d| d.contains("does not match")),
        "{failed:?}"
    );
    // Steps run in order: the sign-off cannot be confirmed before the check.
    let r = command(&b, run, 2, "confirm", "all green").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    p.lab.faults().set(lab::Fault::ReplicaSetUnhealthy, false);
    let r = command(&b, run, 1, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = settled(&b, run, 1).await;
    assert_eq!(v.steps[1].state, StepState::Succeeded);
    assert_eq!(v.steps[1].attempts.len(), 2);

    // The manual sign-off needs an observation.
    let r = command(&b, run, 2, "confirm", " ").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = command(&b, run, 2, "confirm", "all checks passed").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = show(&b, run).await;
    assert_eq!(v.summary.state, RunState::Completed);

    // The auditor may watch but not act.
    let r = command(&auditor, run, 0, "run", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let actions: Vec<String> = p
        .app
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    for wanted in [
        "run.started",
        "step.run",
        "step.passed",
        "step.failed",
        "step.retried",
        "run.completed",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn cron_restore_copies_over_sftp_and_stops_at_the_destructive_step(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let b = p.app.signed_in("olga", Role::Operator).await;

    // Bad input is named field by field.
    let r = b
        .call(
            "/api/runs/start",
            &[
                ("runbook", "restore-cron"),
                ("site", "nowhere"),
                ("params[backup_date]", "yesterday"),
                ("params[target]", "qns01"),
            ],
        )
        .await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<String> = body["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        fields,
        [
            "site",
            "params[site]",
            "params[backup_date]",
            "params[target]"
        ],
        "{body}"
    );

    let run = start(
        &b,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&b, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Succeeded, "{}", output(&v, 0));

    assert_eq!(
        command(&b, run, 1, "run", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&b, run, 1).await;
    assert_eq!(
        v.steps[1].state,
        StepState::Succeeded,
        "{:?}",
        v.steps[1].attempts
    );
    let transfer = v.steps[1].attempts[0]
        .outcome
        .clone()
        .unwrap()
        .transfer
        .unwrap();
    let saved = std::fs::read(p.store.join("lab/2026-11-26/crontab_pcrfclient01.txt")).unwrap();
    assert_eq!(transfer.bytes, saved.len() as u64);
    let on_host = p
        .lab
        .state()
        .read_file(
            "pcrfclient01",
            "/var/tmp/crontab_pcrfclient01_2026-11-26.txt",
        )
        .unwrap();
    assert_eq!(on_host, saved);
    // Written under a temporary name and renamed: nothing of it is left behind.
    assert!(p
        .lab
        .state()
        .read_file(
            "pcrfclient01",
            "/var/tmp/crontab_pcrfclient01_2026-11-26.txt.portal-part"
        )
        .is_err());

    // The destructive step does not run on Run; it waits for approval.
    let r = command(&b, run, 2, "run", "").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let (_, body) = error_text(r).await;
    assert!(body.to_string().contains("approval"), "{body}");
    assert_eq!(
        command(&b, run, 2, "request_approval", "").await.status(),
        StatusCode::BAD_REQUEST,
        "a request needs a justification"
    );
    assert_eq!(
        command(&b, run, 2, "request_approval", "drill")
            .await
            .status(),
        StatusCode::OK
    );
    let v = show(&b, run).await;
    assert_eq!(v.steps[2].state, StepState::AwaitingApproval);

    // Skipping needs a reason; with one the run moves on.
    assert_eq!(
        command(&b, run, 2, "skip", "").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        command(
            &b,
            run,
            2,
            "skip",
            "crontab installed by hand during the drill"
        )
        .await
        .status(),
        StatusCode::OK
    );
    let v = show(&b, run).await;
    assert_eq!(v.steps[2].state, StepState::Skipped);
    assert_eq!(
        v.steps[2].note.as_deref(),
        Some("crontab installed by hand during the drill")
    );

    // Cancelling needs a reason too.
    let r = b
        .call(
            "/api/runs/cancel",
            &[("run", &run.to_string()), ("reason", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = b
        .call(
            "/api/runs/cancel",
            &[("run", &run.to_string()), ("reason", "drill over")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(show(&b, run).await.summary.state, RunState::Cancelled);
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hanging_command_can_be_stopped_and_a_down_host_is_explained(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let b = p.app.signed_in("olga", Role::Operator).await;
    let run = start(&b, "verify-recovery", &[]).await;
    p.lab.faults().set(
        lab::Fault::CommandHangs {
            pattern: "diagnostics.sh".into(),
        },
        true,
    );
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(show(&b, run).await.steps[0].state, StepState::Running);
    assert_eq!(
        command(&b, run, 0, "stop", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&b, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Failed);
    assert_eq!(
        v.steps[0].attempts[0].outcome.as_ref().unwrap().ending,
        "cancelled"
    );

    p.lab.faults().set(
        lab::Fault::CommandHangs {
            pattern: "diagnostics.sh".into(),
        },
        false,
    );
    p.lab.faults().set(
        lab::Fault::HostDown {
            host: "cluman".into(),
        },
        true,
    );
    // A new run opens new connections (a run reuses its own).
    let run = start(&b, "verify-recovery", &[]).await;
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&b, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Failed);
    let error = v.steps[0].attempts[0]
        .outcome
        .clone()
        .unwrap()
        .error
        .unwrap();
    assert!(error.contains("cluman"), "{error}");
    p.lab.faults().set(
        lab::Fault::HostDown {
            host: "cluman".into(),
        },
        false,
    );
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        settled(&b, run, 0).await.steps[0].state,
        StepState::Succeeded
    );
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_changed_host_key_stops_the_step_until_an_admin_trusts_it(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let b = p.app.signed_in("olga", Role::Operator).await;
    let admin = p.app.signed_in("ada", Role::Admin).await;
    p.lab.faults().set(
        lab::Fault::HostKeyChanged {
            host: "cluman".into(),
        },
        true,
    );
    let run = start(&b, "verify-recovery", &[]).await;
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    let v = settled(&b, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Failed);
    let outcome = v.steps[0].attempts[0].outcome.clone().unwrap();
    let error = outcome.error.unwrap();
    assert!(
        error.contains("CHANGED") && error.contains("no command was sent"),
        "{error}"
    );
    assert!(!output(&v, 0).contains("Diagnostics"), "{}", output(&v, 0));

    // The admin sees the refused key, compares it and trusts it.
    assert_eq!(
        b.call("/api/sites/overview", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = admin.call("/api/sites/overview", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let overview: app::model::site::SitesOverview = r.json().await.unwrap();
    let lab_site = overview.sites.iter().find(|s| s.name == "lab").unwrap();
    let refused = lab_site
        .unconfirmed
        .iter()
        .find(|k| k.host == "cluman")
        .expect("the refused key is listed");
    assert_eq!(refused.verdict, "changed");
    assert!(overview
        .lab_faults
        .unwrap()
        .iter()
        .any(|f| f.name == "host-key-changed:cluman" && f.on));
    let r = admin
        .call(
            "/api/sites/confirm_key",
            &[
                ("site", "lab"),
                ("host", "cluman"),
                ("fingerprint", &refused.fingerprint),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        settled(&b, run, 0).await.steps[0].state,
        StepState::Succeeded
    );
    let actions: Vec<String> = p
        .app
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert!(
        actions.contains(&"site.host_key_confirmed".to_string()),
        "{actions:?}"
    );

    // A confirmed key survives a restart of the portal (it is stored).
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM site_host_keys WHERE site = 'lab' AND source = 'confirmed'",
    )
    .fetch_one(&p.app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);

    // An import names the line it cannot read.
    let r = admin
        .call(
            "/api/sites/import_known_hosts",
            &[("site", "lab"), ("known_hosts", "# ours\nnot a key line")],
        )
        .await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("line 2"), "{body}");
    let line = std::fs::read_to_string(p.lab.dir().join("known_hosts")).unwrap();
    let first = line.lines().find(|l| !l.starts_with('#')).unwrap();
    let r = admin
        .call(
            "/api/sites/import_known_hosts",
            &[("site", "lab"), ("known_hosts", first)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<usize>().await.unwrap(), 1);

    // Lab faults from the admin page, with a clear refusal of unknown ones.
    let r = admin
        .call(
            "/api/sites/lab_fault",
            &[("fault", "host-down:qns01"), ("on", "true")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(p.lab.faults().is_on(&lab::Fault::HostDown {
        host: "qns01".into()
    }));
    let r = admin
        .call(
            "/api/sites/lab_fault",
            &[("fault", "meteor-strike"), ("on", "true")],
        )
        .await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("replica-set-unhealthy"), "{body}");
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_admin_defines_a_site_in_the_portal_and_runs_use_it(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let admin = p.app.signed_in("ada", Role::Admin).await;
    let b = p.app.signed_in("olga", Role::Operator).await;

    let r = admin
        .call(
            "/api/sites/define",
            &[("definition", "[[sites]]\nname = \"x\"\n")],
        )
        .await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("missing field"), "{body}");

    let definition = p.lab.sites_toml("drill");
    // Its files must be in the directory for site secrets (here the lab's):
    // another site's key, or any file the portal can read, is refused, in
    // words that do not say whether the file exists.
    let pointing = |field: &str, path: &str| {
        let mut t: toml::Table = definition.parse().unwrap();
        let site = t["sites"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        site.insert(field.into(), toml::Value::String(path.into()));
        toml::to_string(&t).unwrap()
    };
    let lab_key = {
        let t: toml::Table = definition.parse().unwrap();
        t["sites"][0]["key"].as_str().unwrap().to_string()
    };
    let escape = format!(
        "{}/../../../../etc/passwd",
        std::path::Path::new(&lab_key).parent().unwrap().display()
    );
    for (field, path) in [
        ("key", "/etc/passwd"),
        ("key", "/no/such/key"),
        ("key", escape.as_str()),
        ("known_hosts", "/etc/ssh/ssh_known_hosts"),
        ("clouds_file", "/root/.config/openstack/clouds.yaml"),
    ] {
        let (status, body) = error_text(
            admin
                .call(
                    "/api/sites/define",
                    &[("definition", &pointing(field, path))],
                )
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {path}: {body}");
        let text = body.to_string();
        assert!(
            text.contains(&format!(
                "{field} \\\"{path}\\\" must be inside the directory for site secrets"
            )),
            "{field} {path}: {text}"
        );
        for telling in ["No such file", "not found", "cannot read", "denied"] {
            assert!(!text.contains(telling), "{field} {path}: {text}");
        }
    }
    assert!(!p
        .app
        .audit_actions()
        .await
        .iter()
        .any(|(_, a)| a == "site.defined"));
    let r = admin
        .call("/api/sites/define", &[("definition", &definition)])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<String>().await.unwrap(), "drill");
    let r = admin
        .call("/api/sites/define", &[("definition", &definition)])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Operators may not define sites.
    let r = b
        .call("/api/sites/define", &[("definition", &definition)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = b.call("/api/runs/sites", &[]).await;
    let sites: Vec<app::model::run_view::SiteView> = r.json().await.unwrap();
    assert!(sites.iter().any(|s| s.name == "drill"), "{sites:?}");
    let r = b
        .call(
            "/api/runs/start",
            &[("runbook", "verify-recovery"), ("site", "drill")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let run: i64 = r.json().await.unwrap();
    assert_eq!(
        command(&b, run, 0, "run", "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        settled(&b, run, 0).await.steps[0].state,
        StepState::Succeeded
    );

    // Stored and audited: a portal started on the same database has it again.
    let actions: Vec<String> = p
        .app
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert!(actions.contains(&"site.defined".to_string()), "{actions:?}");
    // Only where its files are allowed: a portal whose directory for site
    // secrets is elsewhere skips it.
    let elsewhere = SiteExecutor::new(Vec::new(), p.store.clone()).unwrap();
    let added = app::ssr::sites::apply_stored_sites(&p.app.pool, &elsewhere)
        .await
        .unwrap();
    assert_eq!(added, 0);
    let lab_dir = std::path::Path::new(&lab_key).parent().unwrap();
    let executor = SiteExecutor::new(Vec::new(), p.store.clone())
        .unwrap()
        .with_secrets_dir(lab_dir.to_path_buf());
    let added = app::ssr::sites::apply_stored_sites(&p.app.pool, &executor)
        .await
        .unwrap();
    assert_eq!(added, 1);
    p.lab.shutdown().await;
}
