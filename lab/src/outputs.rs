//! What the simulated tools print, one function per tool, so that a format can
//! be corrected in one place when a real sample turns up. The shapes follow
//! `shared/cps-command-outputs.md`; most are from memory and marked there as
//! unverified. The commands decide *what* to say (from the site state and the
//! faults); these functions decide *how it looks*.
//!
//! Care point: runbooks reject outputs matching words such as `DOWN`,
//! `RECOVERING`, `STARTUP`, `not reachable`, `failed` and `Running` (after a
//! stop), case-insensitively. Healthy output must not contain them by accident
//! ("shutdown", "downloaded" and the like are avoided on purpose).

use crate::state::topology::{MemberRole, CPS_VERSION};
use crate::state::{Host, MonitKind, ReplicaSet, Site};

/// The monit version the VMs run.
pub const MONIT_VERSION: &str = "5.26.0";
/// The mongo version of the replica sets.
pub const MONGO_VERSION: &str = "3.6.17";

/// `3d 4h 12m`, monit's way of writing an uptime.
pub fn monit_uptime(booted: i64) -> String {
    let secs = (chrono::Utc::now().timestamp() - booted).max(0);
    format!(
        "{}d {}h {}m",
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60
    )
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `monit summary` (monit 5.26 table), or with `detailed` a short `monit status`.
pub fn monit_summary(host: &Host, booted: i64, detailed: bool) -> Vec<String> {
    let mut out = vec![
        format!(
            "The Monit daemon {MONIT_VERSION} uptime: {}",
            monit_uptime(booted)
        ),
        String::new(),
    ];
    if detailed {
        for m in &host.monit {
            out.push(format!("{} '{}'", m.kind.label(), m.name));
            out.push(format!(
                "  status                       {}",
                if m.monitored { "OK" } else { "Not monitored" }
            ));
            out.push(format!(
                "  monitoring status            {}",
                if m.monitored {
                    "Monitored"
                } else {
                    "Not monitored"
                }
            ));
            out.push(String::new());
        }
        return out;
    }
    out.push(format!("{:<33}{:<28}{}", "Service Name", "Status", "Type"));
    for m in &host.monit {
        out.push(format!(
            "{:<33}{:<28}{}",
            m.name,
            if m.monitored { "OK" } else { "Not monitored" },
            m.kind.label()
        ));
    }
    out
}

/// The banner `statusall.sh` and `runonall.sh` print before each VM.
pub fn vm_banner(name: &str) -> Vec<String> {
    let rule = "=".repeat(58);
    vec![rule.clone(), name.to_string(), rule]
}

/// One VM's part of `statusall.sh`, in the older monit style CPS prints there
/// (`Process 'qns-1'   Running`).
pub fn statusall_vm(host: &Host, booted: i64) -> Vec<String> {
    let mut out = vm_banner(&host.name);
    out.push(format!(
        "The Monit daemon {MONIT_VERSION} uptime: {}",
        monit_uptime(booted)
    ));
    out.push(String::new());
    let mut services: Vec<_> = host.monit.iter().collect();
    // The VM itself comes last, as monit lists it.
    services.sort_by_key(|m| m.kind == MonitKind::System);
    for m in services {
        let name = format!("{} '{}'", m.kind.label(), m.name);
        out.push(format!(
            "{name:<36}{}",
            if m.monitored {
                "Running"
            } else {
                "Not monitored"
            }
        ));
    }
    out.push(String::new());
    out
}

/// What a down VM gives any tool that tries to reach it over SSH.
pub fn ssh_unreachable(name: &str) -> String {
    format!("ssh: connect to host {name} port 22: No route to host")
}

/// `systemctl status UNIT`.
pub fn systemctl_status(unit: &str, active: bool, booted: i64) -> Vec<String> {
    let since = chrono::DateTime::from_timestamp(booted, 0)
        .unwrap_or_default()
        .format("%a %Y-%m-%d %H:%M:%S UTC");
    vec![
        format!("● {unit}.service - {unit}"),
        format!("   Loaded: loaded (/usr/lib/systemd/system/{unit}.service; enabled; vendor preset: disabled)"),
        if active {
            format!("   Active: active (running) since {since}")
        } else {
            "   Active: inactive (dead)".to_string()
        },
    ]
}

fn prefix_mask(prefix: u32) -> String {
    let bits: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    format!(
        "{}.{}.{}.{}",
        bits >> 24,
        (bits >> 16) & 255,
        (bits >> 8) & 255,
        bits & 255
    )
}

/// `route -n`: the default route and the VM's subnet, then the static routes of
/// its `route-*` files (`NET/PREFIX via GW dev DEV` lines).
pub fn route_table(ip: &str, route_files: &[String], _numeric: bool) -> Vec<String> {
    let mut out = vec![
        "Kernel IP routing table".to_string(),
        "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface".to_string(),
    ];
    let subnet: Vec<&str> = ip.split('.').take(3).collect();
    let net = format!("{}.0", subnet.join("."));
    let gw = format!("{}.1", subnet.join("."));
    let row = |dest: &str, gw: &str, mask: &str, flags: &str, dev: &str| {
        format!("{dest:<16}{gw:<16}{mask:<16}{flags:<6}0      0        0 {dev}")
    };
    out.push(row("0.0.0.0", &gw, "0.0.0.0", "UG", "eth0"));
    out.push(row(&net, "0.0.0.0", "255.255.255.0", "U", "eth0"));
    for file in route_files {
        for line in file.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [cidr, "via", via, "dev", dev, ..] = words.as_slice() {
                let (dest, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
                let mask = prefix_mask(prefix.parse().unwrap_or(32));
                out.push(row(dest, via, &mask, "UG", dev));
            }
        }
    }
    out
}

/// `df` / `df -h`.
pub fn df(host: &str, human: bool) -> Vec<String> {
    let data_disk = host == "cluman" || host.starts_with("sessionmgr");
    let mut rows = vec![
        ("/dev/vda1", 52403200u64, 21960704u64, "/"),
        ("devtmpfs", 8123456, 0, "/dev"),
        ("tmpfs", 8134980, 8800, "/run"),
    ];
    if data_disk {
        rows.push(("/dev/vdb", 104806400, 32490112, "/var/data"));
    }
    let mut out = vec![if human {
        "Filesystem      Size  Used Avail Use% Mounted on".to_string()
    } else {
        "Filesystem     1K-blocks     Used Available Use% Mounted on".to_string()
    }];
    for (fs, size, used, mount) in rows {
        let avail = size - used;
        let pct = used * 100 / size.max(1);
        let h = |kb: u64| -> String {
            if kb == 0 {
                "0".to_string()
            } else if kb >= 1024 * 1024 {
                format!("{:.0}G", kb as f64 / 1048576.0)
            } else {
                format!("{:.1}M", kb as f64 / 1024.0)
            }
        };
        out.push(if human {
            format!(
                "{fs:<15}{:>5} {:>5} {:>5} {:>3}% {mount}",
                h(size),
                h(used),
                h(avail),
                pct
            )
        } else {
            format!("{fs:<15}{size:>10} {used:>8} {avail:>9} {pct:>3}% {mount}")
        });
    }
    out
}

/// `uptime`.
pub fn uptime(booted: i64) -> String {
    let now = chrono::Utc::now();
    let secs = (now.timestamp() - booted).max(0);
    format!(
        " {} up {} days, {:>2}:{:02},  1 user,  load average: 0.08, 0.05, 0.01",
        now.format("%H:%M:%S"),
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60
    )
}

/// How a member of a replica set looks in `--get_replica_status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub host: String,
    pub ip: String,
    pub state: String,
    pub health: &'static str,
    pub last_sync: String,
    pub priority: u8,
}

/// The members of a set as the status shows them: the first running data
/// member by priority is PRIMARY (so stopping sessionmgr01 fails over), a
/// member whose mongod is stopped is not reachable, and the
/// replica-set-unhealthy fault shows sessionmgr02 of the first set RECOVERING.
pub fn member_views(
    site: &Site,
    set: &ReplicaSet,
    fault: bool,
    first_set: bool,
) -> Vec<MemberView> {
    let mut members: Vec<_> = set.members.iter().collect();
    members.sort_by_key(|m| std::cmp::Reverse(m.priority));
    let primary = members
        .iter()
        .find(|m| m.role != MemberRole::Arbiter && site.member_running(set, m))
        .map(|m| m.host.clone());
    members
        .iter()
        .map(|m| {
            let ip = site.host(&m.host).map(|h| h.ip.clone()).unwrap_or_default();
            let running = site.member_running(set, m);
            let (state, health, last_sync) = if !running {
                (
                    "(not reachable/healthy)".to_string(),
                    "OFF-LINE",
                    "--------".to_string(),
                )
            } else if fault && first_set && m.host == "sessionmgr02" {
                ("RECOVERING".to_string(), "ON-LINE", "3542 sec".to_string())
            } else if m.role == MemberRole::Arbiter {
                ("ARBITER".to_string(), "ON-LINE", "--------".to_string())
            } else if primary.as_deref() == Some(m.host.as_str()) {
                ("PRIMARY".to_string(), "ON-LINE", "--------".to_string())
            } else {
                ("SECONDARY".to_string(), "ON-LINE", "0 sec".to_string())
            };
            MemberView {
                host: m.host.clone(),
                ip,
                state,
                health,
                last_sync,
                priority: m.priority,
            }
        })
        .collect()
}

/// `diagnostics.sh --get_replica_status`: a box per replica set.
pub fn replica_status(site: &Site, fault: bool) -> Vec<String> {
    let width = 124;
    let rule = format!("|{}|", "-".repeat(width));
    let boxed = |s: String| format!("|{s:<width$}|");
    let mut out = vec![
        "CPS Diagnostics HA Multi-Node Environment".to_string(),
        "---------------------------".to_string(),
        "Checking replica sets...".to_string(),
        rule.clone(),
        {
            let left = format!(" Mongo:v{MONGO_VERSION}");
            let title = "MONGODB REPLICA-SETS STATUS INFORMATION";
            let right = format!("Date : {} ", stamp());
            let pad = width.saturating_sub(left.len() + title.len() + right.len());
            boxed(format!(
                "{left}{}{title}{}{right}",
                " ".repeat(pad / 2),
                " ".repeat(pad - pad / 2)
            ))
        },
        rule.clone(),
        boxed("  SET NAME  -  PORT  : IP ADDRESS       -  REPLICA STATE           -  HOST NAME     -  HEALTH   -  LAST SYNC  -  PRIORITY".to_string()),
        rule.clone(),
    ];
    for (i, set) in site.replica_sets.iter().enumerate() {
        out.push(boxed(format!("  {}:{}", set.label, set.name)));
        for (n, m) in member_views(site, set, fault, i == 0).iter().enumerate() {
            out.push(boxed(format!(
                "  Member-{}  -  {} : {:<16} -  {:<23} -  {:<13} -  {:<8} -  {:<10} -  {:>3}",
                n + 1,
                set.port,
                m.ip,
                m.state,
                m.host,
                m.health,
                m.last_sync,
                m.priority
            )));
        }
        out.push(rule.clone());
    }
    out
}

/// One check line of `diagnostics.sh`.
pub fn diag_check(what: &str, verdict: Verdict) -> String {
    format!("{what}...{}", verdict.tag())
}

/// The outcome of a diagnostics check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    /// `[PASS]`, `[WARN]`, `[FAIL]`.
    pub fn tag(self) -> &'static str {
        match self {
            Verdict::Pass => "[PASS]",
            Verdict::Warn => "[WARN]",
            Verdict::Fail => "[FAIL]",
        }
    }
}

/// The closing line of `diagnostics.sh`.
pub fn diag_summary(failed: &[String], warnings: usize) -> String {
    if failed.is_empty() {
        format!("Diagnostics complete: 0 checks with problems, {warnings} warning(s).")
    } else {
        format!(
            "Diagnostics complete: {} check(s) with problems: {}",
            failed.len(),
            failed.join("; ")
        )
    }
}

/// `svn info URL`.
pub struct SvnInfo<'a> {
    pub url: &'a str,
    pub root: &'a str,
    pub uuid: &'a str,
    pub revision: u64,
    pub changed: i64,
}

/// `svn info` lines.
pub fn svn_info(i: &SvnInfo<'_>) -> Vec<String> {
    let path = i.url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let relative = match i.url.strip_prefix(i.root) {
        Some(rest) if !rest.is_empty() => format!("^{rest}"),
        _ => "^/".to_string(),
    };
    let date = chrono::DateTime::from_timestamp(i.changed, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S +0000 (%a, %d %b %Y)");
    vec![
        format!("Path: {path}"),
        format!("URL: {}", i.url),
        format!("Relative URL: {relative}"),
        format!("Repository Root: {}", i.root),
        format!("Repository UUID: {}", i.uuid),
        format!("Revision: {}", i.revision),
        "Node Kind: directory".to_string(),
        "Last Changed Author: broadhop".to_string(),
        format!("Last Changed Rev: {}", i.revision),
        format!("Last Changed Date: {date}"),
        String::new(),
    ]
}

/// `svn: E...` errors.
pub fn svn_unreachable(url: &str) -> Vec<String> {
    vec![
        format!("svn: E170013: Unable to connect to a repository at URL '{url}'"),
        "svn: E175013: Access to '/repos' forbidden".to_string(),
    ]
}

/// A log line of `config_br.py` (Python logging format).
pub fn config_br_log(level: &str, func: &str, msg: &str) -> String {
    let now = chrono::Utc::now();
    format!(
        "{},{:03} {level} [config_br.{func}] {msg}",
        now.format("%Y-%m-%d %H:%M:%S"),
        now.timestamp_subsec_millis()
    )
}

/// A log line of `mongorestore`/`mongodump` (written to stderr, as they do).
pub fn mongo_tool_log(msg: &str) -> String {
    format!(
        "{}\t{msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000")
    )
}

/// The banner of the mongo shell (omitted with `--quiet`).
pub fn mongo_banner(host: &str, port: u16) -> Vec<String> {
    vec![
        format!("MongoDB shell version v{MONGO_VERSION}"),
        format!("connecting to: mongodb://{host}:{port}/"),
        format!("MongoDB server version: {MONGO_VERSION}"),
    ]
}

/// The mongo shell's connection failure.
pub fn mongo_connect_failed(host: &str, ip: &str, port: u16) -> Vec<String> {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000");
    vec![
        format!("MongoDB shell version v{MONGO_VERSION}"),
        format!("connecting to: mongodb://{host}:{port}/"),
        format!("{ts} W NETWORK  [thread1] Failed to connect to {ip}:{port}, in(checking socket for error after poll), reason: Connection refused"),
        format!("{ts} E QUERY    [thread1] Error: couldn't connect to server {host}:{port}, connection attempt failed :"),
        "connect@src/mongo/shell/mongo.js:251:13".to_string(),
        "@(connect):1:6".to_string(),
        "exception: connect failed".to_string(),
    ]
}

/// `about.sh`.
pub fn about(site: &Site, patches: &[(String, String)]) -> Vec<String> {
    let mut out = vec![
        "CPS Multi-Node Environment".to_string(),
        "---------------------------".to_string(),
        format!("CPS Installer Version - {CPS_VERSION}"),
        String::new(),
        "CPS Core Versions".to_string(),
        "---------------------------".to_string(),
    ];
    let version = match patches.first() {
        Some((_, v)) => v.clone(),
        None => format!("{CPS_VERSION}.release"),
    };
    for h in site.hosts.values() {
        for m in h.monit.iter().filter(|m| m.name.starts_with("qns-")) {
            let role = match h.role {
                crate::state::topology::Role::Lb => "iomanager",
                crate::state::topology::Role::Pcrfclient => "pb",
                _ => "pcrf",
            };
            out.push(format!(
                "{:>16}: {:<8}({role:<10}): {version}",
                h.name, m.name
            ));
        }
    }
    out.push(String::new());
    out.push("Patches".to_string());
    out.push("---------------------------".to_string());
    if patches.is_empty() {
        out.push("        (none)".to_string());
    }
    for (name, v) in patches {
        out.push(format!("        {name}: {v}"));
    }
    out
}

/// `health.sh` on an ESC VM.
pub fn esc_health(is_master: bool, healthy: bool) -> Vec<String> {
    let role = if is_master { "MASTER" } else { "BACKUP" };
    let mut out = vec![
        "esc ui is disabled -- skipping status check".to_string(),
        "esc_monitor start/running, process 836".to_string(),
        "esc_mona is up and running ...".to_string(),
        "vimmanager start/running, process 2741".to_string(),
        "vimmanager is up and running ...".to_string(),
        "esc_confd is started".to_string(),
        "tomcat start/running, process 2396".to_string(),
        "tomcat is up and running ...".to_string(),
        "esc service is running ...".to_string(),
        "postgresql is running ...".to_string(),
        format!("ESC HA ({role}) with DRBD. DRBD_ROLE_CHECK=0"),
        format!("ESC HA ({role}) with DRBD. FILE_SYSTEM_CHECK=0"),
    ];
    out.push(if healthy {
        "ESC HEALTH PASSED".to_string()
    } else {
        "ESC HEALTH FAILED: esc service is not running".to_string()
    });
    out
}

/// A NETCONF `<ok/>` reply, as `esc_nc_cli` prints it.
pub fn netconf_ok() -> Vec<String> {
    vec![
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>".to_string(),
        "<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\">"
            .to_string(),
        "  <ok/>".to_string(),
        "</rpc-reply>".to_string(),
    ]
}

/// A NETCONF error reply.
pub fn netconf_error(message: &str) -> Vec<String> {
    vec![
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>".to_string(),
        "<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\">"
            .to_string(),
        "  <rpc-error>".to_string(),
        "    <error-type>application</error-type>".to_string(),
        "    <error-tag>operation-failed</error-tag>".to_string(),
        "    <error-severity>error</error-severity>".to_string(),
        format!("    <error-message xml:lang=\"en\">{message}</error-message>"),
        "  </rpc-error>".to_string(),
        "</rpc-reply>".to_string(),
    ]
}

/// `netconf-console --get-config`: the ESC deployment of the CPS VMs.
pub fn esc_config(site: &Site) -> Vec<String> {
    let mut out = vec![
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>".to_string(),
        "<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\">"
            .to_string(),
        "  <data>".to_string(),
        "    <esc_datamodel xmlns=\"http://www.cisco.com/esc/esc\">".to_string(),
        "      <tenants>".to_string(),
        "        <tenant>".to_string(),
        "          <name>Core</name>".to_string(),
        "          <deployments>".to_string(),
        "            <deployment>".to_string(),
        "              <name>cps-core</name>".to_string(),
    ];
    for vm in site.esc.vm_states.keys() {
        let ip = site.host(vm).map(|h| h.ip.clone()).unwrap_or_default();
        out.push("              <vm_group>".to_string());
        out.push(format!("                <name>{vm}</name>"));
        out.push(format!(
            "                <image>cps-{CPS_VERSION}-{vm}</image>"
        ));
        out.push("                <flavor>cps-flavor</flavor>".to_string());
        out.push(format!(
            "                <interfaces><interface><nicid>0</nicid><network>internal</network><ip_address>{ip}</ip_address></interface></interfaces>"
        ));
        out.push("              </vm_group>".to_string());
    }
    out.extend(
        [
            "            </deployment>",
            "          </deployments>",
            "        </tenant>",
            "      </tenants>",
            "    </esc_datamodel>",
            "  </data>",
            "</rpc-reply>",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SiteState;

    #[test]
    fn healthy_replica_status_has_no_alarming_words() {
        let site = SiteState::new().snapshot();
        let text = replica_status(&site, false).join("\n");
        assert!(text.contains("PRIMARY") && text.contains("SECONDARY") && text.contains("ARBITER"));
        let bad = regex::Regex::new("(?i)not reachable|DOWN|RECOVERING|STARTUP").unwrap();
        assert!(!bad.is_match(&text), "{text}");
        let broken = replica_status(&site, true).join("\n");
        assert!(broken.contains("RECOVERING"));
    }

    #[test]
    fn routes_and_masks() {
        assert_eq!(prefix_mask(16), "255.255.0.0");
        assert_eq!(prefix_mask(0), "0.0.0.0");
        let t = route_table(
            "172.16.2.101",
            &["10.20.0.0/16 via 172.16.3.1 dev eth2\n".to_string()],
            true,
        );
        assert!(t[2].starts_with("0.0.0.0         172.16.2.1"));
        assert!(t
            .iter()
            .any(|l| l.starts_with("10.20.0.0       172.16.3.1      255.255.0.0")));
    }

    #[test]
    fn monit_shows_not_monitored() {
        let mut site = SiteState::new().snapshot();
        let Some(h) = site.host_mut("qns01") else {
            panic!("qns01")
        };
        h.monit[1].monitored = false;
        let h = site.host("qns01").cloned().unwrap_or_else(|| panic!());
        let lines = monit_summary(&h, site.booted, false);
        assert!(lines.iter().any(|l| l.contains("Not monitored")));
        let status = statusall_vm(&h, site.booted).join("\n");
        assert!(status.contains("Running") && status.contains("Not monitored"));
    }
}
