//! Verifications of the whole chain, recorded in `audit_verifications`: started
//! from the portal (in the background, with progress) or the command line, one
//! at a time, each ending in an `audit.verified` event that states the result.
//! Besides the chain's own links, a verification compares the chain with the
//! newest signed checkpoint of its head (and with a head the auditor kept, from
//! `audit verify --expect-head`): a chain shorter than a checkpoint, or with
//! another hash at its id, is broken; so is a checkpoint whose MAC fails.

use super::checkpoint::{check_anchor, Anchor, AnchorKind, Checkpoints};
use super::store::{self, Actor, NewEvent};
use crate::model::audit::{
    AuditAction, ChainVerification, CheckpointView, HeadRef, VerificationStatus,
};
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
        anchor_head_id: row.try_get("anchor_head_id")?,
        anchor_head_hash: row.try_get("anchor_head_hash")?,
        anchor_at: row
            .try_get::<Option<DateTime<Utc>>, _>("anchor_at")?
            .map(rfc3339),
        anchor_source: row.try_get("anchor_source")?,
    })
}

/// The latest verification and the last finished one, the chain's head now,
/// the newest checkpoint known, and whether the portal's database role could
/// rewrite the trail.
pub async fn status(
    pool: &PgPool,
    checkpoints: Option<&Checkpoints>,
) -> Result<VerificationStatus, ServiceError> {
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
    let head = store::head(pool)
        .await?
        .map(|(id, hash)| HeadRef { id, hash });
    // Neither the checkpoint nor the role check may hide the result above.
    let checkpoint = match checkpoints {
        Some(c) => match c.newest(pool).await {
            Ok(newest) => newest.map(|(c, source)| CheckpointView {
                head_id: c.head_id,
                head_hash: c.head_hash,
                at: rfc3339(c.at),
                source: source.to_string(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "the newest audit checkpoint could not be read");
                None
            }
        },
        None => None,
    };
    let role_warnings = super::privileges::runtime_role_problems(pool)
        .await
        .unwrap_or_else(|e| vec![format!("the database role could not be checked ({e})")]);
    Ok(VerificationStatus {
        latest,
        last_finished,
        head,
        checkpoint,
        role_warnings,
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

/// What a verification compares the chain with besides its own links.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anchors<'a> {
    /// The signed checkpoints (none: the chain's links only).
    pub checkpoints: Option<&'a Checkpoints>,
    /// A head the auditor kept (`audit verify --expect-head ID:HASH`).
    pub expected: Option<&'a Anchor>,
}

/// What a finished walk found.
struct Findings {
    checked: u64,
    head: String,
    /// Each problem: the first event it concerns (none for a forged checkpoint)
    /// and what it is, the chain's own break first.
    problems: Vec<(Option<i64>, String)>,
    /// The newest checkpoint compared with.
    anchor: Option<Anchor>,
}

/// Compares the chain after a walk with the newest checkpoint and the expected head.
async fn compare(
    pool: &PgPool,
    report: store::VerifyReport,
    anchors: Anchors<'_>,
) -> Result<Findings, ServiceError> {
    let mut problems = Vec::new();
    if let Some(b) = &report.broken {
        problems.push((Some(b.event_id()), b.to_string()));
    }
    let mut forged = None;
    let mut anchor = None;
    if let Some(checkpoints) = anchors.checkpoints {
        let (_, survey) = checkpoints.survey(pool).await?;
        forged = survey.forged_sentence();
        anchor = survey.newest.map(|(c, source)| Anchor::of(&c, source));
    }
    let end: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM audit_events")
        .fetch_one(pool)
        .await?;
    for a in anchor.iter().chain(anchors.expected) {
        let at: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE id = $1")
            .bind(a.head_id)
            .fetch_optional(pool)
            .await?;
        if let Err(b) = check_anchor(a, end, at.as_deref()) {
            problems.push((Some(b.event_id()), b.to_string()));
        }
    }
    if let Some(forged) = forged {
        problems.push((None, forged));
    }
    Ok(Findings {
        checked: report.checked,
        head: report.head,
        problems,
        anchor,
    })
}

/// Walks the chain for verification `id`, writing its progress as it goes and
/// its result at the end (with an `audit.verified` event), compares it with its
/// anchors, and checkpoints the head afterwards; `progress` also hears every
/// reading. Returns the finished record.
pub async fn run(
    pool: &PgPool,
    id: i64,
    by: &Actor,
    anchors: Anchors<'_>,
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
    let found = match walked {
        Ok(report) => compare(pool, report, anchors).await,
        Err(e) => Err(e),
    };
    let (state, checked, head, broken_at, reason, anchor) = match &found {
        Ok(f) if f.problems.is_empty() => (
            "intact",
            f.checked,
            Some(f.head.clone()),
            None,
            None,
            f.anchor.clone(),
        ),
        Ok(f) => (
            "broken",
            f.checked,
            Some(f.head.clone()),
            f.problems.iter().find_map(|(id, _)| *id),
            Some(
                f.problems
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            f.anchor.clone(),
        ),
        Err(e) => (
            "failed",
            0,
            None,
            None,
            Some(format!("the verification stopped: {e}")),
            None,
        ),
    };
    let head_id = (checked > 0).then_some(checked as i64);
    let (anchor_at, anchor_source) = match anchor.as_ref().map(|a| &a.kind) {
        Some(AnchorKind::Checkpoint { at, source }) => (Some(*at), Some(source.to_string())),
        _ => (None, None),
    };
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE audit_verifications SET state = $2, checked = $3, finished_at = now(), \
         head_id = $4, head_hash = $5, broken_at = $6, reason = $7, \
         anchor_head_id = $8, anchor_head_hash = $9, anchor_at = $10, anchor_source = $11 \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state)
    .bind(checked as i64)
    .bind(head_id)
    .bind(head.as_deref().filter(|_| head_id.is_some()))
    .bind(broken_at)
    .bind(&reason)
    .bind(anchor.as_ref().map(|a| a.head_id))
    .bind(anchor.as_ref().map(|a| a.head_hash.clone()))
    .bind(anchor_at)
    .bind(&anchor_source)
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
                "checkpoint": anchor.as_ref().map(|a| json!({ "head_id": a.head_id, "head_hash": a.head_hash })),
                "expected_head": anchors.expected.map(|a| json!({ "head_id": a.head_id, "head_hash": a.head_hash })),
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    if let Some(checkpoints) = anchors.checkpoints {
        checkpoints.write_logged(pool, "verification").await;
    }
    found?;
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
