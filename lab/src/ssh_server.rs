//! One russh server per VM, on its own port of 127.0.0.1 and with its own host
//! key: public-key login as root with the lab's client key only, `exec`
//! (what the portal and `ssh host cmd` use), an interactive shell for a pty,
//! the SFTP subsystem, and on the jump host `direct-tcpip` (see [`crate::jump`]).
//!
//! The accept loop is the lab's own rather than russh's `run_on_socket` so
//! that faults apply per connection: a VM that is down drops the connection
//! before the SSH greeting, and a VM whose key changed is handed the
//! alternative key for every new connection.

use crate::faults::Faults;
use crate::keys::HostKeys;
use crate::shell::{Chunk, Io, Pace, Shell, Stream};
use crate::state::topology::JUMP_HOST;
use crate::state::SiteState;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelWriteHalf, Disconnect, MethodKind, MethodSet, Sig,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// What every VM's server shares.
#[derive(Clone)]
pub struct Shared {
    pub state: SiteState,
    pub faults: Faults,
    /// The only key allowed to log in.
    pub client_key: PublicKey,
    /// The only user allowed to log in.
    pub user: String,
    /// Each VM's port, for the jump host's forwarding.
    pub ports: Arc<BTreeMap<String, u16>>,
    pub pace: Pace,
    /// Becomes `true` when the lab shuts down.
    pub shutdown: watch::Receiver<bool>,
}

fn publickey_only() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey][..])
}

/// The server configuration presenting `key`.
pub fn config(key: &PrivateKey) -> Arc<server::Config> {
    Arc::new(server::Config {
        keys: vec![key.clone()],
        methods: publickey_only(),
        // Rejections need not be slow here: nobody brute-forces a lab, and the
        // tests try wrong keys on purpose.
        auth_rejection_time: Duration::from_millis(50),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        nodelay: true,
        ..Default::default()
    })
}

/// Serves one VM until the lab shuts down.
pub async fn serve(vm: String, listener: TcpListener, keys: HostKeys, shared: Shared) {
    let main = config(&keys.main);
    let alt = config(&keys.alt);
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let socket = match accepted {
            Ok((socket, _)) => socket,
            Err(e) => {
                tracing::warn!(vm = %vm, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.faults.host_down(&vm) {
            // Down: the connection goes nowhere.
            drop(socket);
            continue;
        }
        let config = if shared.faults.host_key_changed(&vm) {
            alt.clone()
        } else {
            main.clone()
        };
        let handler = VmHandler {
            vm: vm.clone(),
            shared: shared.clone(),
        };
        let mut conn_shutdown = shared.shutdown.clone();
        let (power, power_vm) = (shared.faults.clone(), vm.clone());
        tokio::spawn(async move {
            let session = match server::run_stream(config, socket, handler).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("SSH handshake failed: {e}");
                    return;
                }
            };
            let handle = session.handle();
            tokio::select! {
                result = session => {
                    if let Err(e) = result {
                        tracing::debug!("SSH session ended: {e}");
                    }
                }
                _ = conn_shutdown.changed() => {
                    let _ = handle
                        .disconnect(Disconnect::ByApplication, "the lab is shutting down".into(), "en".into())
                        .await;
                }
                // The VM's server stopped (or was rebuilt, deleted, ...) in the
                // simulated OpenStack: its connections go with it.
                _ = powered_off(&power, &power_vm) => {
                    let _ = handle
                        .disconnect(Disconnect::ByApplication, "the VM is powering off".into(), "en".into())
                        .await;
                }
            }
        });
    }
}

/// Resolves once OpenStack has the VM not running.
async fn powered_off(faults: &Faults, vm: &str) {
    while !faults.vm_off(vm) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The per-connection handler.
pub struct VmHandler {
    vm: String,
    shared: Shared,
}

impl VmHandler {
    fn allowed(&self, user: &str, key: &PublicKey) -> bool {
        user == self.shared.user && key.key_data() == self.shared.client_key.key_data()
    }

    fn reject() -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(publickey_only()),
            partial_success: false,
        }
    }
}

impl server::Handler for VmHandler {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Self::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, key.public_key) {
            Auth::Accept
        } else {
            Self::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let handle = session.handle();
        tokio::spawn(session_channel(
            channel,
            handle,
            self.vm.clone(),
            self.shared.clone(),
        ));
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.vm != JUMP_HOST {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        crate::jump::forward(
            channel,
            host_to_connect,
            port_to_connect,
            reply,
            &self.shared,
        )
        .await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

/// Waits for what the client wants of a session channel, then does it. The
/// handler has already answered the request; this task owns the channel.
async fn session_channel(
    mut channel: Channel<Msg>,
    handle: server::Handle,
    vm: String,
    shared: Shared,
) {
    let mut pty = false;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::RequestPty { .. } => pty = true,
            ChannelMsg::Exec { command, .. } => {
                let command = String::from_utf8_lossy(&command).into_owned();
                shared.state.record_exec(&vm, &command);
                let shell = Shell::new(
                    &vm,
                    shared.state.clone(),
                    shared.faults.clone(),
                    shared.pace,
                );
                exec(channel, handle, shell, command, pty).await;
                return;
            }
            ChannelMsg::RequestShell { .. } => {
                let shell = Shell::new(
                    &vm,
                    shared.state.clone(),
                    shared.faults.clone(),
                    shared.pace,
                );
                if pty {
                    interactive(channel, handle, shell).await;
                } else {
                    script_from_stdin(channel, handle, shell).await;
                }
                return;
            }
            ChannelMsg::RequestSubsystem { name, .. } => {
                if name == "sftp" {
                    let handler = crate::sftp::SftpHandler::new(&vm, shared.state.clone());
                    crate::sftp::serve(channel, handler).await;
                }
                return;
            }
            ChannelMsg::Close => return,
            _ => {}
        }
    }
}

/// How a command ended.
enum Ending {
    Exited(i32),
    Signalled(Sig),
    /// The channel went away: nobody to tell.
    Gone,
}

async fn write_chunk(write: &ChannelWriteHalf<Msg>, chunk: Chunk, pty: bool) {
    let data = if pty {
        // A terminal turns \n into \r\n (onlcr).
        String::from_utf8_lossy(&chunk.data)
            .replace('\n', "\r\n")
            .into_bytes()
    } else {
        chunk.data
    };
    let _ = match chunk.stream {
        Stream::Stdout => write.data_bytes(data).await,
        Stream::Stderr => write.extended_data_bytes(1, data).await,
    };
}

/// Runs `command` with its output streamed to the channel. A signal from the
/// client or the channel closing ends it; a signal is reported back as the
/// command's exit signal.
async fn exec(
    channel: Channel<Msg>,
    handle: server::Handle,
    shell: Shell,
    command: String,
    pty: bool,
) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let ending = run_streamed(&mut read, &write, shell, command, Vec::new(), pty)
        .await
        .0;
    finish(&write, &handle, id, ending).await;
}

/// Runs a script in a task, forwarding its output; returns how it ended and
/// the shell as the script left it (for the interactive shell's next line).
async fn run_streamed(
    read: &mut russh::ChannelReadHalf,
    write: &ChannelWriteHalf<Msg>,
    shell: Shell,
    script: String,
    stdin: Vec<u8>,
    pty: bool,
) -> (Ending, Option<Shell>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Chunk>();
    let mut io = Io::live(tx);
    io.stdin = Arc::new(stdin);
    let mut task = tokio::spawn(async move {
        let mut shell = shell;
        let status = shell.run_script(&script, &io).await;
        (status, shell)
    });
    loop {
        tokio::select! {
            biased;
            chunk = rx.recv() => match chunk {
                Some(chunk) => write_chunk(write, chunk, pty).await,
                // Every sender is gone: the script has finished.
                None => {
                    return match (&mut task).await {
                        Ok((status, shell)) => (Ending::Exited(status), Some(shell)),
                        Err(_) => (Ending::Exited(1), None),
                    };
                }
            },
            done = &mut task => {
                while let Ok(chunk) = rx.try_recv() {
                    write_chunk(write, chunk, pty).await;
                }
                return match done {
                    Ok((status, shell)) => (Ending::Exited(status), Some(shell)),
                    Err(_) => (Ending::Exited(1), None),
                };
            }
            msg = read.wait() => match msg {
                Some(ChannelMsg::Signal { signal }) => {
                    task.abort();
                    while let Ok(chunk) = rx.try_recv() {
                        write_chunk(write, chunk, pty).await;
                    }
                    return (Ending::Signalled(signal), None);
                }
                // Ctrl-C on a terminal interrupts the command.
                Some(ChannelMsg::Data { data }) if pty && data.contains(&3) => {
                    task.abort();
                    return (Ending::Signalled(Sig::INT), None);
                }
                Some(ChannelMsg::Close) | None => {
                    task.abort();
                    return (Ending::Gone, None);
                }
                Some(_) => {}
            }
        }
    }
}

async fn finish(
    write: &ChannelWriteHalf<Msg>,
    handle: &server::Handle,
    id: ChannelId,
    ending: Ending,
) {
    match ending {
        Ending::Exited(status) => {
            let _ = write.exit_status((status & 0xff) as u32).await;
        }
        Ending::Signalled(sig) => {
            let _ = handle
                .exit_signal_request(id, sig, false, String::new(), "en".to_string())
                .await;
        }
        Ending::Gone => return,
    }
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// `ssh host < script` without a terminal: the script is read up to EOF, then run.
async fn script_from_stdin(channel: Channel<Msg>, handle: server::Handle, shell: Shell) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let mut script = Vec::new();
    loop {
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => script.extend_from_slice(&data),
            Some(ChannelMsg::Eof) => break,
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    }
    let script = String::from_utf8_lossy(&script).into_owned();
    let ending = run_streamed(&mut read, &write, shell, script, Vec::new(), false)
        .await
        .0;
    finish(&write, &handle, id, ending).await;
}

fn prompt(shell: &Shell) -> String {
    let dir = match shell.cwd.as_str() {
        "/root" => "~".to_string(),
        "/" => "/".to_string(),
        p => crate::state::vfs::basename(p).to_string(),
    };
    format!("[root@{} {dir}]# ", shell.host)
}

/// A minimal interactive shell for a terminal: line editing with backspace,
/// Ctrl-C and Ctrl-D, one command line at a time, `exit` to leave.
pub async fn interactive(channel: Channel<Msg>, handle: server::Handle, shell: Shell) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let mut shell = shell;
    let banner = format!(
        "Last login: {} from 127.0.0.1\r\n",
        chrono::Utc::now().format("%a %b %e %H:%M:%S %Y")
    );
    let _ = write.data_bytes(banner.into_bytes()).await;
    let _ = write.data_bytes(prompt(&shell).into_bytes()).await;
    let mut line: Vec<u8> = Vec::new();
    loop {
        let data = match read.wait().await {
            Some(ChannelMsg::Data { data }) => data,
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => return,
            Some(_) => continue,
        };
        for &b in data.iter() {
            match b {
                b'\r' | b'\n' => {
                    let _ = write.data_bytes(b"\r\n".to_vec()).await;
                    let text = String::from_utf8_lossy(&line).trim().to_string();
                    line.clear();
                    if !text.is_empty() {
                        let before = shell.clone();
                        let (ending, after) =
                            run_streamed(&mut read, &write, shell, text, Vec::new(), true).await;
                        shell = after.unwrap_or(before);
                        match ending {
                            Ending::Gone => return,
                            Ending::Signalled(_) => {
                                let _ = write.data_bytes(b"^C\r\n".to_vec()).await;
                                shell.last_status = 130;
                            }
                            Ending::Exited(status) => shell.last_status = status,
                        }
                        if let Some(code) = shell.exit {
                            let _ = write.data_bytes(b"logout\r\n".to_vec()).await;
                            finish(&write, &handle, id, Ending::Exited(code)).await;
                            return;
                        }
                    }
                    let _ = write.data_bytes(prompt(&shell).into_bytes()).await;
                }
                0x7f | 0x08 if line.pop().is_some() => {
                    let _ = write.data_bytes(b"\x08 \x08".to_vec()).await;
                }
                // Backspace on an empty line: nothing to erase.
                0x7f | 0x08 => {}
                0x03 => {
                    line.clear();
                    let _ = write
                        .data_bytes(format!("^C\r\n{}", prompt(&shell)).into_bytes())
                        .await;
                }
                0x04 if line.is_empty() => {
                    let _ = write.data_bytes(b"logout\r\n".to_vec()).await;
                    finish(&write, &handle, id, Ending::Exited(shell.last_status)).await;
                    return;
                }
                b if b >= 0x20 || b == b'\t' => {
                    line.push(b);
                    let _ = write.data_bytes(vec![b]).await;
                }
                _ => {}
            }
        }
    }
}
