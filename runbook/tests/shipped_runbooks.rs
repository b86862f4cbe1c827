//! The runbooks shipped in `runbooks/`: all twelve procedures load, and exactly the
//! steps the procedure document marks destructive are marked destructive.

use runbook::model::StepAction;
use std::collections::BTreeMap;
use std::path::Path;

fn shipped() -> Vec<runbook::Runbook> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
    match runbook::load_dir(&dir) {
        Ok(rbs) => rbs,
        Err(d) => panic!(
            "shipped runbooks are invalid:\n{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[test]
fn all_twelve_procedures_are_runbooks() {
    let ids: Vec<String> = shipped().into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            "esc-vm-start",
            "cps-backup",
            "restore-cluman",
            "restore-patches",
            "restore-cron",
            "redeploy-pcrfclient01",
            "redeploy-pcrfclient02",
            "redeploy-sessionmgr",
            "redeploy-lb-qns",
            "restore-database",
            "restore-subsystem",
            "verify-recovery",
        ]
    );
}

#[test]
fn destructive_steps_are_those_the_procedures_mark() {
    // From ../shared/cps-recovery-procedures.md, procedure by procedure.
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        (
            "esc-vm-start",
            vec![
                "restart-master-esc",
                "restore-syslog-master",
                "restore-syslog-standby",
            ],
        ),
        ("cps-backup", vec!["stop-cluman"]),
        (
            "restore-cluman",
            vec![
                "create-cluman",
                "rebuild-cluman",
                "import-config",
                "restore-mongo",
            ],
        ),
        ("restore-patches", vec!["stop-all", "reinit"]),
        ("restore-cron", vec!["install-crontab"]),
        (
            "redeploy-pcrfclient01",
            vec!["import-config", "recreate-vm", "recreate-svn-repo"],
        ),
        ("redeploy-pcrfclient02", vec!["recreate-vm"]),
        (
            "redeploy-sessionmgr",
            vec!["recreate-vm", "restore-session-db"],
        ),
        (
            "redeploy-lb-qns",
            vec!["import-lb-config", "import-qns-config", "recreate-vm"],
        ),
        ("restore-database", vec!["import-mongo"]),
        ("restore-subsystem", vec!["import"]),
        ("verify-recovery", vec![]),
    ]);
    for rb in shipped() {
        let marked: Vec<&str> = rb
            .steps
            .iter()
            .filter(|s| s.destructive)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(marked, expected[rb.id.as_str()], "{}", rb.id);
    }
}

#[test]
fn state_changing_commands_are_never_left_unmarked() {
    // A guard against a new step that stops, wipes or replaces something without
    // being marked: these command words always need an approval.
    let dangerous = [
        "monit stop",
        "reinit.sh",
        "-a import",
        "crontab /",
        "rm -fr",
        "rm -rf",
        "mongorestore",
        "escadm restart",
        "vm-action STOP",
    ];
    for rb in shipped() {
        for step in &rb.steps {
            let command = match &step.action {
                StepAction::Ssh(c) | StepAction::Esc(c) => c.command.source().to_string(),
                _ => continue,
            };
            if dangerous.iter().any(|d| command.contains(d)) {
                assert!(
                    step.destructive,
                    "{}/{}: `{command}` must be destructive",
                    rb.id, step.id
                );
            }
        }
    }
}

#[test]
fn every_step_renders_once_its_values_are_known() {
    use runbook::model::ParamKind;
    use std::collections::HashMap;
    for rb in shipped() {
        let mut values: HashMap<String, String> = HashMap::new();
        for p in &rb.parameters {
            let sample = match (&p.kind, &p.default) {
                (ParamKind::Date, _) => "2026-11-27".to_string(),
                (_, Some(d)) => d.clone(),
                (ParamKind::Enum(v), None) => v[0].clone(),
                (ParamKind::Integer { min, .. }, None) => min.unwrap_or(1).to_string(),
                (ParamKind::Host, None) => match p.pattern.as_ref().map(|p| p.source()) {
                    Some(pat) if pat.starts_with("sessionmgr") => "sessionmgr01".into(),
                    Some(pat) if pat.starts_with("lb") => "lb01".into(),
                    _ => "cluman".into(),
                },
                (ParamKind::Path, None) => "/var/tmp/backup/sample.tgz".to_string(),
                (ParamKind::String, None) => match p.pattern.as_ref().map(|p| p.source()) {
                    Some(pat) if pat.contains("\\.") && pat.contains("{3}") => "10.0.0.5".into(),
                    Some(pat) if pat.contains("{12}") => {
                        "2edbac5e-55de-4d4c-a427-ab24ebe66181".into()
                    }
                    _ => "sample".into(),
                },
            };
            assert_eq!(
                runbook::params::check_value(p, &sample).as_deref(),
                Ok(sample.as_str()),
                "{}/{}",
                rb.id,
                p.name
            );
            values.insert(p.name.clone(), sample);
        }
        for step in &rb.steps {
            for capture in step.action.captures() {
                values.insert(capture.to_string(), "captured".into());
            }
        }
        for step in &rb.steps {
            let rendered = runbook::render::render(step, |n| values.get(n).map(String::as_str))
                .unwrap_or_else(|e| panic!("{}/{}: {e}", rb.id, step.id));
            assert!(
                !rendered.canonical().contains("{{"),
                "{}/{}: {}",
                rb.id,
                step.id,
                rendered.canonical()
            );
        }
    }
}
