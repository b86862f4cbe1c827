//! `lab` and `lab fault`: the simulated site on its own, and its faults.

use super::CommandError;
use crate::cli::{LabCommand, LabServe};
use crate::config::Settings;
use std::path::Path;
use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The site name the lab is offered under.
pub const LAB_SITE: &str = "lab";

pub async fn run(
    settings: &Settings,
    command: Option<LabCommand>,
    serve: LabServe,
) -> Result<ExitCode, CommandError> {
    match command {
        None => {
            let dir = serve.dir.unwrap_or_else(|| settings.lab_dir.clone());
            let out = serve.out.unwrap_or_else(|| dir.clone());
            let lab = start(&dir).await?;
            lab.write_out(&out).map_err(|e| {
                CommandError::Service(format!("cannot write to {}: {e}", out.display()))
            })?;
            println!("{}", lab.sites_toml(LAB_SITE));
            println!("# The lab is serving on 127.0.0.1. With OpenSSH:");
            println!(
                "#   ssh -F {}/ssh_config pcrfclient01 'crontab -l'",
                out.display()
            );
            println!(
                "# Faults: recovery-portal lab fault on replica-set-unhealthy --dir {}",
                dir.display()
            );
            println!("# Control API: {}", lab.control_url());
            println!("# Stop with Ctrl-C.");
            crate::startup::shutdown_signal().await;
            lab.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Some(LabCommand::Fault { action, fault, dir }) => {
            let dir = dir.unwrap_or_else(|| settings.lab_dir.clone());
            fault_command(&dir, &action, fault.as_deref()).await
        }
    }
}

/// Starts the lab in `dir`.
pub async fn start(dir: &Path) -> Result<lab::Lab, CommandError> {
    lab::Lab::start(dir)
        .await
        .map_err(|e| CommandError::Service(format!("the lab did not start: {e}")))
}

async fn fault_command(
    dir: &Path,
    action: &str,
    fault: Option<&str>,
) -> Result<ExitCode, CommandError> {
    let file = dir.join("control_url");
    let url = std::fs::read_to_string(&file).map_err(|e| {
        CommandError::Input(format!(
            "no running lab found ({}: {e}); start one with `recovery-portal lab` or `serve --lab`",
            file.display()
        ))
    })?;
    let url = url.trim();
    let (method, path) = match (action, fault) {
        ("list", _) => ("GET", "/faults".to_string()),
        ("on", Some(f)) => ("PUT", format!("/faults/{}", encode(f))),
        ("off", Some(f)) => ("DELETE", format!("/faults/{}", encode(f))),
        _ => {
            return Err(CommandError::Input(format!(
                "`lab fault {action}` needs the fault, such as host-down:qns01"
            )))
        }
    };
    let (status, body) = http(url, method, &path).await?;
    if (200..300).contains(&status) {
        // The control API answers the active faults as a JSON list.
        match serde_json::from_str::<Vec<String>>(body.trim()) {
            Ok(active) if active.is_empty() => println!("No fault is on."),
            Ok(active) => println!("Faults on: {}", active.join(", ")),
            Err(_) if body.trim().is_empty() => {}
            Err(_) => println!("{}", body.trim()),
        }
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{}", body.trim());
        Ok(ExitCode::from(2))
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One HTTP/1.1 request to the lab's control API on loopback.
async fn http(base: &str, method: &str, path: &str) -> Result<(u16, String), CommandError> {
    let parsed = url::Url::parse(base)
        .map_err(|e| CommandError::Input(format!("the lab's control URL {base:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port().unwrap_or(80);
    let unreachable = |e: std::io::Error| {
        CommandError::Service(format!("the lab at {base} does not answer: {e}"))
    };
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(unreachable)?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(unreachable)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
