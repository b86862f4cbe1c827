//! The first administrator, created when the portal starts with no users.

use super::audit::{self, Actor, NewEvent};
use super::{passwords, users, ServiceError};
use crate::model::audit::AuditAction;
use crate::model::user::Username;
use crate::model::Role;
use serde_json::json;
use sqlx::PgPool;

/// The name of the first administrator.
pub const INITIAL_ADMIN: &str = "admin";

/// Creates `admin` with a random password if there is no user at all, and returns
/// that password (to be shown once). Safe against two portals starting at once.
pub async fn ensure_initial_admin(pool: &PgPool) -> Result<Option<String>, ServiceError> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    if users::count(&mut *tx).await? > 0 {
        return Ok(None);
    }
    let password = passwords::random_password();
    let digest = passwords::hash(password.clone()).await?;
    let username =
        Username::parse(INITIAL_ADMIN).map_err(|e| ServiceError::Internal(e.to_string()))?;
    users::insert(&mut tx, &username, Role::Admin, &digest, true).await?;
    audit::append(
        &mut tx,
        NewEvent::new(
            &Actor::System,
            AuditAction::InitialAdminCreated,
            format!("user:{INITIAL_ADMIN}"),
            json!({ "username": INITIAL_ADMIN, "role": "admin", "must_change_password": true }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(password))
}
