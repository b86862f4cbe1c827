//! Throttling of failed sign-ins, per username.
//!
//! The rule is pure ([`SignInThrottle::blocked_for`]); the failures are stored in
//! `sign_in_failures` by the functions below.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

/// At most `max_failures` failed sign-ins per username within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInThrottle {
    pub max_failures: usize,
    pub window: Duration,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
        }
    }
}

impl SignInThrottle {
    /// How much longer sign-in stays blocked, given the username's failures (any
    /// order). Blocked while `max_failures` of them lie within the window; the block
    /// lifts when the oldest of the newest `max_failures` leaves the window.
    pub fn blocked_for(&self, failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<Duration> {
        if self.max_failures == 0 {
            return None;
        }
        let mut recent: Vec<DateTime<Utc>> = failures
            .iter()
            .copied()
            .filter(|t| *t <= now && now - *t < self.window)
            .collect();
        if recent.len() < self.max_failures {
            return None;
        }
        recent.sort_unstable_by(|a, b| b.cmp(a));
        let lifts_at = recent[self.max_failures - 1] + self.window;
        Some(lifts_at - now)
    }

    /// The earliest failure time that still matters.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }
}

/// Whole minutes to tell the user, rounded up, at least one.
pub fn minutes_to_wait(wait: Duration) -> i64 {
    ((wait.num_seconds() + 59) / 60).max(1)
}

/// The username's failures since `since`.
pub async fn recent_failures(
    conn: &mut PgConnection,
    username: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT failed_at FROM sign_in_failures WHERE username = $1 AND failed_at > $2 ORDER BY failed_at DESC LIMIT 100",
    )
    .bind(username)
    .bind(since)
    .fetch_all(conn)
    .await
}

/// Records one failure.
pub async fn record_failure(
    conn: &mut PgConnection,
    username: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sign_in_failures (username, failed_at) VALUES ($1, $2)")
        .bind(username)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Forgets the username's failures after a successful sign-in.
pub async fn clear_failures(conn: &mut PgConnection, username: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE username = $1")
        .bind(username)
        .execute(conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn four_failures_do_not_block() {
        let t = SignInThrottle::default();
        let failures = [at(0), at(1), at(2), at(3)];
        assert_eq!(t.blocked_for(&failures, at(4)), None);
    }

    #[test]
    fn five_failures_within_the_window_block_until_the_oldest_leaves_it() {
        let t = SignInThrottle::default();
        let failures = [at(4), at(0), at(1), at(2), at(3)];
        assert_eq!(t.blocked_for(&failures, at(5)), Some(Duration::minutes(10)));
        assert_eq!(t.blocked_for(&failures, at(14)), Some(Duration::minutes(1)));
        assert_eq!(t.blocked_for(&failures, at(15)), None);
    }

    #[test]
    fn failures_spread_over_more_than_the_window_do_not_block() {
        let t = SignInThrottle::default();
        let failures = [at(0), at(5), at(10), at(15), at(20)];
        assert_eq!(t.blocked_for(&failures, at(20)), None);
    }

    #[test]
    fn many_failures_block_until_the_fifth_newest_expires() {
        let t = SignInThrottle::default();
        let failures: Vec<_> = (0..8).map(at).collect();
        // newest five: 7,6,5,4,3 -> lifts at 3 + 15 = 18
        assert_eq!(t.blocked_for(&failures, at(8)), Some(Duration::minutes(10)));
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(minutes_to_wait(Duration::seconds(1)), 1);
        assert_eq!(minutes_to_wait(Duration::seconds(61)), 2);
        assert_eq!(minutes_to_wait(Duration::minutes(15)), 15);
    }
}
