//! The SSH executor against real OpenSSH servers (`/usr/sbin/sshd`) started by
//! the test on 127.0.0.1, each with its own host key.

use server::exec::known_hosts::KnownHosts;
use server::exec::ssh::{
    load_key, Connector, Credentials, Ending, Endpoint, OutputStream, SshError,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn keygen(path: &Path, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "portal-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portal-ssh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A throwaway sshd; stopped when dropped.
struct Sshd {
    port: u16,
    dir: PathBuf,
    host_public: String,
    child: Child,
}

impl Sshd {
    fn start(name: &str, authorized: &Path) -> Self {
        Self::start_logging(name, authorized, "VERBOSE")
    }

    /// DEBUG1 logs what the jump host forwards, but also sends debug lines to clients.
    fn start_logging(name: &str, authorized: &Path, level: &str) -> Self {
        let dir = temp_dir(name);
        let host_key = dir.join("host_key");
        keygen(&host_key, "");
        std::fs::copy(authorized, dir.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n\
                 PermitRootLogin prohibit-password\nLogLevel {level}\nSubsystem sftp internal-sftp\n",
                d = dir.display(),
            ),
        )
        .unwrap();
        // sshd as root wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("/usr/sbin/sshd (openssh-server) is installed");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_public = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let host_public = host_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Sshd {
            port,
            dir,
            host_public,
            child,
        }
    }

    fn endpoint(&self, name: &str) -> Endpoint {
        Endpoint {
            name: name.into(),
            address: "127.0.0.1".into(),
            port: self.port,
            user: current_user(),
        }
    }

    /// A known_hosts line trusting this server under `name`.
    fn known_as(&self, name: &str) -> String {
        format!("[{name}]:{} {}\n", self.port, self.host_public)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Lab {
    client_dir: PathBuf,
    key: PathBuf,
}

impl Lab {
    fn new(name: &str) -> Self {
        let client_dir = temp_dir(&format!("{name}-client"));
        let key = client_dir.join("id_ed25519");
        keygen(&key, "");
        Lab { client_dir, key }
    }
    fn connector(&self, known: &str) -> Connector {
        Connector::new(
            load_key(&self.key, None).unwrap(),
            KnownHosts::parse(known).unwrap(),
        )
    }
    fn public(&self) -> PathBuf {
        self.client_dir.join("id_ed25519.pub")
    }
}

/// A throwaway OpenSSH ssh-agent on a socket of its own (SSH_AUTH_SOCK is never
/// set for the test process: tests run in parallel); stopped when dropped.
struct Agent {
    dir: PathBuf,
    socket: PathBuf,
    child: Child,
}

impl Agent {
    fn start(name: &str) -> Self {
        let dir = temp_dir(&format!("{name}-agent"));
        let socket = dir.join("agent.sock");
        let child = Command::new("/usr/bin/ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/bin/ssh-agent (openssh-client) is installed");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "ssh-agent did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { dir, socket, child }
    }

    /// Adds a key file, as `ssh-add` does.
    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("ssh-add (openssh-client) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn connector(&self, known: &str) -> Connector {
        agent_connector(Some(self.socket.clone()), known)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn agent_connector(socket: Option<PathBuf>, known: &str) -> Connector {
    Connector::with_credentials(
        Credentials::Agent { socket },
        KnownHosts::parse(known).unwrap(),
    )
}

async fn collect(
    conn: &server::exec::ssh::Connection,
    command: &str,
    timeout: Duration,
) -> (server::exec::ssh::Outcome, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = conn
        .run(command, timeout, std::future::pending(), |stream, data| {
            match stream {
                OutputStream::Stdout => out.extend_from_slice(&data),
                OutputStream::Stderr => err.extend_from_slice(&data),
            }
            std::future::ready(())
        })
        .await
        .unwrap();
    (
        outcome,
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
    )
}

#[tokio::test]
async fn runs_a_command_with_separate_streams_and_its_exit_status() {
    let lab = Lab::new("run");
    let sshd = Sshd::start("run", &lab.public());
    let conn = lab
        .connector(&sshd.known_as("cluman"))
        .connect(&sshd.endpoint("cluman"))
        .await
        .unwrap();
    let (outcome, out, err) = collect(
        &conn,
        "echo out; echo 'with space' >&2; exit 3",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        (outcome.ending, outcome.exit_status),
        (Ending::Exited, Some(3))
    );
    assert_eq!(out, "out\n");
    assert_eq!(err, "with space\n");
    // The connection is reused for the next command.
    let (outcome, out, _) = collect(&conn, "printf %s \"$((6*7))\"", Duration::from_secs(10)).await;
    assert_eq!((outcome.exit_status, out.as_str()), (Some(0), "42"));
    conn.close().await;
}

#[tokio::test]
async fn an_unknown_or_changed_host_key_stops_before_any_command() {
    let lab = Lab::new("hostkey");
    let sshd = Sshd::start("hostkey", &lab.public());
    let other = Sshd::start("hostkey-other", &lab.public());

    let err = lab
        .connector("")
        .connect(&sshd.endpoint("cluman"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::UnknownHostKey { ref host, ref fingerprint, .. } if host == "cluman" && fingerprint.starts_with("SHA256:")),
        "{err}"
    );
    assert!(err.to_string().contains("no command was sent"));

    // Another server's key recorded under this name: a changed key.
    let known = format!("[cluman]:{} {}\n", sshd.port, other.host_public);
    let err = lab
        .connector(&known)
        .connect(&sshd.endpoint("cluman"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::HostKeyChanged { line: 1, .. }),
        "{err}"
    );

    // The server never saw an authentication attempt.
    let log = std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default();
    assert!(!log.contains("Accepted publickey"), "{log}");
}

#[tokio::test]
async fn a_key_the_server_does_not_accept_is_refused() {
    let lab = Lab::new("auth");
    let stranger = Lab::new("auth-stranger");
    let sshd = Sshd::start("auth", &lab.public());
    let err = stranger
        .connector(&sshd.known_as("cluman"))
        .connect(&sshd.endpoint("cluman"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::AuthenticationFailed { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_passphrase_protected_key_needs_its_passphrase() {
    let dir = temp_dir("passphrase");
    let key = dir.join("id_ed25519");
    keygen(&key, "correct horse");
    assert!(load_key(&key, Some("correct horse")).is_ok());
    let err = load_key(&key, Some("wrong")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot use the SSH key {}", key.display())),
        "{err}"
    );
}

#[tokio::test]
async fn the_timeout_ends_the_remote_command() {
    let lab = Lab::new("timeout");
    let sshd = Sshd::start("timeout", &lab.public());
    let conn = lab
        .connector(&sshd.known_as("cluman"))
        .connect(&sshd.endpoint("cluman"))
        .await
        .unwrap();
    let marker = sshd.dir.join("still-running");
    let started = Instant::now();
    let (outcome, _, _) = collect(
        &conn,
        &format!("sleep 5 && touch {}", marker.display()),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Had the remote command survived, it would create the marker after 5 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !marker.exists(),
        "the remote command kept running after its timeout"
    );
}

#[tokio::test]
async fn cancel_stops_a_running_command() {
    let lab = Lab::new("cancel");
    let sshd = Sshd::start("cancel", &lab.public());
    let conn = lab
        .connector(&sshd.known_as("cluman"))
        .connect(&sshd.endpoint("cluman"))
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = conn
        .run(
            "echo started; sleep 30",
            Duration::from_secs(60),
            tokio::time::sleep(Duration::from_millis(500)),
            |_, _| std::future::ready(()),
        )
        .await
        .unwrap();
    assert_eq!(outcome.ending, Ending::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn internal_hosts_are_reached_through_the_jump_host_with_their_own_key_checked() {
    let lab = Lab::new("jump");
    let cluman = Sshd::start_logging("jump-cluman", &lab.public(), "DEBUG1");
    let internal = Sshd::start("jump-internal", &lab.public());
    let known = format!(
        "{}{}",
        cluman.known_as("cluman"),
        internal.known_as("pcrfclient01")
    );
    let connector = lab.connector(&known);
    let jump = connector.connect(&cluman.endpoint("cluman")).await.unwrap();
    let conn = connector
        .connect_via(&jump, &internal.endpoint("pcrfclient01"))
        .await
        .unwrap();
    let (outcome, out, _) = collect(&conn, "echo via jump", Duration::from_secs(10)).await;
    assert_eq!((outcome.exit_status, out.as_str()), (Some(0), "via jump\n"));
    conn.close().await;
    jump.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(cluman.dir.join("sshd.log")).unwrap_or_default();
    assert!(
        log.contains("direct-tcpip"),
        "the jump host forwarded the connection: {log}"
    );

    // Only the jump host's key is known: the internal host is refused by name.
    let connector = lab.connector(&cluman.known_as("cluman"));
    let jump = connector.connect(&cluman.endpoint("cluman")).await.unwrap();
    let err = connector
        .connect_via(&jump, &internal.endpoint("pcrfclient01"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::UnknownHostKey { ref host, .. } if host == "pcrfclient01"),
        "{err}"
    );
}

/// A site of two real sshd hosts: cluman (the jump host) and pcrfclient01, both
/// trusting `lab`'s key; the sites file and key live in the returned directory.
fn two_host_site(
    name: &str,
    lab: &Lab,
) -> (
    Sshd,
    Sshd,
    std::sync::Arc<server::exec::site::Site>,
    PathBuf,
) {
    let cluman = Sshd::start(&format!("{name}-cluman"), &lab.public());
    let internal = Sshd::start(&format!("{name}-internal"), &lab.public());
    let dir = temp_dir(&format!("{name}-config"));
    std::fs::copy(&lab.key, dir.join("id_ed25519")).unwrap();
    std::fs::write(
        dir.join("known_hosts"),
        format!(
            "{}{}",
            cluman.known_as("cluman"),
            internal.known_as("pcrfclient01")
        ),
    )
    .unwrap();
    let text = format!(
        "[[sites]]\nname = \"lab\"\nuser = \"{user}\"\nkey = \"id_ed25519\"\nknown_hosts = \"known_hosts\"\njump_host = \"cluman\"\n\n\
         [[sites.hosts]]\nname = \"cluman\"\naddress = \"127.0.0.1\"\nport = {p1}\n\n\
         [[sites.hosts]]\nname = \"pcrfclient01\"\naddress = \"127.0.0.1\"\nport = {p2}\n",
        user = current_user(),
        p1 = cluman.port,
        p2 = internal.port,
    );
    let site = server::exec::site::parse("sites.toml", &text, &dir)
        .unwrap()
        .remove(0);
    (cluman, internal, std::sync::Arc::new(site), dir)
}

#[tokio::test]
async fn a_site_session_opens_one_connection_per_host_through_the_jump_host() {
    use server::exec::site::SiteSession;
    use std::sync::Arc;
    let lab = Lab::new("site");
    let (cluman, internal, site, _dir) = two_host_site("site", &lab);
    let session = SiteSession::new(site.clone(), site.connector().unwrap());

    let first = session.connection("pcrfclient01").await.unwrap();
    let again = session.connection("pcrfclient01").await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "one connection per host");
    let (outcome, out, _) = collect(&first, "echo internal", Duration::from_secs(10)).await;
    assert_eq!((outcome.exit_status, out.as_str()), (Some(0), "internal\n"));
    let jump = session.connection("cluman").await.unwrap();
    let (_, out, _) = collect(&jump, "echo jump", Duration::from_secs(10)).await;
    assert_eq!(out, "jump\n");

    let accepted = |s: &Sshd| {
        std::fs::read_to_string(s.dir.join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    };
    assert_eq!(
        (accepted(&cluman), accepted(&internal)),
        (1, 1),
        "each host authenticated once"
    );

    let err = session.connection("qns01").await.err().unwrap();
    assert!(
        err.to_string().contains("site lab has no host \"qns01\""),
        "{err}"
    );
}

#[tokio::test]
async fn the_agents_identities_log_in_directly_and_through_the_jump_host() {
    let lab = Lab::new("agent");
    let stranger = Lab::new("agent-stranger");
    let cluman = Sshd::start("agent-cluman", &lab.public());
    let internal = Sshd::start("agent-internal", &lab.public());
    let agent = Agent::start("agent");
    // The agent offers a key the servers refuse as well: each identity is tried.
    agent.add(&stranger.key);
    agent.add(&lab.key);
    let known = format!(
        "{}{}",
        cluman.known_as("cluman"),
        internal.known_as("pcrfclient01")
    );
    let connector = agent.connector(&known);
    let jump = connector.connect(&cluman.endpoint("cluman")).await.unwrap();
    let (outcome, out, _) = collect(&jump, "echo from the agent", Duration::from_secs(10)).await;
    assert_eq!(
        (outcome.exit_status, out.as_str()),
        (Some(0), "from the agent\n")
    );
    let conn = connector
        .connect_via(&jump, &internal.endpoint("pcrfclient01"))
        .await
        .unwrap();
    let (_, out, _) = collect(&conn, "echo internal", Duration::from_secs(10)).await;
    assert_eq!(out, "internal\n");
    conn.close().await;
    jump.close().await;

    // The same from a sites file: `agent = true` with its socket.
    use server::exec::site::{parse, SiteSession};
    use std::sync::Arc;
    let dir = temp_dir("agent-config");
    std::fs::write(dir.join("known_hosts"), &known).unwrap();
    let text = format!(
        "[[sites]]\nname = \"lab\"\nuser = \"{user}\"\nagent = true\nagent_socket = \"{socket}\"\n\
         known_hosts = \"known_hosts\"\njump_host = \"cluman\"\n\n\
         [[sites.hosts]]\nname = \"cluman\"\naddress = \"127.0.0.1\"\nport = {p1}\n\n\
         [[sites.hosts]]\nname = \"pcrfclient01\"\naddress = \"127.0.0.1\"\nport = {p2}\n",
        user = current_user(),
        socket = agent.socket.display(),
        p1 = cluman.port,
        p2 = internal.port,
    );
    let site = Arc::new(parse("sites.toml", &text, &dir).unwrap().remove(0));
    let session = SiteSession::new(site.clone(), site.connector().unwrap());
    let conn = session.connection("pcrfclient01").await.unwrap();
    let (_, out, _) = collect(&conn, "echo site", Duration::from_secs(10)).await;
    assert_eq!(out, "site\n");
}

#[tokio::test]
async fn a_missing_or_empty_agent_is_a_clear_error() {
    let lab = Lab::new("noagent");
    let sshd = Sshd::start("noagent", &lab.public());
    let known = sshd.known_as("cluman");
    let target = sshd.endpoint("cluman");
    let message = |err: SshError| match err {
        SshError::Agent {
            ref host,
            ref message,
        } if host == "cluman" => message.clone(),
        other => panic!("not an agent error: {other}"),
    };

    // No agent listens at the socket.
    let dir = temp_dir("noagent-socket");
    let nowhere = dir.join("agent.sock");
    let err = agent_connector(Some(nowhere.clone()), &known)
        .for_site("fra1")
        .connect(&target)
        .await
        .err()
        .unwrap();
    let text = message(err);
    assert!(
        text.starts_with(&format!(
            "site fra1 uses the ssh-agent, but the agent at {} cannot be reached",
            nowhere.display()
        )),
        "{text}"
    );

    // An agent without identities.
    let agent = Agent::start("noagent-empty");
    let err = agent
        .connector(&known)
        .connect(&target)
        .await
        .err()
        .unwrap();
    let text = message(err);
    assert!(text.contains("holds no identities"), "{text}");

    // An agent whose only identity the server does not accept.
    let stranger = Lab::new("noagent-stranger");
    agent.add(&stranger.key);
    let err = agent
        .connector(&known)
        .connect(&target)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::AuthenticationFailed { .. }),
        "{err}"
    );

    // SSH_AUTH_SOCK is read, never set, here: this part runs only where it is unset.
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        let err = agent_connector(None, &known)
            .for_site("fra1")
            .connect(&target)
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cluman: site fra1 uses the ssh-agent, but SSH_AUTH_SOCK is not set"
        );
    }
}

#[tokio::test]
async fn transfers_replace_files_on_a_real_sftp_server_and_come_back_intact() {
    use app::ssr::engine::executor::{CancelSignal, Emit};
    use runbook::render::RenderedEndpoint;
    use server::exec::site::SiteSession;
    use server::exec::transfer;
    let lab = Lab::new("sftp");
    let (_cluman, internal, site, dir) = two_host_site("sftp", &lab);
    let session = SiteSession::new(site.clone(), site.connector().unwrap());
    let store = dir.join("store");
    std::fs::create_dir_all(store.join("lab")).unwrap();
    let content: Vec<u8> = (0..700_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(store.join("lab/big.bin"), &content).unwrap();
    // The target exists already: OpenSSH's SFTP rename does not replace files.
    let target = internal.dir.join("target.bin");
    std::fs::write(&target, b"old content").unwrap();
    let (tx, mut rx) = app::ssr::engine::executor::OutputTx::channel();
    let (_stop, cancel) = CancelSignal::new();
    let to_host = transfer::copy(
        &session,
        &store,
        &RenderedEndpoint::Store {
            path: "lab/big.bin".into(),
        },
        &RenderedEndpoint::Host {
            host: "pcrfclient01".into(),
            path: target.display().to_string(),
        },
        &tx,
        cancel.clone(),
    )
    .await
    .unwrap();
    assert_eq!(to_host.bytes, content.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert!(!internal.dir.join("target.bin.portal-part").exists());

    let back = transfer::copy(
        &session,
        &store,
        &RenderedEndpoint::Host {
            host: "pcrfclient01".into(),
            path: target.display().to_string(),
        },
        &RenderedEndpoint::Store {
            path: "lab/back.bin".into(),
        },
        &tx,
        cancel,
    )
    .await
    .unwrap();
    assert_eq!(back.sha256, to_host.sha256);
    assert_eq!(std::fs::read(store.join("lab/back.bin")).unwrap(), content);
    drop(tx);
    let mut said = String::new();
    let mut last_progress = None;
    while let Some(emitted) = rx.recv().await {
        match emitted {
            Emit::Output { bytes, .. } => said.push_str(&String::from_utf8_lossy(&bytes)),
            Emit::Progress(p) => last_progress = Some(p),
        }
    }
    assert!(said.contains(&format!("SHA-256 {}", back.sha256)), "{said}");
    // The copy's bar ends full.
    let last = last_progress.expect("a copy reports progress");
    assert!(last.finished && last.done == back.bytes, "{last:?}");
}
