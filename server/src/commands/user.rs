//! `user ...`: user administration from the command line.

use super::CommandError;
use crate::cli::{PasswordInput, UserCommand};
use app::ssr::audit::Actor;
use app::ssr::users;
use sqlx::PgPool;
use std::io::BufRead;
use std::process::ExitCode;

fn read_password(input: &PasswordInput) -> Result<String, CommandError> {
    debug_assert!(input.password_stdin);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        CommandError::Input(format!("reading the password from standard input: {e}"))
    })?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CommandError::Input(
            "no password on standard input: pipe it in, for example `echo \"$PW\" | recovery-portal user add ... --password-stdin`".into(),
        ));
    }
    Ok(password)
}

pub async fn run(pool: &PgPool, command: UserCommand) -> Result<ExitCode, CommandError> {
    let actor = Actor::cli();
    match command {
        UserCommand::Add {
            name,
            role,
            password,
        } => {
            let role = users::parse_role(&role)?;
            let secret = read_password(&password)?;
            let user = users::create(pool, &actor, &name, role, secret, password.temporary).await?;
            println!("Created user {} with role {}.", user.username, user.role);
        }
        UserCommand::List => {
            let list = users::list(pool).await?;
            println!(
                "{:<32} {:<10} {:<22} LAST SIGN-IN",
                "NAME", "ROLE", "STATUS"
            );
            for u in list {
                let status = match (u.disabled, u.must_change_password) {
                    (true, _) => "disabled",
                    (false, true) => "must change password",
                    (false, false) => "active",
                };
                let last = u
                    .last_sign_in_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".into());
                println!("{:<32} {:<10} {:<22} {}", u.username, u.role, status, last);
            }
        }
        UserCommand::Disable { name } => {
            let user = users::set_disabled(pool, &actor, &name, true).await?;
            println!("Disabled {}; their sessions have ended.", user.username);
        }
        UserCommand::Enable { name } => {
            let user = users::set_disabled(pool, &actor, &name, false).await?;
            println!("Enabled {}.", user.username);
        }
        UserCommand::Passwd { name, password } => {
            let secret = read_password(&password)?;
            let user =
                users::reset_password(pool, &actor, &name, secret, password.temporary).await?;
            println!(
                "Password of {} set; their sessions have ended.",
                user.username
            );
        }
        UserCommand::Contact {
            name,
            email,
            display_name,
        } => {
            let user = users::set_contact(pool, &actor, &name, &email, &display_name).await?;
            println!(
                "{}: e-mail {}, display name {}.",
                user.username,
                user.email.as_deref().unwrap_or("(none)"),
                user.display_name.as_deref().unwrap_or("(none)")
            );
        }
        UserCommand::Unlock { name } => {
            let forgotten = users::unlock(pool, &actor, &name).await?;
            println!("Unlocked {name}: {forgotten} failed sign-in(s) forgotten; no wait is left.");
        }
        UserCommand::Role { name, role } => {
            let role = users::parse_role(&role)?;
            let user = users::set_role(pool, &actor, &name, role).await?;
            println!("{} now has the role {}.", user.username, user.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}
