//! A portal on its own database with the lab as its site, and the calls the
//! wizard tests make through it, as an operator's browser would.

use crate::helpers::*;
use app::model::approval::ApprovalView;
use app::model::run::{RunState, StepState};
use app::model::run_view::RunView;
use reqwest::StatusCode;
use server::exec::executor::SiteExecutor;
use server::exec::site;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct LabPortal {
    pub app: TestApp,
    pub lab: lab::Lab,
    pub store: PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn portal_with_lab(pool: PgPool) -> LabPortal {
    portal_with_lab_and(pool, &[]).await
}

/// [`portal_with_lab`] with extra `PORTAL_*` settings.
pub async fn portal_with_lab_and(pool: PgPool, extra: &[(&str, &str)]) -> LabPortal {
    let dir = tempfile::tempdir().unwrap();
    let lab_dir = dir.path().join("lab");
    let store = dir.path().join("store");
    let lab = lab::Lab::start_with_pace(&lab_dir, lab::Pace::instant())
        .await
        .unwrap();
    lab.write_out(&lab_dir).unwrap();
    lab.seed_backup_store(&store, "lab", "2026-11-26").unwrap();
    let sites = site::parse("lab", &lab.sites_toml("lab"), &lab_dir).unwrap();
    let executor = SiteExecutor::new(sites, store.clone())
        .unwrap()
        .with_lab(lab.faults())
        .with_secrets_dir(lab_dir.clone());
    let app = spawn_app_on(pool, extra, Arc::new(executor)).await;
    LabPortal {
        app,
        lab,
        store,
        _dir: dir,
    }
}

pub async fn start(b: &Browser, runbook: &str, params: &[(&str, &str)]) -> i64 {
    let mut form: Vec<(String, String)> = vec![
        ("runbook".into(), runbook.into()),
        ("site".into(), "lab".into()),
    ];
    for (k, v) in params {
        form.push((format!("params[{k}]"), v.to_string()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.call("/api/runs/start", &form).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

pub async fn show(b: &Browser, run: i64) -> RunView {
    let r = b.call("/api/runs/show", &[("id", &run.to_string())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

pub async fn command(
    b: &Browser,
    run: i64,
    position: i32,
    cmd: &str,
    text: &str,
) -> reqwest::Response {
    b.call(
        "/api/runs/step",
        &[
            ("run", &run.to_string()),
            ("position", &position.to_string()),
            ("command", cmd),
            ("text", text),
        ],
    )
    .await
}

/// Waits until step `position` is no longer running and the engine has skipped
/// the steps after it whose `when` does not hold (it does so just after
/// recording the outcome, in a transaction of its own).
pub async fn settled(b: &Browser, run: i64, position: usize) -> RunView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = show(b, run).await;
        let skip_pending = v.current.is_some_and(|c| {
            let s = &v.steps[c];
            s.state == StepState::Pending && matches!(s.when, Some((_, false)))
        });
        if v.steps[position].state != StepState::Running && !skip_pending {
            return v;
        }
        assert!(Instant::now() < deadline, "step {position} still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn output(v: &RunView, position: usize) -> String {
    v.steps[position]
        .attempts
        .last()
        .map(|a| a.output.iter().map(|c| c.text.as_str()).collect())
        .unwrap_or_default()
}

/// What an operator would enter on the lab for a parameter nobody defaulted.
pub fn lab_value(p: &runbook::model::Parameter, date: &str) -> Option<String> {
    use runbook::model::ParamKind;
    let chosen = match p.name.as_str() {
        "site" => Some("lab".to_string()),
        "date" | "backup_date" => Some(date.to_string()),
        "backup_file" => Some(format!("/var/tmp/backup/lab_backup_all_{date}.tar.gz")),
        "component" => Some(lab::state::topology::PATCH_COMPONENT.to_string()),
        "vm_name" | "stack" => Some("pcrfclient01".to_string()),
        _ => None,
    };
    match (&p.default, &p.kind) {
        (Some(d), ParamKind::Date) if d == "today" => Some(date.to_string()),
        (Some(d), _) => Some(d.clone()),
        (None, _) => chosen.or_else(|| match &p.kind {
            ParamKind::Enum(v) => v.first().cloned(),
            ParamKind::Host => runbook::hosts::KNOWN_HOSTS
                .iter()
                .find(|h| p.pattern.as_ref().is_none_or(|pat| pat.regex().is_match(h)))
                .map(|h| h.to_string()),
            _ => None,
        }),
    }
}

/// Starts runbook `id` on the lab with the values an operator would enter today.
pub async fn start_on_lab(b: &Browser, id: &str) -> i64 {
    start_on_lab_with(b, id, &[]).await
}

/// [`start_on_lab`] with some values chosen.
pub async fn start_on_lab_with(b: &Browser, id: &str, chosen: &[(&str, &str)]) -> i64 {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let rb = shipped_runbooks().into_iter().find(|r| r.id == id).unwrap();
    let values: Vec<(String, String)> = rb
        .parameters
        .iter()
        .filter_map(|param| {
            let value = match chosen.iter().find(|(k, _)| *k == param.name) {
                Some((_, v)) => Some(v.to_string()),
                None => lab_value(param, &date),
            };
            value.map(|v| (param.name.clone(), v))
        })
        .collect();
    let values: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    start(b, id, &values).await
}

/// The step's open request for approval.
pub fn open_approval(v: &RunView, position: usize) -> ApprovalView {
    v.steps[position]
        .open_approval()
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "step {position} has no open request: {:?}",
                v.steps[position]
            )
        })
}

/// Asks for approval of the step at `position`, saying `why`.
pub async fn request(b: &Browser, run: i64, position: i32, why: &str) -> ApprovalView {
    let r = command(b, run, position, "request_approval", why).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    open_approval(&show(b, run).await, position as usize)
}

/// A supervisor's decision on request `id`.
pub async fn decide(
    b: &Browser,
    id: i64,
    decision: &str,
    text: &str,
    break_glass: Option<&str>,
) -> reqwest::Response {
    let id = id.to_string();
    let mut form = vec![("id", id.as_str()), ("decision", decision), ("text", text)];
    if let Some(reason) = break_glass {
        form.push(("break_glass_reason", reason));
    }
    b.call("/api/approvals/decide", &form).await
}

/// Runs the step at `position` under approval `approval`.
pub async fn run_under(b: &Browser, run: i64, position: i32, approval: i64) -> reqwest::Response {
    b.call(
        "/api/runs/step",
        &[
            ("run", &run.to_string()),
            ("position", &position.to_string()),
            ("command", "run"),
            ("approval", &approval.to_string()),
        ],
    )
    .await
}

/// Drives run `run` as an operator with supervisors at hand: runs each step,
/// confirms manual ones, and has each destructive one approved (by as many
/// supervisors as it needs) and run under the approval; stops at the end, or
/// before the step `until`. Answers how many approvals were used, or what went
/// wrong.
pub async fn drive(
    operator: &Browser,
    supervisors: &[&Browser],
    runbook: &str,
    run: i64,
    until: Option<&str>,
) -> Result<usize, String> {
    let mut approvals = 0;
    loop {
        let v = show(operator, run).await;
        let Some(current) = v.current else {
            return match v.summary.state {
                RunState::Completed => Ok(approvals),
                other => Err(format!("{runbook}: the run ended {other:?}")),
            };
        };
        let s = v.steps[current].clone();
        if until == Some(s.id.as_str()) {
            return Ok(approvals);
        }
        let r = if s.destructive {
            let a = request(
                operator,
                run,
                s.position,
                "rehearsal of the whole procedure",
            )
            .await;
            for supervisor in supervisors.iter().take(usize::from(a.quorum)) {
                let d = decide(supervisor, a.id, "approve", "", None).await;
                if d.status() != StatusCode::OK {
                    return Err(format!(
                        "{runbook} {}: approval: {}",
                        s.id,
                        d.text().await.unwrap_or_default()
                    ));
                }
            }
            approvals += 1;
            run_under(operator, run, s.position, a.id).await
        } else if s.kind == "manual" {
            command(operator, run, s.position, "confirm", "rehearsed on the lab").await
        } else {
            command(operator, run, s.position, "run", "").await
        };
        if r.status() != StatusCode::OK {
            return Err(format!(
                "{runbook} {}: {}",
                s.id,
                r.text().await.unwrap_or_default()
            ));
        }
        let after = settled(operator, run, current).await;
        let step = &after.steps[current];
        if !matches!(step.state, StepState::Succeeded | StepState::Skipped) {
            let outcome = step.attempts.last().and_then(|a| a.outcome.clone());
            return Err(format!(
                "{runbook} step {} ended {:?}: {:?}\n{}",
                step.id,
                step.state,
                outcome.map(|o| (
                    o.error,
                    o.expectations
                        .into_iter()
                        .filter(|e| !e.passed)
                        .collect::<Vec<_>>()
                )),
                output(&after, current)
            ));
        }
    }
}
