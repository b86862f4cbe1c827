//! Faults an operator or a test switches on to see how the portal copes.
//!
//! A fault is an overlay, not a change of state: while it is on, the affected
//! commands and connections behave as broken; switching it off restores what
//! the state says. So a test can break something, watch the portal fail, repair
//! it with one call and retry.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One injectable fault.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `diagnostics.sh` and `--get_replica_status` show a member RECOVERING and [FAIL].
    ReplicaSetUnhealthy,
    /// The SVN checks show the repositories out of sync.
    SvnNotSynced,
    /// The VM presents its alternative host key from the next connection on.
    HostKeyChanged { host: String },
    /// A command whose text contains `pattern` prints a line, then hangs until
    /// it is signalled, its channel closes or a `timeout` ends it.
    CommandHangs { pattern: String },
    /// Connections to the VM fail, directly or through the jump host.
    HostDown { host: String },
}

/// The fault syntax, for error messages.
pub const FAULT_SYNTAX: &str = "replica-set-unhealthy, svn-not-synced, host-key-changed:HOST, command-hangs:PATTERN, host-down:HOST";

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ReplicaSetUnhealthy => f.write_str("replica-set-unhealthy"),
            Fault::SvnNotSynced => f.write_str("svn-not-synced"),
            Fault::HostKeyChanged { host } => write!(f, "host-key-changed:{host}"),
            Fault::CommandHangs { pattern } => write!(f, "command-hangs:{pattern}"),
            Fault::HostDown { host } => write!(f, "host-down:{host}"),
        }
    }
}

/// A fault name that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {given:?}: valid faults are {FAULT_SYNTAX}, {OPENSTACK_FAULT_SYNTAX}{hint}")]
pub struct ParseFaultError {
    pub given: String,
    hint: String,
}

impl FromStr for Fault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |hint: &str| ParseFaultError {
            given: s.to_string(),
            hint: hint.to_string(),
        };
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let host = |arg: Option<&str>| -> Result<String, ParseFaultError> {
            match arg {
                Some(h) if crate::state::topology::vm(h).is_some() => Ok(h.to_string()),
                Some(h) => Err(err(&format!(
                    " (no VM named {h:?}; VMs: {})",
                    crate::state::topology::VMS
                        .iter()
                        .map(|v| v.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
                None => Err(err(" (this fault needs a VM: NAME:HOST)")),
            }
        };
        match (name, arg) {
            ("replica-set-unhealthy", None) => Ok(Fault::ReplicaSetUnhealthy),
            ("svn-not-synced", None) => Ok(Fault::SvnNotSynced),
            ("host-key-changed", a) => Ok(Fault::HostKeyChanged { host: host(a)? }),
            ("host-down", a) => Ok(Fault::HostDown { host: host(a)? }),
            ("command-hangs", Some(p)) if !p.is_empty() => Ok(Fault::CommandHangs {
                pattern: p.to_string(),
            }),
            ("command-hangs", _) => Err(err(" (command-hangs needs a pattern)")),
            _ => Err(err("")),
        }
    }
}

/// A fault of the simulated OpenStack API ([`crate::openstack`]). Kept apart
/// from [`Fault`] so that code matching every [`Fault`] keeps compiling; the
/// control API (and so `recovery-portal lab fault on ...`) takes both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpenStackFault {
    /// The next snapshot (`createImage`) ends with its image `killed`.
    SnapshotKilled,
    /// The next action on the server of this VM puts it in ERROR with a fault.
    ServerError { host: String },
    /// An image download closes the connection after half of its bytes (a
    /// resumed request, with a `Range`, completes).
    DownloadDrops,
    /// Every token issued before the fault was switched on is refused (401),
    /// even if not yet expired; a new authentication works.
    TokenExpired,
    /// Creating an image or a server answers 413 `overLimit`.
    OverQuota,
}

/// The OpenStack fault syntax, for error messages.
pub const OPENSTACK_FAULT_SYNTAX: &str =
    "snapshot-killed, server-error:HOST, download-drops, token-expired, over-quota";

impl fmt::Display for OpenStackFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenStackFault::SnapshotKilled => f.write_str("snapshot-killed"),
            OpenStackFault::ServerError { host } => write!(f, "server-error:{host}"),
            OpenStackFault::DownloadDrops => f.write_str("download-drops"),
            OpenStackFault::TokenExpired => f.write_str("token-expired"),
            OpenStackFault::OverQuota => f.write_str("over-quota"),
        }
    }
}

impl FromStr for OpenStackFault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |hint: &str| ParseFaultError {
            given: s.to_string(),
            hint: hint.to_string(),
        };
        match s.split_once(':') {
            None => match s {
                "snapshot-killed" => Ok(OpenStackFault::SnapshotKilled),
                "download-drops" => Ok(OpenStackFault::DownloadDrops),
                "token-expired" => Ok(OpenStackFault::TokenExpired),
                "over-quota" => Ok(OpenStackFault::OverQuota),
                "server-error" => Err(err(" (this fault needs a VM: server-error:HOST)")),
                _ => Err(err("")),
            },
            Some(("server-error", h)) if crate::state::topology::vm(h).is_some() => {
                Ok(OpenStackFault::ServerError {
                    host: h.to_string(),
                })
            }
            Some(("server-error", h)) => Err(err(&format!(" (no VM named {h:?})"))),
            Some(_) => Err(err("")),
        }
    }
}

/// Any fault by name: an SSH-side [`Fault`] or an [`OpenStackFault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyFault {
    Site(Fault),
    OpenStack(OpenStackFault),
}

impl FromStr for AnyFault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<Fault>() {
            Ok(f) => Ok(AnyFault::Site(f)),
            Err(e) => match s.parse::<OpenStackFault>() {
                Ok(f) => Ok(AnyFault::OpenStack(f)),
                // The site fault's message, which names the syntax of both.
                Err(_) => Err(e),
            },
        }
    }
}

/// The set of active faults; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Mutex<Vec<Fault>>>,
    /// OpenStack faults, with when each was switched on.
    openstack: Arc<Mutex<Vec<(OpenStackFault, Instant)>>>,
    /// VMs that are not running as far as OpenStack is concerned (SHUTOFF,
    /// rebooting, being rebuilt, deleted, ERROR). Not a fault: the state of
    /// the simulated cloud; they refuse connections like `host-down`.
    off: Arc<Mutex<BTreeSet<String>>>,
}

impl Faults {
    /// No fault active.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches a fault on or off.
    pub fn set(&self, fault: Fault, on: bool) {
        let mut active = self.lock();
        active.retain(|f| *f != fault);
        if on {
            active.push(fault);
        }
    }

    /// The active faults, in the order they were switched on.
    pub fn active(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Whether a fault is on.
    pub fn is_on(&self, fault: &Fault) -> bool {
        self.lock().contains(fault)
    }

    /// Whether the replica sets are to look unhealthy.
    pub fn replica_set_unhealthy(&self) -> bool {
        self.is_on(&Fault::ReplicaSetUnhealthy)
    }

    /// Whether SVN is to look out of sync.
    pub fn svn_not_synced(&self) -> bool {
        self.is_on(&Fault::SvnNotSynced)
    }

    /// Whether a VM is down: the `host-down` fault, or its server is not
    /// running in the simulated OpenStack.
    pub fn host_down(&self, host: &str) -> bool {
        self.is_on(&Fault::HostDown {
            host: host.to_string(),
        }) || self.vm_off(host)
    }

    /// Marks a VM as not running (or running again) in the simulated cloud.
    pub fn set_vm_off(&self, host: &str, off: bool) {
        let mut set = self.off.lock().unwrap_or_else(|e| e.into_inner());
        if off {
            set.insert(host.to_string());
        } else {
            set.remove(host);
        }
    }

    /// Whether the simulated cloud has the VM not running.
    pub fn vm_off(&self, host: &str) -> bool {
        self.off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(host)
    }

    fn os_lock(&self) -> std::sync::MutexGuard<'_, Vec<(OpenStackFault, Instant)>> {
        self.openstack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches an OpenStack fault on or off (switching on again keeps the
    /// first time it was switched on).
    pub fn set_openstack(&self, fault: OpenStackFault, on: bool) {
        let mut active = self.os_lock();
        if on {
            if !active.iter().any(|(f, _)| *f == fault) {
                active.push((fault, Instant::now()));
            }
        } else {
            active.retain(|(f, _)| *f != fault);
        }
    }

    /// When an OpenStack fault was switched on, if it is on.
    pub fn openstack_since(&self, fault: &OpenStackFault) -> Option<Instant> {
        self.os_lock()
            .iter()
            .find(|(f, _)| f == fault)
            .map(|(_, t)| *t)
    }

    /// Whether an OpenStack fault is on.
    pub fn openstack_on(&self, fault: &OpenStackFault) -> bool {
        self.openstack_since(fault).is_some()
    }

    /// The active OpenStack faults.
    pub fn active_openstack(&self) -> Vec<OpenStackFault> {
        self.os_lock().iter().map(|(f, _)| f.clone()).collect()
    }

    /// Switches any fault by name on or off.
    pub fn set_named(&self, name: &str, on: bool) -> Result<(), ParseFaultError> {
        match name.parse::<AnyFault>()? {
            AnyFault::Site(f) => self.set(f, on),
            AnyFault::OpenStack(f) => self.set_openstack(f, on),
        }
        Ok(())
    }

    /// The names of every active fault, site faults first.
    pub fn active_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.active().iter().map(Fault::to_string).collect();
        names.extend(
            self.active_openstack()
                .iter()
                .map(OpenStackFault::to_string),
        );
        names
    }

    /// Whether a VM presents its changed host key.
    pub fn host_key_changed(&self, host: &str) -> bool {
        self.is_on(&Fault::HostKeyChanged {
            host: host.to_string(),
        })
    }

    /// The pattern of a hanging-command fault that `command` matches, if any.
    pub fn hangs(&self, command: &str) -> Option<String> {
        self.lock().iter().find_map(|f| match f {
            Fault::CommandHangs { pattern } if command.contains(pattern.as_str()) => {
                Some(pattern.clone())
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_their_names() {
        for f in [
            Fault::ReplicaSetUnhealthy,
            Fault::SvnNotSynced,
            Fault::HostKeyChanged {
                host: "lb01".into(),
            },
            Fault::CommandHangs {
                pattern: "diagnostics.sh --x".into(),
            },
            Fault::HostDown {
                host: "cluman".into(),
            },
        ] {
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
        }
    }

    #[test]
    fn bad_names_list_the_valid_ones() {
        let e = "reboot".parse::<Fault>().unwrap_err().to_string();
        assert!(
            e.contains("replica-set-unhealthy") && e.contains("host-down:HOST"),
            "{e}"
        );
        let e = "host-down:db9".parse::<Fault>().unwrap_err().to_string();
        assert!(e.contains("no VM named \"db9\""), "{e}");
        assert!("host-down".parse::<Fault>().is_err());
        assert!("command-hangs:".parse::<Fault>().is_err());
        assert!("svn-not-synced:x".parse::<Fault>().is_err());
    }

    #[test]
    fn openstack_faults_round_trip_and_switch() {
        for f in [
            OpenStackFault::SnapshotKilled,
            OpenStackFault::ServerError {
                host: "pcrfclient01".into(),
            },
            OpenStackFault::DownloadDrops,
            OpenStackFault::TokenExpired,
            OpenStackFault::OverQuota,
        ] {
            assert_eq!(f.to_string().parse::<OpenStackFault>(), Ok(f));
        }
        assert!("server-error:db9".parse::<OpenStackFault>().is_err());
        let e = "nope".parse::<AnyFault>().unwrap_err().to_string();
        assert!(
            e.contains("over-quota") && e.contains("host-down:HOST"),
            "{e}"
        );
        let faults = Faults::new();
        faults.set_named("over-quota", true).unwrap();
        faults.set_named("svn-not-synced", true).unwrap();
        assert_eq!(faults.active_names(), ["svn-not-synced", "over-quota"]);
        faults.set_named("over-quota", false).unwrap();
        assert!(!faults.openstack_on(&OpenStackFault::OverQuota));
        faults.set_vm_off("qns01", true);
        assert!(faults.host_down("qns01") && faults.active() == [Fault::SvnNotSynced]);
    }

    #[test]
    fn faults_switch_on_and_off() {
        let faults = Faults::new();
        faults.set(Fault::SvnNotSynced, true);
        faults.set(Fault::SvnNotSynced, true);
        faults.set(
            Fault::CommandHangs {
                pattern: "statusall".into(),
            },
            true,
        );
        assert_eq!(faults.active().len(), 2);
        assert_eq!(
            faults.hangs("timeout 5 statusall.sh").as_deref(),
            Some("statusall")
        );
        faults.set(Fault::SvnNotSynced, false);
        assert!(!faults.svn_not_synced());
    }
}
