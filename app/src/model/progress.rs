//! Progress of long work inside a step (image transfers, snapshots, file copies),
//! as the wizard's progress bar shows it: how much, of how much, how fast, and
//! how long is left. The meter is pure: callers pass the elapsed time.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressUnit {
    Bytes,
    /// Named phases of an operation whose size nobody reports (a snapshot:
    /// Nova's task states).
    Phases,
}

/// One reading of a piece of work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// What is being done ("download of cluman_snapshot").
    pub label: String,
    pub unit: ProgressUnit,
    pub done: u64,
    pub total: Option<u64>,
    /// Bytes per second since the work started (bytes only).
    pub per_second: u64,
    pub eta_seconds: Option<u64>,
    /// The phase now (phases only), e.g. `image_uploading`.
    pub phase: Option<String>,
    pub finished: bool,
}

impl Progress {
    /// Percent done, when the total is known.
    pub fn percent(&self) -> Option<u8> {
        match self.total {
            Some(t) if t > 0 => Some(((self.done.min(t) * 100) / t) as u8),
            _ => None,
        }
    }

    /// `250.0 MB of 1000.0 MB (25 %), 50.0 MB/s, 0 min 15 s left`, or for
    /// phases `image_uploading (3 of 4)`.
    pub fn text(&self) -> String {
        match self.unit {
            ProgressUnit::Phases => {
                let phase = self.phase.as_deref().unwrap_or("waiting");
                match self.total {
                    Some(t) => format!("{phase} ({} of {t})", self.done),
                    None => phase.to_string(),
                }
            }
            ProgressUnit::Bytes => {
                let rate = format!("{:.1} MB/s", self.per_second as f64 / 1e6);
                match (self.total, self.percent()) {
                    (Some(t), Some(p)) => {
                        let left = match (self.finished, self.eta_seconds) {
                            (true, _) => "done".to_string(),
                            (false, Some(s)) => format!("{} min {} s left", s / 60, s % 60),
                            (false, None) => "time left unknown".to_string(),
                        };
                        format!(
                            "{} of {} ({p} %), {rate}, {left}",
                            megabytes(self.done),
                            megabytes(t)
                        )
                    }
                    _ => format!("{}, {rate}", megabytes(self.done)),
                }
            }
        }
    }
}

fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

/// Turns counts into readings no more often than `every`, so that a fast
/// transfer does not flood the page; the first and the last always pass.
#[derive(Clone, Debug)]
pub struct ProgressMeter {
    label: String,
    unit: ProgressUnit,
    total: Option<u64>,
    every: Duration,
    last: Option<Duration>,
}

impl ProgressMeter {
    pub fn new(label: impl Into<String>, unit: ProgressUnit, total: Option<u64>) -> Self {
        Self {
            label: label.into(),
            unit,
            total,
            every: Duration::from_millis(250),
            last: None,
        }
    }

    /// How often readings pass at most.
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// A reading for `done` at `elapsed` since the start, if one is due.
    pub fn update(&mut self, done: u64, elapsed: Duration) -> Option<Progress> {
        if let Some(last) = self.last {
            if elapsed.saturating_sub(last) < self.every {
                return None;
            }
        }
        self.last = Some(elapsed);
        Some(self.reading(done, elapsed, None, false))
    }

    /// A reading for the phase `phase`, the `done`-th of the total; always passes.
    pub fn phase(&mut self, phase: &str, done: u64, elapsed: Duration) -> Progress {
        self.last = Some(elapsed);
        self.reading(done, elapsed, Some(phase.to_string()), false)
    }

    /// The last reading.
    pub fn finish(&mut self, done: u64, elapsed: Duration) -> Progress {
        self.last = Some(elapsed);
        let phase = (self.unit == ProgressUnit::Phases).then(|| "done".to_string());
        self.reading(done, elapsed, phase, true)
    }

    fn reading(
        &self,
        done: u64,
        elapsed: Duration,
        phase: Option<String>,
        finished: bool,
    ) -> Progress {
        let seconds = elapsed.as_secs_f64();
        let per_second = match self.unit {
            ProgressUnit::Bytes if seconds > 0.0 => (done as f64 / seconds) as u64,
            _ => 0,
        };
        let eta_seconds = match (self.unit, self.total) {
            (ProgressUnit::Bytes, Some(t)) if per_second > 0 => {
                Some(t.saturating_sub(done) / per_second)
            }
            _ => None,
        };
        Progress {
            label: self.label.clone(),
            unit: self.unit,
            done,
            total: self.total,
            per_second,
            eta_seconds,
            phase,
            finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_says_how_much_how_fast_and_how_long() {
        let mut m = ProgressMeter::new("download", ProgressUnit::Bytes, Some(1_000_000_000));
        let p = m
            .update(250_000_000, Duration::from_secs(5))
            .expect("the first reading passes");
        assert_eq!(p.percent(), Some(25));
        assert_eq!(p.per_second, 50_000_000);
        assert_eq!(p.eta_seconds, Some(15));
        assert_eq!(
            p.text(),
            "250.0 MB of 1000.0 MB (25 %), 50.0 MB/s, 0 min 15 s left"
        );
    }

    #[test]
    fn readings_are_thinned_but_the_last_always_passes() {
        let mut m = ProgressMeter::new("d", ProgressUnit::Bytes, Some(100));
        assert!(m.update(1, Duration::from_millis(10)).is_some());
        assert!(m.update(2, Duration::from_millis(100)).is_none());
        assert!(m.update(3, Duration::from_millis(300)).is_some());
        let last = m.finish(100, Duration::from_millis(310));
        assert!(last.finished);
        assert_eq!(last.percent(), Some(100));
        assert!(last.text().ends_with("done"), "{}", last.text());
    }

    #[test]
    fn an_unknown_total_shows_amount_and_rate() {
        let mut m = ProgressMeter::new("copy", ProgressUnit::Bytes, None);
        let p = m.update(10_000_000, Duration::from_secs(2)).expect("first");
        assert_eq!(p.percent(), None);
        assert_eq!(p.text(), "10.0 MB, 5.0 MB/s");
    }

    #[test]
    fn phases_count_steps_not_bytes() {
        let mut m = ProgressMeter::new("snapshot", ProgressUnit::Phases, Some(4));
        let p = m.phase("image_uploading", 3, Duration::from_secs(9));
        assert_eq!(p.percent(), Some(75));
        assert_eq!(p.text(), "image_uploading (3 of 4)");
        assert_eq!(p.per_second, 0);
        assert_eq!(m.finish(4, Duration::from_secs(12)).text(), "done (4 of 4)");
    }

    #[test]
    fn nothing_done_yet_has_no_eta_and_no_division_by_zero() {
        let mut m = ProgressMeter::new("d", ProgressUnit::Bytes, Some(0));
        let p = m.update(0, Duration::ZERO).expect("first");
        assert_eq!(p.percent(), None);
        assert_eq!(p.eta_seconds, None);
    }
}
