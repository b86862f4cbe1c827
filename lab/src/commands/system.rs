//! System commands: `crontab`, `monit`, `systemctl`/`service`, `route`,
//! `hostname`, `date`, `df`, `uptime`, `uname`, `free`.

use super::{getopt, read_file};
use crate::outputs;
use crate::shell::{Io, Shell};
use crate::state::vfs;
use std::fmt::Write as _;

/// Where root's crontab lives (cronie's spool).
pub const CRONTAB_PATH: &str = "/var/spool/cron/root";

/// Checks a crontab the way cronie does before installing it; the error names
/// the line.
pub fn check_crontab(text: &str) -> Result<(), (usize, &'static str)> {
    const SPECIAL: &[&str] = &[
        "@reboot",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('=') && !first.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
            continue;
        }
        if first.starts_with('@') {
            if SPECIAL.contains(&first) && line.split_whitespace().count() >= 2 {
                continue;
            }
            return Err((i + 1, "bad time specifier"));
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        for (n, what) in FIELDS.iter().enumerate() {
            let Some(f) = fields.get(n) else {
                return Err((i + 1, what_error(what)));
            };
            // Names (jan, mon) are allowed for the month and the weekday only.
            let ok = f.chars().all(|c| {
                c.is_ascii_digit()
                    || matches!(c, '*' | '/' | ',' | '-')
                    || (n >= 3 && c.is_ascii_alphabetic())
            });
            if !ok {
                return Err((i + 1, what_error(what)));
            }
        }
        if fields.len() < 6 {
            return Err((i + 1, "bad command"));
        }
    }
    Ok(())
}

fn what_error(what: &str) -> &'static str {
    match what {
        "minute" => "bad minute",
        "hour" => "bad hour",
        "day-of-month" => "bad day-of-month",
        "month" => "bad month",
        _ => "bad day-of-week",
    }
}

pub fn crontab(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "u", &[]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("crontab: {e}"));
            return 1;
        }
    };
    let user = o.value('u').unwrap_or("root");
    if user != "root" {
        io.errln(format!("crontab: user `{user}' unknown"));
        return 1;
    }
    if o.has('l') {
        return match sh.with_fs(|fs| fs.read(CRONTAB_PATH).map(<[u8]>::to_vec)) {
            Ok(data) => {
                io.out.write(&data);
                0
            }
            Err(_) => {
                io.errln("no crontab for root");
                1
            }
        };
    }
    if o.has('r') {
        return match sh.with_fs(|fs| fs.remove(CRONTAB_PATH, false)) {
            Ok(()) => 0,
            Err(_) => {
                io.errln("no crontab for root");
                1
            }
        };
    }
    if o.has('e') {
        io.errln("crontab: no editor here: install a crontab from a file with `crontab FILE`");
        return 1;
    }
    let Some(file) = o.args.first() else {
        io.errln("usage:\tcrontab [-u user] file\n\tcrontab [-u user] [ -e | -l | -r ]");
        return 1;
    };
    let data = if file == "-" {
        io.stdin.to_vec()
    } else {
        let p = sh.path(file);
        match sh.with_fs(|fs| fs.read(&p).map(<[u8]>::to_vec)) {
            Ok(d) => d,
            Err(e) => {
                io.errln(format!("{file}: {e}"));
                return 1;
            }
        }
    };
    let text = String::from_utf8_lossy(&data);
    if let Err((line, why)) = check_crontab(&text) {
        io.errln(format!("\"{file}\":{line}: {why}"));
        io.errln("errors in crontab file, can't install.");
        return 1;
    }
    let r = sh.with_fs(|fs| {
        fs.mkdir(vfs::parent(CRONTAB_PATH), true)?;
        fs.write(CRONTAB_PATH, &data, false)?;
        fs.chmod(CRONTAB_PATH, 0o600)
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            io.errln(format!("crontab: cannot install: {e}"));
            1
        }
    }
}

pub fn monit(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let host = sh.host.clone();
    let action = args.first().map(String::as_str).unwrap_or("");
    let target = args.get(1).map(String::as_str);
    match action {
        "summary" | "status" => {
            let lines = sh.state.with(|s| {
                s.host(&host)
                    .map(|h| outputs::monit_summary(h, s.booted, action == "status"))
            });
            match lines {
                Some(lines) => {
                    for l in lines {
                        io.outln(l);
                    }
                    0
                }
                None => 1,
            }
        }
        "start" | "stop" | "restart" | "monitor" | "unmonitor" => {
            let Some(target) = target else {
                io.errln(format!(
                    "monit: please specify a service name or 'all' after {action}"
                ));
                return 1;
            };
            let on = !matches!(action, "stop" | "unmonitor");
            let found = sh.state.with(|s| {
                let Some(h) = s.host_mut(&host) else {
                    return false;
                };
                let mut found = false;
                for m in h.monit.iter_mut() {
                    if target == "all" || m.name == target {
                        m.monitored = on;
                        found = true;
                    }
                }
                found
            });
            if found {
                0
            } else {
                io.errln(format!("monit: There is no service named \"{target}\""));
                1
            }
        }
        "-V" | "--version" => {
            io.outln("This is Monit version 5.26.0");
            0
        }
        "" => {
            io.errln("monit: no action given; try 'monit summary'");
            1
        }
        other => {
            io.errln(format!(
                "monit: invalid argument -- {other}  (-h will show valid arguments)"
            ));
            1
        }
    }
}

fn unit_name(u: &str) -> String {
    u.strip_suffix(".service").unwrap_or(u).to_string()
}

pub fn systemctl(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let ops: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let Some(action) = ops.first() else {
        io.errln("systemctl: this lab shell only knows: start, stop, restart, reload, status, is-active, enable, disable");
        return 1;
    };
    let units: Vec<String> = ops[1..].iter().map(|u| unit_name(u)).collect();
    if units.is_empty() {
        io.errln("Too few arguments.");
        return 1;
    }
    let host = sh.host.clone();
    let mut status = 0;
    for unit in units {
        let current = sh
            .state
            .with(|s| s.host(&host).and_then(|h| h.units.get(&unit).copied()));
        match (action.as_str(), current) {
            ("start" | "stop" | "restart" | "reload", None) => {
                let verb = match action.as_str() {
                    "start" => "start",
                    "stop" => "stop",
                    "reload" => "reload",
                    _ => "restart",
                };
                io.errln(format!(
                    "Failed to {verb} {unit}.service: Unit {unit}.service not found."
                ));
                status = 5;
            }
            ("start" | "restart" | "reload", Some(_)) | ("stop", Some(_)) => {
                let on = action.as_str() != "stop";
                sh.state.with(|s| {
                    if let Some(h) = s.host_mut(&host) {
                        h.units.insert(unit.clone(), on);
                    }
                });
            }
            ("enable" | "disable", Some(_)) => {}
            ("enable" | "disable", None) => {
                io.errln(format!(
                    "Failed to {action} unit: Unit file {unit}.service does not exist."
                ));
                status = 1;
            }
            ("is-active", c) => {
                let active = c == Some(true);
                io.outln(if active {
                    "active"
                } else if c.is_some() {
                    "inactive"
                } else {
                    "unknown"
                });
                if !active {
                    status = 3;
                }
            }
            ("status", None) => {
                io.errln(format!("Unit {unit}.service could not be found."));
                status = 4;
            }
            ("status", Some(active)) => {
                let booted = sh.state.with(|s| s.booted);
                for l in outputs::systemctl_status(&unit, active, booted) {
                    io.outln(l);
                }
                if !active {
                    status = 3;
                }
            }
            (other, _) => {
                io.errln(format!("Unknown operation '{other}'."));
                return 1;
            }
        }
    }
    status
}

/// `service NAME ACTION`, the SysV spelling.
pub fn service(sh: &Shell, args: &[String], io: &Io) -> i32 {
    match args {
        [name, action, ..] => systemctl(sh, &[action.clone(), name.clone()], io),
        _ => {
            io.errln("Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]");
            1
        }
    }
}

pub fn route(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let host = sh.host.clone();
    let (ip, files) = sh.state.with(|s| {
        let Some(h) = s.host(&host) else {
            return (String::new(), Vec::new());
        };
        let files: Vec<String> =
            h.fs.list("/etc/sysconfig/network-scripts")
                .unwrap_or_default()
                .into_iter()
                .filter(|(n, _)| n.starts_with("route-"))
                .filter_map(|(n, _)| {
                    h.fs.read_string(&format!("/etc/sysconfig/network-scripts/{n}"))
                        .ok()
                })
                .collect();
        (h.ip.clone(), files)
    });
    let numeric = args.iter().any(|a| a.contains('n'));
    for l in outputs::route_table(&ip, &files, numeric) {
        io.outln(l);
    }
    0
}

pub fn hostname(sh: &Shell, args: &[String], io: &Io) -> i32 {
    match args.first().map(String::as_str) {
        Some("-i" | "-I") => {
            let host = sh.host.clone();
            let ip = sh
                .state
                .with(|s| s.host(&host).map(|h| h.ip.clone()).unwrap_or_default());
            io.outln(ip);
        }
        Some(a) if !a.starts_with('-') => {
            io.errln("hostname: you must be root to change the host name");
            return 1;
        }
        _ => io.outln(&sh.host),
    }
    0
}

pub fn date(args: &[String], io: &Io) -> i32 {
    let now = chrono::Utc::now();
    let format = args
        .iter()
        .find_map(|a| a.strip_prefix('+'))
        .unwrap_or("%a %b %e %H:%M:%S UTC %Y");
    let mut out = String::new();
    if write!(out, "{}", now.format(format)).is_err() {
        io.errln(format!("date: invalid format '{format}'"));
        return 1;
    }
    io.outln(out);
    0
}

pub fn df(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let human = args.iter().any(|a| a.starts_with('-') && a.contains('h'));
    for l in outputs::df(&sh.host, human) {
        io.outln(l);
    }
    0
}

pub fn uptime(sh: &Shell, io: &Io) -> i32 {
    let booted = sh.state.with(|s| s.booted);
    io.outln(outputs::uptime(booted));
    0
}

pub fn uname(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let release = "3.10.0-1160.el7.x86_64";
    match args.first().map(String::as_str) {
        Some("-a") => io.outln(format!(
            "Linux {} {release} #1 SMP Mon Oct 19 16:18:59 UTC 2020 x86_64 x86_64 x86_64 GNU/Linux",
            sh.host
        )),
        Some("-r") => io.outln(release),
        Some("-n") => io.outln(&sh.host),
        _ => io.outln("Linux"),
    }
    0
}

pub fn free(io: &Io) -> i32 {
    io.outln("              total        used        free      shared  buff/cache   available");
    io.outln("Mem:       16265960     6210332     4879212      421508     5176416     9287220");
    io.outln("Swap:       4194300           0     4194300");
    0
}

/// A file's text for a tool, or `None` after reporting why not.
pub fn read_text(sh: &Shell, tool: &str, path: &str, io: &Io) -> Option<String> {
    read_file(sh, tool, path, io).map(|d| String::from_utf8_lossy(&d).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crontabs_are_checked_like_cronie() {
        assert!(check_crontab("# c\nMAILTO=root\n*/5 * * * * /bin/true\n@daily /x\n\n").is_ok());
        assert_eq!(
            check_crontab("* * * * * ok\nx * * * * y\n"),
            Err((2, "bad minute"))
        );
        assert_eq!(check_crontab("* * * *\n"), Err((1, "bad day-of-week")));
        assert_eq!(check_crontab("* * * * *\n"), Err((1, "bad command")));
        assert_eq!(check_crontab("@often x\n"), Err((1, "bad time specifier")));
    }
}
