//! `runbook check`, and loading the runbooks at start.

use super::CommandError;
use crate::cli::RunbookCommand;
use crate::config::Settings;
use runbook::Runbook;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The files to check: each directory's `*.toml` files, and files as given.
fn files_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>, runbook::Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(runbook::load::runbook_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub fn run(settings: &Settings, command: RunbookCommand) -> ExitCode {
    match command {
        RunbookCommand::Check { paths } => {
            let paths = if paths.is_empty() {
                vec![settings.runbooks_dir.clone()]
            } else {
                paths
            };
            let files = match files_of(&paths) {
                Ok(files) => files,
                Err(d) => {
                    println!("{d}");
                    return ExitCode::from(1);
                }
            };
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
