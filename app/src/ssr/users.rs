//! Users: the repository and the administration services.
//!
//! Every change is written together with its audit event in one transaction.

use super::audit::{self, Actor, NewEvent};
use super::passwords::{self, PasswordDigest};
use super::ServiceError;
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::password::check_new_password;
use crate::model::user::{UserSummary, Username};
use crate::model::Role;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};

/// A user as stored.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password: PasswordDigest,
    pub disabled: bool,
    pub must_change_password: bool,
    pub session_epoch: i64,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl UserRecord {
    /// The row as the Users page shows it.
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            username: self.username.clone(),
            role: self.role,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            created_at: self.created_at,
            last_sign_in_at: self.last_sign_in_at,
            email: self.email.clone(),
            display_name: self.display_name.clone(),
        }
    }

    /// The audit actor for this user.
    pub fn actor(&self) -> Actor {
        Actor::User(self.username.clone())
    }
}

const COLUMNS: &str = "id, username, role, password_hash, disabled, must_change_password, session_epoch, created_at, last_sign_in_at, email, display_name";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<UserRecord, ServiceError> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: role
            .parse()
            .map_err(|e| ServiceError::Internal(format!("users.role in the database: {e}")))?,
        password: PasswordDigest::from_stored(row.try_get("password_hash")?),
        disabled: row.try_get("disabled")?,
        must_change_password: row.try_get("must_change_password")?,
        session_epoch: row.try_get("session_epoch")?,
        created_at: row.try_get("created_at")?,
        last_sign_in_at: row.try_get("last_sign_in_at")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
    })
}

/// Finds a user by name.
pub async fn find_by_username(
    ex: impl PgExecutor<'_>,
    username: &Username,
) -> Result<Option<UserRecord>, ServiceError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
        .bind(username.as_str())
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Finds a user by id.
pub async fn find_by_id(
    ex: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<UserRecord>, ServiceError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every user, by name.
pub async fn list(ex: impl PgExecutor<'_>) -> Result<Vec<UserRecord>, ServiceError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
        .fetch_all(ex)
        .await?;
    rows.iter().map(from_row).collect()
}

/// How many users exist.
pub async fn count(ex: impl PgExecutor<'_>) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(ex)
        .await?)
}

/// Inserts a user; a taken name is a [`AppError::Conflict`].
pub async fn insert(
    conn: &mut PgConnection,
    username: &Username,
    role: Role,
    password: &PasswordDigest,
    must_change_password: bool,
) -> Result<UserRecord, ServiceError> {
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, role, password_hash, must_change_password) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (username) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(username.as_str())
    .bind(role.as_str())
    .bind(password.as_str())
    .bind(must_change_password)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => from_row(&row),
        None => Err(AppError::Conflict(format!("A user named {username} already exists.")).into()),
    }
}

/// Records a successful sign-in.
pub async fn touch_sign_in(conn: &mut PgConnection, id: i64) -> Result<(), ServiceError> {
    sqlx::query("UPDATE users SET last_sign_in_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

fn parse_username(input: &str) -> Result<Username, ServiceError> {
    Username::parse(input).map_err(|e| ServiceError::invalid("Username", e))
}

/// Parses a role name typed by a user.
pub fn parse_role(input: &str) -> Result<Role, ServiceError> {
    input
        .parse::<Role>()
        .map_err(|e| ServiceError::invalid("Role", e))
}

async fn load_for_update(
    conn: &mut PgConnection,
    username: &Username,
) -> Result<UserRecord, ServiceError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users WHERE username = $1 FOR UPDATE"
    ))
    .bind(username.as_str())
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => from_row(&row),
        None => Err(AppError::NotFound(format!("There is no user named {username}.")).into()),
    }
}

/// A username and a password chosen for it by someone else, checked and hashed.
async fn chosen_credentials(
    username: &str,
    password: String,
) -> Result<(Username, PasswordDigest), ServiceError> {
    let username = parse_username(username)?;
    check_new_password(username.as_str(), &password, &password)
        .map_err(|e| ServiceError::invalid("Password", e))?;
    let digest = passwords::hash(password).await?;
    Ok((username, digest))
}

fn refuse_self(actor: &Actor, target: &Username, what: &str) -> Result<(), ServiceError> {
    if matches!(actor, Actor::User(name) if name == target.as_str()) {
        return Err(AppError::Conflict(format!(
            "You cannot {what} your own account; ask another administrator."
        ))
        .into());
    }
    Ok(())
}

/// Creates a user. `must_change_password` is set when someone else chose the
/// password (the Users page), so the new user picks their own at first sign-in.
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    role: Role,
    password: String,
    must_change_password: bool,
) -> Result<UserSummary, ServiceError> {
    let (username, digest) = chosen_credentials(username, password).await?;
    let mut tx = pool.begin().await?;
    let user = insert(&mut tx, &username, role, &digest, must_change_password).await?;
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::UserCreated,
            format!("user:{username}"),
            json!({ "username": username.as_str(), "role": role.as_str(), "must_change_password": must_change_password }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(user.summary())
}

/// A change made to someone else's account. Every change ends that user's
/// sessions, so it takes effect at once.
enum AccountChange {
    Disable,
    Enable,
    Role(Role),
    Password {
        digest: PasswordDigest,
        must_change: bool,
    },
}

/// Applies `change` to the user and records it, in one transaction.
async fn apply_change(
    pool: &PgPool,
    actor: &Actor,
    username: &Username,
    change: AccountChange,
) -> Result<UserSummary, ServiceError> {
    let mut tx = pool.begin().await?;
    let user = load_for_update(&mut tx, username).await?;
    let name = username.as_str();
    let (set, action, details) = match &change {
        AccountChange::Disable => (
            "disabled = TRUE",
            AuditAction::UserDisabled,
            json!({ "username": name, "was_disabled": user.disabled }),
        ),
        AccountChange::Enable => (
            "disabled = FALSE",
            AuditAction::UserEnabled,
            json!({ "username": name, "was_disabled": user.disabled }),
        ),
        AccountChange::Role(role) => (
            "role = $2",
            AuditAction::UserRoleChanged,
            json!({ "username": name, "from": user.role.as_str(), "to": role.as_str() }),
        ),
        AccountChange::Password { must_change, .. } => (
            "password_hash = $2, must_change_password = $3",
            AuditAction::UserPasswordReset,
            json!({ "username": name, "must_change_password": must_change }),
        ),
    };
    let sql = format!(
        "UPDATE users SET {set}, session_epoch = session_epoch + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let mut query = sqlx::query(&sql).bind(user.id);
    match &change {
        AccountChange::Role(role) => query = query.bind(role.as_str()),
        AccountChange::Password {
            digest,
            must_change,
        } => query = query.bind(digest.as_str()).bind(*must_change),
        AccountChange::Disable | AccountChange::Enable => {}
    }
    let updated = from_row(&query.fetch_one(&mut *tx).await?)?;
    audit::append(
        &mut tx,
        NewEvent::new(actor, action, format!("user:{name}"), details),
    )
    .await?;
    // Four eyes: what a supervisor approved must not outlive their being one.
    let stops_approving = user.role == Role::Supervisor
        && match &change {
            AccountChange::Disable => true,
            AccountChange::Role(role) => *role != Role::Supervisor,
            _ => false,
        };
    if stops_approving {
        let why = match &change {
            AccountChange::Disable => format!("{name}, who approved it, was disabled"),
            _ => format!("{name}, who approved it, is no longer a supervisor"),
        };
        super::approvals::void_approved_by(&mut tx, user.id, actor, &why).await?;
    }
    tx.commit().await?;
    Ok(updated.summary())
}

/// Disables or enables a user. Disabling ends all of the user's sessions.
pub async fn set_disabled(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    disabled: bool,
) -> Result<UserSummary, ServiceError> {
    let username = parse_username(username)?;
    refuse_self(
        actor,
        &username,
        if disabled { "disable" } else { "enable" },
    )?;
    let change = if disabled {
        AccountChange::Disable
    } else {
        AccountChange::Enable
    };
    apply_change(pool, actor, &username, change).await
}

/// Changes a user's role. The user's sessions end, so the new role applies at once.
pub async fn set_role(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    role: Role,
) -> Result<UserSummary, ServiceError> {
    let username = parse_username(username)?;
    refuse_self(actor, &username, "change the role of")?;
    apply_change(pool, actor, &username, AccountChange::Role(role)).await
}

/// Sets a user's password on someone else's behalf (an admin on the Users page, or
/// the command line). Ends the user's sessions; with `must_change_password` the
/// user must choose a new one at the next sign-in.
pub async fn reset_password(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    password: String,
    must_change_password: bool,
) -> Result<UserSummary, ServiceError> {
    if let Ok(name) = Username::parse(username) {
        // An admin who could reset their own password without knowing it could
        // take over their account from a stolen session: change it on Account.
        refuse_self(actor, &name, "reset the password of")?;
    }
    let (username, digest) = chosen_credentials(username, password).await?;
    apply_change(
        pool,
        actor,
        &username,
        AccountChange::Password {
            digest,
            must_change: must_change_password,
        },
    )
    .await
}

/// Checks an e-mail address and display name as [`set_contact`] would.
pub fn check_contact(
    email: &str,
    display_name: &str,
) -> Result<(Option<String>, Option<String>), ServiceError> {
    let email =
        crate::model::duties::parse_email(email).map_err(|e| ServiceError::invalid("E-mail", e))?;
    let display_name = crate::model::duties::parse_display_name(display_name)
        .map_err(|e| ServiceError::invalid("Display name", e))?;
    Ok((email, display_name))
}

/// Sets who a user is beyond the account name (empty text clears a field), so
/// that accounts of one person can be recognised (see [`super::oversight`]).
pub async fn set_contact(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    email: &str,
    display_name: &str,
) -> Result<UserSummary, ServiceError> {
    let username = parse_username(username)?;
    let (email, display_name) = check_contact(email, display_name)?;
    let mut tx = pool.begin().await?;
    let user = load_for_update(&mut tx, &username).await?;
    let row = sqlx::query(&format!(
        "UPDATE users SET email = $2, display_name = $3, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(user.id)
    .bind(&email)
    .bind(&display_name)
    .fetch_one(&mut *tx)
    .await?;
    let updated = from_row(&row)?;
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::UserContactChanged,
            format!("user:{username}"),
            json!({
                "username": username.as_str(),
                "email": { "from": user.email, "to": email },
                "display_name": { "from": user.display_name, "to": display_name },
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(updated.summary())
}

/// Forgets every failed sign-in on `username`, so that no wait is left for them
/// from any address (an administrator's answer to a user slowed down by someone
/// guessing their password). Works for names without an account too, since
/// failures are counted by the name typed. Returns how many were forgotten.
pub async fn unlock(pool: &PgPool, actor: &Actor, username: &str) -> Result<u64, ServiceError> {
    let username = parse_username(username)?;
    let mut tx = pool.begin().await?;
    let forgotten = super::throttle::unlock(&mut tx, username.as_str()).await?;
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::UserUnlocked,
            format!("user:{username}"),
            json!({ "username": username.as_str(), "failures_forgotten": forgotten }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(forgotten)
}

/// A user changes their own password. Returns the user as updated; the caller
/// moves its own session to the new epoch, which ends every other session.
pub async fn change_own_password(
    pool: &PgPool,
    user: &UserRecord,
    current: String,
    new: String,
    confirmation: String,
) -> Result<UserRecord, ServiceError> {
    check_new_password(&user.username, &new, &confirmation)
        .map_err(|e| ServiceError::invalid("New password", e))?;
    if current == new {
        return Err(ServiceError::invalid(
            "New password",
            "must differ from the current password",
        ));
    }
    if !passwords::verify(current, Some(user.password.clone())).await? {
        return Err(ServiceError::invalid("Current password", "is not correct"));
    }
    let digest = passwords::hash(new).await?;
    let mut tx = pool.begin().await?;
    let row = sqlx::query(&format!(
        "UPDATE users SET password_hash = $2, must_change_password = FALSE, session_epoch = session_epoch + 1, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(user.id)
    .bind(digest.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let updated = from_row(&row)?;
    audit::append(
        &mut tx,
        NewEvent::new(
            &user.actor(),
            AuditAction::PasswordChanged,
            format!("user:{}", user.username),
            json!({ "username": user.username, "was_required": user.must_change_password, "other_sessions_ended": true }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}
