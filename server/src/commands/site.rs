//! `site check`.

use crate::cli::SiteCommand;
use crate::config::Settings;
use crate::exec::site;
use std::path::Path;
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
        match s.connector() {
            Ok(_) => println!(
                "ok  site {} ({} hosts, jump host {})",
                s.name,
                s.hosts.len(),
                s.jump_host
            ),
            Err(e) => {
                usable = false;
                println!("site {}: {}", s.name, e.message);
            }
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
