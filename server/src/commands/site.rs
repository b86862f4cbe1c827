//! `site check`.

use crate::cli::SiteCommand;
use crate::config::Settings;
use crate::exec::site::{self, SiteAuth};
use crate::exec::ssh::agent_identities;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(settings: &Settings, command: SiteCommand) -> ExitCode {
    match command {
        SiteCommand::Check { file } => check(file.as_deref().unwrap_or(&settings.sites_file)),
    }
}

fn check(file: &Path) -> ExitCode {
    let label = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            println!("{label}: cannot be read: {e}");
            return ExitCode::from(1);
        }
    };
    let base = file.parent().unwrap_or(Path::new("."));
    let sites = match site::parse(&label, &text, base) {
        Ok(sites) => sites,
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            println!("{} problems found", errors.len());
            return ExitCode::from(1);
        }
    };
    let mut usable = true;
    for s in &sites {
        let agent = match &s.auth {
            SiteAuth::Agent { socket } => Some(check_agent(socket.clone())),
            SiteAuth::Key { .. } => None,
        };
        match (s.connector(), agent) {
            (Err(e), _) => {
                usable = false;
                println!("site {}: {}", s.name, e.message);
            }
            (Ok(_), Some(Err(message))) => {
                usable = false;
                println!("site {} uses the ssh-agent, but {message}", s.name);
            }
            (Ok(_), agent) => println!(
                "ok  site {} ({} hosts, jump host {}{})",
                s.name,
                s.hosts.len(),
                s.jump_host,
                match agent {
                    Some(Ok(n)) => format!(", ssh-agent with {n} identities"),
                    _ => String::new(),
                }
            ),
        }
        let missing = s.missing_runbook_hosts();
        if !missing.is_empty() {
            println!(
                "    note: runbook steps on {} cannot run on this site: it does not define them",
                missing.join(", ")
            );
        }
    }
    println!("{} sites checked", sites.len());
    if usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// How many identities the ssh-agent at `socket` (or `SSH_AUTH_SOCK`) holds; none
/// is an error. Asked from a thread of its own, as this command runs inside the
/// async runtime without awaiting.
fn check_agent(socket: Option<PathBuf>) -> Result<usize, String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("the agent cannot be asked: {e}"))?;
        runtime.block_on(async {
            let (_, identities) = agent_identities(socket.as_deref()).await?;
            Ok(identities.len())
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the agent check failed".to_string()))
}
