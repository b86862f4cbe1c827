//! Sites (admins): hosts, trusted host keys, and the lab's faults.

use crate::error::AppError;
use crate::model::site::SitesOverview;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    audit::Actor,
    authz::{require, ManageSites},
    sites,
    state::app_state,
};

/// Every site with its hosts and keys, and the lab's faults.
#[server(prefix = "/api", endpoint = "sites/overview")]
pub async fn get_sites() -> Result<SitesOverview, AppError> {
    require::<ManageSites>().await?;
    let state = app_state()?;
    Ok(sites::overview(&state.pool, state.sites.as_ref()).await?)
}

/// Trusts the host keys of an OpenSSH known_hosts text for `site`; answers how many.
#[server(prefix = "/api", endpoint = "sites/import_known_hosts")]
pub async fn import_known_hosts(site: String, known_hosts: String) -> Result<usize, AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    Ok(sites::import_known_hosts(
        &state.pool,
        state.sites.as_ref(),
        &Actor::User(caller.user().username.clone()),
        &site,
        &known_hosts,
    )
    .await?)
}

/// Trusts the key `host` presented, after the admin compared its fingerprint.
#[server(prefix = "/api", endpoint = "sites/confirm_key")]
pub async fn confirm_host_key(
    site: String,
    host: String,
    fingerprint: String,
) -> Result<(), AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    Ok(sites::confirm_key(
        &state.pool,
        state.sites.as_ref(),
        &Actor::User(caller.user().username.clone()),
        &site,
        &host,
        &fingerprint,
    )
    .await?)
}

/// Defines a site from a `[[sites]]` block (the sites file's format); answers its name.
#[server(prefix = "/api", endpoint = "sites/define")]
pub async fn define_site(definition: String) -> Result<String, AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    Ok(sites::define_site(
        &state.pool,
        state.sites.as_ref(),
        &Actor::User(caller.user().username.clone()),
        &definition,
    )
    .await?)
}

/// Switches a fault of the lab (`on` = "true" or "false").
#[server(prefix = "/api", endpoint = "sites/lab_fault")]
pub async fn set_lab_fault(fault: String, on: bool) -> Result<(), AppError> {
    let caller = require::<ManageSites>().await?;
    let state = app_state()?;
    Ok(sites::set_lab_fault(
        &state.pool,
        state.sites.as_ref(),
        &Actor::User(caller.user().username.clone()),
        &fault,
        on,
    )
    .await?)
}
