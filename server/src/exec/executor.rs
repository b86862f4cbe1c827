//! The engine's executor in the portal: commands over SSH and transfers over SFTP
//! on the configured sites, one connection per host reused within a run.

use super::site::{Site, SiteError, SiteSession};
use super::ssh::{Connector, Ending as SshEnding, OutputStream};
use super::transfer;
use app::ssr::engine::executor::{
    BoxFuture, CancelSignal, Ending, Executor, Finished, Job, OutputTx, SiteInfo,
};
use runbook::render::RenderedEndpoint;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct SiteEntry {
    site: Arc<Site>,
    connector: Connector,
}

/// Reaches the configured sites.
pub struct SiteExecutor {
    sites: BTreeMap<String, SiteEntry>,
    /// Open connections, per run.
    sessions: Mutex<HashMap<i64, Arc<SiteSession>>>,
    /// The backup store's root directory.
    store: PathBuf,
}

impl SiteExecutor {
    /// An executor for `sites` (their keys and known hosts are read now, so a
    /// mistake stops the portal at start) and the backup store at `store`.
    pub fn new(sites: Vec<Site>, store: PathBuf) -> Result<Self, SiteError> {
        let mut entries = BTreeMap::new();
        for site in sites {
            let connector = site.connector()?;
            entries.insert(
                site.name.clone(),
                SiteEntry {
                    site: Arc::new(site),
                    connector,
                },
            );
        }
        Ok(Self {
            sites: entries,
            sessions: Mutex::new(HashMap::new()),
            store,
        })
    }

    fn session(&self, run_id: i64, site: &str) -> Result<Arc<SiteSession>, String> {
        let entry = self
            .sites
            .get(site)
            .ok_or_else(|| format!("site {site:?} is not configured in this portal"))?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(sessions
            .entry(run_id)
            .or_insert_with(|| {
                Arc::new(SiteSession::new(
                    entry.site.clone(),
                    entry.connector.clone(),
                ))
            })
            .clone())
    }
}

impl Executor for SiteExecutor {
    fn sites(&self) -> Vec<SiteInfo> {
        self.sites
            .values()
            .map(|e| SiteInfo {
                name: e.site.name.clone(),
                description: e.site.description.clone(),
            })
            .collect()
    }

    fn execute(
        &self,
        run_id: i64,
        site: &str,
        job: Job,
        output: OutputTx,
        cancel: CancelSignal,
    ) -> BoxFuture<Result<Finished, String>> {
        let session = self.session(run_id, site);
        let store = self.store.clone();
        Box::pin(async move {
            let session = session?;
            match job {
                Job::Shell {
                    host,
                    command,
                    timeout_seconds,
                } => {
                    let connection = session.connection(&host).await.map_err(|e| e.to_string())?;
                    let result = connection
                        .run(
                            &command,
                            Duration::from_secs(u64::from(timeout_seconds)),
                            cancel.cancelled(),
                            |stream, data| {
                                let _ =
                                    output.send((stream == OutputStream::Stderr, data.to_vec()));
                            },
                        )
                        .await;
                    match result {
                        Ok(outcome) => Ok(Finished {
                            ending: match outcome.ending {
                                SshEnding::Exited => Ending::Exited,
                                SshEnding::TimedOut => Ending::TimedOut,
                                SshEnding::Cancelled => Ending::Cancelled,
                            },
                            exit_status: outcome.exit_status.map(|s| s as i32),
                            transfer: None,
                        }),
                        Err(e) => {
                            // A broken connection is not reused: a retry reconnects.
                            session.forget(&host).await;
                            Err(e.to_string())
                        }
                    }
                }
                Job::Transfer { from, to } => {
                    match transfer::copy(&session, &store, &from, &to, &output, cancel).await {
                        Ok(record) => Ok(Finished {
                            ending: Ending::Exited,
                            exit_status: None,
                            transfer: Some(record),
                        }),
                        Err(transfer::TransferError::Cancelled(_)) => Ok(Finished {
                            ending: Ending::Cancelled,
                            exit_status: None,
                            transfer: None,
                        }),
                        Err(e) => {
                            for end in [&from, &to] {
                                if let RenderedEndpoint::Host { host, .. } = end {
                                    session.forget(host).await;
                                }
                            }
                            Err(e.to_string())
                        }
                    }
                }
            }
        })
    }

    fn end_run(&self, run_id: i64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&run_id);
    }
}
