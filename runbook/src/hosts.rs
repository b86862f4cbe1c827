//! The VMs of an Ultra-M CPS site that runbooks may name. A site maps each name to
//! an address; runbooks only ever use the names.

/// Host names a runbook step may use directly.
pub const KNOWN_HOSTS: &[&str] = &[
    "cluman",
    "pcrfclient01",
    "pcrfclient02",
    "sessionmgr01",
    "sessionmgr02",
    "lb01",
    "lb02",
    "qns01",
    "qns02",
    "qns03",
    "qns04",
    "esc-master",
    "esc-standby",
];

/// The hosts that `esc` steps run on.
pub const ESC_HOSTS: &[&str] = &["esc-master", "esc-standby"];

/// Whether `name` is a known host.
pub fn is_known(name: &str) -> bool {
    KNOWN_HOSTS.contains(&name)
}
