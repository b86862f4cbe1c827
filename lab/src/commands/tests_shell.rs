//! The shell and the commands together, without any network: what an operator
//! or the portal would type, and what comes back.

use crate::faults::{Fault, Faults};
use crate::shell::{run_collect, Output};
use crate::state::SiteState;

async fn run(state: &SiteState, host: &str, cmd: &str) -> Output {
    run_collect(state, &Faults::new(), host, cmd).await
}

async fn ok(state: &SiteState, host: &str, cmd: &str) -> String {
    let out = run(state, host, cmd).await;
    assert_eq!(out.status, 0, "{cmd}: {}", out.stderr);
    out.stdout
}

#[tokio::test]
async fn lists_pipes_and_exit_statuses() {
    let s = SiteState::new();
    assert_eq!(
        ok(
            &s,
            "cluman",
            "echo a; echo b | grep b && echo yes || echo no"
        )
        .await,
        "a\nb\nyes\n"
    );
    assert_eq!(ok(&s, "cluman", "false || echo $?").await, "1\n");
    assert_eq!(
        ok(&s, "cluman", "! false && echo negated").await,
        "negated\n"
    );
    let out = run(&s, "cluman", "true && nosuch; echo after $?").await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("after 127\n", "sh: 1: nosuch: not found\n")
    );
    assert_eq!(run(&s, "cluman", "exit 7; echo never").await.status, 7);
    let syntax = run(&s, "cluman", "echo 'unterminated").await;
    assert_eq!(syntax.status, 2);
    assert!(syntax.stderr.starts_with("sh: 1: Syntax error"));
}

#[tokio::test]
async fn quoting_variables_and_substitution() {
    let s = SiteState::new();
    assert_eq!(
        ok(&s, "cluman", r#"X='a  b'; echo "$X" $X '$X' \$X"#).await,
        "a  b a b $X $X\n"
    );
    assert_eq!(
        ok(&s, "cluman", "echo $(hostname)-$(echo x)").await,
        "cluman-x\n"
    );
    assert_eq!(ok(&s, "qns01", "echo `hostname`").await, "qns01\n");
    // The portal's wrapper around a command with quotes of its own.
    let wrapped =
        runbook_style_wrap("grep -c 'Not monitored' /var/tmp/none 2>/dev/null || echo none");
    assert_eq!(ok(&s, "cluman", &wrapped).await, "none\n");
    assert_eq!(
        ok(&s, "cluman", "A=1 sh -c 'echo $A'; echo ${A}x").await,
        "1\nx\n"
    );
}

fn runbook_style_wrap(cmd: &str) -> String {
    format!(
        "timeout --signal=TERM --kill-after=10 60 sh -c '{}'",
        cmd.replace('\'', "'\\''")
    )
}

#[tokio::test]
async fn redirections_write_the_vms_files() {
    let s = SiteState::new();
    ok(&s, "lb01", "echo one > /var/tmp/f; echo two >> /var/tmp/f").await;
    assert_eq!(ok(&s, "lb01", "cat /var/tmp/f").await, "one\ntwo\n");
    assert_eq!(ok(&s, "lb01", "cat /nope 2>&1 | wc -l").await, "1\n");
    assert_eq!(
        ok(&s, "lb01", "cat /nope 2>/dev/null; echo $?").await,
        "1\n"
    );
    let out = run(&s, "lb01", "echo x > /no/dir/file").await;
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (
            2,
            "sh: 1: cannot create /no/dir/file: Directory nonexistent\n"
        )
    );
    assert_eq!(
        ok(
            &s,
            "lb01",
            "{ echo a; echo b >&2; } > /var/tmp/g 2>&1; cat /var/tmp/g"
        )
        .await,
        "a\nb\n"
    );
    assert_eq!(ok(&s, "lb01", "wc -l < /etc/hosts").await.trim(), "12");
    // Other VMs do not see it.
    assert_eq!(run(&s, "lb02", "cat /var/tmp/f").await.status, 1);
}

#[tokio::test]
async fn globs_cd_and_file_tools() {
    let s = SiteState::new();
    assert_eq!(
        ok(&s, "lb01", "ls /etc/sysconfig/network-scripts/route-*").await,
        "/etc/sysconfig/network-scripts/route-eth2\n"
    );
    assert_eq!(
        ok(
            &s,
            "lb01",
            "cd /etc/sysconfig && ls network-scripts/ifcfg-*"
        )
        .await,
        "network-scripts/ifcfg-eth0\n"
    );
    assert_eq!(ok(&s, "lb01", "echo /nothing/*.x").await, "/nothing/*.x\n");
    assert_eq!(ok(&s, "lb01", "echo '/etc/*'").await, "/etc/*\n");
    ok(
        &s,
        "qns01",
        "mkdir -p /var/tmp/a/b && cp /etc/hosts /var/tmp/a/b/ && mv /var/tmp/a /var/tmp/c",
    )
    .await;
    assert!(ok(&s, "qns01", "cat /var/tmp/c/b/hosts")
        .await
        .contains("qns01"));
    assert_eq!(
        ok(
            &s,
            "qns01",
            "rm -fr /var/tmp/c; test -d /var/tmp/c || echo gone"
        )
        .await,
        "gone\n"
    );
    let out = run(&s, "qns01", "cd /nowhere").await;
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (2, "sh: 1: cd: can't cd to /nowhere\n")
    );
    assert_eq!(
        ok(&s, "qns01", "[ -f /etc/hosts ] && [ 2 -gt 1 ] && echo y").await,
        "y\n"
    );
}

#[tokio::test]
async fn text_filters() {
    let s = SiteState::new();
    ok(&s, "cluman", "printf 'b 2\\na 1\\nb 3\\n' > /tmp/t").await;
    assert_eq!(ok(&s, "cluman", "grep -c b /tmp/t").await, "2\n");
    assert_eq!(ok(&s, "cluman", "grep -v -i B /tmp/t").await, "a 1\n");
    assert_eq!(ok(&s, "cluman", "grep -E 'a|3' /tmp/t").await, "a 1\nb 3\n");
    assert_eq!(run(&s, "cluman", "grep -q zzz /tmp/t").await.status, 1);
    assert_eq!(
        ok(&s, "cluman", "awk '{print $2}' /tmp/t | sort -n | head -1").await,
        "1\n"
    );
    assert_eq!(
        ok(&s, "cluman", "tail -1 /tmp/t; head -n 1 /tmp/t").await,
        "b 3\nb 2\n"
    );
    assert_eq!(
        ok(&s, "cluman", "sed -n 's/^b /B=/p' /tmp/t").await,
        "B=2\nB=3\n"
    );
    assert_eq!(
        ok(&s, "cluman", "cut -d' ' -f1 /tmp/t | sort -u | wc -l").await,
        "2\n"
    );
    assert_eq!(
        ok(
            &s,
            "cluman",
            "sed -n 's#^file://##p' /etc/broadhop/repositories"
        )
        .await,
        "/var/qps/patches/cps-patch-18.2.0.1\n"
    );
}

#[tokio::test]
async fn tar_makes_real_archives() {
    let s = SiteState::new();
    ok(&s, "cluman", "tar -czf /var/tmp/p.tgz /var/qps/patches").await;
    let bytes = s.read_file("cluman", "/var/tmp/p.tgz").unwrap_or_default();
    let entries = crate::archive::read_tar(&bytes).unwrap_or_default();
    assert!(entries
        .iter()
        .any(|e| e.name == "var/qps/patches/cps-patch-18.2.0.1/version"));
    ok(
        &s,
        "cluman",
        "mkdir /var/tmp/x && tar -xzf /var/tmp/p.tgz -C /var/tmp/x",
    )
    .await;
    assert!(ok(
        &s,
        "cluman",
        "cat /var/tmp/x/var/qps/patches/cps-patch-18.2.0.1/version"
    )
    .await
    .starts_with("18.2.0"));
    let out = run(
        &s,
        "cluman",
        "echo junk > /var/tmp/j && tar -xzf /var/tmp/j",
    )
    .await;
    assert_eq!(out.status, 2);
}

#[tokio::test]
async fn timeout_and_sleep() {
    let s = SiteState::new();
    let started = std::time::Instant::now();
    assert_eq!(run(&s, "cluman", "timeout 0.2 sleep 5").await.status, 124);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        run(&s, "cluman", "timeout 5 sh -c 'exit 4'").await.status,
        4
    );
    assert_eq!(run(&s, "cluman", "sleep x").await.status, 1);
}

#[tokio::test]
async fn tools_exist_only_where_installed() {
    let s = SiteState::new();
    assert_eq!(run(&s, "qns01", "config_br.py -h").await.status, 127);
    assert_eq!(run(&s, "esc-master", "monit summary").await.status, 127);
    assert_eq!(
        run(&s, "cluman", "/var/qps/bin/diag/nothere.sh")
            .await
            .status,
        127
    );
    assert_eq!(
        ok(&s, "cluman", "which statusall.sh").await,
        "/var/qps/bin/control/statusall.sh\n"
    );
    assert_eq!(
        run(
            &s,
            "cluman",
            "cd /var/qps/bin/support/mongo && ./build_set.sh --session --create-scripts"
        )
        .await
        .status,
        0
    );
    assert_eq!(
        run(
            &s,
            "cluman",
            "/var/qps/bin/support/mongo/build_set.sh --nosuchdb"
        )
        .await
        .status,
        1
    );
}

#[tokio::test]
async fn mongo_follows_the_replica_sets() {
    let s = SiteState::new();
    let count = "mongo --host sessionmgr01 --port 27718 --quiet --eval 'db.getSiblingDB(\"balance_mgmt\").account.count()'";
    assert_eq!(ok(&s, "cluman", count).await, "152340\n");
    // Stop the primary's mongod: sessionmgr02 takes over; sessionmgr01 cannot be reached.
    ok(&s, "sessionmgr01", "systemctl stop sessionmgr-27718").await;
    let status = ok(&s, "cluman", "diagnostics.sh --get_replica_status").await;
    let set02: Vec<&str> = status
        .lines()
        .skip_while(|l| !l.contains("BALANCE:set02"))
        .take(3)
        .collect();
    assert!(set02[1].contains("(not reachable/healthy)"), "{set02:?}");
    assert!(
        set02[2].contains("PRIMARY") && set02[2].contains("sessionmgr02"),
        "{set02:?}"
    );
    let out = run(&s, "cluman", count).await;
    assert_eq!(out.status, 1);
    assert!(out
        .stderr
        .contains("couldn't connect to server sessionmgr01:27718"));
    let on_02 = count.replace("sessionmgr01", "sessionmgr02");
    assert_eq!(ok(&s, "cluman", &on_02).await, "152340\n");
    assert_eq!(run(&s, "cluman", "diagnostics.sh").await.status, 1);
    ok(&s, "sessionmgr01", "systemctl start sessionmgr-27718").await;
    assert_eq!(run(&s, "cluman", "diagnostics.sh").await.status, 0);
    // Reading from a secondary needs slaveOk, as in the real shell.
    let secondary = run(&s, "cluman", &on_02).await;
    assert_eq!(secondary.status, 252);
    assert!(secondary.stderr.contains("not master and slaveOk=false"));
}

#[tokio::test]
async fn faults_change_what_the_checks_see() {
    let s = SiteState::new();
    let faults = Faults::new();
    let propget = "svn propget svn:sync-from-url --revprop -r0 http://pcrfclient01/repos";
    let healthy = run_collect(&s, &faults, "pcrfclient02", propget).await;
    assert_eq!(healthy.stdout, "http://pcrfclient02/repos\n");
    faults.set(Fault::SvnNotSynced, true);
    let broken = run_collect(&s, &faults, "pcrfclient02", propget).await;
    assert_eq!(broken.status, 1);
    assert!(broken.stderr.contains("E200017"));
    let diag = run_collect(&s, &faults, "cluman", "diagnostics.sh").await;
    assert!(diag.stdout.contains("Checking SVN sync status...[FAIL]"));
    faults.set(Fault::SvnNotSynced, false);
    faults.set(Fault::ReplicaSetUnhealthy, true);
    let diag = run_collect(&s, &faults, "cluman", "diagnostics.sh").await;
    assert!(diag.stdout.contains("Checking Mongo DB status...[FAIL]"));
    assert!(diag.stdout.contains("RECOVERING"));
}

#[tokio::test]
async fn a_redeployed_empty_svn_slave_is_resynced_under_the_masters_uuid() {
    let s = SiteState::new();
    let master = s.with(|st| st.svn_repo("pcrfclient01")).unwrap();
    // pcrfclient02 as freshly installed: an empty repository of its own.
    let fresh = crate::state::initial::fresh_host("pcrfclient02").unwrap();
    s.with(|st| {
        st.hosts.insert("pcrfclient02".into(), fresh);
    });
    let before = s.with(|st| st.svn_repo("pcrfclient02")).unwrap();
    assert_ne!(before.uuid, master.uuid);
    let out = ok(
        &s,
        "pcrfclient01",
        "/var/qps/bin/support/recover_svn_sync.sh",
    )
    .await;
    assert!(out.contains("is empty: its UUID is set to"), "{out}");
    let after = s.with(|st| st.svn_repo("pcrfclient02")).unwrap();
    assert_eq!(
        (after.uuid, after.revision),
        (master.uuid.clone(), master.revision)
    );
    // Two repositories with content and different UUIDs are not merged.
    let mut other = s.with(|st| st.svn_repo("pcrfclient02")).unwrap();
    other.uuid = "00000000-0000-0000-0000-000000000000".into();
    s.with(|st| st.set_svn_repo("pcrfclient02", &other));
    let refused = run(
        &s,
        "pcrfclient01",
        "/var/qps/bin/support/recover_svn_sync.sh",
    )
    .await;
    assert_eq!(refused.status, 1);
    assert!(
        refused.stderr.contains("different UUIDs"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn esc_switchover_and_crontab() {
    let s = SiteState::new();
    assert!(ok(&s, "esc-standby", "health.sh")
        .await
        .contains("ESC HA (BACKUP)"));
    ok(&s, "esc-master", "sudo escadm restart").await;
    assert!(ok(&s, "esc-standby", "health.sh")
        .await
        .contains("ESC HA (MASTER)"));
    assert_eq!(
        run(&s, "esc-master", "esc_nc_cli vm-action STOP nosuchvm")
            .await
            .status,
        1
    );
    let none = run(&s, "qns01", "crontab -l").await;
    assert_eq!(
        (none.status, none.stderr.as_str()),
        (1, "no crontab for root\n")
    );
    ok(
        &s,
        "qns01",
        "echo '@daily /bin/true' > /root/c && crontab /root/c",
    )
    .await;
    assert_eq!(ok(&s, "qns01", "crontab -l").await, "@daily /bin/true\n");
}
