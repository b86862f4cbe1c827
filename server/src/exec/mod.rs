//! Executors: the real clients that carry out steps on a site.
//!
//! - [`known_hosts`]: which host keys a site trusts (OpenSSH `known_hosts` format).
//! - [`ssh`]: commands over SSH with russh, through the Cluster Manager as jump
//!   host, streamed, with timeouts and cancellation.

pub mod known_hosts;
pub mod ssh;
