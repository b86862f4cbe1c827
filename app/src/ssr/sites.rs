//! Sites for the admin: what the executor knows of them, and the host keys an
//! admin trusts in the portal (stored here, applied to the executor, audited).

use super::audit::{self, Actor, NewEvent};
use super::ServiceError;
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::site::{FaultView, SiteDetail, SitesOverview};
use serde_json::json;
use sqlx::{PgPool, Row};

/// A known_hosts line that was read, with its key's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedLine {
    pub line: String,
    pub fingerprint: String,
}

/// What the portal's executor knows about sites, and what it can be told.
pub trait SiteDirectory: Send + Sync + 'static {
    /// Every site, with hosts, trusted keys and refused keys.
    fn sites(&self) -> Vec<SiteDetail>;

    /// Whether a site of that name is configured.
    fn has_site(&self, name: &str) -> bool;

    /// Reads known_hosts text without trusting anything; an error names the line.
    fn check_known_hosts(&self, text: &str) -> Result<Vec<CheckedLine>, String>;

    /// Trusts these known_hosts lines for `site` from now on (source `import` or
    /// `confirmed`).
    fn trust(&self, site: &str, lines: &[(String, String)]) -> Result<(), String>;

    /// The known_hosts line of a refused key of `host`, by its fingerprint.
    fn refused_key(&self, site: &str, host: &str, fingerprint: &str) -> Option<String>;

    /// Checks a site definition (one `[[sites]]` block in the sites file's
    /// format) without adding it: its name, or what is wrong with it.
    fn check_site(&self, definition: &str) -> Result<String, String>;

    /// Adds a checked site definition.
    fn add_site(&self, definition: &str) -> Result<(), String>;

    /// The lab's faults, when the portal serves the lab.
    fn lab_faults(&self) -> Option<Vec<FaultView>>;

    /// Switches a lab fault; the error says what is wrong with its name.
    fn set_lab_fault(&self, fault: &str, on: bool) -> Result<(), String>;
}

/// The admin page's overview.
pub async fn overview(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
) -> Result<SitesOverview, ServiceError> {
    Ok(SitesOverview {
        sites: directory.sites(),
        lab_faults: directory.lab_faults(),
        break_glass: super::approvals::break_glass(pool).await?,
    })
}

fn site_known(directory: &dyn SiteDirectory, site: &str) -> Result<(), ServiceError> {
    if directory.has_site(site) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("There is no site {site:?}.")).into())
    }
}

/// Stores and applies the keys of an OpenSSH known_hosts text for `site`.
/// Returns how many lines were trusted.
pub async fn import_known_hosts(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
    actor: &Actor,
    site: &str,
    text: &str,
) -> Result<usize, ServiceError> {
    site_known(directory, site)?;
    let lines = directory
        .check_known_hosts(text)
        .map_err(|e| ServiceError::invalid("known_hosts", e))?;
    if lines.is_empty() {
        return Err(ServiceError::invalid(
            "known_hosts",
            "holds no host key: paste the lines of an OpenSSH known_hosts file",
        ));
    }
    let keys: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l.line.clone(), l.fingerprint.clone()))
        .collect();
    trust_keys(
        pool,
        directory,
        actor,
        site,
        "import",
        &keys,
        NewEvent::new(
            actor,
            AuditAction::HostKeysImported,
            format!("site:{site}"),
            json!({ "fingerprints": lines.iter().map(|l| &l.fingerprint).collect::<Vec<_>>() }),
        ),
    )
    .await?;
    Ok(lines.len())
}

/// Trusts the key `host` of `site` presented with `fingerprint`.
pub async fn confirm_key(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
    actor: &Actor,
    site: &str,
    host: &str,
    fingerprint: &str,
) -> Result<(), ServiceError> {
    site_known(directory, site)?;
    let line = directory
        .refused_key(site, host, fingerprint)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "{host} of site {site} has not presented a key with fingerprint {fingerprint}; reload the page."
            ))
        })?;
    trust_keys(
        pool,
        directory,
        actor,
        site,
        "confirmed",
        &[(line, fingerprint.to_string())],
        NewEvent::new(
            actor,
            AuditAction::HostKeyConfirmed,
            format!("site:{site}/host:{host}"),
            json!({ "fingerprint": fingerprint }),
        ),
    )
    .await
}

/// Stores `keys` (known_hosts line, fingerprint) as trusted from `source` with
/// their audit event, then applies them: a key nobody can account for is never used.
async fn trust_keys(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
    actor: &Actor,
    site: &str,
    source: &str,
    keys: &[(String, String)],
    event: NewEvent,
) -> Result<(), ServiceError> {
    let mut tx = pool.begin().await?;
    for (line, fingerprint) in keys {
        sqlx::query(
            "INSERT INTO site_host_keys (site, line, fingerprint, source, added_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site, line) DO NOTHING",
        )
        .bind(site)
        .bind(line)
        .bind(fingerprint)
        .bind(source)
        .bind(actor.as_column())
        .execute(&mut *tx)
        .await?;
    }
    audit::append(&mut tx, event).await?;
    tx.commit().await?;
    let lines: Vec<(String, String)> = keys
        .iter()
        .map(|(line, _)| (line.clone(), source.to_string()))
        .collect();
    directory
        .trust(site, &lines)
        .map_err(ServiceError::Internal)
}

/// Defines a new site from a `[[sites]]` block; answers its name.
pub async fn define_site(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
    actor: &Actor,
    definition: &str,
) -> Result<String, ServiceError> {
    let name = directory
        .check_site(definition)
        .map_err(|e| ServiceError::invalid("definition", e))?;
    if directory.has_site(&name) {
        return Err(AppError::Conflict(format!("A site named {name:?} exists already.")).into());
    }
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO sites (name, definition, added_by) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&name)
    .bind(definition)
    .bind(actor.as_column())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!("A site named {name:?} exists already.")).into());
    }
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::SiteDefined,
            format!("site:{name}"),
            json!({ "definition": definition }),
        ),
    )
    .await?;
    tx.commit().await?;
    directory
        .add_site(definition)
        .map_err(ServiceError::Internal)?;
    Ok(name)
}

/// At start: the sites defined in the portal. A definition that no longer works
/// (a key file that went away) is skipped with a warning, not fatal.
pub async fn apply_stored_sites(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
) -> Result<usize, ServiceError> {
    let rows = sqlx::query("SELECT name, definition FROM sites ORDER BY added_at")
        .fetch_all(pool)
        .await?;
    let mut added = 0;
    for row in &rows {
        let name: String = row.try_get("name")?;
        let definition: String = row.try_get("definition")?;
        if directory.has_site(&name) {
            tracing::warn!(site = %name, "a site defined in the portal has the name of one in the sites file; the file's is used");
            continue;
        }
        match directory.add_site(&definition) {
            Ok(()) => added += 1,
            Err(e) => {
                tracing::warn!(site = %name, error = %e, "a site defined in the portal cannot be used")
            }
        }
    }
    Ok(added)
}

/// Switches a lab fault, audited.
pub async fn set_lab_fault(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
    actor: &Actor,
    fault: &str,
    on: bool,
) -> Result<(), ServiceError> {
    if directory.lab_faults().is_none() {
        return Err(AppError::Conflict(
            "The portal does not serve the lab (start it with `serve --lab`).".into(),
        )
        .into());
    }
    directory
        .set_lab_fault(fault, on)
        .map_err(|e| ServiceError::invalid("fault", e))?;
    audit::append_alone(
        pool,
        NewEvent::new(
            actor,
            AuditAction::LabFaultChanged,
            "lab",
            json!({ "fault": fault, "on": on }),
        ),
    )
    .await?;
    Ok(())
}

/// At start: applies the keys trusted in the portal to the executor.
pub async fn apply_stored_keys(
    pool: &PgPool,
    directory: &dyn SiteDirectory,
) -> Result<usize, ServiceError> {
    let rows = sqlx::query("SELECT site, line, source FROM site_host_keys ORDER BY id")
        .fetch_all(pool)
        .await?;
    let mut applied = 0;
    for row in &rows {
        let site: String = row.try_get("site")?;
        let line: String = row.try_get("line")?;
        let source: String = row.try_get("source")?;
        // Keys of a site that is no longer configured wait for it to return.
        if directory.has_site(&site) {
            directory
                .trust(&site, &[(line, source)])
                .map_err(ServiceError::Internal)?;
            applied += 1;
        }
    }
    Ok(applied)
}
