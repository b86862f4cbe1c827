//! Executors: the real clients that carry out steps on a site.
//!
//! - [`known_hosts`]: which host keys a site trusts (OpenSSH `known_hosts` format).
//! - [`site`]: the hosts of a site, and a run's connections to them.
//! - [`ssh`]: commands over SSH with russh, through the Cluster Manager as jump
//!   host, streamed, with timeouts and cancellation.

pub mod known_hosts;
pub mod site;
pub mod ssh;
