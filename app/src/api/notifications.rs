//! Approval notifications (admins): each site's webhooks and e-mail recipients,
//! and the deliveries with their state.

use crate::error::AppError;
use crate::model::notification::NotificationsOverview;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    audit::Actor,
    authz::{require, ManageSites},
    notify::{channels, outbox},
    state::app_state,
    ServiceError,
};

/// A site the portal knows, or a 404 naming it.
#[cfg(feature = "ssr")]
fn known_site(state: &crate::ssr::AppState, site: &str) -> Result<(), ServiceError> {
    if state.sites.has_site(site) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("There is no site {site:?}.")).into())
    }
}

/// Every site's channels, the latest deliveries and how many failed.
#[server(prefix = "/api", endpoint = "notifications/overview")]
pub async fn get_notifications() -> Result<NotificationsOverview, AppError> {
    require::<ManageSites>().await?;
    let state = app_state()?;
    let (channels, deliveries, (failed, pending)) = outbox::snapshot(&state.pool).await?;
    let mut sites: Vec<String> = state.sites.sites().into_iter().map(|s| s.name).collect();
    sites.sort();
    Ok(NotificationsOverview {
        sites,
        channels,
        deliveries,
        failed,
        pending,
        smtp_relay: state.notifier.smtp_relay(),
        max_attempts: state.notifier.retry().max_attempts,
    })
}

/// Notifies `site`'s requests for approval to a webhook signed with `secret`;
/// answers the channel's id.
#[server(prefix = "/api", endpoint = "notifications/add_webhook")]
pub async fn add_webhook(site: String, url: String, secret: String) -> Result<i64, AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    known_site(&state, &site)?;
    Ok(channels::add(
        &state.pool,
        &site,
        channels::NewChannel::Webhook {
            url: &url,
            secret: &secret,
        },
        state.notifier.allowed_hosts(),
        &Actor::User(caller.user().username.clone()),
    )
    .await?)
}

/// Notifies `site`'s requests for approval to e-mail `address`; answers the channel's id.
#[server(prefix = "/api", endpoint = "notifications/add_email")]
pub async fn add_email(site: String, address: String) -> Result<i64, AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    known_site(&state, &site)?;
    Ok(channels::add(
        &state.pool,
        &site,
        channels::NewChannel::Email { address: &address },
        state.notifier.allowed_hosts(),
        &Actor::User(caller.user().username.clone()),
    )
    .await?)
}

/// Stops notifying channel `id`; what it had still to deliver is cancelled.
#[server(prefix = "/api", endpoint = "notifications/remove")]
pub async fn remove_channel(id: i64) -> Result<(), AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    channels::remove(
        &state.pool,
        id,
        &Actor::User(caller.user().username.clone()),
    )
    .await?;
    Ok(())
}
