//! `runbook check`, and loading the runbooks at start.

use super::CommandError;
use crate::cli::RunbookCommand;
use crate::config::Settings;
use runbook::Runbook;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn files_of(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect()
                })
                .unwrap_or_else(|_| vec![path.clone()]);
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
}

pub fn run(settings: &Settings, command: RunbookCommand) -> ExitCode {
    match command {
        RunbookCommand::Check { paths } => {
            let paths = if paths.is_empty() {
                vec![settings.runbooks_dir.clone()]
            } else {
                paths
            };
            let files = files_of(&paths);
            if files.is_empty() {
                eprintln!(
                    "error: no runbook files (*.toml) in {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return ExitCode::from(1);
            }
            match runbook::load::load_files(&files) {
                Ok(runbooks) => {
                    for rb in &runbooks {
                        println!(
                            "ok  {}  {} ({} steps, {} destructive)",
                            rb.source.path,
                            rb.id,
                            rb.steps.len(),
                            rb.destructive_steps()
                        );
                    }
                    println!("{} runbooks valid", runbooks.len());
                    ExitCode::SUCCESS
                }
                Err(diagnostics) => {
                    for d in &diagnostics {
                        println!("{d}");
                    }
                    println!("{} problems found", diagnostics.len());
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Loads the runbooks directory for `serve`; any problem stops the start.
pub fn load_for_serve(dir: &Path) -> Result<Vec<Runbook>, CommandError> {
    runbook::load_dir(dir).map_err(|diagnostics| {
        CommandError::Runbooks(
            diagnostics
                .iter()
                .map(|d| format!("  {d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}
