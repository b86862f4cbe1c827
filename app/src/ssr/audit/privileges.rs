//! Whether the database role the portal runs as could rewrite the audit trail.
//!
//! The append-only triggers stop the portal's own code, not its role: the owner
//! of `audit_events` may disable them, and a superuser may skip them. So the
//! portal should serve as a role that may only read and add events, while
//! migrations run as the owner (`migration_database_url`).

use crate::ssr::ServiceError;
use sqlx::{PgPool, Row};

/// What makes the current role able to change or remove events, in words; empty
/// when it may only read and add them.
pub async fn runtime_role_problems(pool: &PgPool) -> Result<Vec<String>, ServiceError> {
    let row = sqlx::query(
        "SELECT current_user::text AS role, r.rolsuper AS superuser, \
                pg_has_role(current_user, c.relowner, 'MEMBER') AS owner, \
                pg_get_userbyid(c.relowner)::text AS owned_by, \
                has_table_privilege(c.oid, 'UPDATE') AS may_update, \
                has_table_privilege(c.oid, 'DELETE') AS may_delete, \
                has_table_privilege(c.oid, 'TRUNCATE') AS may_truncate \
         FROM pg_roles r, pg_class c \
         WHERE r.rolname = current_user AND c.oid = 'audit_events'::regclass",
    )
    .fetch_one(pool)
    .await?;
    let role: String = row.try_get("role")?;
    if row.try_get::<bool, _>("superuser")? {
        return Ok(vec![format!(
            "the database role `{role}` is a superuser: it can bypass the audit trail's triggers and delete or rewrite events"
        )]);
    }
    if row.try_get::<bool, _>("owner")? {
        let owned_by: String = row.try_get("owned_by")?;
        let how = if owned_by == role {
            "owns audit_events".to_string()
        } else {
            format!("is a member of `{owned_by}`, which owns audit_events")
        };
        return Ok(vec![format!(
            "the database role `{role}` {how}: it can disable the append-only triggers and delete or rewrite events"
        )]);
    }
    let granted: Vec<&str> = [
        ("may_update", "UPDATE"),
        ("may_delete", "DELETE"),
        ("may_truncate", "TRUNCATE"),
    ]
    .into_iter()
    .filter(|(column, _)| row.try_get::<bool, _>(*column).unwrap_or(true))
    .map(|(_, privilege)| privilege)
    .collect();
    if granted.is_empty() {
        Ok(Vec::new())
    } else {
        Ok(vec![format!(
            "the database role `{role}` holds {} on audit_events",
            granted.join(", ")
        )])
    }
}
