//! Sending one notification to a webhook: a JSON POST of the stored body,
//! signed, within the timeout. Redirects are not followed: the portal signs for
//! the URL the admin gave, not for wherever it points.

use super::outbox::{Attempt, Claimed};
use super::signature::{
    self, ATTEMPT_HEADER, EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use std::time::Duration;

/// How much of a receiver's error answer is kept.
const ANSWER_KEPT: usize = 300;

/// The HTTP client deliveries share.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("recovery-portal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// Posts `c`'s body to its URL; any answer but 2xx is a failure, described.
pub async fn send(http: &reqwest::Client, c: &Claimed, timeout: Duration) -> Attempt {
    let Some(secret) = c.secret.as_deref() else {
        return Attempt::Refused("the webhook has no secret to sign with".into());
    };
    let answer = http
        .post(&c.target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &c.event)
        .header(EVENT_ID_HEADER, &c.event_id)
        .header(TIMESTAMP_HEADER, chrono::Utc::now().timestamp().to_string())
        .header(ATTEMPT_HEADER, c.attempt.to_string())
        .header(
            SIGNATURE_HEADER,
            signature::sign(secret.as_bytes(), c.body.as_bytes()),
        )
        .body(c.body.clone())
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => return Attempt::Failed(describe(&e, timeout)),
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(ANSWER_KEPT).collect();
    let mut message = format!("the receiver answered HTTP {status}");
    if status.is_redirection() {
        message.push_str(" (redirects are not followed: configure the final URL)");
    }
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(&text);
    }
    Attempt::Failed(message)
}

/// A transport failure in words, with its causes.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s (timed out)", timeout.as_secs_f32());
    }
    let mut message = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}
