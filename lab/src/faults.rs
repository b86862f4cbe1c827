//! Faults an operator or a test switches on to see how the portal copes.
//!
//! A fault is an overlay, not a change of state: while it is on, the affected
//! commands and connections behave as broken; switching it off restores what
//! the state says. So a test can break something, watch the portal fail, repair
//! it with one call and retry.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

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
#[error("unknown fault {given:?}: valid faults are {FAULT_SYNTAX}{hint}")]
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

/// The set of active faults; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Mutex<Vec<Fault>>>,
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

    /// Whether a VM is down.
    pub fn host_down(&self, host: &str) -> bool {
        self.is_on(&Fault::HostDown {
            host: host.to_string(),
        })
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
