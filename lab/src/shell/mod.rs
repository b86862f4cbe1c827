//! The shell each simulated VM runs commands with.
//!
//! - [`parse`]: command text into a syntax tree (a POSIX `sh` subset).
//! - [`interp`]: running the tree against the site, with output streamed.
//!
//! The portal sends `timeout --signal=TERM --kill-after=10 N sh -c '<command>'`;
//! that needs no special case: `timeout` and `sh -c` are commands like any other.

pub mod interp;
pub mod parse;

pub use interp::{glob_match, BoxFut, Chunk, Io, Pace, Shell, Sink, Stream};

use crate::faults::Faults;
use crate::state::SiteState;

/// What a command printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl Output {
    /// stdout then stderr, the way the portal checks expectations.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `command` on `host` as a fresh login would and collects its output
/// (no delays between lines). For tests and tools that need no SSH.
pub async fn run_collect(state: &SiteState, faults: &Faults, host: &str, command: &str) -> Output {
    let mut sh = Shell::new(host, state.clone(), faults.clone(), Pace::instant());
    let io = Io::buffered();
    let status = sh.run_script(command, &io).await;
    Output {
        stdout: String::from_utf8_lossy(&io.out.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&io.err.contents()).into_owned(),
        status,
    }
}
