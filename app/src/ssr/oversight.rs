//! Admins watching admins: the changes to accounts and break glass that another
//! admin (or the command line) made, shown to every other admin until they have
//! seen them, and the accounts that seem to belong to one person.
//!
//! One admin can reset a supervisor's password, create accounts or switch on
//! break glass. The portal cannot stop a trusted admin from doing their job, but
//! it makes sure no such change goes unnoticed by the others.

use super::ServiceError;
use crate::model::duties::{shared_identities, AccountIdentity, SharedIdentity};
use crate::model::user::{SecurityNotice, UsersOversight};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

/// How far back notices go.
const NOTICE_DAYS: i32 = 7;
/// At most this many notices are listed.
const NOTICES_SHOWN: i64 = 50;

/// The events that are notices: changes that widen what someone can approve or
/// who can sign in as whom.
const NOTICE_CONDITION: &str = "at > now() - make_interval(days => $2) AND actor <> $1 AND actor <> 'system' AND actor NOT LIKE 'anon:%' AND ( \
     action = 'user.password_reset' \
     OR action = 'user.unlocked' \
     OR (action = 'user.created' AND details->>'role' IN ('supervisor', 'admin')) \
     OR (action = 'user.role_changed' AND details->>'to' IN ('supervisor', 'admin')) \
     OR (action = 'user.enabled' AND details->>'was_disabled' = 'true') \
     OR (action = 'user.contact_changed') \
     OR (action = 'site.break_glass_changed' AND details->>'enabled' = 'true'))";

fn summary(action: &str, subject: &str, details: &serde_json::Value) -> String {
    let who = subject.strip_prefix("user:").unwrap_or(subject);
    match action {
        "user.password_reset" => format!("reset the password of {who}"),
        "user.unlocked" => format!("unlocked {who}'s failed sign-ins"),
        "user.created" => format!(
            "created {who} with the role {}",
            details["role"].as_str().unwrap_or("?")
        ),
        "user.role_changed" => format!(
            "gave {who} the role {} (was {})",
            details["to"].as_str().unwrap_or("?"),
            details["from"].as_str().unwrap_or("?")
        ),
        "user.enabled" => format!("enabled {who} again"),
        "user.contact_changed" => format!("changed the e-mail address or display name of {who}"),
        "site.break_glass_changed" => format!(
            "switched break glass on for {} ({})",
            subject.strip_prefix("site:").unwrap_or(subject),
            details["reason"].as_str().unwrap_or("")
        ),
        other => other.to_string(),
    }
}

/// What the Users page shows admin `viewer` (user id `viewer_id`) above the list.
pub async fn for_admin(
    pool: &PgPool,
    viewer: &str,
    viewer_id: i64,
) -> Result<UsersOversight, ServiceError> {
    let seen: i64 = sqlx::query_scalar("SELECT notices_seen_id FROM users WHERE id = $1")
        .bind(viewer_id)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT id, at, actor, action, subject, details FROM audit_events WHERE {NOTICE_CONDITION} \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(viewer)
    .bind(NOTICE_DAYS)
    .bind(NOTICES_SHOWN)
    .fetch_all(pool)
    .await?;
    let notices = rows
        .iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let action: String = r.try_get("action")?;
            let subject: String = r.try_get("subject")?;
            let details: serde_json::Value = r.try_get("details")?;
            let at: DateTime<Utc> = r.try_get("at")?;
            Ok(SecurityNotice {
                event_id: id,
                at,
                actor: r.try_get("actor")?,
                what: summary(&action, &subject, &details),
                unseen: id > seen,
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    let accounts = super::users::list(pool).await?;
    let identities: Vec<AccountIdentity<'_>> = accounts
        .iter()
        .map(|u| AccountIdentity {
            username: &u.username,
            role: u.role,
            disabled: u.disabled,
            email: u.email.as_deref(),
            display_name: u.display_name.as_deref(),
        })
        .collect();
    let shared: Vec<SharedIdentity> = shared_identities(&identities);
    Ok(UsersOversight { notices, shared })
}

/// How many notices admin `viewer` has not seen yet (the navigation's badge).
pub async fn unseen(pool: &PgPool, viewer: &str, viewer_id: i64) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM audit_events WHERE {NOTICE_CONDITION} \
         AND id > (SELECT notices_seen_id FROM users WHERE id = $3)"
    ))
    .bind(viewer)
    .bind(NOTICE_DAYS)
    .bind(viewer_id)
    .fetch_one(pool)
    .await?)
}

/// Records that admin `viewer_id` has seen every notice up to event `up_to`.
pub async fn acknowledge(pool: &PgPool, viewer_id: i64, up_to: i64) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE users SET notices_seen_id = GREATEST(notices_seen_id, LEAST($2, (SELECT coalesce(max(id), 0) FROM audit_events))) \
         WHERE id = $1",
    )
    .bind(viewer_id)
    .bind(up_to)
    .execute(pool)
    .await?;
    Ok(())
}
