//! When a failed delivery is tried again. Pure.
//!
//! The delay doubles from a base after each failed attempt (30 s, 1 min, 2 min,
//! 4 min, 8 min by default), up to [`MAX_DELAY`]; after `max_attempts` attempts
//! the delivery has failed for good. The schedule has no jitter: the outbox
//! already spreads deliveries by when their requests were made, and a fixed
//! schedule is what an admin can read off the page and a test can predict.

use std::time::Duration;

/// No wait between two attempts is longer than this, whatever the base.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max_attempts: 6,
        }
    }
}

impl RetryPolicy {
    /// How long to wait after `attempts` attempts that all failed, or `None` when
    /// no attempt is left.
    pub fn delay_after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1);
        let delay = 2u32
            .checked_pow(doublings)
            .and_then(|factor| self.base.checked_mul(factor))
            .unwrap_or(MAX_DELAY);
        Some(delay.min(MAX_DELAY))
    }

    /// Every wait between attempts, in order: `max_attempts - 1` of them.
    pub fn schedule(&self) -> Vec<Duration> {
        (1..self.max_attempts)
            .filter_map(|n| self.delay_after(n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_default_doubles_from_thirty_seconds_over_six_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.schedule(),
            vec![secs(30), secs(60), secs(120), secs(240), secs(480)]
        );
        assert_eq!(p.delay_after(5), Some(secs(480)));
        assert_eq!(p.delay_after(6), None, "the sixth failure is final");
        assert_eq!(p.delay_after(7), None);
    }

    #[test]
    fn a_single_attempt_is_never_retried() {
        let p = RetryPolicy {
            base: secs(1),
            max_attempts: 1,
        };
        assert_eq!(p.delay_after(1), None);
        assert!(p.schedule().is_empty());
    }

    #[test]
    fn waits_are_capped_and_never_overflow() {
        let p = RetryPolicy {
            base: secs(1000),
            max_attempts: 40,
        };
        assert_eq!(p.delay_after(1), Some(secs(1000)));
        assert_eq!(p.delay_after(2), Some(secs(2000)));
        assert_eq!(p.delay_after(3), Some(MAX_DELAY));
        assert_eq!(p.delay_after(39), Some(MAX_DELAY), "2^38 overflows u32");
    }

    #[test]
    fn a_short_base_makes_a_quick_schedule_for_tests() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            max_attempts: 3,
        };
        assert_eq!(
            p.schedule(),
            vec![Duration::from_millis(100), Duration::from_millis(200)]
        );
    }
}
