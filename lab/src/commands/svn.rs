//! SVN: `svn info|propget|propset|ls` against the repositories' URLs,
//! `svnadmin create|setuuid|info|dump` on a local path, and
//! `recover_svn_sync.sh`. The svn-not-synced fault makes the replica lag and
//! the master lose its sync properties, as the checks would see it.

use crate::outputs::{self, SvnInfo};
use crate::shell::{Io, Shell};
use crate::state::svn::{self, read_repo, resolve_url, write_repo, Repo, REPO_DIRS};
use crate::state::vfs;
use std::collections::BTreeMap;

/// The repository behind a URL as a client sees it, faults included.
fn repo_at(sh: &Shell, url: &str) -> Result<(svn::Target, Repo), Vec<String>> {
    let target = resolve_url(url).ok_or_else(|| {
        vec![format!(
            "svn: E170013: Unable to connect to a repository at URL '{url}'\nsvn: E731001: Name or service not known"
        )]
    })?;
    if sh.faults.host_down(target.host) {
        return Err(outputs::svn_unreachable(url));
    }
    let mut repo = sh
        .state
        .with(|s| s.svn_repo(target.host))
        .ok_or_else(|| outputs::svn_unreachable(url))?;
    if !target.inner.is_empty()
        && !REPO_DIRS.contains(&target.inner.split('/').next().unwrap_or(""))
    {
        return Err(vec![format!(
            "svn: E170000: URL '{url}' non-existent in revision {}",
            repo.revision
        )]);
    }
    if sh.faults.svn_not_synced() {
        if target.host == "pcrfclient02" {
            repo.revision = repo.revision.saturating_sub(5);
        } else {
            repo.revprops0.retain(|k, _| !k.starts_with("svn:sync-"));
        }
    }
    Ok((target, repo))
}

fn fail(io: &Io, lines: Vec<String>) -> i32 {
    for l in lines {
        io.errln(l);
    }
    1
}

/// `svn SUBCOMMAND ...`.
pub fn svn(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let Some(sub) = args.first().map(String::as_str) else {
        io.errln("Type 'svn help' for usage.");
        return 1;
    };
    let rest = &args[1..];
    // Options the procedures use; everything else is an operand.
    let mut revprop = false;
    let mut operands: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "--revprop" => revprop = true,
            "-r" | "--revision" | "--username" | "--password" => i += 1,
            a if a.starts_with("-r") || a.starts_with("--") => {}
            a => operands.push(a),
        }
        i += 1;
    }
    match sub {
        "info" => {
            let url = operands.first().copied().unwrap_or(".");
            if !url.contains("://") {
                io.errln(format!(
                    "svn: E155007: '{}' is not a working copy",
                    sh.path(url)
                ));
                return 1;
            }
            match repo_at(sh, url) {
                Ok((target, repo)) => {
                    for l in outputs::svn_info(&SvnInfo {
                        url: url.trim_end_matches('/'),
                        root: &target.root_url,
                        uuid: &repo.uuid,
                        revision: repo.revision,
                        changed: repo.changed,
                    }) {
                        io.outln(l);
                    }
                    0
                }
                Err(e) => fail(io, e),
            }
        }
        "propget" | "pget" | "pg" => {
            let [name, url] = operands.as_slice() else {
                io.errln("svn: E205001: Try 'svn help propget' for more information");
                return 1;
            };
            if !revprop {
                io.errln(format!(
                    "svn: E200017: Property '{name}' not found on '{url}'"
                ));
                return 1;
            }
            match repo_at(sh, url) {
                Ok((_, repo)) => match repo.revprops0.get(*name) {
                    Some(v) => {
                        io.outln(v);
                        0
                    }
                    None => {
                        io.errln(format!(
                            "svn: E200017: Property '{name}' not found on revision 0"
                        ));
                        1
                    }
                },
                Err(e) => fail(io, e),
            }
        }
        "propset" | "pset" | "ps" => {
            let [name, value, url] = operands.as_slice() else {
                io.errln("svn: E205001: Try 'svn help propset' for more information");
                return 1;
            };
            if !revprop {
                io.errln(format!("svn: E155007: '{url}' is not a working copy"));
                return 1;
            }
            let target = match repo_at(sh, url) {
                Ok((t, _)) => t,
                Err(e) => return fail(io, e),
            };
            sh.state.with(|s| {
                if let Some(mut repo) = s.svn_repo(target.host) {
                    repo.revprops0
                        .insert((*name).to_string(), (*value).to_string());
                    s.set_svn_repo(target.host, &repo);
                }
            });
            io.outln(format!("property '{name}' set on repository revision 0"));
            0
        }
        "ls" | "list" => {
            let url = operands.first().copied().unwrap_or(".");
            match repo_at(sh, url) {
                Ok((t, _)) if t.inner.is_empty() => {
                    for d in REPO_DIRS {
                        io.outln(format!("{d}/"));
                    }
                    0
                }
                Ok(_) => {
                    io.outln("PolicyBuilder.xml");
                    io.outln("PolicyServer.xml");
                    0
                }
                Err(e) => fail(io, e),
            }
        }
        "--version" => {
            io.outln("svn, version 1.7.14 (r1542130)");
            0
        }
        other => {
            io.errln(format!(
                "svn: the lab answers info, propget, propset and ls, not '{other}'"
            ));
            io.errln("Type 'svn help' for usage.");
            1
        }
    }
}

/// `svnadmin SUBCOMMAND PATH ...` on this VM's filesystem.
pub fn svnadmin(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let ops: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (Some(sub), Some(path)) = (ops.first(), ops.get(1)) else {
        io.errln("Type 'svnadmin help' for usage.");
        return 1;
    };
    let p = sh.path(path);
    let existing = sh.with_fs(|fs| read_repo(fs, &p));
    match sub.as_str() {
        "create" => {
            if existing.is_some() || sh.with_fs(|fs| fs.get(&format!("{p}/format")).is_some()) {
                io.errln(format!(
                    "svnadmin: E165002: '{p}' is an existing repository"
                ));
                return 1;
            }
            if !sh.with_fs(|fs| fs.is_dir(vfs::parent(&p))) {
                io.errln(format!(
                    "svnadmin: E000002: Can't create directory '{p}': No such file or directory"
                ));
                return 1;
            }
            let repo = Repo {
                uuid: svn::new_uuid(),
                revision: 0,
                revprops0: BTreeMap::new(),
                changed: vfs::now(),
            };
            sh.with_fs(|fs| write_repo(fs, &p, &repo));
            0
        }
        "setuuid" => {
            let Some(mut repo) = existing else {
                io.errln(format!(
                    "svnadmin: E000002: Can't open file '{p}/format': No such file or directory"
                ));
                return 1;
            };
            let uuid = ops
                .get(2)
                .map(|u| u.to_string())
                .unwrap_or_else(svn::new_uuid);
            let valid = uuid.len() == 36
                && uuid.chars().enumerate().all(|(i, c)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            if !valid {
                io.errln(format!("svnadmin: E160041: Malformed UUID '{uuid}'"));
                return 1;
            }
            repo.uuid = uuid;
            sh.with_fs(|fs| write_repo(fs, &p, &repo));
            0
        }
        "info" => {
            match existing {
                Some(repo) => {
                    io.outln(format!("Path: {p}"));
                    io.outln(format!("UUID: {}", repo.uuid));
                    io.outln("Repository Format: 5");
                    io.outln("Filesystem Type: fsfs");
                    io.outln(format!("Youngest revision: {}", repo.revision));
                    0
                }
                None => {
                    io.errln(format!("svnadmin: E000002: Can't open file '{p}/format': No such file or directory"));
                    1
                }
            }
        }
        "dump" => {
            match existing {
                Some(repo) => {
                    io.out(super::cps::svn_dump(&repo));
                    io.errln(format!("* Dumped revision {}.", repo.revision));
                    0
                }
                None => {
                    io.errln(format!("svnadmin: E000002: Can't open file '{p}/format': No such file or directory"));
                    1
                }
            }
        }
        other => {
            io.errln(format!(
                "svnadmin: the lab answers create, setuuid, info and dump, not '{other}'"
            ));
            1
        }
    }
}

/// `recover_svn_sync.sh`: brings the repository that is behind up to the other
/// one and records on pcrfclient01 where it syncs from.
pub async fn recover_svn_sync(sh: &Shell, io: &Io) -> i32 {
    sh.line(
        io,
        "Checking the SVN repositories on pcrfclient01 and pcrfclient02...",
    )
    .await;
    for host in svn::REPO_HOSTS {
        if sh.faults.host_down(host) {
            io.errln(outputs::ssh_unreachable(host));
            return 1;
        }
    }
    let (a, b) = sh
        .state
        .with(|s| (s.svn_repo("pcrfclient01"), s.svn_repo("pcrfclient02")));
    let (Some(a), Some(b)) = (a, b) else {
        let missing = if sh.state.with(|s| s.svn_repo("pcrfclient01").is_none()) {
            "pcrfclient01"
        } else {
            "pcrfclient02"
        };
        io.errln(format!("ERROR: no SVN repository at http://{missing}/repos; create it with svnadmin create first"));
        return 1;
    };
    // A freshly installed repository (revision 0) takes the other one's UUID,
    // as the script does for a redeployed Policy Builder VM.
    let (a, b) = match (a.uuid == b.uuid, a.revision, b.revision) {
        (false, ra, 0) if ra > 0 => {
            let b = Repo {
                uuid: a.uuid.clone(),
                ..b
            };
            sh.state.with(|s| s.set_svn_repo("pcrfclient02", &b));
            sh.line(
                io,
                format!(
                    "http://pcrfclient02/repos is empty: its UUID is set to {}",
                    a.uuid
                ),
            )
            .await;
            (a, b)
        }
        (false, 0, rb) if rb > 0 => {
            let a = Repo {
                uuid: b.uuid.clone(),
                ..a
            };
            sh.state.with(|s| s.set_svn_repo("pcrfclient01", &a));
            sh.line(
                io,
                format!(
                    "http://pcrfclient01/repos is empty: its UUID is set to {}",
                    b.uuid
                ),
            )
            .await;
            (a, b)
        }
        _ => (a, b),
    };
    if a.uuid != b.uuid {
        io.errln(format!(
            "ERROR: the repositories have different UUIDs (pcrfclient01 {}, pcrfclient02 {}); run svnadmin setuuid first",
            a.uuid, b.uuid
        ));
        return 1;
    }
    sh.line(io, format!("Repository UUID: {}", a.uuid)).await;
    sh.line(
        io,
        format!(
            "pcrfclient01: revision {}, pcrfclient02: revision {}",
            a.revision, b.revision
        ),
    )
    .await;
    let (from, to, revision) = if a.revision >= b.revision {
        ("pcrfclient01", "pcrfclient02", a.revision)
    } else {
        ("pcrfclient02", "pcrfclient01", b.revision)
    };
    let behind = if from == "pcrfclient01" {
        b.revision
    } else {
        a.revision
    };
    if behind < revision {
        sh.line(
            io,
            format!("Synchronizing http://{to}/repos from http://{from}/repos ..."),
        )
        .await;
        // The first few revisions and the last, as a long svnsync scrolls by.
        let first: Vec<u64> = (behind + 1..=revision).take(3).collect();
        for r in &first {
            sh.line(io, format!("Committed revision {r}.")).await;
            sh.line(io, format!("Copied properties for revision {r}."))
                .await;
        }
        if first.last().is_some_and(|l| *l < revision) {
            sh.line(io, "...").await;
            sh.line(io, format!("Committed revision {revision}.")).await;
            sh.line(io, format!("Copied properties for revision {revision}."))
                .await;
        }
    }
    sh.state.with(|s| {
        for (host, old) in [("pcrfclient01", &a), ("pcrfclient02", &b)] {
            let mut repo = old.clone();
            repo.revision = revision;
            if host == "pcrfclient01" {
                repo.revprops0.insert(
                    "svn:sync-from-url".into(),
                    "http://pcrfclient02/repos".into(),
                );
                repo.revprops0
                    .insert("svn:sync-from-uuid".into(), a.uuid.clone());
                repo.revprops0
                    .insert("svn:sync-last-merged-rev".into(), revision.to_string());
            }
            s.set_svn_repo(host, &repo);
        }
    });
    sh.line(
        io,
        format!("SVN sync recovered: both repositories at revision {revision}"),
    )
    .await;
    0
}
