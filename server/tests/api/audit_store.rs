//! The audit store on a real database: append-only, chained, never forked,
//! committed with the caller's transaction, and tampering detected.

use app::model::audit::AuditAction;
use app::ssr::audit::{self, Actor, NewEvent};
use serde_json::json;
use sqlx::PgPool;

fn event(n: i64) -> NewEvent {
    NewEvent::new(
        &Actor::System,
        AuditAction::PortalStarted,
        "portal",
        json!({ "n": n, "text": "ünïcode \"quoted\"" }),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_refuses_update_delete_and_truncate(pool: PgPool) {
    audit::append_alone(&pool, event(1)).await.unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let report = audit::verify(&pool, |_| {}).await.unwrap();
    assert_eq!((report.checked, report.broken), (1, None));
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_appends_form_one_chain(pool: PgPool) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                audit::append_alone(&pool, event(w * 100 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = audit::verify(&pool, |_| {}).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_event_rolls_back_with_its_transaction(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    audit::append(&mut tx, event(1)).await.unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The next event still starts the chain at 1.
    assert_eq!(audit::append_alone(&pool, event(2)).await.unwrap(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_fork_is_impossible_even_bypassing_the_appender(pool: PgPool) {
    audit::append_alone(&pool, event(1)).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO audit_events (id, at, actor, action, subject, details, prev_hash, hash) \
         SELECT 2, now(), 'x', 'x', 'x', '{}', prev_hash, repeat('a', 64) FROM audit_events WHERE id = 1",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("audit_events_single_successor"),
        "{err}"
    );
}

/// Alters a row behind the trigger's back, as a superuser could.
pub async fn tamper(pool: &PgPool, sql: &str) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *conn).await.unwrap();
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn verification_names_the_altered_event(pool: PgPool) {
    for n in 1..=10 {
        audit::append_alone(&pool, event(n)).await.unwrap();
    }
    tamper(
        &pool,
        "UPDATE audit_events SET details = '{\"n\": 999}' WHERE id = 7",
    )
    .await;
    let report = audit::verify(&pool, |_| {}).await.unwrap();
    assert_eq!(report.checked, 6);
    assert_eq!(report.broken.unwrap().event_id(), 7);
}

#[sqlx::test(migrations = "../migrations")]
async fn verification_names_a_deleted_event(pool: PgPool) {
    for n in 1..=5 {
        audit::append_alone(&pool, event(n)).await.unwrap();
    }
    tamper(&pool, "DELETE FROM audit_events WHERE id = 3").await;
    let report = audit::verify(&pool, |_| {}).await.unwrap();
    assert_eq!(
        report.broken,
        Some(audit::ChainBreak::Gap {
            expected: 3,
            found: 4
        })
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_filter_and_paginate_newest_first(pool: PgPool) {
    use app::model::audit_query::AuditQuery;
    use audit::query::page;
    for n in 1..=120 {
        let actor = if n % 2 == 0 {
            Actor::User("even".into())
        } else {
            Actor::System
        };
        let (subject, details) = if n % 10 == 0 {
            (
                format!("run:{}/step:x", n / 10),
                json!({ "n": n, "host": "pcrfclient01", "command": "crontab -l" }),
            )
        } else {
            ("x".to_string(), json!({ "n": n }))
        };
        audit::append_alone(
            &pool,
            NewEvent::new(&actor, AuditAction::SignIn, subject, details),
        )
        .await
        .unwrap();
    }
    let q = |pairs: &[(&str, &str)]| {
        AuditQuery::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    };
    let all = q(&[]);
    let first = page(&pool, &all, None).await.unwrap();
    assert_eq!(first.events.len(), 50);
    assert_eq!(first.events[0].id, 120);
    let second = page(&pool, &all, first.next_before).await.unwrap();
    assert_eq!(second.events[0].id, 70);
    let evens = page(&pool, &q(&[("actor", "even")]), None).await.unwrap();
    assert!(evens
        .events
        .iter()
        .all(|e| e.actor == "even" && e.id % 2 == 0));
    let by_prefix = page(&pool, &q(&[("action", "auth.")]), None).await.unwrap();
    assert_eq!(by_prefix.events.len(), 50);
    let none = page(&pool, &q(&[("action", "user.")]), None).await.unwrap();
    assert!(none.events.is_empty() && none.next_before.is_none());
    // Run 1 is event 10 only: run:1 does not match run:10's events.
    let run = page(&pool, &q(&[("run", "1")]), None).await.unwrap();
    assert_eq!(run.events.iter().map(|e| e.id).collect::<Vec<_>>(), [10]);
    let host = page(&pool, &q(&[("host", "pcrfclient01")]), None)
        .await
        .unwrap();
    assert_eq!(host.events.len(), 12);
    let text = page(&pool, &q(&[("text", "CRONTAB"), ("actor", "even")]), None)
        .await
        .unwrap();
    assert_eq!(text.events.len(), 12);
    // A LIKE wildcard typed as text matches only itself.
    let literal = page(&pool, &q(&[("text", "%")]), None).await.unwrap();
    assert!(literal.events.is_empty());
    let future = page(&pool, &q(&[("from", "2999-01-01")]), None)
        .await
        .unwrap();
    assert!(future.events.is_empty());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let until_today = page(&pool, &q(&[("until", &today)]), None).await.unwrap();
    assert_eq!(until_today.events.len(), 50);
}
