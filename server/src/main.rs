//! `recovery-portal`: see `server::cli` for the commands.

use clap::Parser;
use server::cli::Cli;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    server::commands::run(Cli::parse()).await
}
