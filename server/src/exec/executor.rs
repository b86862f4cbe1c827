//! The engine's executor in the portal: commands over SSH and transfers over SFTP
//! on the configured sites, one connection per host reused within a run.

use super::known_hosts::KnownHosts;
use super::openstack::{actions, session::Session};
use super::site::{Site, SiteError, SiteSession};
use super::ssh::{Connector, Ending as SshEnding, OutputStream, SshError};
use super::transfer;
use app::ssr::engine::executor::{
    BoxFuture, CancelSignal, Emit, Ending, Executor, Finished, Job, OutputTx, SiteInfo,
};
use runbook::render::RenderedEndpoint;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) struct SiteEntry {
    pub(super) site: Arc<Site>,
    /// Built from the site's credentials and every trusted key; replaced when an
    /// admin trusts more keys.
    pub(super) connector: Connector,
    /// The keys of the site's known_hosts file.
    pub(super) file_keys: KnownHosts,
    /// Keys trusted in the portal: (known_hosts line, `import` or `confirmed`).
    pub(super) added: Vec<(String, String)>,
    /// Keys hosts presented that were refused, newest last.
    pub(super) refused: Vec<Refusal>,
    /// A session with the site's OpenStack, when it has one.
    pub(super) openstack: Option<Arc<Session>>,
}

/// A host key that was presented and refused.
#[derive(Clone, Debug)]
pub(super) struct Refusal {
    pub(super) host: String,
    pub(super) fingerprint: String,
    /// `unknown` or `changed`.
    pub(super) verdict: &'static str,
    /// The key as a known_hosts line for the host's names, to trust it.
    pub(super) line: String,
    pub(super) seen_at: chrono::DateTime<chrono::Utc>,
}

/// Reaches the configured sites.
pub struct SiteExecutor {
    pub(super) sites: Arc<Mutex<BTreeMap<String, SiteEntry>>>,
    /// Open connections, per run.
    pub(super) sessions: Mutex<HashMap<i64, Arc<SiteSession>>>,
    /// The backup store's root directory.
    store: PathBuf,
    /// The lab's faults, when the portal serves the lab.
    pub(super) lab: Option<lab::Faults>,
    /// Relative paths in site definitions made in the portal start here (the
    /// sites file's directory).
    pub(super) base: PathBuf,
    /// Where the files of sites defined in the portal must be; `base` unless set.
    secrets_dir: Option<PathBuf>,
}

impl SiteExecutor {
    /// An executor for `sites` (their keys and known hosts are read now, so a
    /// mistake stops the portal at start) and the backup store at `store`.
    pub fn new(sites: Vec<Site>, store: PathBuf) -> Result<Self, SiteError> {
        let mut entries = BTreeMap::new();
        for site in sites {
            let connector = site.connector()?;
            let file_keys = site.known_hosts()?;
            let openstack = site.openstack(&process_env())?;
            entries.insert(
                site.name.clone(),
                SiteEntry {
                    site: Arc::new(site),
                    connector,
                    file_keys,
                    added: Vec::new(),
                    refused: Vec::new(),
                    openstack,
                },
            );
        }
        Ok(Self {
            sites: Arc::new(Mutex::new(entries)),
            sessions: Mutex::new(HashMap::new()),
            store,
            lab: None,
            base: PathBuf::from("."),
            secrets_dir: None,
        })
    }

    /// The same, reading relative paths of sites defined in the portal from `base`.
    pub fn with_base(mut self, base: PathBuf) -> Self {
        self.base = base;
        self
    }

    /// The same, with the files of sites defined in the portal (key, known
    /// hosts, agent socket, clouds.yaml) allowed only inside `dir`.
    pub fn with_secrets_dir(mut self, dir: PathBuf) -> Self {
        self.secrets_dir = Some(dir);
        self
    }

    pub(super) fn secrets_dir(&self) -> &Path {
        self.secrets_dir.as_deref().unwrap_or(&self.base)
    }

    /// Adds `site` (its key and known hosts are read now).
    pub fn add(&self, site: Site) -> Result<(), SiteError> {
        let connector = site.connector()?;
        let file_keys = site.known_hosts()?;
        let openstack = site.openstack(&process_env())?;
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites.insert(
            site.name.clone(),
            SiteEntry {
                site: Arc::new(site),
                connector,
                file_keys,
                added: Vec::new(),
                refused: Vec::new(),
                openstack,
            },
        );
        Ok(())
    }

    /// The same, also offering the lab's faults to the admin page.
    pub fn with_lab(mut self, faults: lab::Faults) -> Self {
        self.lab = Some(faults);
        self
    }
}

/// Remembers a host key that was refused, for an admin to confirm.
fn note_refusal(sites: &Mutex<BTreeMap<String, SiteEntry>>, site: &str, error: &SshError) {
    {
        let (host, fingerprint, verdict, line) = match error {
            SshError::UnknownHostKey {
                host,
                fingerprint,
                presented,
            } => (host, fingerprint, "unknown", presented),
            SshError::HostKeyChanged {
                host,
                fingerprint,
                presented,
                ..
            } => (host, fingerprint, "changed", presented),
            _ => return,
        };
        let mut sites = sites.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = sites.get_mut(site) {
            entry
                .refused
                .retain(|r| !(r.host == *host && r.fingerprint == *fingerprint));
            entry.refused.push(Refusal {
                host: host.clone(),
                fingerprint: fingerprint.clone(),
                verdict,
                line: line.clone(),
                seen_at: chrono::Utc::now(),
            });
            // A bounded list: a host flapping between keys cannot grow it forever.
            let excess = entry.refused.len().saturating_sub(50);
            entry.refused.drain(..excess);
        }
    }
}

impl SiteExecutor {
    fn session(&self, run_id: i64, site: &str) -> Result<Arc<SiteSession>, String> {
        let sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sites
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
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|e| SiteInfo {
                name: e.site.name.clone(),
                description: e.site.description.clone(),
                openstack: e.openstack.is_some(),
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
        if let Job::OpenStack { action, args } = job {
            let cloud = self
                .sites
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(site)
                .map(|e| e.openstack.clone());
            let store = self.store.clone();
            let site = site.to_string();
            return Box::pin(async move {
                let cloud = match cloud {
                    None => return Err(format!("site {site:?} is not configured in this portal")),
                    Some(None) => {
                        return Err(format!(
                            "site {site:?} has no OpenStack cloud: set cloud = \"<name>\" for it in the sites file"
                        ))
                    }
                    Some(Some(c)) => c,
                };
                openstack_job(&cloud, &action, &args, &store, &output, cancel).await
            });
        }
        let session = self.session(run_id, site);
        let sites = self.sites.clone();
        let site = site.to_string();
        let store = self.store.clone();
        Box::pin(async move {
            let session = session?;
            match job {
                Job::Shell {
                    host,
                    command,
                    timeout_seconds,
                } => {
                    let connection = session.connection(&host).await.map_err(|e| {
                        note_refusal(&sites, &site, &e);
                        e.to_string()
                    })?;
                    let result = connection
                        .run(
                            &command,
                            Duration::from_secs(u64::from(timeout_seconds)),
                            cancel.cancelled(),
                            |stream, data| {
                                let output = output.clone();
                                async move {
                                    output
                                        .output(Emit::Output {
                                            stderr: stream == OutputStream::Stderr,
                                            bytes: data,
                                        })
                                        .await;
                                }
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
                            if let transfer::TransferError::Ssh(ssh) = &e {
                                note_refusal(&sites, &site, ssh);
                            }
                            for end in [&from, &to] {
                                if let RenderedEndpoint::Host { host, .. } = end {
                                    session.forget(host).await;
                                }
                            }
                            Err(e.to_string())
                        }
                    }
                }
                Job::OpenStack { .. } => Err("an OpenStack job reached the SSH executor".into()),
            }
        })
    }

    fn end_run(&self, run_id: i64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&run_id);
    }
}

/// The process environment, where clouds.yaml is looked for.
fn process_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Runs an OpenStack action, its lines into `output`; an API error ends it with
/// the API's message and, when there is a typical one, what to do next.
async fn openstack_job(
    cloud: &Session,
    action: &str,
    args: &std::collections::BTreeMap<String, String>,
    store: &std::path::Path,
    output: &OutputTx,
    cancel: CancelSignal,
) -> Result<Finished, String> {
    let action = runbook::model::OpenStackAction::from_name(action)
        .ok_or_else(|| format!("unknown OpenStack action {action:?}"))?;
    let say = |line: String| {
        let _ = output.send(Emit::line(line));
    };
    let progress = |p| {
        let _ = output.send(Emit::Progress(p));
    };
    let stop = cancel.clone();
    let cancelled = move || stop.is_cancelled();
    let report = actions::Report {
        say: &say,
        progress: &progress,
        cancelled: &cancelled,
    };
    let work = actions::run(cloud, action, args, store, &report);
    let result = tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => Err(actions::ActionError::Cancelled),
    };
    match result {
        Ok(done) => Ok(Finished {
            ending: Ending::Exited,
            exit_status: Some(0),
            transfer: done.transfer,
        }),
        Err(actions::ActionError::Cancelled) => Ok(Finished {
            ending: Ending::Cancelled,
            exit_status: None,
            transfer: None,
        }),
        Err(actions::ActionError::TimedOut {
            what,
            seconds,
            last,
        }) => {
            say(format!(
                "{what} did not happen within {seconds} s (last seen: {last})"
            ));
            Ok(Finished {
                ending: Ending::TimedOut,
                exit_status: None,
                transfer: None,
            })
        }
        Err(actions::ActionError::OpenStack(e)) => Err(match actions::advice(&e) {
            Some(next) => format!("{e}: {next}"),
            None => e.to_string(),
        }),
        Err(e) => Err(e.to_string()),
    }
}
