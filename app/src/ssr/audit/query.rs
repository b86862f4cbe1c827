//! Reading audit events by [`AuditQuery`]: pages for the viewer (newest first,
//! keyset-paginated by id, so a page costs the same at event 10 and at event
//! 10 million) and an id-ordered stream for exports (rows as they come, in
//! constant memory). Migration 0008 indexes what the filters use.

use super::chain::ChainedEvent;
use super::store::chained_from_row;
use crate::model::audit::{AuditEventDetail, AuditEventView, AuditPage, AUDIT_PAGE_SIZE};
use crate::model::audit_query::AuditQuery;
use crate::ssr::ServiceError;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder};

/// The run number in an event's subject (`run:12`, `run:12/step:x`), as SQL.
const RUN_OF_SUBJECT: &str = "substring(subject from '^run:([0-9]+)')";

/// `%` and `_` match themselves in a LIKE pattern.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Appends `WHERE …` for `q` (and ids below `before`).
fn push_filters<'a>(b: &mut QueryBuilder<'a, Postgres>, q: &'a AuditQuery, before: Option<i64>) {
    b.push(" WHERE true");
    if let Some(from) = q.from {
        b.push(" AND at >= ").push_bind(from);
    }
    if let Some(until) = q.until {
        b.push(" AND at < ").push_bind(until);
    }
    if let Some(actor) = &q.actor {
        b.push(" AND actor = ").push_bind(actor);
    }
    if let Some(action) = &q.action {
        if action.ends_with('.') {
            b.push(" AND starts_with(action, ")
                .push_bind(action)
                .push(")");
        } else {
            b.push(" AND action = ").push_bind(action);
        }
    }
    if let Some(run) = q.run {
        b.push(format!(" AND {RUN_OF_SUBJECT} = "))
            .push_bind(run.to_string());
    }
    if let Some(site) = &q.site {
        b.push(format!(
            " AND ({RUN_OF_SUBJECT} IN (SELECT id::text FROM runs WHERE site = "
        ))
        .push_bind(site)
        .push(") OR details->>'site' = ")
        .push_bind(site)
        .push(")");
    }
    if let Some(host) = &q.host {
        b.push(" AND details->>'host' = ").push_bind(host);
    }
    if let Some(text) = &q.text {
        let pattern = format!("%{}%", like_literal(text));
        b.push(" AND (subject ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR details::text ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(before) = before {
        b.push(" AND id < ").push_bind(before);
    }
}

const COLUMNS: &str =
    "SELECT id, at, actor, action, subject, details, prev_hash, hash FROM audit_events";

/// The event as the viewer shows it.
pub fn view_of(e: ChainedEvent, hash: String) -> AuditEventView {
    AuditEventView {
        id: e.id,
        at: e.at,
        actor: e.actor,
        action: e.action,
        subject: e.subject,
        details: serde_json::to_string_pretty(&e.details).unwrap_or_else(|_| e.details.to_string()),
        prev_hash: e.prev_hash,
        hash,
    }
}

/// One page of matching events older than `before`, newest first.
pub async fn page(
    pool: &PgPool,
    q: &AuditQuery,
    before: Option<i64>,
) -> Result<AuditPage, ServiceError> {
    let mut b = QueryBuilder::new(COLUMNS);
    push_filters(&mut b, q, before);
    b.push(" ORDER BY id DESC LIMIT ")
        .push_bind(AUDIT_PAGE_SIZE + 1);
    let rows = b.build().fetch_all(pool).await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows.iter().take(AUDIT_PAGE_SIZE as usize) {
        let (e, hash) = chained_from_row(row)?;
        events.push(view_of(e, hash));
    }
    let next_before = if rows.len() as i64 > AUDIT_PAGE_SIZE {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        events,
        next_before,
    })
}

/// Every event of run `run_id` (subject `run:N…`), oldest first, as (event, hash).
pub async fn of_run(
    pool: &PgPool,
    run_id: i64,
) -> Result<Vec<(ChainedEvent, String)>, ServiceError> {
    let q = AuditQuery {
        run: Some(run_id),
        ..AuditQuery::default()
    };
    let mut b = QueryBuilder::new(COLUMNS);
    push_filters(&mut b, &q, None);
    b.push(" ORDER BY id");
    let rows = b.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| chained_from_row(row).map_err(ServiceError::from))
        .collect()
}

/// One event with its hash recomputed and its link to the event before checked.
pub async fn detail(pool: &PgPool, id: i64) -> Result<Option<AuditEventDetail>, ServiceError> {
    let Some(row) = sqlx::query(&format!("{COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let (e, hash) = chained_from_row(&row)?;
    let hash_matches = super::chain::event_hash(&e) == hash;
    let linked = if id == 1 {
        Some(e.prev_hash == super::GENESIS_HASH)
    } else {
        sqlx::query_scalar::<_, String>("SELECT hash FROM audit_events WHERE id = $1")
            .bind(id - 1)
            .fetch_optional(pool)
            .await?
            .map(|previous| previous == e.prev_hash)
    };
    let next: Option<i64> = sqlx::query_scalar("SELECT id FROM audit_events WHERE id = $1")
        .bind(id + 1)
        .fetch_optional(pool)
        .await?;
    Ok(Some(AuditEventDetail {
        event: view_of(e, hash),
        hash_matches,
        linked,
        next,
    }))
}

/// The newest matching event's id above `after`, if any: what a live tail
/// polls for.
pub async fn newest_after(
    pool: &PgPool,
    q: &AuditQuery,
    after: i64,
) -> Result<Option<i64>, ServiceError> {
    let mut b = QueryBuilder::new("SELECT max(id) FROM audit_events");
    push_filters(&mut b, q, None);
    b.push(" AND id > ").push_bind(after);
    Ok(b.build_query_scalar::<Option<i64>>()
        .fetch_one(pool)
        .await?)
}

/// The chain's last event id (0 when empty).
pub async fn head_id(pool: &PgPool) -> Result<i64, ServiceError> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM audit_events")
            .fetch_one(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Rows an export reads per query.
const EXPORT_PAGE: i64 = 500;

/// How long one page's query may take: a query held longer would hold its
/// pooled connection from everyone else.
const EXPORT_PAGE_TIMEOUT: &str = "30s";

/// How long a whole export may take; a download still going after that is
/// broken off (a JSONL then lacks its trailer, so it is refused offline).
pub const EXPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// One page of matching events after id `after`, in id order, read in its own
/// short transaction.
async fn export_page(
    pool: &PgPool,
    q: &AuditQuery,
    after: i64,
) -> Result<Vec<(ChainedEvent, String)>, ServiceError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = '{EXPORT_PAGE_TIMEOUT}'"
    ))
    .execute(&mut *tx)
    .await?;
    let mut b = QueryBuilder::new(COLUMNS);
    push_filters(&mut b, q, None);
    b.push(" AND id > ").push_bind(after);
    b.push(" ORDER BY id LIMIT ").push_bind(EXPORT_PAGE);
    let rows = b.build().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| chained_from_row(r).map_err(ServiceError::from))
        .collect()
}

/// Every matching event in id order, a page of rows at a time: each page is a
/// short query of its own (keyset by id), so a slow reader holds no database
/// connection between pages and memory stays flat. The export ends with an
/// error after [`EXPORT_DEADLINE`].
pub fn stream(
    pool: PgPool,
    q: AuditQuery,
) -> BoxStream<'static, Result<(ChainedEvent, String), ServiceError>> {
    struct Cursor {
        pool: PgPool,
        q: AuditQuery,
        after: i64,
        page: std::collections::VecDeque<(ChainedEvent, String)>,
        done: bool,
        deadline: tokio::time::Instant,
    }
    let cursor = Cursor {
        pool,
        q,
        after: 0,
        page: Default::default(),
        done: false,
        deadline: tokio::time::Instant::now() + EXPORT_DEADLINE,
    };
    futures_util::stream::unfold(cursor, |mut c| async move {
        if c.page.is_empty() && !c.done {
            if tokio::time::Instant::now() >= c.deadline {
                c.done = true;
                return Some((
                    Err(ServiceError::Internal(format!(
                        "the export took longer than {} minutes and was broken off",
                        EXPORT_DEADLINE.as_secs() / 60
                    ))),
                    c,
                ));
            }
            match export_page(&c.pool, &c.q, c.after).await {
                Ok(rows) => {
                    c.done = (rows.len() as i64) < EXPORT_PAGE;
                    if let Some((last, _)) = rows.last() {
                        c.after = last.id;
                    }
                    c.page.extend(rows);
                }
                Err(e) => {
                    c.done = true;
                    return Some((Err(e), c));
                }
            }
        }
        let next = c.page.pop_front()?;
        Some((Ok(next), c))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_the_text_are_literal() {
        assert_eq!(like_literal("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn filters_become_bound_parameters() {
        let q = AuditQuery {
            run: Some(12),
            text: Some("x'; DROP".into()),
            action: Some("approval.".into()),
            ..AuditQuery::default()
        };
        let mut b = QueryBuilder::<Postgres>::new(COLUMNS);
        push_filters(&mut b, &q, Some(99));
        let sql = b.sql().to_string();
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(sql.contains("starts_with(action, $1)"), "{sql}");
        assert!(
            sql.contains("substring(subject from '^run:([0-9]+)') = $2"),
            "{sql}"
        );
        assert!(sql.ends_with("AND id < $5"), "{sql}");
    }
}
