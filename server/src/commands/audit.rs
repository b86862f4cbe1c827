//! `audit verify`.

use super::{CommandError, EXIT_CHAIN_BROKEN};
use crate::cli::AuditCommand;
use app::ssr::audit;
use sqlx::PgPool;
use std::io::Write;
use std::process::ExitCode;

pub async fn run(pool: &PgPool, command: AuditCommand) -> Result<ExitCode, CommandError> {
    match command {
        AuditCommand::Verify => {
            let started = std::time::Instant::now();
            let report = audit::verify(pool, |n| {
                eprint!("\rverified {n} events…");
                let _ = std::io::stderr().flush();
            })
            .await?;
            let seconds = started.elapsed().as_secs_f64();
            match report.broken {
                None => {
                    println!(
                        "audit chain intact: {} events verified in {seconds:.2} s; head {}",
                        report.checked, report.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(broken) => {
                    println!(
                        "audit chain BROKEN: {broken}. The {} events before event {} verified.",
                        report.checked,
                        broken.event_id()
                    );
                    Ok(ExitCode::from(EXIT_CHAIN_BROKEN))
                }
            }
        }
    }
}
