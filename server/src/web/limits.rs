//! Limits on long-lived responses, so that one user cannot tie up the portal:
//! audit exports that may run at once, and live event streams per user. A
//! permit is held by the response body and given back when the body is dropped
//! (finished, or the client went away).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits of one portal.
#[derive(Debug)]
pub struct Limits {
    exports: Arc<Semaphore>,
    max_exports: usize,
    streams_per_user: usize,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

/// One export under way.
#[derive(Debug)]
pub struct ExportPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// One live stream of a user, open.
#[derive(Debug)]
pub struct StreamPermit {
    user: String,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Limits {
    /// At most `max_exports` exports at once, `streams_per_user` streams per user.
    pub fn new(max_exports: usize, streams_per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            exports: Arc::new(Semaphore::new(max_exports)),
            max_exports,
            streams_per_user,
            streams: Arc::default(),
        })
    }

    /// A permit to export, or the answer that the limit is reached.
    pub fn export(&self) -> Result<ExportPermit, TooMany> {
        self.exports
            .clone()
            .try_acquire_owned()
            .map(ExportPermit)
            .map_err(|_| {
                let text = if self.max_exports == 1 {
                    "An audit export is already running; only one may run at a time. Try again when it has finished.\n".to_string()
                } else {
                    format!(
                        "{} audit exports are already running, as many as may run at once. Try again when one has finished.\n",
                        self.max_exports
                    )
                };
                too_many(text)
            })
    }

    /// A permit for one more live stream of `user`, or the answer that they
    /// have as many open as they may.
    pub fn stream(&self, user: &str) -> Result<StreamPermit, TooMany> {
        let mut open = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_string()).or_default();
        if *n >= self.streams_per_user {
            return Err(too_many(format!(
                "You already have {} live views open, as many as one user may. Close some of the portal's tabs and reload this page.\n",
                self.streams_per_user
            )));
        }
        *n += 1;
        Ok(StreamPermit {
            user: user.to_string(),
            streams: self.streams.clone(),
        })
    }
}

/// A refusal because a limit is reached: 429 with what to do.
#[derive(Debug)]
pub struct TooMany(String);

impl IntoResponse for TooMany {
    fn into_response(self) -> Response {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "30")],
            self.0,
        )
            .into_response()
    }
}

fn too_many(text: String) -> TooMany {
    TooMany(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_per_user_and_given_back() {
        let limits = Limits::new(1, 2);
        let a1 = limits.stream("ann").unwrap();
        let _a2 = limits.stream("ann").unwrap();
        assert_eq!(
            limits.stream("ann").unwrap_err().into_response().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        let _b = limits.stream("bob").unwrap();
        drop(a1);
        let _a3 = limits.stream("ann").unwrap();
    }

    #[test]
    fn exports_are_bounded() {
        let limits = Limits::new(2, 8);
        let e1 = limits.export().unwrap();
        let _e2 = limits.export().unwrap();
        assert_eq!(
            limits.export().unwrap_err().into_response().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        drop(e1);
        let _e3 = limits.export().unwrap();
    }
}
