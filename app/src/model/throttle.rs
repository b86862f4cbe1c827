//! When a sign-in attempt must wait: slowing down guessers without locking anyone out.
//!
//! Failed sign-ins are counted per client address and per (username, address).
//! Past a free allowance, each further attempt from that address (or on that
//! username from that address) must wait twice as long after the newest failure
//! as the one before, up to a cap. Nothing is counted per username alone: that
//! is what let anyone lock out every supervisor by guessing from anywhere. A
//! supervisor whose name is being guessed from one address therefore signs in
//! from another at once, and even from the guessing address after the delay.

use chrono::{DateTime, Duration, Utc};

/// One back-off rule over the failures within `window`: after `free` of them,
/// every further attempt waits after the newest failure, `base` after the
/// `free`-th, twice as long after each one beyond it, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub free: usize,
    pub window: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// How long an attempt at `now` must still wait, given the failures counted
    /// against it (any order); `None` when it may go ahead.
    pub fn wait(&self, failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<Duration> {
        let recent: Vec<DateTime<Utc>> = failures
            .iter()
            .copied()
            .filter(|t| *t <= now && now - *t < self.window)
            .collect();
        if recent.len() < self.free {
            return None;
        }
        let newest = recent.iter().max().copied()?;
        let beyond = recent.len() - self.free;
        let delay = self.delay_after(beyond);
        let allowed_at = newest + delay;
        (allowed_at > now).then(|| allowed_at - now)
    }

    /// The wait after `beyond + 1` failures past the free allowance.
    fn delay_after(&self, beyond: usize) -> Duration {
        // 2^20 seconds already exceeds any sensible cap: stop doubling there.
        let doublings = u32::try_from(beyond).unwrap_or(u32::MAX).min(20);
        let factor = 1i32 << doublings;
        self.base
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The two rules applied to every sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInThrottle {
    /// Failures from one client address, whatever the usernames (guessing many
    /// accounts, password spraying).
    pub per_address: Backoff,
    /// Failures on one username from one client address (guessing one account).
    pub per_user_and_address: Backoff,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            per_address: Backoff {
                free: 10,
                window: Duration::minutes(15),
                base: Duration::seconds(1),
                max: Duration::minutes(5),
            },
            per_user_and_address: Backoff {
                free: 3,
                window: Duration::minutes(15),
                base: Duration::seconds(2),
                max: Duration::minutes(15),
            },
        }
    }
}

/// Why an attempt must wait, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slowed {
    /// Too many failures from this address.
    Address(Duration),
    /// Too many failures on this username from this address.
    UserAtAddress(Duration),
}

impl Slowed {
    pub fn wait(self) -> Duration {
        match self {
            Slowed::Address(d) | Slowed::UserAtAddress(d) => d,
        }
    }
}

impl SignInThrottle {
    /// Whether an attempt may go ahead, given the failures from its address and
    /// those on its username from that address. The longer wait wins.
    pub fn check(
        &self,
        from_address: &[DateTime<Utc>],
        user_at_address: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Option<Slowed> {
        let by_address = self
            .per_address
            .wait(from_address, now)
            .map(Slowed::Address);
        let by_user = self
            .per_user_and_address
            .wait(user_at_address, now)
            .map(Slowed::UserAtAddress);
        match (by_address, by_user) {
            (Some(a), Some(u)) => Some(if a.wait() >= u.wait() { a } else { u }),
            (a, u) => a.or(u),
        }
    }

    /// The earliest failure time either rule still looks at.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self
            .per_address
            .window
            .max(self.per_user_and_address.window)
    }
}

/// Whole seconds to tell the user, rounded up, at least one.
pub fn seconds_to_wait(wait: Duration) -> i64 {
    let ms = wait.num_milliseconds().max(0);
    ((ms + 999) / 1000).max(1)
}

/// The start of the fixed window `at` falls in: failures and throttled attempts
/// are audited once per window and key, with a count, not once per attempt.
pub fn window_start(at: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let secs = window.num_seconds().max(1);
    let t = at.timestamp();
    let start = t - t.rem_euclid(secs);
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sec: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + sec, 0).expect("a valid time")
    }

    fn rule() -> Backoff {
        Backoff {
            free: 3,
            window: Duration::minutes(15),
            base: Duration::seconds(2),
            max: Duration::seconds(60),
        }
    }

    #[test]
    fn the_free_allowance_costs_nothing() {
        assert_eq!(rule().wait(&[at(0), at(1)], at(2)), None);
    }

    #[test]
    fn each_failure_past_the_allowance_doubles_the_wait_after_the_newest() {
        let r = rule();
        // 3 failures: the next attempt waits 2 s after the newest.
        assert_eq!(
            r.wait(&[at(0), at(1), at(2)], at(2)),
            Some(Duration::seconds(2))
        );
        assert_eq!(r.wait(&[at(0), at(1), at(2)], at(4)), None);
        // 4 failures: 4 s; 5: 8 s.
        assert_eq!(
            r.wait(&[at(0), at(1), at(2), at(10)], at(11)),
            Some(Duration::seconds(3))
        );
        assert_eq!(
            r.wait(&[at(0), at(1), at(2), at(10), at(20)], at(20)),
            Some(Duration::seconds(8))
        );
    }

    #[test]
    fn the_wait_is_capped_so_nobody_is_ever_locked_out() {
        let failures: Vec<_> = (0..40).map(at).collect();
        assert_eq!(rule().wait(&failures, at(39)), Some(Duration::seconds(60)));
        assert_eq!(rule().wait(&failures, at(39 + 60)), None);
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let failures = [at(0), at(1), at(2)];
        assert_eq!(rule().wait(&failures, at(2 + 15 * 60)), None);
    }

    #[test]
    fn a_huge_count_does_not_overflow() {
        let r = Backoff {
            max: Duration::days(365),
            ..rule()
        };
        let failures: Vec<_> = (0..500).map(|_| at(0)).collect();
        // Doubling stops at 2^20 times the base (24 days here).
        assert_eq!(r.wait(&failures, at(0)), Some(Duration::seconds(2 << 20)));
    }

    #[test]
    fn the_longer_of_the_two_rules_wins_and_says_which() {
        let t = SignInThrottle::default();
        let many: Vec<_> = (0..12).map(at).collect();
        let few = [at(5)];
        assert_eq!(
            t.check(&many, &few, at(11)),
            Some(Slowed::Address(Duration::seconds(4)))
        );
        let four = [at(0), at(1), at(2), at(11)];
        assert_eq!(
            t.check(&four, &four, at(11)),
            Some(Slowed::UserAtAddress(Duration::seconds(4)))
        );
        assert_eq!(t.check(&few, &few, at(11)), None);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds_to_wait(Duration::milliseconds(1)), 1);
        assert_eq!(seconds_to_wait(Duration::milliseconds(1001)), 2);
        assert_eq!(seconds_to_wait(Duration::zero()), 1);
    }

    #[test]
    fn windows_are_fixed_buckets() {
        let w = Duration::minutes(15);
        let start = window_start(at(0), w);
        assert_eq!(window_start(start + Duration::seconds(899), w), start);
        assert_eq!(
            window_start(start + Duration::seconds(900), w),
            start + Duration::seconds(900)
        );
    }
}
