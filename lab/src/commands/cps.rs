//! The CPS tools on the Cluster Manager and the cluster VMs: `statusall.sh`,
//! `runonall.sh`, `diagnostics.sh`, `about.sh`, `list_installed_features.sh`,
//! `build_all.sh`, `build_svn.sh`, `reinit.sh`, `vm-init-client` and
//! `config_br.py` (export/import of real `.tar.gz` backups).

use super::mongo;
use crate::archive::{self, Entry};
use crate::outputs::{self, Verdict};
use crate::shell::{Io, Shell};
use crate::state::svn::{Repo, REPO_HOSTS};
use crate::state::topology::{self, Role, CPS_VERSION};
use crate::state::vfs;
use crate::state::Site;
use std::collections::BTreeMap;

/// `statusall.sh`: monit's view of every cluster VM.
pub async fn statusall(sh: &Shell, io: &Io) -> i32 {
    for vm in topology::cluster_vms() {
        let lines = if sh.faults.host_down(vm.name) {
            let mut l = outputs::vm_banner(vm.name);
            l.push(outputs::ssh_unreachable(vm.name));
            l
        } else {
            sh.state.with(|s| {
                s.host(vm.name)
                    .map(|h| outputs::statusall_vm(h, s.booted))
                    .unwrap_or_default()
            })
        };
        // One VM's block at a time, as the real tool asks each VM in turn.
        for l in lines {
            io.outln(l);
        }
        let d = sh.pace.delay();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
    0
}

/// `runonall.sh CMD...`: runs CMD on every cluster VM, each under a banner.
pub async fn runonall(sh: &Shell, args: &[String], io: &Io) -> i32 {
    if args.is_empty() {
        io.errln("Usage: runonall.sh <command>");
        return 1;
    }
    let command = args.join(" ");
    for vm in topology::cluster_vms() {
        for l in outputs::vm_banner(vm.name) {
            io.outln(l);
        }
        if sh.faults.host_down(vm.name) {
            io.errln(outputs::ssh_unreachable(vm.name));
            continue;
        }
        let mut remote = Shell::new(vm.name, sh.state.clone(), sh.faults.clone(), sh.pace);
        remote.run_script(&command, io).await;
    }
    0
}

struct Check {
    what: String,
    verdict: Verdict,
    details: Vec<String>,
}

fn check(what: impl Into<String>, problems: Vec<String>, warn_only: bool) -> Check {
    Check {
        what: what.into(),
        verdict: match (problems.is_empty(), warn_only) {
            (true, _) => Verdict::Pass,
            (false, true) => Verdict::Warn,
            (false, false) => Verdict::Fail,
        },
        details: problems,
    }
}

/// The checks of a full `diagnostics.sh` run, decided from the state.
fn diagnostic_checks(site: &Site, sh: &Shell) -> Vec<Check> {
    let down = |h: &str| sh.faults.host_down(h);
    let mut checks = Vec::new();
    let unreachable: Vec<String> = topology::cluster_vms()
        .filter(|v| down(v.name))
        .map(|v| format!("    {}", outputs::ssh_unreachable(v.name)))
        .collect();
    checks.push(check(
        "Checking basic ports (80, 7070, 27017, 27717-27720, 27749, 8080, 9091)",
        unreachable.clone(),
        false,
    ));
    checks.push(check(
        "Checking qns passwordless logins on all boxes",
        unreachable,
        false,
    ));
    checks.push(check("Validating hostnames", vec![], false));
    checks.push(check("Checking disk space for all VMs", vec![], false));
    checks.push(check("Checking swap space for all VMs", vec![], false));
    checks.push(check("Checking for clock skew", vec![], false));
    for vm in topology::VMS.iter().filter(|v| v.role == Role::Qns) {
        let running = !down(vm.name)
            && site
                .host(vm.name)
                .is_some_and(|h| h.monit.iter().any(|m| m.name == "qns-1" && m.monitored));
        let problems = if running {
            vec![]
        } else {
            vec![format!(
                "    {}: qns-1 is not answering on port 9045",
                vm.name
            )]
        };
        checks.push(check(
            format!("Retrieving QNS diagnostics from {}:9045", vm.name),
            problems,
            false,
        ));
    }
    let lbs: Vec<String> = topology::VMS
        .iter()
        .filter(|v| v.role == Role::Lb)
        .filter(|v| {
            down(v.name)
                || !site
                    .host(v.name)
                    .is_some_and(|h| h.monit.iter().any(|m| m.name == "haproxy" && m.monitored))
        })
        .map(|v| format!("    {}: haproxy is not monitored", v.name))
        .collect();
    let all_lbs_gone = lbs.len() == 2;
    checks.push(check("Checking HAProxy status", lbs, !all_lbs_gone));
    checks.push(check(
        "Checking VM CPU and memory allocation for all VMs",
        vec![],
        false,
    ));
    let fault = sh.faults.replica_set_unhealthy();
    let mut mongo_problems = Vec::new();
    for (i, set) in site.replica_sets.iter().enumerate() {
        for m in outputs::member_views(site, set, fault, i == 0) {
            if !matches!(m.state.as_str(), "PRIMARY" | "SECONDARY" | "ARBITER") {
                mongo_problems.push(format!(
                    "    {}:{} ({}) is {}",
                    m.host, set.port, set.name, m.state
                ));
            }
        }
        let has_primary = outputs::member_views(site, set, fault, i == 0)
            .iter()
            .any(|m| m.state == "PRIMARY");
        if !has_primary {
            mongo_problems.push(format!("    {} has no PRIMARY", set.name));
        }
    }
    checks.push(check("Checking Mongo DB status", mongo_problems, false));
    let svn_problems = if sh.faults.svn_not_synced() || !site.svn_in_sync() {
        vec!["    SVN repositories on pcrfclient01 and pcrfclient02 are not in sync".to_string()]
    } else {
        vec![]
    };
    checks.push(check("Checking SVN sync status", svn_problems, false));
    let not_monitored: Vec<String> = topology::cluster_vms()
        .filter_map(|v| site.host(v.name))
        .flat_map(|h| {
            h.monit
                .iter()
                .filter(|m| !m.monitored)
                .map(|m| format!("    {}: {} Not monitored", h.name, m.name))
                .collect::<Vec<_>>()
        })
        .collect();
    checks.push(check(
        "Checking monit status of all VMs",
        not_monitored,
        false,
    ));
    checks
}

/// `diagnostics.sh [--get_replica_status]`.
pub async fn diagnostics(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let fault = sh.faults.replica_set_unhealthy();
    if args.iter().any(|a| a == "--get_replica_status") {
        let lines = sh.state.with(|s| outputs::replica_status(s, fault));
        for l in lines {
            sh.line(io, l).await;
        }
        return 0;
    }
    if let Some(other) = args.iter().find(|a| a.starts_with('-')) {
        io.errln(format!("diagnostics.sh: unknown option {other}"));
        io.errln("Usage: diagnostics.sh [--get_replica_status]");
        return 1;
    }
    let checks = sh.state.with(|s| diagnostic_checks(s, sh));
    sh.line(io, "CPS Diagnostics HA Multi-Node Environment")
        .await;
    sh.line(io, "---------------------------").await;
    let mut failed = Vec::new();
    let mut warnings = 0;
    for c in &checks {
        sh.line(io, outputs::diag_check(&c.what, c.verdict)).await;
        for d in &c.details {
            sh.line(io, d).await;
        }
        match c.verdict {
            Verdict::Fail => failed.push(c.what.clone()),
            Verdict::Warn => warnings += 1,
            Verdict::Pass => {}
        }
    }
    sh.line(io, outputs::diag_summary(&failed, warnings)).await;
    i32::from(!failed.is_empty())
}

/// The patches the last build included (from `/var/qps/images/build_info`),
/// with their versions.
fn built_patches(sh: &Shell) -> Vec<(String, String)> {
    sh.state.with(|s| {
        let Some(c) = s.host(topology::JUMP_HOST) else {
            return Vec::new();
        };
        let info =
            c.fs.read_string("/var/qps/images/build_info")
                .unwrap_or_default();
        info.lines()
            .filter_map(|l| l.strip_prefix("patches="))
            .flat_map(|p| p.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .map(|p| {
                let version =
                    c.fs.read_string(&format!("{}/{p}/version", topology::PATCH_DIR))
                        .map(|v| format!("{}.release", v.trim()))
                        .unwrap_or_else(|_| format!("{CPS_VERSION}.release"));
                (p, version)
            })
            .collect()
    })
}

/// `about.sh`.
pub async fn about(sh: &Shell, io: &Io) -> i32 {
    let patches = built_patches(sh);
    let lines = sh.state.with(|s| outputs::about(s, &patches));
    for l in lines {
        sh.line(io, l).await;
    }
    0
}

/// `list_installed_features.sh`.
pub async fn list_installed_features(sh: &Shell, io: &Io) -> i32 {
    let version = built_patches(sh)
        .first()
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("{CPS_VERSION}.release"));
    for f in [
        "com.broadhop.server.runtime.product",
        "com.broadhop.policy.feature",
        "com.broadhop.diameter2.feature",
        "com.broadhop.spr.feature",
        "com.broadhop.balance.service.feature",
    ] {
        sh.line(io, format!("{f}={version}")).await;
    }
    0
}

/// `/etc/init.d/vm-init-client [start]`.
pub async fn vm_init_client(sh: &Shell, args: &[String], io: &Io) -> i32 {
    match args.first().map(String::as_str) {
        None | Some("start") | Some("restart") => {
            sh.line(io, "Starting vm-init-client...").await;
            sh.line(
                io,
                format!(
                    "Fetching /etc/broadhop from the Cluster Manager for {}",
                    sh.host
                ),
            )
            .await;
            sh.line(
                io,
                "Starting vm-init-client:                       [  OK  ]",
            )
            .await;
            0
        }
        Some("status") => {
            io.outln("vm-init-client is stopped (it runs once at boot)");
            0
        }
        Some(other) => {
            io.errln(format!(
                "Usage: /etc/init.d/vm-init-client {{start|status}} (not {other})"
            ));
            2
        }
    }
}

/// `build_all.sh`: rebuilds the images from /etc/broadhop and the patch
/// repositories listed in `/etc/broadhop/repositories`; a listed repository
/// that is missing fails the build, as it would for real.
pub async fn build_all(sh: &Shell, io: &Io) -> i32 {
    let repos: Vec<String> = sh
        .with_fs(|fs| fs.read_string("/etc/broadhop/repositories"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    sh.line(io, "Building /etc/broadhop...").await;
    sh.line(io, "Copying /etc/broadhop to /var/qps/images/etc.tar.gz...")
        .await;
    sh.line(io, "Creating MD5 Checksum...").await;
    let mut patches = Vec::new();
    for repo in &repos {
        let Some(path) = repo.strip_prefix("file://") else {
            sh.line(io, format!("Using remote repository {repo}")).await;
            continue;
        };
        let path = vfs::normalize("/", path);
        if !sh.with_fs(|fs| fs.is_dir(&path)) {
            io.errln(format!("ERROR: repository {repo} does not exist"));
            sh.line(io, "Build failed.").await;
            return 1;
        }
        sh.line(io, format!("Found patch repository {repo}")).await;
        sh.line(io, format!("Applying {}...", vfs::basename(&path)))
            .await;
        patches.push(vfs::basename(&path).to_string());
    }
    for image in ["pcrf", "svn", "pb", "iomanager", "diameter_endpoint"] {
        sh.line(io, format!("Building /var/qps/images/{image}.tar.gz..."))
            .await;
    }
    let info = format!(
        "version={CPS_VERSION}\npatches={}\nbuilt={}\n",
        patches.join(","),
        vfs::now()
    );
    sh.with_fs(|fs| {
        for image in ["pcrf", "svn", "pb", "iomanager", "diameter_endpoint"] {
            fs.put(
                &format!("/var/qps/images/{image}.tar.gz"),
                "built image (simulated)\n",
                0o644,
            );
        }
        fs.put("/var/qps/images/build_info", &info, 0o644);
    });
    sh.line(io, "Build complete.").await;
    0
}

/// `build_svn.sh`: rebuilds the SVN image from the repository.
pub async fn build_svn(sh: &Shell, io: &Io) -> i32 {
    let repo = sh.state.with(|s| {
        s.svn_repo("pcrfclient01")
            .or_else(|| s.svn_repo("pcrfclient02"))
    });
    sh.line(io, "Building SVN image...").await;
    match repo {
        Some(r) => {
            sh.line(
                io,
                format!(
                    "Exporting http://pcrfclient01/repos/configuration at revision {}",
                    r.revision
                ),
            )
            .await;
            sh.with_fs(|fs| {
                fs.put(
                    "/var/qps/images/svn.tar.gz",
                    "built svn image (simulated)\n",
                    0o644,
                )
            });
            sh.line(io, "Copying to /var/qps/images/svn.tar.gz...")
                .await;
            sh.line(io, "SVN image built.").await;
            0
        }
        None => {
            io.errln("svn: E170013: Unable to connect to a repository at URL 'http://pcrfclient01/repos'");
            io.errln("ERROR: could not export the Policy Builder configuration");
            1
        }
    }
}

/// `reinit.sh`: every cluster VM pulls the new images and restarts puppet.
pub async fn reinit(sh: &Shell, io: &Io) -> i32 {
    let mut status = 0;
    for vm in topology::cluster_vms() {
        if sh.faults.host_down(vm.name) {
            io.errln(outputs::ssh_unreachable(vm.name));
            status = 1;
            continue;
        }
        sh.line(
            io,
            format!(
                "Reinitializing {}: fetching /var/qps/images from the Cluster Manager",
                vm.name
            ),
        )
        .await;
        sh.line(
            io,
            format!("Reinitializing {}: puppet apply ... done", vm.name),
        )
        .await;
    }
    sh.line(
        io,
        if status == 0 {
            "reinit.sh: all VMs reinitialized"
        } else {
            "reinit.sh: some VMs could not be reinitialized"
        },
    )
    .await;
    status
}

/// The parts a `config_br.py` backup can hold.
const SECTIONS: &[&str] = &[
    "etc",
    "etc-oam",
    "svn",
    "mongo",
    "grafanadb",
    "users",
    "auth-htpasswd",
    "haproxy",
    "network",
    "stats",
];

fn section_of(option: &str) -> Option<Vec<&'static str>> {
    Some(match option {
        "--all" => SECTIONS.to_vec(),
        "--mongo-all" | "--mongo" => vec!["mongo"],
        "--etc" => vec!["etc"],
        "--etc-oam" => vec!["etc-oam"],
        "--svn" => vec!["svn"],
        "--grafanadb" => vec!["grafanadb"],
        "--users" => vec!["users"],
        "--auth-htpasswd" => vec!["auth-htpasswd"],
        "--haproxy" => vec!["haproxy"],
        "--network" => vec!["network"],
        "--stats" => vec!["stats"],
        _ => return None,
    })
}

fn files_under(site: &Site, host: &str, dir: &str, prefix: &str) -> Vec<Entry> {
    let Some(h) = site.host(host) else {
        return Vec::new();
    };
    h.fs.walk(dir)
        .into_iter()
        .filter_map(|p| match h.fs.get(&p) {
            Some(crate::state::vfs::Node::File { data, mode, mtime }) => Some(Entry {
                name: format!("{prefix}{}", &p[dir.len()..]),
                data: data.clone(),
                mode: *mode,
                mtime: *mtime,
                is_dir: false,
            }),
            _ => None,
        })
        .collect()
}

/// The SVN dump format, reduced to what a restore needs.
pub fn svn_dump(repo: &Repo) -> String {
    format!(
        "SVN-fs-dump-format-version: 2\n\nUUID: {}\n\nRevision-number: {}\nProp-content-length: 10\nContent-length: 10\n\nPROPS-END\n",
        repo.uuid, repo.revision
    )
}

/// UUID and youngest revision of an SVN dump.
pub fn parse_svn_dump(text: &str) -> Option<(String, u64)> {
    let uuid = text
        .lines()
        .find_map(|l| l.strip_prefix("UUID: "))?
        .trim()
        .to_string();
    let rev = text
        .lines()
        .filter_map(|l| l.strip_prefix("Revision-number: "))
        .filter_map(|r| r.trim().parse().ok())
        .max()?;
    Some((uuid, rev))
}

/// The archive members of the requested sections.
fn export_sections(site: &Site, sections: &[&str]) -> Result<Vec<Entry>, String> {
    let mut entries = vec![Entry::file(
        "config_br.manifest",
        format!(
            "sections={}\ncps_version={CPS_VERSION}\ncreated={}\n",
            sections.join(","),
            chrono::Utc::now().to_rfc3339()
        ),
    )];
    for s in sections {
        match *s {
            "etc" => entries.extend(files_under(site, "cluman", "/etc/broadhop", "etc/broadhop")),
            "etc-oam" => entries.extend(files_under(site, "pcrfclient01", "/etc/broadhop", "etc-oam/broadhop")),
            "svn" => {
                let repo = REPO_HOSTS
                    .iter()
                    .find_map(|h| site.svn_repo(h))
                    .ok_or("cannot export SVN: no repository is reachable (http://pcrfclient01/repos)")?;
                entries.push(Entry::file("svn/repos.dump", svn_dump(&repo)));
            }
            "mongo" => entries.extend(mongo::dump_entries(site, "mongo/")),
            "grafanadb" => entries.extend(files_under(site, "pcrfclient01", "/var/lib/grafana", "grafanadb")),
            "users" => entries.push(Entry::file(
                "users/users.json",
                "[{\"user\":\"qns\",\"role\":\"admin\"},{\"user\":\"qns-svn\",\"role\":\"svn\"},{\"user\":\"qns-ro\",\"role\":\"readonly\"}]\n",
            )),
            "auth-htpasswd" => {
                entries.extend(files_under(site, "pcrfclient01", "/var/www/svn/.htpasswd", "auth-htpasswd/.htpasswd"))
            }
            "haproxy" => {
                for lb in ["lb01", "lb02"] {
                    entries.extend(files_under(site, lb, "/etc/haproxy", &format!("haproxy/{lb}")));
                }
            }
            "network" => {
                for vm in topology::VMS.iter().filter(|v| v.role != Role::Esc) {
                    entries.extend(files_under(
                        site,
                        vm.name,
                        "/etc/sysconfig/network-scripts",
                        &format!("network/{}", vm.name),
                    ));
                }
            }
            "stats" => entries.push(Entry::file("stats/collectd.conf", "LoadPlugin cpu\nLoadPlugin memory\n")),
            _ => {}
        }
    }
    Ok(entries)
}

/// The archive members `config_br.py -a export` writes for the given
/// sections (`all` for every one), for seeding a backup store.
pub fn export_for_seed(site: &Site, sections: &[&str]) -> Result<Vec<Entry>, String> {
    if sections.contains(&"all") {
        return export_sections(site, SECTIONS);
    }
    export_sections(site, sections)
}

/// Puts the members of one section back where they came from.
fn import_section(site: &mut Site, section: &str, entries: &[Entry]) -> Result<String, String> {
    let members: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.is_dir && e.name.starts_with(&format!("{section}/")))
        .collect();
    let write_to = |site: &mut Site, host: &str, base: &str, strip: &str, e: &Entry| {
        if let Some(h) = site.host_mut(host) {
            let path = vfs::normalize(base, e.name.strip_prefix(strip).unwrap_or(&e.name));
            h.fs.put(&path, &e.data, e.mode);
        }
    };
    match section {
        "etc" => {
            for e in &members {
                write_to(site, "cluman", "/etc", "etc/", e);
            }
            Ok(format!(
                "restored {} files to /etc/broadhop on cluman",
                members.len()
            ))
        }
        "etc-oam" => {
            for host in REPO_HOSTS {
                for e in &members {
                    write_to(site, host, "/etc", "etc-oam/", e);
                }
            }
            Ok(format!(
                "restored {} files to /etc/broadhop on pcrfclient01 and pcrfclient02",
                members.len()
            ))
        }
        "svn" => {
            let dump = members
                .iter()
                .find(|e| e.name == "svn/repos.dump")
                .ok_or("the backup has no SVN dump")?;
            let (uuid, revision) = parse_svn_dump(&String::from_utf8_lossy(&dump.data))
                .ok_or("the SVN dump is not readable")?;
            for host in REPO_HOSTS {
                let mut revprops0 = BTreeMap::new();
                if host == "pcrfclient01" {
                    revprops0.insert(
                        "svn:sync-from-url".to_string(),
                        "http://pcrfclient02/repos".to_string(),
                    );
                    revprops0.insert("svn:sync-from-uuid".to_string(), uuid.clone());
                    revprops0.insert("svn:sync-last-merged-rev".to_string(), revision.to_string());
                }
                let repo = Repo {
                    uuid: uuid.clone(),
                    revision,
                    revprops0,
                    changed: vfs::now(),
                };
                if let Some(h) = site.host_mut(host) {
                    let _ = h.fs.remove(crate::state::svn::REPO_PATH, true);
                }
                site.set_svn_repo(host, &repo);
            }
            Ok(format!("loaded SVN dump (UUID {uuid}, revision {revision}) into http://pcrfclient01/repos and http://pcrfclient02/repos"))
        }
        "mongo" => {
            let owned: Vec<Entry> = members.iter().map(|e| (*e).clone()).collect();
            let restored = mongo::restore_entries(site, &owned, "mongo/");
            let docs: u64 = restored.iter().map(|(_, _, n)| n).sum();
            Ok(format!(
                "restored {} collections ({docs} documents)",
                restored.len()
            ))
        }
        "grafanadb" => {
            for host in REPO_HOSTS {
                for e in &members {
                    write_to(site, host, "/var/lib/grafana", "grafanadb/", e);
                }
            }
            Ok("restored the Grafana dashboards on pcrfclient01 and pcrfclient02".to_string())
        }
        "auth-htpasswd" => {
            for host in REPO_HOSTS {
                for e in &members {
                    write_to(site, host, "/var/www/svn", "auth-htpasswd/", e);
                }
            }
            Ok("restored /var/www/svn/.htpasswd".to_string())
        }
        "users" => Ok(format!(
            "restored {} user definitions",
            members.len().max(1)
        )),
        "haproxy" => {
            for e in &members {
                let rest = e.name.trim_start_matches("haproxy/");
                if let Some((vm, file)) = rest.split_once('/') {
                    if let Some(h) = site.host_mut(vm) {
                        h.fs.put(&format!("/etc/haproxy/{file}"), &e.data, e.mode);
                    }
                }
            }
            Ok("restored the HAProxy configuration of lb01 and lb02".to_string())
        }
        "network" => {
            for e in &members {
                let rest = e.name.trim_start_matches("network/");
                if let Some((vm, file)) = rest.split_once('/') {
                    if let Some(h) = site.host_mut(vm) {
                        h.fs.put(
                            &format!("/etc/sysconfig/network-scripts/{file}"),
                            &e.data,
                            e.mode,
                        );
                    }
                }
            }
            Ok(format!("restored {} network files", members.len()))
        }
        "stats" => Ok("restored the statistics configuration".to_string()),
        other => Err(format!("unknown section {other}")),
    }
}

/// `config_br.py -a export|import OPTIONS FILE`.
pub async fn config_br(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let usage = "usage: config_br.py [-h] -a {export,import} [--all] [--mongo-all] [--mongo] [--svn] [--etc] [--etc-oam] [--grafanadb] [--users] [--auth-htpasswd] [--haproxy] [--network] [--stats] FILE";
    let mut action: Option<String> = None;
    let mut sections: Vec<&'static str> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        match a {
            "-a" | "--action" => {
                action = args.get(i).cloned();
                i += 1;
            }
            "-h" | "--help" => {
                io.outln(usage);
                return 0;
            }
            o if o.starts_with("--action=") => action = Some(o["--action=".len()..].to_string()),
            o if o.starts_with('-') => match section_of(o) {
                Some(s) => {
                    for x in s {
                        if !sections.contains(&x) {
                            sections.push(x);
                        }
                    }
                }
                None => {
                    io.errln(usage);
                    io.errln(format!("config_br.py: error: unrecognized arguments: {o}"));
                    return 2;
                }
            },
            f => files.push(f.to_string()),
        }
    }
    let action = match action.as_deref() {
        Some(a @ ("export" | "import")) => a.to_string(),
        Some(other) => {
            io.errln(usage);
            io.errln(format!("config_br.py: error: argument -a/--action: invalid choice: '{other}' (choose from 'export', 'import')"));
            return 2;
        }
        None => {
            io.errln(usage);
            io.errln("config_br.py: error: argument -a/--action is required");
            return 2;
        }
    };
    let [file] = files.as_slice() else {
        io.errln(usage);
        io.errln("config_br.py: error: exactly one backup FILE is required");
        return 2;
    };
    if sections.is_empty() {
        io.errln(usage);
        io.errln("config_br.py: error: choose what to export or import (--all, --svn, ...)");
        return 2;
    }
    let path = sh.path(file);
    let log = |level: &str, func: &str, msg: String| outputs::config_br_log(level, func, &msg);
    sh.line(
        io,
        log(
            "INFO",
            "main",
            "=====================================".into(),
        ),
    )
    .await;
    sh.line(
        io,
        log(
            "INFO",
            "main",
            format!(
                "CPS configuration {action}, options: {}",
                args.iter()
                    .filter(|a| a.starts_with("--"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
    )
    .await;
    if action == "export" {
        let entries = match sh.state.with(|s| export_sections(s, &sections)) {
            Ok(e) => e,
            Err(e) => {
                io.errln(log("ERROR", "export", e));
                return 1;
            }
        };
        for s in &sections {
            sh.line(
                io,
                log(
                    "INFO",
                    &format!("export_{}", s.replace('-', "_")),
                    format!("exporting {s} ..."),
                ),
            )
            .await;
        }
        let bytes = match archive::build_tar_gz(&entries) {
            Ok(b) => b,
            Err(e) => {
                io.errln(log(
                    "ERROR",
                    "export",
                    format!("cannot build the archive: {e}"),
                ));
                return 1;
            }
        };
        let size = bytes.len();
        if let Err(e) = sh.with_fs(|fs| fs.write(&path, &bytes, false)) {
            io.errln(log(
                "ERROR",
                "export",
                format!("IOError: [Errno 2] {e}: '{file}'"),
            ));
            return 1;
        }
        sh.line(
            io,
            log(
                "INFO",
                "main",
                format!("backup written to {path} ({size} bytes)"),
            ),
        )
        .await;
        sh.line(
            io,
            log("INFO", "main", "export completed successfully".into()),
        )
        .await;
        return 0;
    }
    let bytes = match sh.with_fs(|fs| fs.read(&path).map(<[u8]>::to_vec)) {
        Ok(b) => b,
        Err(e) => {
            io.errln(log(
                "ERROR",
                "import",
                format!("backup file {file} cannot be read: {e}"),
            ));
            return 1;
        }
    };
    let entries = match archive::read_tar(&bytes) {
        Ok(e) => e,
        Err(e) => {
            io.errln(log(
                "ERROR",
                "import",
                format!("{file} is not a config_br.py backup: {e}"),
            ));
            return 1;
        }
    };
    let available: Vec<String> = entries
        .iter()
        .find(|e| e.name == "config_br.manifest")
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("sections="))
        .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    for s in &sections {
        if !available.iter().any(|a| a == s) {
            io.errln(log(
                "ERROR",
                "import",
                format!(
                    "the backup {file} does not contain {s} (it has: {})",
                    available.join(", ")
                ),
            ));
            return 1;
        }
    }
    for s in &sections {
        sh.line(
            io,
            log(
                "INFO",
                &format!("import_{}", s.replace('-', "_")),
                format!("importing {s} ..."),
            ),
        )
        .await;
        match sh.state.with(|site| import_section(site, s, &entries)) {
            Ok(msg) => {
                sh.line(
                    io,
                    log("INFO", &format!("import_{}", s.replace('-', "_")), msg),
                )
                .await
            }
            Err(e) => {
                io.errln(log("ERROR", "import", e));
                return 1;
            }
        }
    }
    sh.line(
        io,
        log("INFO", "main", "import completed successfully".into()),
    )
    .await;
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SiteState;

    #[test]
    fn backups_round_trip_through_export_and_import() {
        let state = SiteState::new();
        let entries = state.with(|s| export_sections(s, SECTIONS)).unwrap();
        assert!(entries.iter().any(|e| e.name == "svn/repos.dump"));
        assert!(entries
            .iter()
            .any(|e| e.name == "etc/broadhop/mongoConfig.cfg"));
        assert!(entries
            .iter()
            .any(|e| e.name == "mongo/balance_mgmt/account.bson"));
        state.with(|s| {
            s.replica_sets[1].databases.clear();
            for sec in SECTIONS {
                import_section(s, sec, &entries).unwrap();
            }
            assert_eq!(
                s.replica_sets[1].databases["balance_mgmt"]["account"],
                152340
            );
            assert!(s.svn_in_sync());
        });
        assert_eq!(
            parse_svn_dump("UUID: a-b\n\nRevision-number: 3\n"),
            Some(("a-b".into(), 3))
        );
    }
}
