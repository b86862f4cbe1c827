//! The subcommands. Each returns the process exit code; errors are printed once,
//! in words, by [`run`].

mod audit;
mod bench;
mod bench_audit;
mod lab;
mod runbook;
mod serve;
mod site;
mod user;

use crate::cli::{Cli, Command};
use crate::config::Settings;
use crate::startup::{self, StartupError};
use crate::telemetry;
use std::process::ExitCode;

/// Exit code when the audit chain is broken.
pub const EXIT_CHAIN_BROKEN: u8 = 1;
/// Exit code for any other failure (bad configuration, database unreachable...).
pub const EXIT_FAILURE: u8 = 3;

/// A failure of a command, printed as `error: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Service(String),
    #[error("{0}")]
    Input(String),
    #[error("invalid runbooks; the portal does not start with them:\n{0}")]
    Runbooks(String),
}

impl From<app::ssr::ServiceError> for CommandError {
    fn from(e: app::ssr::ServiceError) -> Self {
        CommandError::Service(e.to_string())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, CommandError> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve { listen, lab } => serve::serve(settings, listen, lab).await,
        Command::Lab { command, serve } => lab::run(&settings, command, serve).await,
        Command::Migrate => {
            startup::prepare(&settings).await?;
            println!(
                "Database schema is up to date ({} migrations).",
                startup::MIGRATOR.iter().count()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(command) => {
            let pool = ready_pool(&settings).await?;
            user::run(&pool, command).await
        }
        Command::Audit(crate::cli::AuditCommand::Verify {
            file: Some(file), ..
        }) => audit::verify_file(&file),
        Command::Audit(command) => {
            let pool = ready_pool(&settings).await?;
            audit::run(&pool, &settings, command).await
        }
        Command::Runbook(command) => Ok(runbook::run(&settings, command)),
        Command::Site(command) => Ok(site::run(&settings, command)),
        Command::Bench(crate::cli::BenchCommand::ImageTransfer { size_mb }) => {
            bench::image_transfer(size_mb).await
        }
        Command::Bench(crate::cli::BenchCommand::Audit { appends, events }) => {
            // It creates and drops a scratch database: the schema owner's role
            // may, the runtime role need not.
            let database = match &settings.migration_database_url {
                Some(owner) => owner,
                None => settings.database()?,
            };
            bench_audit::audit(database.expose(), appends, events).await
        }
    }
}

/// A pool on a migrated database (migrated as the schema's owner when
/// `migration_database_url` is set).
async fn ready_pool(settings: &Settings) -> Result<sqlx::PgPool, CommandError> {
    Ok(startup::prepare(settings).await?)
}
