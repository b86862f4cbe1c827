//! Commands over SSH (russh), the way operators run them: key authentication
//! (a key file, or the identities of a running ssh-agent),
//! host keys checked against the site's known hosts before anything is sent, the
//! internal VMs reached through the Cluster Manager as jump host (`ssh -J`),
//! output streamed as it comes, every command under a remote `timeout`.

use super::known_hosts::{fingerprint, host_token, KnownHosts, Verdict};
use runbook::render::remote_command;
use russh::client::{self, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{AgentAuthError, ChannelMsg, Disconnect, Sig};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where to connect, and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The site's name for the VM, such as `pcrfclient01`.
    pub name: String,
    /// The address to connect to (from the jump host, for internal VMs).
    pub address: String,
    pub port: u16,
    pub user: String,
}

/// Why a command could not be run. Every host-key problem means no command was sent.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{host}: the host key is not known (fingerprint {fingerprint}); no command was sent. An admin must confirm this fingerprint or import the site's known_hosts.")]
    UnknownHostKey {
        host: String,
        fingerprint: String,
        /// The presented key as a known_hosts line for the host's names.
        presented: String,
    },
    #[error("{host}: the host key has CHANGED (now {fingerprint}; known_hosts line {line} has another); no command was sent. This can be an attack: check with the site before trusting the new key.")]
    HostKeyChanged {
        host: String,
        fingerprint: String,
        line: usize,
        /// The presented key as a known_hosts line for the host's names.
        presented: String,
    },
    #[error("{host}: the host key {fingerprint} is revoked; no command was sent.")]
    RevokedHostKey { host: String, fingerprint: String },
    #[error("{host}: the server refused the key for user {user}")]
    AuthenticationFailed { host: String, user: String },
    #[error("{host}: cannot connect to {address}: {message}")]
    Connect {
        host: String,
        address: String,
        message: String,
    },
    #[error("{host}: no answer from {address} within {seconds} s")]
    ConnectTimeout {
        host: String,
        address: String,
        seconds: u64,
    },
    #[error("{host}: SSH error: {message}")]
    Protocol { host: String, message: String },
    #[error("cannot use the SSH key {path}: {message}")]
    Key { path: String, message: String },
    #[error("{host}: {message}")]
    Agent { host: String, message: String },
}

/// How a connector proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// A private key (read from a file with [`load_key`]).
    Key(Arc<PrivateKey>),
    /// The identities of a running ssh-agent, tried in turn: the agent listening
    /// at `socket`, or at `SSH_AUTH_SOCK` when it is `None`.
    Agent { socket: Option<PathBuf> },
}

/// The ssh-agent's socket: `socket`, or `SSH_AUTH_SOCK`.
fn agent_socket(socket: Option<&Path>) -> Result<PathBuf, String> {
    match socket {
        Some(path) => Ok(path.to_path_buf()),
        None => std::env::var_os("SSH_AUTH_SOCK")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| "SSH_AUTH_SOCK is not set".to_string()),
    }
}

/// Connects to the ssh-agent at `socket` (`None`: at `SSH_AUTH_SOCK`) and lists
/// its identities; an agent without any is an error. The error completes the
/// sentence "... uses the ssh-agent, but ...".
pub async fn agent_identities(
    socket: Option<&Path>,
) -> Result<(AgentClient<tokio::net::UnixStream>, Vec<AgentIdentity>), String> {
    let path = agent_socket(socket)?;
    let mut agent = AgentClient::connect_uds(&path)
        .await
        .map_err(|e| format!("the agent at {} cannot be reached: {e}", path.display()))?;
    let identities = agent.request_identities().await.map_err(|e| {
        format!(
            "the agent at {} did not list its identities: {e}",
            path.display()
        )
    })?;
    if identities.is_empty() {
        return Err(format!(
            "the agent at {} holds no identities (add the key with ssh-add)",
            path.display()
        ));
    }
    Ok((agent, identities))
}

/// Reads a private key (ed25519, RSA, ECDSA) from an OpenSSH key file,
/// decrypting it with `passphrase` when it is encrypted.
pub fn load_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, SshError> {
    russh::keys::load_secret_key(path, passphrase).map_err(|e| SshError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// What the host-key check found: the verdict and the key's fingerprint.
type Seen = Arc<Mutex<Option<(Verdict, String, String)>>>;

/// Checks the server's key; remembers what it found so a refusal can be explained.
struct Verifier {
    names: Vec<(String, u16)>,
    known: Arc<KnownHosts>,
    seen: Seen,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (verdict, print, presented) = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                // Trusted under any of the host's names; otherwise the worst finding.
                let verdicts: Vec<Verdict> = self
                    .names
                    .iter()
                    .map(|(h, p)| self.known.check(h, *p, key))
                    .collect();
                let verdict = if verdicts.contains(&Verdict::Trusted)
                    && !verdicts.contains(&Verdict::Revoked)
                {
                    Verdict::Trusted
                } else if verdicts.contains(&Verdict::Revoked) {
                    Verdict::Revoked
                } else {
                    verdicts
                        .into_iter()
                        .find(|v| matches!(v, Verdict::Changed { .. }))
                        .unwrap_or(Verdict::Unknown)
                };
                let names: Vec<String> =
                    self.names.iter().map(|(h, p)| host_token(h, *p)).collect();
                let presented = key
                    .to_openssh()
                    .map(|k| format!("{} {k}", names.join(",")))
                    .unwrap_or_default();
                (verdict, fingerprint(key), presented)
            }
            PublicKeyOrCertificate::Certificate(_) => (
                Verdict::Unknown,
                "(a host certificate)".to_string(),
                String::new(),
            ),
        };
        let trusted = verdict == Verdict::Trusted;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((verdict, print, presented));
        }
        Ok(trusted)
    }
}

/// Opens connections with one set of credentials and one set of trusted host keys.
#[derive(Clone)]
pub struct Connector {
    config: Arc<client::Config>,
    credentials: Credentials,
    /// The site the connector is for, named in agent errors.
    site: Option<String>,
    known: Arc<KnownHosts>,
    connect_timeout: Duration,
}

/// An authenticated connection to one host; reused for every step on it.
pub struct Connection {
    host: String,
    handle: Handle<Verifier>,
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited (see the status).
    Exited,
    /// Its timeout ended it.
    TimedOut,
    /// The operator cancelled it.
    Cancelled,
}

/// The result of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub ending: Ending,
    pub exit_status: Option<u32>,
    /// The signal that ended it, if one did.
    pub exit_signal: Option<String>,
}

/// `timeout` exits with this status when it ended the command.
const TIMEOUT_EXIT_STATUS: u32 = 124;
/// How long past a step's timeout the portal waits for the remote `timeout` before
/// it gives up on the channel itself.
const LOCAL_GRACE: Duration = Duration::from_secs(15);

impl Connector {
    /// A connector using `key` and trusting the keys in `known`.
    pub fn new(key: PrivateKey, known: KnownHosts) -> Self {
        Self::with_credentials(Credentials::Key(Arc::new(key)), known)
    }

    /// A connector using `credentials` and trusting the keys in `known`.
    pub fn with_credentials(credentials: Credentials, known: KnownHosts) -> Self {
        let config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(3600)),
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        };
        Self {
            config: Arc::new(config),
            credentials,
            site: None,
            known: Arc::new(known),
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// The same connector trusting `known` instead.
    pub fn trusting(&self, known: KnownHosts) -> Self {
        Self {
            known: Arc::new(known),
            ..self.clone()
        }
    }

    /// The same connector, naming `site` in its errors.
    pub fn for_site(mut self, site: impl Into<String>) -> Self {
        self.site = Some(site.into());
        self
    }

    fn verifier(&self, target: &Endpoint) -> (Verifier, Seen) {
        let seen = Arc::new(Mutex::new(None));
        let names = vec![
            (target.name.clone(), target.port),
            (target.address.clone(), target.port),
        ];
        (
            Verifier {
                names,
                known: self.known.clone(),
                seen: seen.clone(),
            },
            seen,
        )
    }

    /// Turns a failed handshake into the host-key error it was, if it was one.
    fn explain(target: &Endpoint, seen: &Seen, err: russh::Error) -> SshError {
        let host = target.name.clone();
        match seen.lock().ok().and_then(|s| s.clone()) {
            Some((Verdict::Unknown, fingerprint, presented)) => SshError::UnknownHostKey {
                host,
                fingerprint,
                presented,
            },
            Some((Verdict::Changed { line }, fingerprint, presented)) => SshError::HostKeyChanged {
                host,
                fingerprint,
                line,
                presented,
            },
            Some((Verdict::Revoked, fingerprint, _)) => {
                SshError::RevokedHostKey { host, fingerprint }
            }
            _ => SshError::Connect {
                host,
                address: format!("{}:{}", target.address, target.port),
                message: err.to_string(),
            },
        }
    }

    async fn authenticate(
        &self,
        target: &Endpoint,
        mut handle: Handle<Verifier>,
    ) -> Result<Connection, SshError> {
        let protocol = |e: russh::Error| SshError::Protocol {
            host: target.name.clone(),
            message: e.to_string(),
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(protocol)?
            .flatten();
        let accepted = match &self.credentials {
            Credentials::Key(key) => handle
                .authenticate_publickey(
                    target.user.clone(),
                    PrivateKeyWithHashAlg::new(key.clone(), hash),
                )
                .await
                .map_err(protocol)?
                .success(),
            Credentials::Agent { socket } => {
                self.authenticate_with_agent(target, &mut handle, socket.as_deref(), hash)
                    .await?
            }
        };
        if !accepted {
            return Err(SshError::AuthenticationFailed {
                host: target.name.clone(),
                user: target.user.clone(),
            });
        }
        Ok(Connection {
            host: target.name.clone(),
            handle,
        })
    }

    /// Offers the agent's identities in turn; whether one was accepted.
    async fn authenticate_with_agent(
        &self,
        target: &Endpoint,
        handle: &mut Handle<Verifier>,
        socket: Option<&Path>,
        hash: Option<HashAlg>,
    ) -> Result<bool, SshError> {
        let who = match &self.site {
            Some(site) => format!("site {site}"),
            None => "this connection".to_string(),
        };
        let agent_error = |message: String| SshError::Agent {
            host: target.name.clone(),
            message: format!("{who} uses the ssh-agent, but {message}"),
        };
        let (mut agent, identities) = agent_identities(socket).await.map_err(agent_error)?;
        let mut refused_to_sign = None;
        for identity in identities {
            let key = identity.public_key().into_owned();
            let hash_alg = if key.algorithm().is_rsa() { hash } else { None };
            match handle
                .authenticate_publickey_with(target.user.clone(), key, hash_alg, &mut agent)
                .await
            {
                Ok(result) if result.success() => return Ok(true),
                Ok(_) => {}
                // The agent would not sign with this one (a confirmation refused,
                // a locked agent): the next may do.
                Err(AgentAuthError::Key(e)) => {
                    refused_to_sign = Some(format!(
                        "the agent did not sign with {} ({}): {e}",
                        identity.public_key().algorithm(),
                        identity.comment()
                    ));
                }
                Err(e @ AgentAuthError::Send(_)) => {
                    return Err(SshError::Protocol {
                        host: target.name.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
        match refused_to_sign {
            Some(message) => Err(agent_error(message)),
            None => Ok(false),
        }
    }

    async fn within<T>(
        &self,
        target: &Endpoint,
        work: impl Future<Output = Result<T, SshError>>,
    ) -> Result<T, SshError> {
        tokio::time::timeout(self.connect_timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(SshError::ConnectTimeout {
                    host: target.name.clone(),
                    address: format!("{}:{}", target.address, target.port),
                    seconds: self.connect_timeout.as_secs(),
                })
            })
    }

    /// Connects directly.
    pub async fn connect(&self, target: &Endpoint) -> Result<Connection, SshError> {
        self.within(target, async {
            let (verifier, seen) = self.verifier(target);
            let handle = client::connect(
                self.config.clone(),
                (target.address.as_str(), target.port),
                verifier,
            )
            .await
            .map_err(|e| Self::explain(target, &seen, e))?;
            self.authenticate(target, handle).await
        })
        .await
    }

    /// Connects through `jump` (a direct-tcpip channel), as `ssh -J` does. The
    /// target's own host key is checked, not the jump host's.
    pub async fn connect_via(
        &self,
        jump: &Connection,
        target: &Endpoint,
    ) -> Result<Connection, SshError> {
        self.within(target, async {
            let channel = jump
                .handle
                .channel_open_direct_tcpip(
                    target.address.clone(),
                    u32::from(target.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|e| SshError::Connect {
                    host: target.name.clone(),
                    address: format!("{}:{} via {}", target.address, target.port, jump.host),
                    message: e.to_string(),
                })?;
            let (verifier, seen) = self.verifier(target);
            let handle =
                client::connect_stream(self.config.clone(), channel.into_stream(), verifier)
                    .await
                    .map_err(|e| Self::explain(target, &seen, e))?;
            self.authenticate(target, handle).await
        })
        .await
    }
}

impl Connection {
    /// Whether the connection has ended (the host went away, the network broke).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `command` under a remote `timeout` of `timeout`, passing output to
    /// `on_output` as it arrives; the channel is not read while `on_output`
    /// waits, so a slow consumer slows the command down rather than filling
    /// memory. Completing `cancel` stops it: the command is sent SIGTERM and the
    /// channel closed.
    pub async fn run<F>(
        &self,
        command: &str,
        timeout: Duration,
        cancel: impl Future<Output = ()>,
        mut on_output: impl FnMut(OutputStream, Vec<u8>) -> F,
    ) -> Result<Outcome, SshError>
    where
        F: Future<Output = ()>,
    {
        let protocol = |e: russh::Error| SshError::Protocol {
            host: self.host.clone(),
            message: e.to_string(),
        };
        let seconds = u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX);
        let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, remote_command(command, seconds))
            .await
            .map_err(protocol)?;
        let backstop = tokio::time::sleep(timeout + LOCAL_GRACE);
        tokio::pin!(backstop);
        tokio::pin!(cancel);
        let mut exit_status = None;
        let mut exit_signal = None;
        let mut ending = Ending::Exited;
        loop {
            tokio::select! {
                msg = channel.wait() => match msg {
                    None => break,
                    Some(ChannelMsg::Data { data }) => on_output(OutputStream::Stdout, data.to_vec()).await,
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => on_output(OutputStream::Stderr, data.to_vec()).await,
                    Some(ChannelMsg::ExitStatus { exit_status: s }) => exit_status = Some(s),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => exit_signal = Some(format!("{signal_name:?}")),
                    Some(_) => {}
                },
                _ = &mut backstop => {
                    ending = Ending::TimedOut;
                    let _ = channel.close().await;
                    break;
                }
                _ = &mut cancel => {
                    ending = Ending::Cancelled;
                    let _ = channel.signal(Sig::TERM).await;
                    let _ = channel.close().await;
                    break;
                }
            }
        }
        if ending == Ending::Exited && exit_status == Some(TIMEOUT_EXIT_STATUS) {
            ending = Ending::TimedOut;
        }
        Ok(Outcome {
            ending,
            exit_status,
            exit_signal,
        })
    }

    /// Opens an SFTP session on this connection (for transfers).
    pub async fn sftp(&self) -> Result<russh_sftp::client::SftpSession, SshError> {
        let protocol = |message: String| SshError::Protocol {
            host: self.host.clone(),
            message,
        };
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| protocol(e.to_string()))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| protocol(e.to_string()))?;
        russh_sftp::client::SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| protocol(format!("the SFTP subsystem did not start: {e}")))
    }

    /// Ends the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}
