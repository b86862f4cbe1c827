//! Executors: the real clients that carry out steps on a site.
//!
//! - [`known_hosts`]: which host keys a site trusts (OpenSSH `known_hosts` format).
//! - [`site`]: the hosts of a site, and a run's connections to them.
//! - [`ssh`]: commands over SSH with russh, through the Cluster Manager as jump
//!   host, streamed, with timeouts and cancellation.
//! - [`transfer`]: files copied over SFTP between VMs and the backup store.
//! - [`executor`]: the engine's executor: all of the above for runs.
//! - [`directory`]: the same executor seen by the admin page: keys and lab faults.
//! - [`openstack`]: the OpenStack client (Keystone session, catalog, clouds.yaml).

pub mod directory;
pub mod executor;
pub mod known_hosts;
pub mod openstack;
pub mod site;
pub mod ssh;
pub mod transfer;
