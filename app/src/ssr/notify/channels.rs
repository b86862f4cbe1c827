//! Each site's channels in the database: added and removed by admins, every
//! change audited in its own transaction. Removing a channel cancels what it
//! still had to deliver.

use super::validate;
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::notification::{ChannelKind, ChannelView};
use crate::ssr::audit::{self, Actor, NewEvent};
use crate::ssr::ServiceError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Row};

/// What an admin asks to add.
#[derive(Clone, Debug)]
pub enum NewChannel<'a> {
    Webhook { url: &'a str, secret: &'a str },
    Email { address: &'a str },
}

/// Adds what the audit trail keeps of a channel's target to `details`: an
/// e-mail address as it is; of a webhook URL, whose path or query may be the
/// receiver's only credential, its scheme, host, port and SHA-256 (the trail
/// cannot be edited, and supervisors and auditors read it).
pub(crate) fn add_target(details: &mut serde_json::Value, kind: ChannelKind, target: &str) {
    let Some(map) = details.as_object_mut() else {
        return;
    };
    match kind {
        ChannelKind::Webhook => {
            if let serde_json::Value::Object(url) = validate::audited_url(target) {
                map.extend(url);
            }
        }
        ChannelKind::Email => {
            map.insert("target".into(), json!(target));
        }
    }
}

/// A channel's target as admins see it: a webhook URL with its path redacted.
pub(crate) fn shown_target(kind: &str, target: String) -> String {
    if kind == ChannelKind::Webhook.as_str() {
        validate::redacted_url(&target)
    } else {
        target
    }
}

/// Adds a checked channel to `site` (which the caller checked exists); webhooks
/// only to hosts `allowed` admits. Returns its id.
pub async fn add(
    pool: &PgPool,
    site: &str,
    channel: NewChannel<'_>,
    allowed: &validate::AllowedHosts,
    actor: &Actor,
) -> Result<i64, ServiceError> {
    let (kind, target, secret, field) = match channel {
        NewChannel::Webhook { url, secret } => {
            let w = validate::webhook(url, secret, allowed).map_err(AppError::Fields)?;
            (ChannelKind::Webhook, w.url, Some(w.secret), "url")
        }
        NewChannel::Email { address } => {
            let a = validate::email(address).map_err(AppError::Fields)?;
            (ChannelKind::Email, a, None, "address")
        }
    };
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notification_channels (site, kind, target, secret, added_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (site, kind, target) WHERE removed_at IS NULL DO NOTHING RETURNING id",
    )
    .bind(site)
    .bind(kind.as_str())
    .bind(&target)
    .bind(secret.as_deref())
    .bind(actor.as_column())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let label = if kind == ChannelKind::Webhook {
            "URL"
        } else {
            "Address"
        };
        return Err(AppError::Fields(vec![(
            field.into(),
            format!(
                "{label}: {} is already notified for site {site}",
                shown_target(kind.as_str(), target.clone())
            ),
        )])
        .into());
    };
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::NotificationChannelAdded,
            format!("site:{site}/notification:{id}"),
            // The secret is not recorded, not even in part.
            {
                let mut details = json!({ "channel": id, "site": site, "kind": kind.as_str(), "signed": secret.is_some() });
                add_target(&mut details, kind, &target);
                details
            },
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes channel `id`; its pending deliveries are cancelled. Returns its site.
pub async fn remove(pool: &PgPool, id: i64, actor: &Actor) -> Result<String, ServiceError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE notification_channels SET removed_at = now(), removed_by = $2 \
         WHERE id = $1 AND removed_at IS NULL RETURNING site, kind, target",
    )
    .bind(id)
    .bind(actor.as_column())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        AppError::NotFound(format!(
            "There is no notification channel {id}; reload the page."
        ))
    })?;
    let site: String = row.try_get("site")?;
    let kind: String = row.try_get("kind")?;
    let target: String = row.try_get("target")?;
    let cancelled = sqlx::query(
        "UPDATE notification_deliveries SET state = 'cancelled', finished_at = now(), \
         last_error = coalesce(last_error || '; ', '') || 'channel removed' \
         WHERE channel_id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    audit::append(
        &mut tx,
        NewEvent::new(
            actor,
            AuditAction::NotificationChannelRemoved,
            format!("site:{site}/notification:{id}"),
            {
                let mut details = json!({ "channel": id, "site": site, "kind": kind, "cancelled_deliveries": cancelled });
                if let Some(kind) = ChannelKind::parse(&kind) {
                    add_target(&mut details, kind, &target);
                }
                details
            },
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(site)
}

/// Every active channel, by site then id, secrets shown by their last characters.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ChannelView>, ServiceError> {
    let rows = sqlx::query(
        "SELECT id, site, kind, target, secret, added_by, added_at FROM notification_channels \
         WHERE removed_at IS NULL ORDER BY site, id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let secret: Option<String> = r.try_get("secret")?;
            let added_at: DateTime<Utc> = r.try_get("added_at")?;
            Ok(ChannelView {
                id: r.try_get("id")?,
                site: r.try_get("site")?,
                kind: ChannelKind::parse(&kind).ok_or_else(|| {
                    ServiceError::Internal(format!("notification_channels.kind {kind:?}"))
                })?,
                target: shown_target(&kind, r.try_get("target")?),
                secret_hint: secret.as_deref().map(validate::secret_hint),
                added_by: r.try_get("added_by")?,
                added_at: added_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            })
        })
        .collect()
}
