//! What the engine asks of whatever reaches the site: run a command on a host, or
//! copy a file. The portal's implementation speaks SSH and SFTP
//! (`server::exec`); the engine only sees this interface, so its rules do not
//! depend on the transport.

use crate::model::run_view::TransferRecord;
use runbook::render::RenderedEndpoint;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, watch};

/// A boxed future, as trait objects need them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One thing to do on a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Run `command` on `host`, ended after `timeout_seconds`.
    Shell {
        host: String,
        command: String,
        timeout_seconds: u32,
    },
    /// Copy a file between a host and another host or the backup store.
    Transfer {
        from: RenderedEndpoint,
        to: RenderedEndpoint,
    },
    /// Call the site's OpenStack: `action` (a runbook action name) with `args`.
    OpenStack {
        action: String,
        args: std::collections::BTreeMap<String, String>,
    },
}

/// How a job ended when it could run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

/// The result of a job that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub ending: Ending,
    pub exit_status: Option<i32>,
    /// For transfers: what was written.
    pub transfer: Option<TransferRecord>,
}

/// What a running job reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Output as it arrives: whether it is stderr, and the bytes.
    Output { stderr: bool, bytes: Vec<u8> },
    /// A progress reading of long work (shown as a bar, not stored as output).
    Progress(crate::model::progress::Progress),
}

impl Emit {
    /// A line of the portal's own on stdout.
    pub fn line(text: impl std::fmt::Display) -> Self {
        Emit::Output {
            stderr: false,
            bytes: format!("{text}\n").into_bytes(),
        }
    }
}

/// How many reports may wait between a job and the engine storing them.
pub const OUTPUT_QUEUE: usize = 64;

/// Where a job reports. The queue is bounded: a job whose output comes faster
/// than the engine stores it waits in [`OutputTx::output`] (back-pressure down
/// to the SSH channel), so memory stays bounded whatever a host prints.
#[derive(Clone, Debug)]
pub struct OutputTx(mpsc::Sender<Emit>);

impl OutputTx {
    /// A queue and its receiving end.
    pub fn channel() -> (Self, mpsc::Receiver<Emit>) {
        let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
        (Self(tx), rx)
    }

    /// Reports `emit`, waiting while the queue is full. False once the engine
    /// no longer listens.
    pub async fn output(&self, emit: Emit) -> bool {
        self.0.send(emit).await.is_ok()
    }

    /// Reports `emit` without waiting, from code that cannot (the portal's own
    /// occasional lines and progress readings). When the queue is full an
    /// intermediate progress reading is dropped (the next one replaces it); a
    /// line or a final reading is sent from a task of its own. False once the
    /// engine no longer listens.
    pub fn send(&self, emit: Emit) -> bool {
        match self.0.try_send(emit) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(Emit::Progress(p))) if !p.finished => true,
            Err(mpsc::error::TrySendError::Full(line)) => {
                let tx = self.0.clone();
                tokio::spawn(async move {
                    let _ = tx.send(line).await;
                });
                true
            }
        }
    }
}

/// Completes when the operator stops the step.
#[derive(Clone, Debug)]
pub struct CancelSignal(watch::Receiver<bool>);

impl CancelSignal {
    /// A signal and the switch that fires it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Completes once the step is stopped; never, if nobody can stop it any more.
    pub async fn cancelled(mut self) {
        if self.0.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the step has been stopped.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }
}

/// A site the portal can run steps on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInfo {
    pub name: String,
    pub description: String,
    /// The site has an OpenStack cloud the portal can call.
    pub openstack: bool,
}

/// Reaches sites. A job that cannot run at all (unknown host, refused host key,
/// connection refused) is an `Err` with a message for the operator; nothing was
/// executed then.
pub trait Executor: Send + Sync + 'static {
    /// The sites configured.
    fn sites(&self) -> Vec<SiteInfo>;

    /// Runs `job` for run `run_id` on `site`, streaming output into `output`.
    fn execute(
        &self,
        run_id: i64,
        site: &str,
        job: Job,
        output: OutputTx,
        cancel: CancelSignal,
    ) -> BoxFuture<Result<Finished, String>>;

    /// The run is over: its connections can be closed.
    fn end_run(&self, run_id: i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn chunk() -> Emit {
        Emit::Output {
            stderr: false,
            bytes: vec![b'x'; 32 * 1024],
        }
    }

    #[tokio::test]
    async fn a_job_waits_while_the_queue_is_full() {
        let (tx, mut rx) = OutputTx::channel();
        for _ in 0..OUTPUT_QUEUE {
            assert_eq!(tx.output(chunk()).now_or_never(), Some(true));
        }
        // Full: the next chunk waits until the engine has taken one.
        let mut waiting = Box::pin(tx.output(chunk()));
        assert!((&mut waiting).now_or_never().is_none());
        assert!(rx.recv().await.is_some());
        assert!(waiting.await);
        // The portal's own lines never wait, and are not lost.
        assert!(tx.send(Emit::line("a line of the portal's")));
        drop(tx);
        let mut received = 0;
        while rx.recv().await.is_some() {
            received += 1;
        }
        assert_eq!(received, OUTPUT_QUEUE + 1);
    }
}
