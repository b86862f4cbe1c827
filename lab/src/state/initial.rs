//! The healthy site the lab starts with: every VM's files (configuration,
//! tools, logs, crontabs, SVN repositories, patches), monit and systemd state,
//! the replica sets with their data, and ESC.

use super::svn::{self, Repo, REPO_HOSTS, REPO_PATH};
use super::topology::{
    self, MemberRole, Role, CPS_VERSION, MEMBERS, PATCH_COMPONENT, PATCH_DIR, SETS, VMS,
};
use super::vfs::{now, Vfs};
use super::{Esc, Host, Member, MonitKind, MonitService, ReplicaSet, Site};
use std::collections::BTreeMap;

/// Directories searched for commands, by role (what root's login shell has).
pub fn path_dirs(role: Role) -> Vec<&'static str> {
    let mut dirs = vec![
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    match role {
        Role::Esc => dirs.extend([
            "/opt/cisco/esc/esc-scripts",
            "/opt/cisco/esc/esc-confd/esc-cli",
        ]),
        _ => dirs.extend([
            "/var/qps/bin/control",
            "/var/qps/bin/diag",
            "/var/qps/bin/support",
            "/var/qps/install/current/scripts",
            "/var/qps/install/current/scripts/modules",
        ]),
    }
    dirs
}

/// Where each simulated tool is installed, and on which roles. A command is
/// found on a VM only if its file is there (by path or through `PATH`), so an
/// operator on the wrong VM gets "not found" as in real life.
pub const TOOLS: &[(&str, &[Role])] = &[
    (
        "/usr/bin/monit",
        &[
            Role::Cluman,
            Role::Pcrfclient,
            Role::Sessionmgr,
            Role::Lb,
            Role::Qns,
        ],
    ),
    (
        "/usr/bin/mongo",
        &[Role::Cluman, Role::Pcrfclient, Role::Sessionmgr],
    ),
    (
        "/usr/bin/mongorestore",
        &[Role::Cluman, Role::Pcrfclient, Role::Sessionmgr],
    ),
    (
        "/usr/bin/mongodump",
        &[Role::Cluman, Role::Pcrfclient, Role::Sessionmgr],
    ),
    ("/usr/bin/svn", &[Role::Cluman, Role::Pcrfclient]),
    ("/usr/bin/svnadmin", &[Role::Cluman, Role::Pcrfclient]),
    ("/var/qps/bin/control/statusall.sh", CPS_ROLES),
    ("/var/qps/bin/control/runonall.sh", CPS_ROLES),
    ("/var/qps/bin/diag/diagnostics.sh", CPS_ROLES),
    ("/var/qps/bin/diag/about.sh", CPS_ROLES),
    ("/var/qps/bin/diag/list_installed_features.sh", CPS_ROLES),
    ("/var/qps/bin/support/recover_svn_sync.sh", CPS_ROLES),
    ("/var/qps/bin/support/mongo/build_set.sh", CPS_ROLES),
    ("/var/qps/bin/support/env/env_export.sh", CPS_ROLES),
    ("/etc/init.d/vm-init-client", CPS_ROLES),
    (
        "/var/qps/install/current/scripts/build_all.sh",
        &[Role::Cluman],
    ),
    (
        "/var/qps/install/current/scripts/build/build_svn.sh",
        &[Role::Cluman],
    ),
    (
        "/var/qps/install/current/scripts/upgrade/reinit.sh",
        &[Role::Cluman],
    ),
    (
        "/var/qps/install/current/scripts/modules/config_br.py",
        &[Role::Cluman],
    ),
    ("/opt/cisco/esc/esc-scripts/health.sh", &[Role::Esc]),
    ("/usr/bin/escadm", &[Role::Esc]),
    ("/opt/cisco/esc/esc-confd/esc-cli/esc_nc_cli", &[Role::Esc]),
    ("/usr/bin/netconf-console", &[Role::Esc]),
];

const CPS_ROLES: &[Role] = &[
    Role::Cluman,
    Role::Pcrfclient,
    Role::Sessionmgr,
    Role::Lb,
    Role::Qns,
];

/// The cluster's `/etc/hosts`.
fn etc_hosts() -> String {
    let mut s = String::from("127.0.0.1   localhost localhost.localdomain\n");
    for v in VMS.iter().filter(|v| v.role != Role::Esc) {
        s.push_str(&format!("{:<15} {}\n", v.ip, v.name));
    }
    s
}

/// `/etc/broadhop/mongoConfig.cfg`: the replica sets as CPS configures them.
pub fn mongo_config() -> String {
    let mut s = String::new();
    for set in SETS {
        let n = set.name.trim_start_matches("set");
        s.push_str(&format!(
            "[{}-SET{}]\n",
            set.label,
            n.trim_start_matches('0')
        ));
        s.push_str(&format!("SETNAME={}\nOPLOG_SIZE=5120\n", set.name));
        for (host, role, _) in MEMBERS {
            if *role == MemberRole::Arbiter {
                s.push_str(&format!("ARBITER={host}:{}\n", set.port));
                s.push_str(&format!("ARBITER_DATA_PATH=/var/data/sessions.{n}\n"));
            }
        }
        let mut i = 1;
        for (host, role, _) in MEMBERS {
            if *role != MemberRole::Arbiter {
                s.push_str(&format!("MEMBER{i}={host}:{}\n", set.port));
                i += 1;
            }
        }
        s.push_str(&format!("DATA_PATH=/var/data/sessions.{n}\n"));
        s.push_str(&format!(
            "[{}-SET{}-END]\n\n",
            set.label,
            n.trim_start_matches('0')
        ));
    }
    s
}

/// A crontab line list for the VMs that have one.
pub fn crontab(host: &str) -> Option<&'static str> {
    match host {
        "cluman" => Some(
            "# Cluster Manager: nightly exports\n\
             0 2 * * * /var/qps/install/current/scripts/modules/config_br.py -a export --all /var/tmp/backup/backup_all_$(date +\\%F).tar.gz >> /var/log/config_br.log 2>&1\n\
             30 2 * * * /var/qps/bin/support/env/env_export.sh --mongo /var/tmp/backup/env_export_$(date +\\%F).tgz > /dev/null 2>&1\n\
             0 4 * * 0 find /var/tmp/backup -name '*.tgz' -mtime +14 -delete\n",
        ),
        "pcrfclient01" => Some(
            "# pcrfclient01: SVN and Grafana backups\n\
             0 1 * * * /var/qps/bin/support/svn_backup.sh /var/tmp/svn_backup > /dev/null 2>&1\n\
             15 1 * * * /usr/bin/sqlite3 /var/lib/grafana/grafana.db .dump > /var/tmp/grafana_$(date +\\%F).sql\n\
             */5 * * * * /var/qps/bin/support/monitor_replica.sh > /dev/null 2>&1\n",
        ),
        _ => None,
    }
}

fn routes(host: &str) -> Option<&'static str> {
    match host {
        "lb01" | "lb02" => {
            Some("10.20.0.0/16 via 172.16.3.1 dev eth2\n192.168.40.0/24 via 172.16.3.1 dev eth2\n")
        }
        "pcrfclient01" | "pcrfclient02" => Some("10.30.8.0/24 via 172.16.4.1 dev eth1\n"),
        _ => None,
    }
}

fn esc_log(vm_states: &BTreeMap<String, String>, start: i64) -> String {
    let mut s = String::new();
    let mut t = start;
    for (vm, _) in vm_states.iter() {
        for (event, state) in [
            ("VM_ALIVE", "VM_ALIVE_STATE"),
            ("SERVICE_ALIVE", "SERVICE_ALIVE_STATE"),
        ] {
            t += 7;
            s.push_str(&esc_log_line(t, event, state, vm));
        }
    }
    s
}

/// One `yangesc.log` notification line.
pub fn esc_log_line(when: i64, event: &str, state: &str, vm: &str) -> String {
    let ts = chrono::DateTime::from_timestamp(when, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S,000");
    format!(
        "{ts} INFO  [EventNotifier] Type: {event} Status: SUCCESS Status Code: 200 Status Msg: {state} Tenant: Core Deployment name: cps-core VM group name: {vm} VM name: cps-core_{vm}_0\n"
    )
}

fn rsyslog_conf(host: &str) -> String {
    format!(
        "# rsyslog configuration of {host}\n$ModLoad imuxsock\n$ModLoad imjournal\n$WorkDirectory /var/lib/rsyslog\n$IncludeConfig /etc/rsyslog.d/*.conf\n*.info;mail.none;authpriv.none;cron.none  /var/log/messages\n*.* @@10.10.9.20:514\n"
    )
}

fn host(spec: &topology::VmSpec, start: i64) -> Host {
    let mut fs = Vfs::new();
    let name = spec.name;
    for dir in [
        "/root",
        "/tmp",
        "/var/tmp",
        "/var/log",
        "/var/spool/cron",
        "/etc/sysconfig/network-scripts",
        "/etc/rsyslog.d",
        "/etc/init.d",
        "/usr/bin",
        "/usr/sbin",
        "/bin",
        "/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/mnt",
        "/home",
    ] {
        let _ = fs.mkdir(dir, true);
    }
    fs.put("/etc/hostname", format!("{name}\n"), 0o644);
    fs.put("/etc/hosts", etc_hosts(), 0o644);
    fs.put(
        "/etc/redhat-release",
        "CentOS Linux release 7.9.2009 (Core)\n",
        0o644,
    );
    fs.put("/etc/rsyslog.conf", rsyslog_conf(name), 0o644);
    fs.put(
        "/etc/rsyslog.d/listen.conf",
        "$SystemLogSocketName /run/systemd/journal/syslog\n",
        0o644,
    );
    fs.put(
        "/var/log/messages",
        format!(
            "{} {name} systemd[1]: Started Session 1 of user root.\n",
            chrono::Utc::now().format("%b %e %H:%M:%S")
        ),
        0o600,
    );
    fs.put(
        "/root/.bash_profile",
        "# .bash_profile\nexport PATH=$PATH:/var/qps/bin/control:/var/qps/bin/diag:/var/qps/bin/support\n",
        0o644,
    );
    fs.put(
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        format!(
            "DEVICE=eth0\nBOOTPROTO=none\nONBOOT=yes\nIPADDR={}\nNETMASK=255.255.255.0\n",
            spec.ip
        ),
        0o644,
    );
    if let Some(r) = routes(name) {
        let dev = r.split_whitespace().nth(4).unwrap_or("eth1");
        fs.put(
            &format!("/etc/sysconfig/network-scripts/route-{dev}"),
            r,
            0o644,
        );
    }
    if let Some(c) = crontab(name) {
        fs.put("/var/spool/cron/root", c, 0o600);
    }
    for (path, roles) in TOOLS {
        if roles.contains(&spec.role) {
            let tool = super::vfs::basename(path);
            fs.put(
                path,
                format!("#!/bin/bash\n# {tool}: simulated by the Recovery Portal lab\n"),
                0o755,
            );
        }
    }

    let mut units: BTreeMap<String, bool> = ["sshd", "crond", "rsyslog"]
        .iter()
        .map(|u| (u.to_string(), true))
        .collect();

    match spec.role {
        Role::Esc => {
            units.insert("esc_service".into(), true);
            units.insert("postgresql".into(), true);
            let vm_states = esc_vm_states();
            fs.put(
                "/var/log/esc/yangesc.log",
                esc_log(&vm_states, start),
                0o644,
            );
            fs.put(
                "/var/log/esc/escmanager.log",
                format!(
                    "{} INFO  [EscManager] ESC started in HA mode\n",
                    chrono::DateTime::from_timestamp(start, 0)
                        .unwrap_or_default()
                        .format("%Y-%m-%d %H:%M:%S,000")
                ),
                0o644,
            );
            for (f, text) in [
                (
                    "00-escmanager.conf",
                    "if $programname == 'escmanager' then /var/log/esc/escmanager.log\n",
                ),
                (
                    "01-yangesc.conf",
                    "if $programname == 'yangesc' then /var/log/esc/yangesc.log\n",
                ),
            ] {
                fs.put(&format!("/etc/rsyslog.d/{f}"), text, 0o644);
                fs.put(
                    &format!("/var/tmp/backup/rsyslog/rsyslog.d/{f}"),
                    text,
                    0o644,
                );
            }
            fs.put(
                "/var/tmp/backup/rsyslog/rsyslog.conf",
                rsyslog_conf(name),
                0o644,
            );
            fs.put(
                "/opt/cisco/esc/esc-config/esc_params.conf",
                "openstack.os_auth_url=https://10.10.0.5:5000/v3\nopenstack.os_tenant_name=core\n",
                0o600,
            );
        }
        _ => {
            units.insert("monit".into(), true);
            fs.put(
                "/etc/broadhop/qns.conf",
                "-DclusterId=cluster-1\n-Dcom.broadhop.config.url=http://pcrfclient01/repos/run/\n-DdbSocketTimeout=5000\n",
                0o644,
            );
            fs.put("/etc/broadhop/mongoConfig.cfg", mongo_config(), 0o644);
            fs.put(
                "/etc/broadhop/logback.xml",
                "<configuration>\n  <root level=\"warn\"/>\n</configuration>\n",
                0o644,
            );
            let _ = fs.mkdir("/var/log/broadhop", true);
            let _ = fs.mkdir("/var/qps/bin/support/mongo", true);
        }
    }

    match spec.role {
        Role::Cluman => {
            fs.put(
                "/etc/broadhop/repositories",
                format!("file://{PATCH_DIR}/{PATCH_COMPONENT}\n"),
                0o644,
            );
            fs.put(
                &format!("{PATCH_DIR}/{PATCH_COMPONENT}/version"),
                format!("{CPS_VERSION}.1\n"),
                0o644,
            );
            fs.put(
                &format!("{PATCH_DIR}/{PATCH_COMPONENT}/features.txt"),
                "com.broadhop.policy.feature\ncom.broadhop.diameter2.feature\n",
                0o644,
            );
            fs.put(
                &format!("{PATCH_DIR}/{PATCH_COMPONENT}/repository/policy-patch.jar"),
                "PK\u{3}\u{4} simulated patch payload\n",
                0o644,
            );
            for image in ["pcrf.tar.gz", "svn.tar.gz", "etc.tar.gz"] {
                fs.put(
                    &format!("/var/qps/images/{image}"),
                    "built image (simulated)\n",
                    0o644,
                );
            }
            fs.put(
                "/var/qps/images/build_info",
                format!("version={CPS_VERSION}\npatches={PATCH_COMPONENT}\n"),
                0o644,
            );
            fs.put(
                "/var/qps/install/current/release.txt",
                format!("CPS {CPS_VERSION}\n"),
                0o644,
            );
            let _ = fs.mkdir("/var/tmp/backup", true);
        }
        Role::Pcrfclient => {
            fs.put(
                "/var/lib/grafana/grafana.db",
                "SQLite format 3\u{0} simulated grafana dashboards\n",
                0o640,
            );
            fs.put(
                "/var/www/svn/.htpasswd",
                "broadhop:$apr1$Zx7q1P0m$Jd0S0VsDkZcW2dQ8l3b6a/\nqns-svn:$apr1$Pq3k9L2d$Wv8mYt5rK1sE0aH4cF7gB/\n",
                0o640,
            );
            units.insert("httpd".into(), true);
        }
        Role::Lb => {
            fs.put(
                "/etc/haproxy/haproxy.cfg",
                format!("global\n  daemon\nfrontend diameter\n  bind {}:3868\n  default_backend qns\nbackend qns\n  server qns01 qns01:3868 check\n  server qns02 qns02:3868 check\n", spec.ip),
                0o644,
            );
        }
        _ => {}
    }

    // mongod units on the members of every replica set.
    for set in SETS {
        if MEMBERS.iter().any(|(h, _, _)| *h == name) {
            units.insert(format!("sessionmgr-{}", set.port), true);
        }
    }

    let mut monit = Vec::new();
    if spec.role != Role::Esc {
        monit.push(MonitService {
            name: name.to_string(),
            kind: MonitKind::System,
            monitored: true,
        });
        for p in topology::monit_processes(spec.role) {
            monit.push(MonitService {
                name: (*p).to_string(),
                kind: MonitKind::Process,
                monitored: true,
            });
        }
    }

    Host {
        name: name.to_string(),
        role: spec.role,
        ip: spec.ip.to_string(),
        fs,
        monit,
        units,
    }
}

/// A VM as freshly installed from its generic base image (what OpenStack
/// builds when a server is created or rebuilt from a base image rather than a
/// snapshot): everything installed, but a Policy Builder VM's SVN repository
/// is new and empty (revision 0), and no backup or later change is there.
pub fn fresh_host(name: &str) -> Option<Host> {
    let spec = topology::vm(name)?;
    let mut h = host(spec, now());
    if REPO_HOSTS.contains(&name) {
        svn::write_repo(
            &mut h.fs,
            REPO_PATH,
            &Repo {
                uuid: svn::new_uuid(),
                revision: 0,
                revprops0: BTreeMap::new(),
                changed: now(),
            },
        );
    }
    Some(h)
}

fn esc_vm_states() -> BTreeMap<String, String> {
    VMS.iter()
        .filter(|v| v.role != Role::Esc)
        .map(|v| (v.name.to_string(), "VM_ALIVE_STATE".to_string()))
        .collect()
}

/// The healthy site.
pub fn site() -> Site {
    let booted = now() - 3 * 86400 - 4 * 3600 - 12 * 60;
    let log_start = now() - 20 * 60;
    let mut hosts: BTreeMap<String, Host> = VMS
        .iter()
        .map(|v| (v.name.to_string(), host(v, log_start)))
        .collect();

    let uuid = svn::new_uuid();
    let revision = 1042;
    let changed = now() - 2 * 86400;
    for h in REPO_HOSTS {
        let mut revprops0 = BTreeMap::new();
        if h == "pcrfclient01" {
            revprops0.insert(
                "svn:sync-from-url".to_string(),
                "http://pcrfclient02/repos".to_string(),
            );
            revprops0.insert("svn:sync-from-uuid".to_string(), uuid.clone());
            revprops0.insert("svn:sync-last-merged-rev".to_string(), revision.to_string());
        }
        if let Some(host) = hosts.get_mut(h) {
            svn::write_repo(
                &mut host.fs,
                REPO_PATH,
                &Repo {
                    uuid: uuid.clone(),
                    revision,
                    revprops0,
                    changed,
                },
            );
        }
    }

    let replica_sets = SETS
        .iter()
        .map(|s| ReplicaSet {
            name: s.name.to_string(),
            label: s.label.to_string(),
            option: s.option.to_string(),
            port: s.port,
            members: MEMBERS
                .iter()
                .map(|(h, role, priority)| Member {
                    host: (*h).to_string(),
                    role: *role,
                    priority: *priority,
                })
                .collect(),
            databases: s
                .databases
                .iter()
                .map(|(db, colls)| {
                    (
                        (*db).to_string(),
                        colls.iter().map(|(c, n)| ((*c).to_string(), *n)).collect(),
                    )
                })
                .collect(),
        })
        .collect();

    Site {
        hosts,
        replica_sets,
        esc: Esc {
            master: "esc-master".to_string(),
            vm_states: esc_vm_states(),
        },
        booted,
    }
}
