//! `serve`: migrate, make sure an administrator exists, then serve.

use super::CommandError;
use crate::config::Settings;
use crate::exec::executor::SiteExecutor;
use crate::exec::site::{self, Site};
use crate::startup::{self, Application};
use app::model::audit::AuditAction;
use app::ssr::audit::{self, Actor, NewEvent};
use app::ssr::bootstrap;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The lab as a site, with its files written and sample backups in the store for
/// the last days, so restore procedures can be rehearsed at once.
fn lab_site(lab: &lab::Lab, settings: &Settings) -> Result<Site, CommandError> {
    let dir = &settings.lab_dir;
    lab.write_out(dir)
        .map_err(|e| CommandError::Service(format!("cannot write to {}: {e}", dir.display())))?;
    let today = chrono::Local::now().date_naive();
    for days in 0..3 {
        let date = (today - chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string();
        lab.seed_backup_store(&settings.backup_store, super::lab::LAB_SITE, &date)
            .map_err(|e| {
                CommandError::Service(format!(
                    "cannot write sample backups to {}: {e}",
                    settings.backup_store.display()
                ))
            })?;
    }
    let text = lab.sites_toml(super::lab::LAB_SITE);
    let mut sites = site::parse("the lab's sites file", &text, dir).map_err(|errors| {
        CommandError::Service(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    sites
        .pop()
        .ok_or_else(|| CommandError::Service("the lab's sites file has no site".into()))
}

/// Tells whoever started the portal the first admin's password: on a terminal,
/// printed once (not logged, not stored). When the output goes elsewhere (a
/// service's journal, a CI log, a file), whoever reads that could sign in first,
/// so the password goes into a file only this OS user can read, and its path is
/// printed instead.
fn announce_initial_admin(
    url: &url::Url,
    password: &str,
    data_dir: &Path,
) -> Result<(), CommandError> {
    use std::io::IsTerminal;
    let shown = if std::io::stdout().is_terminal() {
        format!("Password:  {password}")
    } else {
        let file = password_file(data_dir, password).map_err(|e| {
            CommandError::Service(format!(
                "the first administrator was created, but its password could not be written to {}: {e}. \
                 Set one with `recovery-portal user passwd {} --password-stdin --temporary`",
                data_dir.join(PASSWORD_FILE).display(),
                bootstrap::INITIAL_ADMIN
            ))
        })?;
        format!(
            "Password file: {} (readable by this user only; delete it once you have signed in)",
            file.display()
        )
    };
    println!();
    println!("  ┌─ First start: an administrator account was created ─────────────");
    println!("  │  URL:       {url}");
    println!("  │  Username:  {}", bootstrap::INITIAL_ADMIN);
    println!("  │  {shown}");
    println!("  │  You must choose a new password at the first sign-in.");
    println!("  └─────────────────────────────────────────────────────────────────");
    println!();
    Ok(())
}

/// The file [`password_file`] writes, in the data directory.
pub const PASSWORD_FILE: &str = "initial-admin-password";

/// Writes `password` to `dir/initial-admin-password`, created afresh with mode
/// 0600 (an older one is replaced, never reused with its permissions), in a
/// directory made 0700 if it is new; answers the file's absolute path.
pub fn password_file(dir: &Path, password: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let mut make = std::fs::DirBuilder::new();
    make.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        make.mode(0o700);
    }
    make.create(dir)?;
    let path = std::fs::canonicalize(dir)?.join(PASSWORD_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut file = open.open(&path)?;
    writeln!(file, "{password}")?;
    file.sync_all()?;
    Ok(path)
}

/// The configured sites; none when the sites file does not exist.
fn load_sites(settings: &Settings) -> Result<Vec<Site>, CommandError> {
    let file = &settings.sites_file;
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %file.display(), "no sites file: runs cannot be started until sites are configured");
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(CommandError::Input(format!(
                "{}: cannot be read: {e}",
                file.display()
            )))
        }
    };
    let base = file.parent().unwrap_or(Path::new("."));
    site::parse(&file.display().to_string(), &text, base).map_err(|errors| {
        CommandError::Input(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Refuses to serve as a database role that could rewrite the audit trail
/// (owner, superuser, or UPDATE/DELETE/TRUNCATE on it), unless
/// `allow_owner_role` accepts the risk; then it says so loudly.
async fn check_role(settings: &Settings, pool: &sqlx::PgPool) -> Result<(), CommandError> {
    let problems = app::ssr::audit::privileges::runtime_role_problems(pool).await?;
    if problems.is_empty() {
        return Ok(());
    }
    if !settings.allow_owner_role {
        return Err(CommandError::Service(format!(
            "refusing to serve: {}. The append-only triggers would not protect the audit trail from the portal's own database role. \
             Serve as a role that may only SELECT and INSERT on audit_events: set DATABASE_URL to that role and \
             MIGRATION_DATABASE_URL to the role that owns the schema (the portal grants the runtime role its rights; \
             README, *Database roles*), or set allow_owner_role = true to accept the risk",
            problems.join("; ")
        )));
    }
    for problem in &problems {
        tracing::warn!(%problem, "THE AUDIT TRAIL IS NOT PROTECTED FROM THE PORTAL'S DATABASE ROLE (allow_owner_role = true)");
        eprintln!("WARNING: {problem}; serving anyway because allow_owner_role = true");
    }
    Ok(())
}

pub async fn serve(
    mut settings: Settings,
    listen: Option<SocketAddr>,
    with_lab: bool,
) -> Result<ExitCode, CommandError> {
    if let Some(listen) = listen {
        let default_public = format!("http://{}/", settings.listen);
        settings.listen = listen;
        if settings.public_url.as_str() == default_public {
            settings.public_url = url::Url::parse(&format!("http://{listen}/"))
                .map_err(|e| CommandError::Input(format!("--listen {listen}: {e}")))?;
        }
    }
    let runbooks = super::runbook::load_for_serve(&settings.runbooks_dir)?;
    tracing::info!(count = runbooks.len(), dir = %settings.runbooks_dir.display(), "runbooks loaded");
    // A missing key is made now; a bad one stops the start before anything else.
    app::ssr::audit::checkpoint::CheckpointKey::load_or_create(&settings.audit_key_file)
        .map_err(startup::StartupError::from)?;
    let pool = startup::prepare(&settings).await?;
    check_role(&settings, &pool).await?;
    let interrupted = app::ssr::runs::interrupt_running(&pool).await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "steps that were running when the portal stopped are marked interrupted; their operators decide what follows");
    }
    let released = app::ssr::approvals::release_stranded(&pool).await?;
    if released > 0 {
        tracing::warn!(released, "steps awaiting approval without an open request are pending again; their operators request approval again");
    }
    let abandoned = app::ssr::audit::verification::abandon_running(&pool).await?;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "chain verifications that were running when the portal stopped are marked failed"
        );
    }
    let mut sites = load_sites(&settings)?;
    // The lab lives as long as the portal: it is dropped when `serve` returns.
    let lab = if with_lab {
        let lab = super::lab::start(&settings.lab_dir).await?;
        sites.retain(|s| s.name != super::lab::LAB_SITE);
        sites.push(lab_site(&lab, &settings)?);
        Some(lab)
    } else {
        None
    };
    let mut executor = SiteExecutor::new(sites, settings.backup_store.clone())
        .map_err(|e| CommandError::Input(e.to_string()))?;
    if let Some(lab) = &lab {
        executor = executor.with_lab(lab.faults());
    }
    let base = settings
        .sites_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let secrets = settings
        .site_secrets_dir
        .clone()
        .unwrap_or_else(|| base.clone());
    let executor = Arc::new(executor.with_base(base).with_secrets_dir(secrets));
    let defined = app::ssr::sites::apply_stored_sites(&pool, executor.as_ref()).await?;
    if defined > 0 {
        tracing::info!(defined, "sites defined in the portal added");
    }
    let trusted = app::ssr::sites::apply_stored_keys(&pool, executor.as_ref()).await?;
    if trusted > 0 {
        tracing::info!(trusted, "host keys trusted in the portal applied");
    }
    let app = Application::build(
        &settings,
        pool.clone(),
        runbooks,
        executor.clone(),
        executor,
    )
    .await?;
    let port = app.port();
    let mut url = settings.public_url.clone();
    if settings.listen.port() == 0 {
        let _ = url.set_port(Some(port));
    }

    if let Some(password) = bootstrap::ensure_initial_admin(&pool).await? {
        announce_initial_admin(&url, &password, &settings.data_dir)?;
    }
    audit::append_alone(
        &pool,
        NewEvent::new(
            &Actor::System,
            AuditAction::PortalStarted,
            "portal",
            json!({ "version": env!("CARGO_PKG_VERSION"), "listen": format!("{}:{port}", settings.listen.ip()), "public_url": url.as_str() }),
        ),
    )
    .await?;
    // The head is anchored at once, so that events removed from now on are seen.
    app.checkpoints().write_logged(&pool, "start").await;
    println!(
        "Recovery Portal {} listening on http://{}:{port}/ (public URL {url})",
        env!("CARGO_PKG_VERSION"),
        settings.listen.ip()
    );
    tracing::info!(port, "serving");
    if let Some(lab) = &lab {
        println!(
            "Lab site `lab` serving on 127.0.0.1 (OpenSSH: ssh -F {}/ssh_config cluman; faults: recovery-portal lab fault --help)",
            settings.lab_dir.display()
        );
        tracing::info!(control = %lab.control_url(), "lab serving");
    }
    app.run_until_stopped(startup::shutdown_signal())
        .await
        .map_err(|e| CommandError::Service(format!("server stopped: {e}")))?;
    if let Some(lab) = lab {
        lab.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}
