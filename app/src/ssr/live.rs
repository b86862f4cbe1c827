//! Live updates of runs: every open run page subscribes to its run and hears new
//! output and state changes as they happen. Events are published only after they
//! are stored, so a page that reloads finds in the database what it heard.

use crate::model::run_view::LiveEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Buffered events per subscriber; a page that falls further behind reloads the run.
const CAPACITY: usize = 1024;

/// The publish/subscribe point of every run's live events.
#[derive(Debug, Default)]
pub struct LiveHub {
    runs: Mutex<HashMap<i64, broadcast::Sender<LiveEvent>>>,
}

impl LiveHub {
    /// Subscribes to run `run_id`'s events.
    pub fn subscribe(&self, run_id: i64) -> broadcast::Receiver<LiveEvent> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        // Channels nobody listens to any more are dropped here, so the map stays small.
        runs.retain(|_, tx| tx.receiver_count() > 0);
        runs.entry(run_id)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Tells every subscriber of `run_id`; nobody listening is fine.
    pub fn publish(&self, run_id: i64, event: LiveEvent) {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = runs.get(&run_id) {
            let _ = tx.send(event);
        }
    }

    /// Tells subscribers to reload the run.
    pub fn changed(&self, run_id: i64) {
        self.publish(run_id, LiveEvent::Changed);
    }
}

/// Turns a byte stream into text chunk by chunk without splitting a character
/// that straddles two chunks. Invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text that `bytes` completes.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // A character cut at the end: keep it for the next chunk.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{fffd}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_chunks_is_kept_whole() {
        let bytes = "größe ✓".as_bytes();
        let mut s = Utf8Stream::default();
        let mut text = String::new();
        for b in bytes {
            text.push_str(&s.push(std::slice::from_ref(b)));
        }
        text.push_str(&s.finish());
        assert_eq!(text, "größe ✓");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(s.push(b"\xe2\x9c"), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[tokio::test]
    async fn subscribers_hear_their_run_only() {
        let hub = LiveHub::default();
        let mut one = hub.subscribe(1);
        let mut two = hub.subscribe(2);
        hub.changed(1);
        assert_eq!(one.recv().await.ok(), Some(LiveEvent::Changed));
        assert!(two.try_recv().is_err());
    }
}
