//! The Recovery Portal lab: a simulated Ultra-M CPS site whose VMs are real SSH
//! servers on 127.0.0.1, so the portal (and an operator with OpenSSH) can run
//! the recovery procedures against something that answers like a site.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lab::LabError> {
//! let lab = lab::Lab::start(std::path::Path::new("/tmp/lab")).await?;
//! lab.write_out(std::path::Path::new("/tmp/lab")).map_err(lab::LabError::from)?;
//! // ssh -F /tmp/lab/ssh_config pcrfclient01 'crontab -l'
//! lab.faults().set(lab::Fault::ReplicaSetUnhealthy, true);
//! lab.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Table of contents:
//! - [`Lab`]: starting, describing and stopping the lab (this file).
//! - [`state`]: the one shared site state (per-VM files, monit, systemd,
//!   replica sets, SVN, ESC) and the healthy site it starts as.
//! - [`faults`]: injectable faults ([`Fault`], [`Faults`]).
//! - [`shell`]: the shell each VM runs commands with (parser, interpreter).
//! - [`commands`]: the commands and tools the VMs answer.
//! - [`outputs`]: how each tool's output looks, in one place.
//! - [`ssh_server`], [`jump`], [`sftp`]: the SSH side (russh server,
//!   `direct-tcpip` on the jump host, the SFTP subsystem).
//! - [`keys`]: the persisted host and client keys.
//! - [`control`]: the HTTP control API.
//! - [`site_files`]: `known_hosts`, `ssh_config` and the portal's sites file.
//! - [`backup_store`]: sample files for the portal's backup store.
//! - [`archive`]: real `.tar.gz` archives of virtual files.
//! - [`openstack`]: the simulated OpenStack API (Keystone, Nova, Glance,
//!   Heat) over HTTP on the same site state.

pub mod archive;
pub mod backup_store;
pub mod commands;
pub mod control;
pub mod faults;
pub mod jump;
pub mod keys;
pub mod openstack;
pub mod outputs;
pub mod sftp;
pub mod shell;
pub mod site_files;
pub mod ssh_server;
pub mod state;

pub use faults::{Fault, Faults, OpenStackFault};
pub use openstack::{Credentials as OpenStackCredentials, OpenStack};
pub use shell::Pace;
pub use state::SiteState;

use keys::{HostKeys, KeyError};
use state::topology::{JUMP_HOST, VMS};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The user the VMs accept (the procedures run as root).
pub const USER: &str = "root";

/// A VM of the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabHost {
    pub name: String,
    pub port: u16,
    /// The jump host (cluman), reached directly; every other VM goes through it.
    pub jump: bool,
}

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot listen on 127.0.0.1 for {what}: {source}")]
    Bind {
        what: String,
        source: std::io::Error,
    },
    #[error("lab directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running lab.
pub struct Lab {
    dir: PathBuf,
    hosts: Vec<LabHost>,
    host_keys: BTreeMap<String, HostKeys>,
    state: SiteState,
    faults: Faults,
    control_addr: SocketAddr,
    openstack: OpenStack,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Lab {
    /// Starts the lab with its state in `dir` (created if needed): loads or
    /// creates every VM's host key (`keys/<vm>_ed25519`, `keys/alt/...`) and
    /// the client key (`id_ed25519`), binds every VM on 127.0.0.1:0, starts the
    /// control API (its URL also goes to `dir/control_url`) and writes
    /// `dir/known_hosts`. Long tools print at a realistic pace.
    pub async fn start(dir: &Path) -> Result<Lab, LabError> {
        Self::start_with_pace(dir, Pace::realistic()).await
    }

    /// [`Lab::start`] with another pace for long tools' output
    /// ([`Pace::instant`] for fast tests).
    pub async fn start_with_pace(dir: &Path, pace: Pace) -> Result<Lab, LabError> {
        let dir_err = |source| LabError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let dir = std::fs::canonicalize(dir).map_err(dir_err)?;
        let client = keys::load_or_create(&dir.join("id_ed25519"), "portal@recovery-lab", true)?;

        let mut listeners = Vec::new();
        let mut host_keys = BTreeMap::new();
        let mut hosts = Vec::new();
        for vm in VMS {
            host_keys.insert(vm.name.to_string(), keys::host_keys(&dir, vm.name)?);
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|source| LabError::Bind {
                    what: vm.name.to_string(),
                    source,
                })?;
            let port = listener.local_addr()?.port();
            hosts.push(LabHost {
                name: vm.name.to_string(),
                port,
                jump: vm.name == JUMP_HOST,
            });
            listeners.push((vm.name.to_string(), listener));
        }

        let state = SiteState::new();
        let faults = Faults::new();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = ssh_server::Shared {
            state: state.clone(),
            faults: faults.clone(),
            client_key: client.public_key().clone(),
            user: USER.to_string(),
            ports: Arc::new(hosts.iter().map(|h| (h.name.clone(), h.port)).collect()),
            pace,
            shutdown: shutdown_rx.clone(),
        };
        let mut tasks = Vec::new();
        for (name, listener) in listeners {
            let keys = host_keys.get(&name).cloned().ok_or_else(|| {
                LabError::Io(std::io::Error::other(format!("no host key for {name}")))
            })?;
            tasks.push(tokio::spawn(ssh_server::serve(
                name,
                listener,
                keys,
                shared.clone(),
            )));
        }

        let control = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| LabError::Bind {
                what: "the control API".to_string(),
                source,
            })?;
        let control_addr = control.local_addr()?;
        let router = control::router(
            state.clone(),
            faults.clone(),
            hosts
                .iter()
                .map(|h| control::HostInfo {
                    name: h.name.clone(),
                    port: h.port,
                    jump: h.jump,
                })
                .collect(),
        );
        let mut control_shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = control_shutdown.changed().await;
            };
            if let Err(e) = axum::serve(control, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!("lab control API stopped: {e}");
            }
        }));

        let os_listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| LabError::Bind {
                what: "the OpenStack API".to_string(),
                source,
            })?;
        let os_addr = os_listener.local_addr()?;
        // Each intermediate state of an OpenStack action lasts one step: short
        // but observable, shorter still for fast tests.
        let step = if pace == Pace::instant() {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(500)
        };
        let openstack = OpenStack::new(
            format!("http://{os_addr}"),
            &dir,
            state.clone(),
            faults.clone(),
            step,
        )?;
        let os_router = openstack.router();
        let mut os_shutdown = shutdown_rx;
        tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = os_shutdown.changed().await;
            };
            if let Err(e) = axum::serve(os_listener, os_router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!("lab OpenStack API stopped: {e}");
            }
        }));

        let lab = Lab {
            dir,
            hosts,
            host_keys,
            state,
            faults,
            control_addr,
            openstack,
            shutdown,
            tasks,
        };
        std::fs::write(
            lab.dir.join("control_url"),
            format!("{}\n", lab.control_url()),
        )?;
        std::fs::write(lab.dir.join("known_hosts"), lab.known_hosts()?)?;
        std::fs::write(
            lab.dir.join("openstack_url"),
            format!("{}\n", lab.openstack_auth_url()),
        )?;
        // What the sites file below names as the site's cloud.
        std::fs::write(lab.dir.join("clouds.yaml"), lab.clouds_yaml())?;
        Ok(lab)
    }

    /// The VMs and their ports.
    pub fn hosts(&self) -> Vec<LabHost> {
        self.hosts.clone()
    }

    /// The login user the VMs accept.
    pub fn user(&self) -> &str {
        USER
    }

    /// The lab's directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    fn known_hosts(&self) -> Result<String, KeyError> {
        let mut lines = Vec::new();
        for h in &self.hosts {
            if let Some(k) = self.host_keys.get(&h.name) {
                lines.push((h.clone(), keys::public_line(k.main.public_key())?));
            }
        }
        Ok(site_files::known_hosts(&lines))
    }

    /// The portal's sites file for one site named `site`: the lab's key and
    /// known_hosts by absolute path, cluman as jump host, every VM at
    /// 127.0.0.1 with its port.
    pub fn sites_toml(&self, site: &str) -> String {
        site_files::sites_toml(
            site,
            &self.hosts,
            USER,
            &self.key_path(),
            &self.known_hosts_path(),
            &self.dir.join("clouds.yaml"),
        )
    }

    /// Writes `known_hosts` into the lab directory, and `ssh_config`,
    /// `known_hosts`, `id_ed25519`(`.pub`), `sites.toml` (site `lab`) and
    /// `clouds.yaml` (cloud `lab`, for `openstack --os-cloud lab`) into `out`
    /// (which may be the lab directory).
    pub fn write_out(&self, out: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        let out = std::fs::canonicalize(out)?;
        let known = self.known_hosts().map_err(std::io::Error::other)?;
        std::fs::write(self.known_hosts_path(), &known)?;
        let key = out.join("id_ed25519");
        let known_path = out.join("known_hosts");
        if out != self.dir {
            std::fs::write(&known_path, &known)?;
            std::fs::copy(self.key_path(), &key)?;
            std::fs::copy(self.dir.join("id_ed25519.pub"), out.join("id_ed25519.pub"))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        std::fs::write(
            out.join("ssh_config"),
            site_files::ssh_config(&self.hosts, USER, &key, &known_path),
        )?;
        std::fs::write(
            out.join("sites.toml"),
            site_files::sites_toml(
                "lab",
                &self.hosts,
                USER,
                &key,
                &known_path,
                &out.join("clouds.yaml"),
            ),
        )?;
        std::fs::write(out.join("clouds.yaml"), self.clouds_yaml())?;
        Ok(())
    }

    /// `clouds.yaml` with one cloud, `lab`, logging in with the password.
    pub fn clouds_yaml(&self) -> String {
        let c = self.openstack.credentials();
        format!(
            "clouds:\n  lab:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      project_name: {}\n      user_domain_name: {}\n      project_domain_name: {}\n    region_name: {}\n    interface: public\n    identity_api_version: 3\n",
            c.auth_url,
            c.username,
            c.password,
            c.project_name,
            c.user_domain_name,
            c.project_domain_name,
            c.region_name,
        )
    }

    /// The simulated OpenStack (servers, images, timing).
    pub fn openstack(&self) -> OpenStack {
        self.openstack.clone()
    }

    /// The OpenStack API's root, such as `http://127.0.0.1:40124`.
    pub fn openstack_url(&self) -> String {
        self.openstack.base_url()
    }

    /// Keystone's URL for clients: `http://127.0.0.1:PORT/identity/v3`.
    pub fn openstack_auth_url(&self) -> String {
        self.openstack.auth_url()
    }

    /// User `admin`, password `lab-secret`, project `admin`, domain
    /// `Default`, region `RegionOne`, and an application credential.
    pub fn openstack_credentials(&self) -> OpenStackCredentials {
        self.openstack.credentials()
    }

    /// Registers a Glance image of `size` bytes of deterministic
    /// pseudo-random data, produced when downloaded (any size, nothing
    /// stored); md5 and sha512 are computed once, here. Returns its id.
    pub async fn add_generated_image(&self, name: &str, size: u64) -> String {
        self.openstack.add_generated_image(name, size).await
    }

    /// The shared site state.
    pub fn state(&self) -> SiteState {
        self.state.clone()
    }

    /// The fault switches.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The control API's base URL, such as `http://127.0.0.1:40123`.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// Writes the sample backup of `site` made on `date` (YYYY-MM-DD) under
    /// `store`, laid out as the runbooks' store endpoints expect; returns the
    /// paths written. See [`backup_store::seed`].
    pub fn seed_backup_store(
        &self,
        store: &Path,
        site: &str,
        date: &str,
    ) -> std::io::Result<Vec<PathBuf>> {
        backup_store::seed(store, site, date)
    }

    /// Stops every listener and connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}
