//! The one simulated site that every VM's SSH server, the control API and the
//! tests share: each VM's files, monit and systemd state, the mongo replica
//! sets and ESC. Commands read and change it; nothing else is "real".
//!
//! - [`vfs`]: the per-VM filesystem (crontabs, SVN repositories and backups are
//!   files in it, so SFTP, `cat` and the tools agree).
//! - [`topology`]: the fixed blueprint (VMs, roles, replica sets).
//! - [`initial`]: the healthy site the lab starts with.
//! - [`svn`]: the SVN repositories as files in the VMs' filesystems.

pub mod initial;
pub mod svn;
pub mod topology;
pub mod vfs;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use topology::{MemberRole, Role};
use vfs::{FsError, Vfs};

/// What monit watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitService {
    pub name: String,
    /// `Process`, or `System` for the VM itself.
    pub kind: MonitKind,
    /// `monit stop` clears it ("Not monitored"); `monit start` sets it.
    pub monitored: bool,
}

/// The kind of a monit service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitKind {
    System,
    Process,
}

impl MonitKind {
    /// As monit prints it.
    pub fn label(self) -> &'static str {
        match self {
            MonitKind::System => "System",
            MonitKind::Process => "Process",
        }
    }
}

/// One VM.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub role: Role,
    /// Internal address (what `/etc/hosts` and the replica status show).
    pub ip: String,
    pub fs: Vfs,
    pub monit: Vec<MonitService>,
    /// systemd units and whether they are active.
    pub units: BTreeMap<String, bool>,
}

/// A member of a replica set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub host: String,
    pub role: MemberRole,
    pub priority: u8,
}

/// A mongo replica set and the data it holds.
#[derive(Clone, Debug)]
pub struct ReplicaSet {
    pub name: String,
    pub label: String,
    /// `build_set.sh --<option>`.
    pub option: String,
    pub port: u16,
    pub members: Vec<Member>,
    /// database → collection → document count.
    pub databases: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ReplicaSet {
    /// The systemd unit that runs this set's mongod on a member.
    pub fn unit(&self) -> String {
        format!("sessionmgr-{}", self.port)
    }
}

/// The Elastic Services Controller pair.
#[derive(Clone, Debug)]
pub struct Esc {
    /// Which ESC VM is master (`escadm restart` switches it over).
    pub master: String,
    /// Deployment state of each CPS VM as ESC sees it (`VM_ALIVE_STATE`, ...).
    pub vm_states: BTreeMap<String, String>,
}

/// The whole site.
#[derive(Clone, Debug)]
pub struct Site {
    pub hosts: BTreeMap<String, Host>,
    pub replica_sets: Vec<ReplicaSet>,
    pub esc: Esc,
    /// When the site "booted" (uptimes are counted from it).
    pub booted: i64,
}

impl Site {
    /// A VM by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    /// A VM by name, to change it.
    pub fn host_mut(&mut self, name: &str) -> Option<&mut Host> {
        self.hosts.get_mut(name)
    }

    /// Whether a member's mongod runs (its `sessionmgr-<port>` unit is active).
    pub fn member_running(&self, set: &ReplicaSet, member: &Member) -> bool {
        self.host(&member.host)
            .and_then(|h| h.units.get(&set.unit()))
            .copied()
            .unwrap_or(false)
    }

    /// The replica set serving a port.
    pub fn set_by_port(&self, port: u16) -> Option<&ReplicaSet> {
        self.replica_sets.iter().find(|s| s.port == port)
    }

    /// The replica set holding a database.
    pub fn set_by_database_mut(&mut self, db: &str) -> Option<&mut ReplicaSet> {
        self.replica_sets
            .iter_mut()
            .find(|s| s.databases.contains_key(db))
    }
}

/// A handle to the shared site state; clones share it.
#[derive(Clone)]
pub struct SiteState {
    inner: Arc<Mutex<Site>>,
    /// Every command a VM was asked to execute, in order, as (VM, command): what
    /// sshd would log. Tests use it to show that something never reached a host.
    journal: Arc<Mutex<Vec<(String, String)>>>,
    /// The cloud's power switch, which ESC asks to stop, start or reboot VMs.
    power: Arc<Mutex<Option<PowerHook>>>,
}

/// What ESC asks the cloud to do to a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    Stop,
    Start,
    Reboot,
}

/// Carries out a [`PowerAction`] on a VM, or says why the cloud refuses it.
pub type PowerHook = Arc<dyn Fn(&str, PowerAction) -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for SiteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteState")
    }
}

impl Default for SiteState {
    fn default() -> Self {
        Self::new()
    }
}

impl SiteState {
    /// The healthy site the lab starts with.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(initial::site())),
            journal: Arc::new(Mutex::new(Vec::new())),
            power: Arc::new(Mutex::new(None)),
        }
    }

    /// Connects the cloud that powers the VMs (the lab's OpenStack).
    pub fn set_power_hook(&self, hook: PowerHook) {
        *self.power.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Asks the cloud to power `vm`; `None` when no cloud is connected (ESC's
    /// own view still changes then).
    pub fn request_power(&self, vm: &str, action: PowerAction) -> Option<Result<(), String>> {
        let hook = self.power.lock().unwrap_or_else(|e| e.into_inner()).clone();
        hook.map(|h| h(vm, action))
    }

    fn lock(&self) -> MutexGuard<'_, Site> {
        // A panic while holding the lock leaves the site as it was at that
        // point; the simulation carries on rather than failing every command.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with the site locked. Never hold on to it across an await: the
    /// guard is not `Send`, so the compiler refuses that anyway.
    pub fn with<R>(&self, f: impl FnOnce(&mut Site) -> R) -> R {
        f(&mut self.lock())
    }

    /// A copy of the whole site (for an admin page or assertions).
    pub fn snapshot(&self) -> Site {
        self.lock().clone()
    }

    /// A file's content on a VM.
    pub fn read_file(&self, host: &str, path: &str) -> Result<Vec<u8>, FsError> {
        let path = vfs::normalize("/", path);
        self.with(|s| {
            s.host(host)
                .ok_or(FsError::NotFound)
                .and_then(|h| h.fs.read(&path).map(<[u8]>::to_vec))
        })
    }

    /// Writes a file on a VM, creating its directories (what a transfer does).
    pub fn write_file(&self, host: &str, path: &str, data: &[u8]) -> Result<(), FsError> {
        let path = vfs::normalize("/", path);
        self.with(|s| {
            let h = s.host_mut(host).ok_or(FsError::NotFound)?;
            h.fs.mkdir(vfs::parent(&path), true)?;
            h.fs.write(&path, data, false)
        })
    }

    /// Notes that `vm` was asked to execute `command`.
    pub fn record_exec(&self, vm: &str, command: &str) {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((vm.to_string(), command.to_string()));
    }

    /// The commands `vm` was asked to execute, in order.
    pub fn commands_received(&self, vm: &str) -> Vec<String> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(h, _)| h == vm)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Whether every monit service on every VM is monitored.
    pub fn all_monitored(&self) -> bool {
        self.with(|s| {
            s.hosts
                .values()
                .all(|h| h.monit.iter().all(|m| m.monitored))
        })
    }
}
