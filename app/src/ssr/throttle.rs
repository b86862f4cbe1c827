//! Sign-in admission, throttling and the audit of failed attempts.
//!
//! - [`SignInGate`] (in memory, per process) admits an attempt before anything
//!   else is done for it: one attempt per client address at a time, and no more
//!   concurrent password checks than the machine has cores. Anything beyond is
//!   answered 429 at once, so a flood of sign-ins costs neither argon2 time nor a
//!   database connection.
//! - The rule of when a client must wait is pure ([`crate::model::throttle`]); the
//!   failures it counts are stored in `sign_in_failures` by the functions below.
//! - Failed and throttled attempts are audited once per key and window
//!   ([`note_attempt`]) and summarised with their count when the window has
//!   closed ([`summarize_closed_windows`]), so guessing cannot flood the chain.

use super::audit::{self, Actor, NewEvent};
use super::ServiceError;
use crate::model::audit::AuditAction;
use crate::model::throttle::window_start;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why an attempt was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAdmitted {
    /// Too many attempts from the same address are already being checked or
    /// waiting for their turn.
    AddressBusy,
    /// As many passwords are being checked as the machine has cores.
    AtCapacity,
}

/// Attempts one address may have under way (one checked, the rest waiting):
/// enough for colleagues behind one NAT signing in together, too few for a flood.
const QUEUED_PER_ADDRESS: usize = 4;
/// How long an attempt waits for its address's turn before it is answered 429.
const ADDRESS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
struct AddressQueue {
    turn: Arc<Semaphore>,
    queued: usize,
}

/// Admits sign-in attempts (see the module's documentation).
#[derive(Debug)]
pub struct SignInGate {
    hashing: Arc<Semaphore>,
    addresses: Mutex<HashMap<IpAddr, AddressQueue>>,
}

impl SignInGate {
    /// A gate allowing `concurrent_checks` password checks at once (at least one).
    pub fn new(concurrent_checks: usize) -> Self {
        Self {
            hashing: Arc::new(Semaphore::new(concurrent_checks.max(1))),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// A gate sized to this machine's cores: argon2 is CPU-bound, so more
    /// concurrent checks only make every one of them slower.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, AddressQueue>> {
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits an attempt from `address` once it is that address's turn (attempts
    /// from one address are checked one after the other, so parallel guesses
    /// cannot overshoot its throttle), or says why not. The admission is held
    /// until the attempt ends (dropped).
    pub async fn admit(&self, address: IpAddr) -> Result<Admission<'_>, NotAdmitted> {
        let turn = {
            let mut addresses = self.addresses();
            let queue = addresses.entry(address).or_insert_with(|| AddressQueue {
                turn: Arc::new(Semaphore::new(1)),
                queued: 0,
            });
            if queue.queued >= QUEUED_PER_ADDRESS {
                return Err(NotAdmitted::AddressBusy);
            }
            queue.queued += 1;
            queue.turn.clone()
        };
        let mut admission = Admission {
            gate: self,
            address,
            turn: None,
            hashing: None,
        };
        match tokio::time::timeout(ADDRESS_WAIT, turn.acquire_owned()).await {
            Ok(Ok(permit)) => admission.turn = Some(permit),
            // `admission` is dropped on return, which takes it out of the queue.
            _ => return Err(NotAdmitted::AddressBusy),
        }
        match self.hashing.clone().try_acquire_owned() {
            Ok(permit) => admission.hashing = Some(permit),
            Err(_) => return Err(NotAdmitted::AtCapacity),
        }
        Ok(admission)
    }

    /// How many password checks may start now (for tests and figures).
    pub fn available(&self) -> usize {
        self.hashing.available_permits()
    }
}

/// One admitted attempt: it holds its address's turn and a hashing permit.
#[derive(Debug)]
pub struct Admission<'a> {
    gate: &'a SignInGate,
    address: IpAddr,
    turn: Option<OwnedSemaphorePermit>,
    hashing: Option<OwnedSemaphorePermit>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.hashing.take();
        self.turn.take();
        let mut addresses = self.gate.addresses();
        if let Some(queue) = addresses.get_mut(&self.address) {
            queue.queued = queue.queued.saturating_sub(1);
            if queue.queued == 0 {
                addresses.remove(&self.address);
            }
        }
    }
}

/// The recent failures counted against an attempt: all from its address, and
/// those on its username from that address.
pub async fn recent_failures(
    pool: &PgPool,
    username: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<(Vec<DateTime<Utc>>, Vec<DateTime<Utc>>), sqlx::Error> {
    // The rules reach their cap long before 200 failures: older ones cannot matter.
    let from_address: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT failed_at FROM sign_in_failures WHERE address = $1 AND failed_at > $2 \
         ORDER BY failed_at DESC LIMIT 200",
    )
    .bind(address)
    .bind(since)
    .fetch_all(pool)
    .await?;
    let user_at_address: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT failed_at FROM sign_in_failures WHERE username = $1 AND address = $2 AND failed_at > $3 \
         ORDER BY failed_at DESC LIMIT 200",
    )
    .bind(username)
    .bind(address)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok((from_address, user_at_address))
}

/// Records one failure.
pub async fn record_failure(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sign_in_failures (username, address, failed_at) VALUES ($1, $2, $3)")
        .bind(username)
        .bind(address)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Forgets the username's failures from `address` after it signed in from there.
pub async fn clear_failures(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE username = $1 AND address = $2")
        .bind(username)
        .bind(address)
        .execute(conn)
        .await
        .map(|_| ())
}

/// An administrator's unlock: forgets every failure on the username, from every
/// address. Returns how many were forgotten.
pub async fn unlock(conn: &mut PgConnection, username: &str) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE username = $1")
        .bind(username)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}

/// What is audited once per key and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    /// A failed sign-in; keyed by the username tried.
    Failed,
    /// An attempt refused for throttling; keyed by the client address.
    Throttled,
}

impl AttemptKind {
    fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Failed => "failed",
            AttemptKind::Throttled => "throttled",
        }
    }
}

/// Values of the other side kept per window for the summary (addresses of a
/// username's failures, usernames tried from a throttled address).
const SEEN_KEPT: i32 = 10;

/// Counts an attempt in its window; answers how many the window holds now, so
/// that the caller audits the first one in full and leaves the rest to the summary.
pub async fn note_attempt(
    conn: &mut PgConnection,
    kind: AttemptKind,
    key: &str,
    seen: &str,
    at: DateTime<Utc>,
    window: Duration,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO sign_in_audit_windows (kind, key, window_start, seen, last_at) \
         VALUES ($1, $2, $3, ARRAY[$4], $5) \
         ON CONFLICT (kind, key, window_start) DO UPDATE SET \
             attempts = sign_in_audit_windows.attempts + 1, \
             last_at = EXCLUDED.last_at, \
             seen = CASE WHEN $4 = ANY(sign_in_audit_windows.seen) \
                           OR cardinality(sign_in_audit_windows.seen) >= $6 \
                         THEN sign_in_audit_windows.seen \
                         ELSE sign_in_audit_windows.seen || $4 END \
         RETURNING attempts",
    )
    .bind(kind.as_str())
    .bind(key)
    .bind(window_start(at, window))
    .bind(seen)
    .bind(at)
    .bind(SEEN_KEPT)
    .fetch_one(conn)
    .await
}

/// Audits, once per closed window that held more than one attempt, how many
/// attempts it held (the first was audited when it happened). Returns how many
/// summaries were written.
pub async fn summarize_closed_windows(
    pool: &PgPool,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT kind, key, window_start, attempts, seen, last_at FROM sign_in_audit_windows \
         WHERE summarized_at IS NULL AND window_start <= $1 \
         ORDER BY window_start LIMIT 500 FOR UPDATE SKIP LOCKED",
    )
    .bind(now - window)
    .fetch_all(&mut *tx)
    .await?;
    let mut written = 0;
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let key: String = row.try_get("key")?;
        let start: DateTime<Utc> = row.try_get("window_start")?;
        let attempts: i64 = row.try_get("attempts")?;
        let seen: Vec<String> = row.try_get("seen")?;
        let last_at: DateTime<Utc> = row.try_get("last_at")?;
        if attempts > 1 {
            let window_json = json!({
                "from": start.to_rfc3339_opts(SecondsFormat::Secs, true),
                "until": (start + window).to_rfc3339_opts(SecondsFormat::Secs, true),
            });
            let last = last_at.to_rfc3339_opts(SecondsFormat::Secs, true);
            let event = if kind == AttemptKind::Failed.as_str() {
                NewEvent::new(
                    &Actor::Anonymous(key.clone()),
                    AuditAction::SignInFailuresSummarized,
                    format!("user:{key}"),
                    json!({ "failures": attempts, "window": window_json, "last_at": last, "addresses": seen }),
                )
            } else {
                NewEvent::new(
                    &Actor::System,
                    AuditAction::SignInThrottlesSummarized,
                    format!("address:{key}"),
                    json!({ "address": key, "refused": attempts, "window": window_json, "last_at": last, "usernames": seen }),
                )
            };
            audit::append(&mut tx, event).await?;
            written += 1;
        }
        sqlx::query(
            "UPDATE sign_in_audit_windows SET summarized_at = now() \
             WHERE kind = $1 AND key = $2 AND window_start = $3",
        )
        .bind(&kind)
        .bind(&key)
        .bind(start)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Deletes what no rule looks at any more: failures and summarised windows
/// older than a day. Returns how many rows went.
pub async fn prune(pool: &PgPool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let day_ago = now - Duration::days(1);
    let failures = sqlx::query("DELETE FROM sign_in_failures WHERE failed_at < $1")
        .bind(day_ago)
        .execute(pool)
        .await?
        .rows_affected();
    let windows = sqlx::query(
        "DELETE FROM sign_in_audit_windows WHERE summarized_at IS NOT NULL AND window_start < $1",
    )
    .bind(day_ago)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(failures + windows)
}

/// Summarises closed windows and prunes old rows every `every`, for as long as
/// the portal runs.
pub fn spawn_housekeeping(pool: PgPool, window: Duration, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Utc::now();
            if let Err(e) = summarize_closed_windows(&pool, window, now).await {
                tracing::warn!(error = %e, "summarising failed sign-ins");
            }
            if let Err(e) = prune(&pool, now).await {
                tracing::warn!(error = %e, "pruning old sign-in failures");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("a test address")
    }

    #[tokio::test]
    async fn attempts_from_one_address_take_turns_and_a_flood_is_refused() {
        let gate = SignInGate::new(8);
        let first = gate.admit(ip("192.0.2.1")).await.expect("admitted");
        // While the first is checked, a second from the same address waits for it.
        let second = gate.admit(ip("192.0.2.1"));
        tokio::pin!(second);
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        // Another address is not held up.
        let other = gate.admit(ip("192.0.2.2")).await.expect("another address");
        drop(first);
        let second = second.await.expect("its turn came");
        drop((second, other));
        assert!(
            gate.addresses().is_empty(),
            "queues are forgotten when idle"
        );
    }

    #[tokio::test]
    async fn more_than_a_few_queued_from_one_address_are_refused_at_once() {
        let gate = SignInGate::new(8);
        let _first = gate.admit(ip("192.0.2.1")).await.expect("admitted");
        let waiting: Vec<_> = (1..QUEUED_PER_ADDRESS)
            .map(|_| Box::pin(gate.admit(ip("192.0.2.1"))))
            .collect();
        let mut waiting = waiting;
        for w in &mut waiting {
            assert!(futures_util::poll!(w.as_mut()).is_pending());
        }
        assert_eq!(
            gate.admit(ip("192.0.2.1")).await.unwrap_err(),
            NotAdmitted::AddressBusy
        );
    }

    #[tokio::test]
    async fn no_more_checks_than_permits_and_a_refused_attempt_leaves_no_trace() {
        let gate = SignInGate::new(1);
        let held = gate.admit(ip("192.0.2.1")).await.expect("admitted");
        assert_eq!(
            gate.admit(ip("192.0.2.2")).await.unwrap_err(),
            NotAdmitted::AtCapacity
        );
        assert_eq!(gate.available(), 0);
        drop(held);
        assert_eq!(gate.available(), 1);
        assert!(gate.admit(ip("192.0.2.2")).await.is_ok());
    }
}
