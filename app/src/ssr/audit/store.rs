//! Appending to and verifying the audit trail in PostgreSQL.

use super::chain::{self, ChainBreak, ChainVerifier, ChainedEvent, GENESIS_HASH};
use crate::model::audit::AuditAction;
use crate::ssr::ServiceError;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};

/// The advisory lock key that serialises appends ("audit" in ASCII). Held until the
/// appending transaction ends, so the next appender sees this event as the head.
const APPEND_LOCK: i64 = 0x0061_7564_6974;

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(String),
    /// Someone not signed in, trying to sign in as this username (`?` when the
    /// text typed cannot be a username). Kept apart from [`Actor::User`] so that
    /// an attempt as `system` or `cli:root` cannot pass for those actors.
    Anonymous(String),
    /// The command line, with the operating-system user that ran it.
    Cli(String),
    /// The portal itself.
    System,
}

impl Actor {
    /// The `actor` column's value.
    pub fn as_column(&self) -> String {
        match self {
            Actor::User(name) => name.clone(),
            Actor::Anonymous(key) => format!("anon:{key}"),
            Actor::Cli(os_user) => format!("cli:{os_user}"),
            Actor::System => "system".to_string(),
        }
    }

    /// The command-line actor for the current OS user.
    pub fn cli() -> Self {
        Actor::Cli(std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
    }
}

/// An event to append.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub actor: Actor,
    pub action: AuditAction,
    pub subject: String,
    pub details: Value,
}

impl NewEvent {
    /// A new event.
    pub fn new(
        actor: &Actor,
        action: AuditAction,
        subject: impl Into<String>,
        details: Value,
    ) -> Self {
        Self {
            actor: actor.clone(),
            action,
            subject: subject.into(),
            details,
        }
    }
}

/// Appends an event inside the caller's transaction and returns its id. The event
/// commits or rolls back with the caller's state change. Appends are serialised by
/// an advisory lock, and the `UNIQUE (prev_hash)` constraint would refuse a fork.
pub async fn append(
    tx: &mut Transaction<'_, Postgres>,
    event: NewEvent,
) -> Result<i64, ServiceError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut **tx)
        .await?;
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let (id, prev_hash) = match head {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS_HASH.to_string()),
    };
    let chained = ChainedEvent {
        id,
        at: chain::to_stored_precision(Utc::now()),
        actor: event.actor.as_column(),
        action: event.action.as_str().to_string(),
        subject: event.subject,
        details: event.details,
        prev_hash,
    };
    let hash = chain::event_hash(&chained);
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, action, subject, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(chained.id)
    .bind(chained.at)
    .bind(&chained.actor)
    .bind(&chained.action)
    .bind(&chained.subject)
    .bind(&chained.details)
    .bind(&chained.prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Appends one event in a transaction of its own.
pub async fn append_alone(pool: &PgPool, event: NewEvent) -> Result<i64, ServiceError> {
    let mut tx = pool.begin().await?;
    let id = append(&mut tx, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events that passed before the first break (all of them when intact).
    pub checked: u64,
    /// The hash of the last event that passed (the genesis hash when empty).
    pub head: String,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

/// Every column of `audit_events`, for the verifiers.
const COLUMNS: &str =
    "SELECT id, at, actor, action, subject, details, prev_hash, hash FROM audit_events";

/// An event and its stored hash, from a row with every column.
pub(super) fn chained_from_row(
    row: &sqlx::postgres::PgRow,
) -> Result<(ChainedEvent, String), sqlx::Error> {
    Ok((
        ChainedEvent {
            id: row.try_get("id")?,
            at: row.try_get::<DateTime<Utc>, _>("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            subject: row.try_get("subject")?,
            details: row.try_get("details")?,
            prev_hash: row.try_get("prev_hash")?,
        },
        row.try_get("hash")?,
    ))
}

/// Feeds the rows (in id order) to `verifier` until the first break, calling
/// `progress` every [`PROGRESS_STEP`] events.
async fn walk(
    mut rows: futures_util::stream::BoxStream<'_, Result<sqlx::postgres::PgRow, sqlx::Error>>,
    mut verifier: ChainVerifier,
    mut progress: impl FnMut(u64),
) -> Result<(ChainVerifier, Option<ChainBreak>), ServiceError> {
    use futures_util::TryStreamExt;
    while let Some(row) = rows.try_next().await? {
        let (event, hash) = chained_from_row(&row)?;
        if let Err(broken) = verifier.push(&event, &hash) {
            return Ok((verifier, Some(broken)));
        }
        if verifier.checked().is_multiple_of(PROGRESS_STEP) {
            progress(verifier.checked());
        }
    }
    Ok((verifier, None))
}

/// Verifies events `from..=to`: each one's hash, and each link, starting from the
/// stored hash of event `from - 1` (so a changed first event is caught too).
pub async fn verify_range(pool: &PgPool, from: i64, to: i64) -> Result<VerifyReport, ServiceError> {
    let anchor: Option<String> = if from <= 1 {
        Some(GENESIS_HASH.to_string())
    } else {
        sqlx::query_scalar("SELECT hash FROM audit_events WHERE id = $1")
            .bind(from - 1)
            .fetch_optional(pool)
            .await?
    };
    let Some(anchor) = anchor else {
        return Ok(VerifyReport {
            checked: 0,
            head: String::new(),
            broken: Some(ChainBreak::Gap {
                expected: from - 1,
                found: from,
            }),
        });
    };
    let sql = format!("{COLUMNS} WHERE id BETWEEN $1 AND $2 ORDER BY id");
    let rows = sqlx::query(&sql).bind(from).bind(to).fetch(pool);
    let (verifier, broken) = walk(rows, ChainVerifier::resume(from, anchor), |_| {}).await?;
    // Events missing at the end of the range do not show as a gap in the rows.
    let broken = broken.or_else(|| {
        (verifier.checked() < (to - from + 1).max(0) as u64).then(|| ChainBreak::Gap {
            expected: from + verifier.checked() as i64,
            found: to,
        })
    });
    Ok(VerifyReport {
        checked: verifier.checked(),
        head: verifier.head().to_string(),
        broken,
    })
}

/// How many events a verification checks between two progress readings.
pub const PROGRESS_STEP: u64 = 1_000;

/// Walks the whole chain in id order, streaming rows (constant memory), and calls
/// `progress` with the number of events checked every [`PROGRESS_STEP`] events.
pub async fn verify(
    pool: &PgPool,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, ServiceError> {
    let sql = format!("{COLUMNS} ORDER BY id");
    let rows = sqlx::query(&sql).fetch(pool);
    let (verifier, broken) = walk(rows, ChainVerifier::default(), progress).await?;
    Ok(VerifyReport {
        checked: verifier.checked(),
        head: verifier.head().to_string(),
        broken,
    })
}

/// The chain's last event: its id and hash (none when there are no events).
pub async fn head(pool: &PgPool) -> Result<Option<(i64, String)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(pool)
            .await?,
    )
}
