//! The lab answers the procedures: every ssh/esc/wait step of every runbook in
//! `runbooks/`, rendered as the portal renders it and wrapped as the portal
//! sends it (`timeout ... sh -c '...'`), runs through the lab's shell on its
//! host and meets its `expect`; its captures find a value. Transfers are done
//! the way the portal does them (between a VM's files and a backup store).
//!
//! The commands run through the interpreter directly, not over SSH, to keep
//! this fast; `ssh.rs` covers the SSH side.

use lab::backup_store;
use lab::faults::{Fault, Faults};
use lab::shell::run_collect;
use lab::state::topology::PATCH_COMPONENT;
use lab::state::SiteState;
use runbook::hosts::KNOWN_HOSTS;
use runbook::model::{ParamKind, Runbook, StepAction};
use runbook::render::{remote_command, render, RenderedAction, RenderedEndpoint};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn runbooks() -> Vec<Runbook> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
    match runbook::load_dir(&dir) {
        Ok(r) => r,
        Err(d) => panic!("runbooks do not load: {d:?}"),
    }
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Values for the parameters nobody defaulted, by name: what an operator
/// would enter on this lab.
fn chosen(name: &str, date: &str) -> Option<String> {
    Some(match name {
        "site" => "lab".to_string(),
        "date" | "backup_date" => date.to_string(),
        "backup_file" => format!("/var/tmp/backup/lab_backup_all_{date}.tar.gz"),
        "component" => PATCH_COMPONENT.to_string(),
        "vm_name" => "pcrfclient01".to_string(),
        _ => return None,
    })
}

/// A plausible value for each parameter: its default, else the chosen value
/// above, else the first enum value, else the first site host matching its
/// pattern, else the first value a `stack` can take (the VM's name).
fn parameter_values(
    rb: &Runbook,
    date: &str,
    overrides: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for p in &rb.parameters {
        if let Some((_, v)) = overrides.iter().find(|(n, _)| *n == p.name) {
            values.insert(p.name.clone(), v.to_string());
            continue;
        }
        let value = match (&p.default, &p.kind) {
            (Some(d), ParamKind::Date) if d == "today" => Some(date.to_string()),
            (Some(d), _) => Some(d.clone()),
            (None, _) => chosen(&p.name, date).or_else(|| match &p.kind {
                ParamKind::Enum(v) => v.first().cloned(),
                ParamKind::Host => KNOWN_HOSTS
                    .iter()
                    .find(|h| p.pattern.as_ref().is_none_or(|pat| pat.regex().is_match(h)))
                    .map(|h| h.to_string()),
                _ => None,
            }),
        };
        if let Some(v) = value {
            values.insert(p.name.clone(), v);
        }
    }
    // A stack is named after its VM.
    if rb.parameter("stack").is_some() && !overrides.iter().any(|(n, _)| *n == "stack") {
        if let Some(vm) = values.get("vm").cloned() {
            values.insert("stack".into(), vm);
        }
    }
    for p in &rb.parameters {
        if let Some(v) = values.get(&p.name) {
            if let Err(e) = runbook::params::check_value(p, v) {
                panic!("{}: value {v:?} for {}: {e}", rb.id, p.name);
            }
        }
    }
    values
}

/// Runs a runbook's steps against the lab; returns the values at the end.
async fn run_runbook(
    rb: &Runbook,
    state: &SiteState,
    faults: &Faults,
    store: &Path,
    values: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut values = values;
    for step in &rb.steps {
        let lookup = |n: &str| values.get(n).map(String::as_str);
        if let Some(cond) = &step.when {
            if !cond.holds(&lookup) {
                continue;
            }
        }
        let action = match render(step, lookup) {
            Ok(a) => a,
            Err(e) => panic!("{}/{}: cannot render: {e:?}", rb.id, step.id),
        };
        let (host, command, timeout) = match action {
            RenderedAction::Shell {
                host,
                command,
                timeout_seconds,
            }
            | RenderedAction::Wait {
                host,
                command,
                timeout_seconds,
                ..
            } => (host, command, timeout_seconds),
            RenderedAction::Transfer { from, to } => {
                transfer(state, store, &from, &to, &format!("{}/{}", rb.id, step.id));
                continue;
            }
            RenderedAction::OpenStack { .. } | RenderedAction::Manual => continue,
        };
        let wire = remote_command(&command, timeout);
        let out = run_collect(state, faults, &host, &wire).await;
        let combined = out.combined();
        if std::env::var_os("LAB_TRACE").is_some() {
            eprintln!(
                "=== {}/{} on {host} (exit {})\n$ {command}\n{}{}",
                rb.id, step.id, out.status, out.stdout, out.stderr
            );
        }
        let (StepAction::Ssh(check) | StepAction::Esc(check) | StepAction::Wait { check, .. }) =
            &step.action
        else {
            unreachable!("only shell steps get here");
        };
        let results = check.expect.check(Some(out.status), &combined);
        let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
        assert!(
            failed.is_empty(),
            "{}/{} on {host}: {failed:?}\ncommand: {command}\n--- stdout\n{}--- stderr\n{}",
            rb.id,
            step.id,
            out.stdout,
            out.stderr
        );
        for cap in &check.captures {
            match cap.extract(&combined) {
                Some(v) => {
                    values.insert(cap.name.clone(), v);
                }
                None => {
                    // Only a step whose capture decides a `when` may legitimately
                    // find nothing; the caller says when that is expected.
                    values.insert(cap.name.clone(), String::new());
                }
            }
        }
    }
    values
}

fn transfer(
    state: &SiteState,
    store: &Path,
    from: &RenderedEndpoint,
    to: &RenderedEndpoint,
    what: &str,
) {
    let data = match from {
        RenderedEndpoint::Host { host, path } => match state.read_file(host, path) {
            Ok(d) => d,
            Err(e) => panic!("{what}: {host}:{path}: {e}"),
        },
        RenderedEndpoint::Store { path } => match std::fs::read(store.join(path)) {
            Ok(d) => d,
            Err(e) => panic!("{what}: store {path}: {e}"),
        },
    };
    match to {
        RenderedEndpoint::Host { host, path } => {
            if let Err(e) = state.write_file(host, path, &data) {
                panic!("{what}: {host}:{path}: {e}");
            }
        }
        RenderedEndpoint::Store { path } => {
            let target: PathBuf = store.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            std::fs::write(&target, data).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}

fn by_id<'a>(all: &'a [Runbook], id: &str) -> &'a Runbook {
    all.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no runbook {id}"))
}

/// Every runbook, in order, on one site: the backup of runbook 1 feeds the
/// restores after it; at the end the verification passes.
#[tokio::test]
async fn every_runbook_runs_on_the_lab_in_order() {
    let all = runbooks();
    assert!(
        all.len() >= 12,
        "expected the twelve runbooks, found {}",
        all.len()
    );
    let date = today();
    let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    backup_store::seed(store.path(), "lab", &date).unwrap_or_else(|e| panic!("{e}"));
    let state = SiteState::new();
    let faults = Faults::new();
    let mut shell_steps = 0;
    for rb in &all {
        let values = parameter_values(rb, &date, &[]);
        let end = run_runbook(rb, &state, &faults, store.path(), values).await;
        for step in &rb.steps {
            if let StepAction::Ssh(c) | StepAction::Esc(c) | StepAction::Wait { check: c, .. } =
                &step.action
            {
                shell_steps += 1;
                for cap in &c.captures {
                    // In the healthy lab every capture finds its value.
                    let ran = step
                        .when
                        .as_ref()
                        .is_none_or(|w| w.holds(&|n: &str| end.get(n).map(String::as_str)));
                    if ran {
                        assert!(
                            end.get(&cap.name).is_some_and(|v| !v.is_empty()),
                            "{}/{}: capture {} found nothing",
                            rb.id,
                            step.id,
                            cap.name
                        );
                    }
                }
            }
        }
    }
    assert!(shell_steps > 40, "only {shell_steps} shell steps?");
    assert!(
        state.all_monitored(),
        "every component is monitored again at the end"
    );
}

/// The restores also work from the sample store alone, on a fresh site.
#[tokio::test]
async fn restores_work_from_the_seeded_store() {
    let all = runbooks();
    let date = "2026-11-26";
    let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let written = backup_store::seed(store.path(), "lab", date).unwrap_or_else(|e| panic!("{e}"));
    assert!(written
        .iter()
        .all(|p| p.starts_with(store.path().join("lab").join(date))));
    let state = SiteState::new();
    let faults = Faults::new();
    for (id, overrides) in [
        ("restore-cluman", vec![]),
        ("restore-patches", vec![]),
        ("restore-cron", vec![("target", "cluman")]),
        ("restore-cron", vec![("target", "pcrfclient01")]),
    ] {
        let rb = by_id(&all, id);
        let values = parameter_values(rb, date, &overrides);
        run_runbook(rb, &state, &faults, store.path(), values).await;
    }
    let cron = state
        .read_file("pcrfclient01", "/var/spool/cron/root")
        .unwrap_or_default();
    assert!(String::from_utf8_lossy(&cron).contains("svn_backup.sh"));
}

/// With SVN out of sync, runbook 5 finds no sync URL, so it recreates the
/// repository on pcrfclient01 and resyncs it: those destructive steps work too.
#[tokio::test]
async fn redeploy_pcrfclient01_recreates_an_unsynced_repository() {
    let all = runbooks();
    let date = today();
    let state = SiteState::new();
    let faults = Faults::new();
    let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The backup the runbook imports.
    let export = run_collect(
        &state,
        &faults,
        "cluman",
        &format!("/var/qps/install/current/scripts/modules/config_br.py -a export --all /var/tmp/backup/lab_backup_all_{date}.tar.gz"),
    )
    .await;
    assert_eq!(export.status, 0, "{}", export.stderr);
    let uuid_before = state
        .with(|s| s.svn_repo("pcrfclient02").map(|r| r.uuid))
        .unwrap_or_default();
    faults.set(Fault::SvnNotSynced, true);
    let rb = by_id(&all, "redeploy-pcrfclient01");
    let values = parameter_values(rb, &date, &[]);
    let end = run_runbook(rb, &state, &faults, store.path(), values).await;
    assert_eq!(end.get("sync_from").map(String::as_str), Some(""));
    let repo = state
        .with(|s| s.svn_repo("pcrfclient01"))
        .unwrap_or_else(|| panic!("pcrfclient01 has a repository again"));
    assert_eq!(
        repo.uuid, uuid_before,
        "the UUID read from pcrfclient02 was set"
    );
    faults.set(Fault::SvnNotSynced, false);
    assert!(state.with(|s| s.svn_in_sync()));
}
