//! The lab over real SSH: OpenSSH's `ssh`, `sftp` and `scp` with the files
//! `write_out` produces (through the jump host, as on a site), a russh client
//! doing what the portal does, the faults, and the control API.

use lab::{Fault, Lab, Pace};
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

async fn start(pace: Pace) -> (Lab, TempDir) {
    assert!(
        Path::new("/usr/bin/ssh").exists(),
        "these tests need OpenSSH's client: apt-get install -y openssh-client"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::start_with_pace(dir.path(), pace)
        .await
        .unwrap_or_else(|e| panic!("lab: {e}"));
    lab.write_out(dir.path())
        .unwrap_or_else(|e| panic!("write_out: {e}"));
    (lab, dir)
}

/// `ssh -F ssh_config HOST COMMAND`, never prompting.
async fn ssh(dir: &Path, host: &str, command: &str) -> Output {
    tokio::process::Command::new("/usr/bin/ssh")
        .arg("-F")
        .arg(dir.join("ssh_config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            host,
            command,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run ssh: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn openssh_reaches_an_internal_vm_through_the_jump_host() {
    let (lab, dir) = start(Pace::instant()).await;
    let out = ssh(dir.path(), "pcrfclient01", "crontab -l").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("svn_backup.sh"),
        "{}",
        text(&out.stdout)
    );

    let out = ssh(dir.path(), "qns01", "no_such_tool --now").await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stderr), "sh: 1: no_such_tool: not found\n");
    assert!(out.stdout.is_empty());

    // The portal's wrapper form, and stderr kept apart from stdout.
    let out = ssh(
        dir.path(),
        "cluman",
        "timeout --signal=TERM --kill-after=10 30 sh -c 'echo out; echo err >&2; exit 3'",
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "err\n".into())
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn monit_stop_all_shows_in_statusall_and_crontab_file_replaces_the_crontab() {
    let (lab, dir) = start(Pace::instant()).await;
    let out = ssh(dir.path(), "cluman", "runonall.sh sudo monit stop all").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ssh(dir.path(), "cluman", "statusall.sh").await;
    let status = text(&out.stdout);
    assert!(status.contains("Not monitored"), "{status}");
    assert!(!status.contains("Running"), "{status}");
    let out = ssh(dir.path(), "lb01", "monit summary").await;
    assert!(text(&out.stdout).contains("Not monitored"));
    ssh(dir.path(), "cluman", "runonall.sh sudo monit start all").await;
    let out = ssh(dir.path(), "cluman", "statusall.sh").await;
    assert!(!text(&out.stdout).contains("Not monitored"));

    let out = ssh(
        dir.path(),
        "pcrfclient01",
        "echo '*/10 * * * * /usr/local/bin/lab-job' > /var/tmp/new.cron && crontab /var/tmp/new.cron && crontab -l",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "*/10 * * * * /usr/local/bin/lab-job\n");
    let out = ssh(dir.path(), "pcrfclient01", "crontab -l").await;
    assert_eq!(text(&out.stdout), "*/10 * * * * /usr/local/bin/lab-job\n");
    let bad = ssh(
        dir.path(),
        "pcrfclient01",
        "echo 'not a cron line' > /var/tmp/bad && crontab /var/tmp/bad",
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("errors in crontab file"));
    lab.shutdown().await;
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_a_down_host_unreachable() {
    let (lab, dir) = start(Pace::instant()).await;
    lab.faults().set(
        Fault::HostKeyChanged {
            host: "qns02".into(),
        },
        true,
    );
    let out = ssh(dir.path(), "qns02", "true").await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        text(&out.stderr)
    );
    lab.faults().set(
        Fault::HostKeyChanged {
            host: "qns02".into(),
        },
        false,
    );
    assert_eq!(
        ssh(dir.path(), "qns02", "true").await.status.code(),
        Some(0)
    );

    lab.faults().set(
        Fault::HostDown {
            host: "lb02".into(),
        },
        true,
    );
    let out = ssh(dir.path(), "lb02", "true").await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("open failed"),
        "{}",
        text(&out.stderr)
    );
    lab.faults().set(
        Fault::HostDown {
            host: "cluman".into(),
        },
        true,
    );
    let out = ssh(dir.path(), "cluman", "true").await;
    assert_eq!(out.status.code(), Some(255));
    lab.faults().set(
        Fault::HostDown {
            host: "cluman".into(),
        },
        false,
    );
    let out = ssh(dir.path(), "cluman", "statusall.sh").await;
    assert!(text(&out.stdout).contains("ssh: connect to host lb02 port 22: No route to host"));
    lab.shutdown().await;
}

#[tokio::test]
async fn openssh_sftp_and_scp_put_and_get_files() {
    let (lab, dir) = start(Pace::instant()).await;
    let local = dir.path().join("crontab_cluman.txt");
    std::fs::write(&local, "0 3 * * * /bin/true\n").unwrap_or_else(|e| panic!("{e}"));
    let back = dir.path().join("back.txt");
    let batch = dir.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} /var/tmp/crontab_cluman.txt\nls -l /var/tmp\nget /var/tmp/crontab_cluman.txt {}\nmkdir /var/tmp/in\nrename /var/tmp/crontab_cluman.txt /var/tmp/in/c.txt\n",
            local.display(),
            back.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::process::Command::new("/usr/bin/sftp")
        .arg("-F")
        .arg(dir.path().join("ssh_config"))
        .arg("-b")
        .arg(&batch)
        .arg("pcrfclient02")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&back).unwrap_or_default(),
        "0 3 * * * /bin/true\n"
    );
    assert_eq!(
        lab.state()
            .read_file("pcrfclient02", "/var/tmp/in/c.txt")
            .unwrap_or_default(),
        b"0 3 * * * /bin/true\n"
    );
    // A file the portal puts is a file the commands see.
    let out = ssh(
        dir.path(),
        "pcrfclient02",
        "crontab /var/tmp/in/c.txt && crontab -l",
    )
    .await;
    assert_eq!(text(&out.stdout), "0 3 * * * /bin/true\n");

    let scp = tokio::process::Command::new("/usr/bin/scp")
        .arg("-F")
        .arg(dir.path().join("ssh_config"))
        .arg("-s")
        .arg(&local)
        .arg("qns03:/root/copy.txt")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scp.status.code(), Some(0), "{}", text(&scp.stderr));
    assert_eq!(
        lab.state()
            .read_file("qns03", "/root/copy.txt")
            .unwrap_or_default(),
        b"0 3 * * * /bin/true\n"
    );
    lab.shutdown().await;
}

/// A russh client, as the portal connects.
struct Client;

impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn authenticate(
    mut handle: client::Handle<Client>,
    key: &Arc<PrivateKey>,
) -> client::Handle<Client> {
    let ok = handle
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(key.clone(), None))
        .await
        .unwrap_or_else(|e| panic!("auth: {e}"));
    assert!(ok.success(), "the lab refused the client key");
    handle
}

fn port(lab: &Lab, name: &str) -> u16 {
    lab.hosts()
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.port)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn the_portal_way_jump_stream_signal_and_open_failure() {
    let (lab, dir) = start(Pace::realistic()).await;
    let key = Arc::new(
        russh::keys::load_secret_key(dir.path().join("id_ed25519"), None)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let config = Arc::new(client::Config::default());
    let jump = client::connect(config.clone(), ("127.0.0.1", port(&lab, "cluman")), Client)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let jump = authenticate(jump, &key).await;

    // Another key is refused.
    let other = Arc::new(lab::keys::generate("intruder"));
    let mut stranger = client::connect(config.clone(), ("127.0.0.1", port(&lab, "cluman")), Client)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = stranger
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(other, None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!refused.success());

    let channel = jump
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port(&lab, "cluman")), "127.0.0.1", 0)
        .await;
    assert!(channel.is_ok(), "the jump host forwards to itself too");
    let channel = jump
        .channel_open_direct_tcpip(
            "127.0.0.1",
            u32::from(port(&lab, "sessionmgr01")),
            "127.0.0.1",
            0,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let inner = client::connect_stream(config.clone(), channel.into_stream(), Client)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let inner = authenticate(inner, &key).await;

    // Output streams while the command runs.
    let mut ch = inner
        .channel_open_session()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let command = runbook::render::remote_command("/var/qps/bin/diag/diagnostics.sh", 60);
    ch.exec(true, command)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut first_data = None;
    let mut status = None;
    let mut out = String::new();
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                first_data.get_or_insert(started.elapsed());
                out.push_str(&text(&data));
            }
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    let total = started.elapsed();
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("[PASS]"), "{out}");
    let first = first_data.unwrap_or(total);
    assert!(
        total >= Duration::from_millis(700),
        "paced output took only {total:?}"
    );
    assert!(
        first < total / 2,
        "first line after {first:?} of {total:?}: not streamed"
    );

    // A signal ends a running command and comes back as its exit signal.
    let mut ch = inner
        .channel_open_session()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.exec(
        true,
        runbook::render::remote_command("echo started; sleep 30", 60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let begun = Instant::now();
    let mut signal = None;
    let mut sent = false;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), ch.wait())
        .await
        .unwrap_or_else(|_| panic!("the command did not end after the signal"))
    {
        match msg {
            ChannelMsg::Data { .. } if !sent => {
                ch.signal(Sig::TERM).await.unwrap_or_else(|e| panic!("{e}"));
                sent = true;
            }
            ChannelMsg::ExitSignal { signal_name, .. } => signal = Some(signal_name),
            _ => {}
        }
    }
    assert!(matches!(signal, Some(Sig::TERM)), "{signal:?}");
    assert!(begun.elapsed() < Duration::from_secs(5));

    // A hanging command hangs until its timeout.
    lab.faults().set(
        Fault::CommandHangs {
            pattern: "statusall".into(),
        },
        true,
    );
    let mut ch = inner
        .channel_open_session()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.exec(true, runbook::render::remote_command("statusall.sh", 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut status = None;
    let mut hung_output = String::new();
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } => hung_output.push_str(&text(&data)),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    assert_eq!(status, Some(124));
    assert_eq!(hung_output.lines().count(), 1, "{hung_output}");

    // A VM that is down: the jump host cannot open a channel to it.
    lab.faults().set(
        Fault::HostDown {
            host: "qns04".into(),
        },
        true,
    );
    let refused = jump
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port(&lab, "qns04")), "127.0.0.1", 0)
        .await;
    assert!(refused.is_err());
    // Nothing but the lab's VMs is forwarded.
    let refused = jump
        .channel_open_direct_tcpip("127.0.0.1", 9, "127.0.0.1", 0)
        .await;
    assert!(refused.is_err());
    // By name works too.
    let by_name = jump
        .channel_open_direct_tcpip("qns03", 22, "127.0.0.1", 0)
        .await;
    assert!(by_name.is_ok());
    lab.shutdown().await;
}

#[tokio::test]
async fn control_api_and_client_files() {
    let (lab, dir) = start(Pace::instant()).await;
    let url = lab.control_url();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("control_url"))
            .unwrap_or_default()
            .trim(),
        url
    );
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{url}/faults/replica-set-unhealthy"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(put.status().is_success());
    let list: Vec<String> = http
        .get(format!("{url}/faults"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list, vec!["replica-set-unhealthy".to_string()]);
    let out = ssh(dir.path(), "cluman", "diagnostics.sh --get_replica_status").await;
    assert!(text(&out.stdout).contains("RECOVERING"));
    let out = ssh(dir.path(), "cluman", "diagnostics.sh").await;
    assert!(text(&out.stdout).contains("[FAIL]"));
    assert_eq!(out.status.code(), Some(1));
    let del = http
        .delete(format!("{url}/faults/replica-set-unhealthy"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(del.status().is_success());
    assert!(lab.faults().active().is_empty());
    let bad = http
        .put(format!("{url}/faults/reboot-everything"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad
        .text()
        .await
        .unwrap_or_default()
        .contains("host-down:HOST"));
    let file = http
        .get(format!(
            "{url}/state/cluman/file?path=/etc/broadhop/repositories"
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(file
        .text()
        .await
        .unwrap_or_default()
        .starts_with("file:///var/qps/patches/"));
    let missing = http
        .get(format!("{url}/state/cluman/file?path=/nope"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(missing.status().as_u16(), 404);

    // The sites file names every VM with its port and the lab's files.
    let sites: toml::Value =
        toml::from_str(&lab.sites_toml("fra1")).unwrap_or_else(|e| panic!("{e}"));
    let site = &sites["sites"][0];
    assert_eq!(site["name"].as_str(), Some("fra1"));
    assert_eq!(site["jump_host"].as_str(), Some("cluman"));
    let hosts = site["hosts"].as_array().cloned().unwrap_or_default();
    assert_eq!(hosts.len(), 13);
    let key = site["key"].as_str().unwrap_or_default();
    assert!(Path::new(key).is_absolute() && Path::new(key).exists());
    let known = std::fs::read_to_string(site["known_hosts"].as_str().unwrap_or_default())
        .unwrap_or_default();
    for h in lab.hosts() {
        assert!(known.contains(&format!(
            "[{}]:{},[127.0.0.1]:{} ssh-ed25519 ",
            h.name, h.port, h.port
        )));
    }
    // Host keys survive a restart of the lab.
    let first = std::fs::read_to_string(dir.path().join("keys/cluman_ed25519")).unwrap_or_default();
    lab.shutdown().await;
    let again = Lab::start_with_pace(dir.path(), Pace::instant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keys/cluman_ed25519")).unwrap_or_default(),
        first
    );
    let cluman = port(&again, "cluman");
    again.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", cluman))
            .await
            .is_err(),
        "stopped means stopped"
    );
}
