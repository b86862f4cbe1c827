//! Sending one notification as an e-mail through the configured SMTP relay
//! (lettre, on tokio; `smtps://` or `?tls=required` use rustls).

use super::message::ApprovalNotice;
use super::outbox::{Attempt, Claimed};
use super::signature::EVENT_ID_HEADER;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::str::FromStr;
use std::time::Duration;

/// The relay and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

/// Reads a sender such as `Recovery Portal <portal@example.net>`.
pub fn parse_from(from: &str) -> Result<Mailbox, String> {
    Mailbox::from_str(from.trim()).map_err(|e| format!("{from:?} is not an e-mail sender: {e}"))
}

/// Checks an SMTP relay URL as lettre reads it (`smtp://host:port`,
/// `smtps://user:pass@host`, `smtp://host?tls=required`).
pub fn check_relay(url: &str) -> Result<(), String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Mailer {
    /// A mailer for relay `url`, sending as `from`; every exchange with the relay
    /// times out after `timeout`.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP relay: {e}"))?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            from: parse_from(from)?,
            timeout,
        })
    }

    /// Sends `c` to its recipient. A relay's permanent refusal (5xx) is final.
    pub async fn send(&self, c: &Claimed) -> Attempt {
        let notice = match ApprovalNotice::from_body(&c.body) {
            Ok(n) => n,
            Err(e) => return Attempt::Refused(e),
        };
        let to = match Mailbox::from_str(&c.target) {
            Ok(to) => to,
            Err(e) => {
                return Attempt::Refused(format!("{:?} is not an e-mail address: {e}", c.target))
            }
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(notice.subject())
            .message_id(Some(format!("<{}@recovery-portal>", c.event_id)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(EVENT_ID_HEADER),
                c.event_id.clone(),
            ))
            .header(ContentType::TEXT_PLAIN)
            .body(notice.text());
        let message = match message {
            Ok(m) => m,
            Err(e) => return Attempt::Refused(format!("the e-mail cannot be written: {e}")),
        };
        // lettre's timeout covers each exchange; this bounds the whole conversation.
        match tokio::time::timeout(self.timeout * 3, self.transport.send(message)).await {
            Err(_) => Attempt::Failed(format!(
                "the SMTP relay did not finish within {} s",
                (self.timeout * 3).as_secs()
            )),
            Ok(Ok(_)) => Attempt::Delivered,
            Ok(Err(e)) if e.is_permanent() => {
                Attempt::Refused(format!("the SMTP relay refused it: {e}"))
            }
            Ok(Err(e)) if e.is_timeout() => Attempt::Failed(format!(
                "the SMTP relay did not answer within {} s",
                self.timeout.as_secs_f32()
            )),
            Ok(Err(e)) => Attempt::Failed(format!("SMTP: {}", chain(&e))),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}
