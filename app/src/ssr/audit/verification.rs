//! Verifications of the whole chain, recorded in `audit_verifications`: started
//! from the portal (in the background, with progress) or the command line, one
//! at a time, each ending in an `audit.verified` event that states the result.

use super::store::{self, Actor, NewEvent};
use crate::model::audit::{AuditAction, ChainVerification, VerificationStatus};
use crate::ssr::ServiceError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::{PgPool, Row};
use std::time::Duration;

/// How often a running verification writes how far it got.
const PROGRESS_EVERY: Duration = Duration::from_millis(300);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn from_row(row: &sqlx::postgres::PgRow) -> Result<ChainVerification, sqlx::Error> {
    Ok(ChainVerification {
        id: row.try_get("id")?,
        started_by: row.try_get("started_by")?,
        started_at: rfc3339(row.try_get("started_at")?),
        total: row.try_get("total")?,
        checked: row.try_get("checked")?,
        state: row.try_get("state")?,
        finished_at: row
            .try_get::<Option<DateTime<Utc>>, _>("finished_at")?
            .map(rfc3339),
        head_id: row.try_get("head_id")?,
        head_hash: row.try_get("head_hash")?,
        broken_at: row.try_get("broken_at")?,
        reason: row.try_get("reason")?,
    })
}

/// The latest verification and the last finished one.
pub async fn status(pool: &PgPool) -> Result<VerificationStatus, ServiceError> {
    let latest = sqlx::query("SELECT * FROM audit_verifications ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await?
        .map(|r| from_row(&r))
        .transpose()?;
    let last_finished = sqlx::query(
        "SELECT * FROM audit_verifications WHERE state <> 'running' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .map(|r| from_row(&r))
    .transpose()?;
    Ok(VerificationStatus {
        latest,
        last_finished,
    })
}

/// Records a new verification, or returns the one already running (`false`).
pub async fn begin(pool: &PgPool, by: &Actor) -> Result<(i64, bool), ServiceError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO audit_verifications (started_by, total) \
         SELECT $1, coalesce(max(id), 0) FROM audit_events \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(by.as_column())
    .fetch_optional(pool)
    .await?;
    match created {
        Some(id) => Ok((id, true)),
        None => {
            let running: i64 = sqlx::query_scalar(
                "SELECT id FROM audit_verifications WHERE state = 'running' ORDER BY id DESC LIMIT 1",
            )
            .fetch_one(pool)
            .await?;
            Ok((running, false))
        }
    }
}

/// Walks the chain for verification `id`, writing its progress as it goes and
/// its result at the end (with an `audit.verified` event); `progress` also hears
/// every reading. Returns the finished record.
pub async fn run(
    pool: &PgPool,
    id: i64,
    by: &Actor,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ChainVerification, ServiceError> {
    let (tx, mut rx) = tokio::sync::watch::channel(0u64);
    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let ended = rx.changed().await.is_err();
                let checked = *rx.borrow_and_update();
                if checked != last {
                    last = checked;
                    let _ = sqlx::query(
                        "UPDATE audit_verifications SET checked = $2 WHERE id = $1 AND state = 'running'",
                    )
                    .bind(id)
                    .bind(checked as i64)
                    .execute(&pool)
                    .await;
                }
                if ended {
                    break;
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        })
    };
    let walked = store::verify(pool, |n| {
        let _ = tx.send(n);
        progress(n);
    })
    .await;
    drop(tx);
    let _ = writer.await;
    let (state, checked, head, broken_at, reason) = match &walked {
        Ok(report) => match &report.broken {
            None => (
                "intact",
                report.checked,
                Some(report.head.clone()),
                None,
                None,
            ),
            Some(b) => (
                "broken",
                report.checked,
                Some(report.head.clone()),
                Some(b.event_id()),
                Some(b.to_string()),
            ),
        },
        Err(e) => (
            "failed",
            0,
            None,
            None,
            Some(format!("the verification stopped: {e}")),
        ),
    };
    let head_id = (checked > 0).then_some(checked as i64);
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE audit_verifications SET state = $2, checked = $3, finished_at = now(), \
         head_id = $4, head_hash = $5, broken_at = $6, reason = $7 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state)
    .bind(checked as i64)
    .bind(head_id)
    .bind(head.as_deref().filter(|_| head_id.is_some()))
    .bind(broken_at)
    .bind(&reason)
    .fetch_one(&mut *tx)
    .await?;
    store::append(
        &mut tx,
        NewEvent::new(
            by,
            AuditAction::ChainVerified,
            "audit",
            json!({
                "verification": id, "result": state, "checked": checked,
                "head_id": head_id, "broken_at": broken_at, "reason": reason,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    walked?;
    Ok(from_row(&row)?)
}

/// Marks verifications that a stopped portal left running as failed.
pub async fn abandon_running(pool: &PgPool) -> Result<u64, ServiceError> {
    Ok(sqlx::query(
        "UPDATE audit_verifications SET state = 'failed', finished_at = now(), \
         reason = 'the portal stopped before the verification finished' WHERE state = 'running'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}
