//! The outbox: notifications and their deliveries in PostgreSQL.
//!
//! A request for approval writes its notification and one delivery per channel
//! of its site in the request's own transaction ([`enqueue_approval`]): a
//! committed request always has its deliveries, a rolled-back one has none, and
//! nothing is sent from inside the transaction. The worker then [`claim`]s due
//! deliveries (`FOR UPDATE SKIP LOCKED`, so two workers never take the same one)
//! and records each outcome. A claim counts the attempt and leases the delivery
//! for a while before anything is sent: a portal stopped mid-delivery leaves it
//! pending, taken again once the lease ends.

use super::message::{self, ApprovalNotice, RequestFacts};
use super::schedule::RetryPolicy;
use crate::model::audit::AuditAction;
use crate::model::notification::{
    ChannelKind, ChannelView, DeliveryState, DeliveryView, DELIVERIES_SHOWN,
};
use crate::ssr::audit::{self, Actor, NewEvent};
use crate::ssr::ServiceError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use std::time::Duration;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Queues the notification of request `approval_id` (inserted in `tx`) for every
/// active channel of its site. Returns how many deliveries were queued.
pub async fn enqueue_approval(
    tx: &mut Transaction<'_, Postgres>,
    approval_id: i64,
    approvals_page: &str,
) -> Result<u64, ServiceError> {
    let channels: Vec<i64> = sqlx::query_scalar(
        "SELECT c.id FROM notification_channels c JOIN approval_requests a ON a.site = c.site \
         WHERE a.id = $1 AND c.removed_at IS NULL ORDER BY c.id",
    )
    .bind(approval_id)
    .fetch_all(&mut **tx)
    .await?;
    if channels.is_empty() {
        return Ok(0);
    }
    let row = sqlx::query(
        "SELECT a.site, a.run_id, r.runbook_id, r.runbook_title, a.step_id, s.title, a.position, a.attempt, \
         a.host, a.action, a.action_hash, u.username, a.justification, a.quorum, clock_timestamp() AS now \
         FROM approval_requests a JOIN runs r ON r.id = a.run_id \
         JOIN run_steps s ON s.run_id = a.run_id AND s.position = a.position \
         JOIN users u ON u.id = a.requested_by WHERE a.id = $1",
    )
    .bind(approval_id)
    .fetch_one(&mut **tx)
    .await?;
    let facts = RequestFacts {
        approval_id,
        site: row.try_get("site")?,
        run_id: row.try_get("run_id")?,
        runbook_id: row.try_get("runbook_id")?,
        runbook_title: row.try_get("runbook_title")?,
        step_id: row.try_get("step_id")?,
        step_title: row.try_get("title")?,
        position: row.try_get("position")?,
        attempt: row.try_get("attempt")?,
        host: row.try_get("host")?,
        action: row.try_get("action")?,
        action_hash: row.try_get("action_hash")?,
        requested_by: row.try_get("username")?,
        justification: row.try_get("justification")?,
        quorum: u8::try_from(row.try_get::<i16, _>("quorum")?).unwrap_or(1),
    };
    let site = facts.site.clone();
    let event_id = message::event_id(rand::random());
    let notice = ApprovalNotice::new(facts, event_id.clone(), row.try_get("now")?, approvals_page);
    let event: i64 = sqlx::query_scalar(
        "INSERT INTO notification_events (event_id, kind, approval_id, site, body) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&event_id)
    .bind(message::APPROVAL_REQUESTED)
    .bind(approval_id)
    .bind(&site)
    .bind(notice.body().map_err(ServiceError::Internal)?)
    .fetch_one(&mut **tx)
    .await?;
    let queued = sqlx::query(
        "INSERT INTO notification_deliveries (event_id, channel_id) SELECT $1, unnest($2::bigint[])",
    )
    .bind(event)
    .bind(&channels)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(queued)
}

/// A delivery the worker took: what to send where.
#[derive(Clone)]
pub struct Claimed {
    pub id: i64,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub kind: ChannelKind,
    pub target: String,
    pub secret: Option<String>,
    pub event_id: String,
    pub event: String,
    pub body: String,
    pub approval_id: i64,
    pub site: String,
}

impl std::fmt::Debug for Claimed {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("kind", &self.kind)
            .field(
                "target",
                &super::channels::shown_target(self.kind.as_str(), self.target.clone()),
            )
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

/// Takes up to `limit` due deliveries of active channels, counting their attempt
/// and leasing each for `lease`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, ServiceError> {
    let rows = sqlx::query(
        "WITH due AS ( \
             SELECT d.id FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp() AND c.removed_at IS NULL \
             ORDER BY d.next_attempt_at, d.id LIMIT $1 FOR UPDATE OF d SKIP LOCKED), \
         claimed AS ( \
             UPDATE notification_deliveries d SET attempts = d.attempts + 1, last_attempt_at = clock_timestamp(), \
                 next_attempt_at = clock_timestamp() + $2::float8 * interval '1 millisecond' \
             FROM due WHERE d.id = due.id RETURNING d.id, d.attempts, d.channel_id, d.event_id) \
         SELECT claimed.id, claimed.attempts, c.kind, c.target, c.secret, e.event_id, e.kind AS event, e.body, \
             e.approval_id, e.site \
         FROM claimed JOIN notification_channels c ON c.id = claimed.channel_id \
         JOIN notification_events e ON e.id = claimed.event_id ORDER BY claimed.id",
    )
    .bind(limit)
    .bind(millis(lease))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(Claimed {
                id: r.try_get("id")?,
                attempt: u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or(1),
                kind: ChannelKind::parse(&kind).ok_or_else(|| {
                    ServiceError::Internal(format!("notification_channels.kind {kind:?}"))
                })?,
                target: r.try_get("target")?,
                secret: r.try_get("secret")?,
                event_id: r.try_get("event_id")?,
                event: r.try_get("event")?,
                body: r.try_get("body")?,
                approval_id: r.try_get("approval_id")?,
                site: r.try_get("site")?,
            })
        })
        .collect()
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; worth trying again while attempts are left.
    Failed(String),
    /// Failed in a way no retry can change (a relay's permanent refusal).
    Refused(String),
}

/// Records the outcome of attempt `c.attempt` of delivery `c`: delivered, due
/// again after the policy's delay, or failed for good (audited).
pub async fn record(
    pool: &PgPool,
    c: &Claimed,
    outcome: &Attempt,
    policy: &RetryPolicy,
) -> Result<(), ServiceError> {
    let (error, retry) = match outcome {
        Attempt::Delivered => {
            sqlx::query(
                "UPDATE notification_deliveries SET state = 'delivered', finished_at = clock_timestamp(), last_error = NULL \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(c.id)
            .execute(pool)
            .await?;
            return Ok(());
        }
        Attempt::Failed(e) => (e, policy.delay_after(c.attempt)),
        Attempt::Refused(e) => (e, None),
    };
    if let Some(delay) = retry {
        sqlx::query(
            "UPDATE notification_deliveries SET last_error = $2, next_attempt_at = clock_timestamp() + $3::float8 * interval '1 millisecond' \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(c.id)
        .bind(error)
        .bind(millis(delay))
        .execute(pool)
        .await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let failed = sqlx::query(
        "UPDATE notification_deliveries SET state = 'failed', last_error = $2, finished_at = clock_timestamp() \
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(c.id)
    .bind(error)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if failed == 1 {
        audit::append(
            &mut tx,
            NewEvent::new(
                &Actor::System,
                AuditAction::NotificationFailed,
                format!("approval:{}/notification:{}", c.approval_id, c.id),
                {
                    let mut details = json!({
                        "delivery": c.id, "event_id": c.event_id, "approval": c.approval_id, "site": c.site,
                        "kind": c.kind.as_str(), "attempts": c.attempt, "error": error,
                    });
                    super::channels::add_target(&mut details, c.kind, &c.target);
                    details
                },
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How long until the next pending delivery is due (zero if one is due now), or
/// `None` when nothing is pending.
pub async fn next_due(pool: &PgPool) -> Result<Option<Duration>, ServiceError> {
    let ms: Option<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (min(d.next_attempt_at) - clock_timestamp())) * 1000)::float8 \
         FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id \
         WHERE d.state = 'pending' AND c.removed_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(ms.map(|ms| Duration::from_millis(ms.max(0.0) as u64)))
}

/// The latest deliveries, newest first.
pub async fn recent(conn: &mut PgConnection) -> Result<Vec<DeliveryView>, ServiceError> {
    let rows = sqlx::query(
        "SELECT d.id, e.event_id, e.approval_id, a.run_id, e.site, c.kind, c.target, d.state, d.attempts, d.last_error, \
         d.next_attempt_at, d.last_attempt_at, d.finished_at, d.created_at \
         FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id \
         JOIN approval_requests a ON a.id = e.approval_id \
         JOIN notification_channels c ON c.id = d.channel_id ORDER BY d.id DESC LIMIT $1",
    )
    .bind(DELIVERIES_SHOWN)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let state: String = r.try_get("state")?;
            let state = DeliveryState::parse(&state).ok_or_else(|| {
                ServiceError::Internal(format!("notification_deliveries.state {state:?}"))
            })?;
            let next: DateTime<Utc> = r.try_get("next_attempt_at")?;
            Ok(DeliveryView {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                approval_id: r.try_get("approval_id")?,
                run_id: r.try_get("run_id")?,
                site: r.try_get("site")?,
                kind: ChannelKind::parse(&kind).ok_or_else(|| {
                    ServiceError::Internal(format!("notification_channels.kind {kind:?}"))
                })?,
                target: super::channels::shown_target(&kind, r.try_get("target")?),
                state,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                next_attempt_at: (state == DeliveryState::Pending).then(|| rfc3339(next)),
                last_attempt_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("last_attempt_at")?
                    .map(rfc3339),
                finished_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("finished_at")?
                    .map(rfc3339),
                created_at: rfc3339(r.try_get("created_at")?),
            })
        })
        .collect()
}

/// The channels, the latest deliveries and the counts of failed and pending
/// deliveries, all from one snapshot: read apart, a delivery finishing in between
/// would be listed delivered yet still counted pending.
pub async fn snapshot(
    pool: &PgPool,
) -> Result<(Vec<ChannelView>, Vec<DeliveryView>, (i64, i64)), ServiceError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let channels = super::channels::list(&mut tx).await?;
    let deliveries = recent(&mut tx).await?;
    let counts = counts(&mut tx).await?;
    tx.commit().await?;
    Ok((channels, deliveries, counts))
}

/// How many deliveries have failed for good, and how many are pending.
pub async fn counts(conn: &mut PgConnection) -> Result<(i64, i64), ServiceError> {
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE state = 'failed') AS failed, count(*) FILTER (WHERE state = 'pending') AS pending \
         FROM notification_deliveries",
    )
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("failed")?, row.try_get("pending")?))
}
