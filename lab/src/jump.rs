//! The Cluster Manager as jump host: a `direct-tcpip` channel to another VM
//! (by `127.0.0.1:<its port>`, or by its name) is piped to that VM's listener,
//! as `ssh -J` and the portal's `connect_via` expect. Anything else, and a VM
//! that is down, gets an open failure.

use crate::ssh_server::Shared;
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::TcpStream;

/// Which VM a forwarding request means, if any.
pub fn target(shared: &Shared, host: &str, port: u32) -> Option<(String, u16)> {
    let by_port = || {
        shared
            .ports
            .iter()
            .find(|(_, p)| u32::from(**p) == port)
            .map(|(name, p)| (name.clone(), *p))
    };
    match host {
        "127.0.0.1" | "localhost" | "::1" => by_port(),
        name => shared
            .ports
            .get(name)
            .filter(|p| port == 22 || u32::from(**p) == port)
            .map(|p| (name.to_string(), *p)),
    }
}

/// Answers a `direct-tcpip` request on the jump host.
pub async fn forward(
    channel: Channel<Msg>,
    host: &str,
    port: u32,
    reply: ChannelOpenHandle,
    shared: &Shared,
) {
    let Some((vm, vm_port)) = target(shared, host, port) else {
        tracing::debug!("refusing to forward to {host}:{port}: not a VM of the lab");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    };
    if shared.faults.host_down(&vm) {
        reply.reject(ChannelOpenFailure::ConnectFailed).await;
        return;
    }
    // Connecting may take a moment; the session must not wait for it.
    tokio::spawn(async move {
        match TcpStream::connect(("127.0.0.1", vm_port)).await {
            Ok(mut tcp) => {
                let _ = tcp.set_nodelay(true);
                reply.accept().await;
                let mut stream = channel.into_stream();
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
            }
            Err(e) => {
                tracing::debug!("forwarding to {vm}: {e}");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
    });
}
