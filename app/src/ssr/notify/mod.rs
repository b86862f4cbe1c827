//! Approval notifications: approvers hear of a request for approval without
//! watching a page, by webhook and by e-mail, per site.
//!
//! - [`message`]: what is said (the webhook's JSON body, the e-mail). Pure.
//! - [`signature`]: the webhook's HMAC-SHA256 signature and headers. Pure.
//! - [`schedule`]: when a failed delivery is tried again. Pure.
//! - [`validate`]: checking what an admin types for a channel. Pure.
//! - [`channels`]: each site's channels in the database, audited.
//! - [`outbox`]: notifications and deliveries, queued in the request's own
//!   transaction, claimed and recorded by the worker.
//! - [`webhook`], [`email`]: sending one delivery.
//!
//! The [`Notifier`] owns the settings, the HTTP client and the mailer, and runs
//! the worker: a tokio task that delivers what is due, woken when a request is
//! queued and otherwise at the next due time. Nothing here runs inside a
//! request's transaction or holds up a run: a receiver that hangs costs a
//! delivery its timeout, nothing else.

pub mod channels;
pub mod email;
pub mod message;
pub mod outbox;
pub mod schedule;
pub mod signature;
pub mod validate;
pub mod webhook;

use crate::model::notification::ChannelKind;
use crate::ssr::ServiceError;
use outbox::{Attempt, Claimed};
use schedule::RetryPolicy;
use sqlx::PgPool;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Deliveries taken (and sent concurrently) per round.
const BATCH: i64 = 8;
/// The longest the worker sleeps without looking at the outbox: requests queued
/// by another portal on the same database are seen within this.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// The shortest wait between two rounds that took less than a batch.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// The wait after the outbox could not be read.
const AFTER_ERROR: Duration = Duration::from_secs(5);

/// The SMTP relay and sender.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port`, `smtps://user:pass@host`, `smtp://host?tls=required`.
    pub url: String,
    /// `Recovery Portal <portal@example.net>`.
    pub from: String,
}

/// How notifications are sent.
#[derive(Clone)]
pub struct NotifySettings {
    /// The portal's public URL, which messages link to.
    pub public_url: String,
    /// Without it, e-mail deliveries fail with a message that says so.
    pub smtp: Option<SmtpSettings>,
    pub retry: RetryPolicy,
    /// A receiver that has not answered in this long has failed the attempt.
    pub timeout: Duration,
    /// Where webhooks may post (`webhook_allowed_hosts`).
    pub allowed_hosts: validate::AllowedHosts,
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySettings")
            .field("public_url", &self.public_url)
            .field(
                "smtp_relay",
                &self.smtp.as_ref().map(|s| redact_relay(&s.url)),
            )
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

/// A relay URL without its password, to show.
pub fn redact_relay(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparseable)".into(),
    }
}

/// Sends notifications. One per portal.
pub struct Notifier {
    settings: NotifySettings,
    http: reqwest::Client,
    mailer: Option<email::Mailer>,
    wake: Notify,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier with `settings`; a relay or sender lettre cannot use is refused.
    pub fn new(settings: NotifySettings) -> Result<Arc<Self>, ServiceError> {
        let http = webhook::client(settings.timeout, &settings.allowed_hosts)
            .map_err(ServiceError::Internal)?;
        let mailer = match &settings.smtp {
            Some(s) => Some(
                email::Mailer::new(&s.url, &s.from, settings.timeout)
                    .map_err(ServiceError::Internal)?,
            ),
            None => None,
        };
        Ok(Arc::new(Self {
            settings,
            http,
            mailer,
            wake: Notify::new(),
        }))
    }

    /// The approvals page messages link to.
    pub fn approvals_page(&self) -> String {
        message::approvals_page(&self.settings.public_url)
    }

    /// The relay e-mails go through, without its password.
    pub fn smtp_relay(&self) -> Option<String> {
        self.settings.smtp.as_ref().map(|s| redact_relay(&s.url))
    }

    /// Where webhooks may post.
    pub fn allowed_hosts(&self) -> &validate::AllowedHosts {
        &self.settings.allowed_hosts
    }

    pub fn retry(&self) -> RetryPolicy {
        self.settings.retry
    }

    /// Tells the worker that deliveries were queued (after their transaction committed).
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    /// Delivers from now on, for as long as the notifier exists; deliveries left
    /// pending by an earlier portal are taken up at once.
    pub fn spawn(self: &Arc<Self>, pool: PgPool) {
        let notifier: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(n) = notifier.upgrade() else {
                    return;
                };
                if pool.is_closed() {
                    return;
                }
                let wait = match n.round(&pool).await {
                    // A full batch: more may be due at once.
                    Ok(taken) if taken >= BATCH as usize => continue,
                    // At least a moment: what is due may be another worker's right now.
                    Ok(_) => match outbox::next_due(&pool).await {
                        Ok(next) => next.unwrap_or(IDLE_POLL).clamp(MIN_WAIT, IDLE_POLL),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read the notification outbox");
                            AFTER_ERROR
                        }
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "cannot deliver notifications");
                        AFTER_ERROR
                    }
                };
                tokio::select! {
                    _ = n.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Takes what is due, sends it concurrently, records each outcome. Returns
    /// how many deliveries were taken.
    async fn round(&self, pool: &PgPool) -> Result<usize, ServiceError> {
        // Lettre's timeout is per exchange: a whole e-mail may take a few.
        let lease = self.settings.timeout * 4 + Duration::from_secs(30);
        let claimed = outbox::claim(pool, BATCH, lease).await?;
        let taken = claimed.len();
        let sends = claimed.into_iter().map(|c| async move {
            let outcome = self.send(&c).await;
            let target = channels::shown_target(c.kind.as_str(), c.target.clone());
            match &outcome {
                Attempt::Delivered => tracing::info!(delivery = c.id, attempt = c.attempt, kind = c.kind.as_str(), %target, "notification delivered"),
                Attempt::Failed(e) | Attempt::Refused(e) => tracing::warn!(delivery = c.id, attempt = c.attempt, kind = c.kind.as_str(), %target, error = %e, "notification not delivered"),
            }
            if let Err(e) = outbox::record(pool, &c, &outcome, &self.settings.retry).await {
                // Left pending: taken again when its lease ends.
                tracing::error!(delivery = c.id, error = %e, "cannot record a notification attempt");
            }
        });
        futures_util::future::join_all(sends).await;
        Ok(taken)
    }

    async fn send(&self, c: &Claimed) -> Attempt {
        match c.kind {
            ChannelKind::Webhook => {
                webhook::send(
                    &self.http,
                    c,
                    self.settings.timeout,
                    &self.settings.allowed_hosts,
                )
                .await
            }
            ChannelKind::Email => match &self.mailer {
                Some(m) => m.send(c).await,
                None => Attempt::Failed(
                    "no SMTP relay is configured: set PORTAL_SMTP_URL (and PORTAL_SMTP_FROM)"
                        .into(),
                ),
            },
        }
    }
}
