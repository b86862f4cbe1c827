//! User administration (admin only).

use crate::error::AppError;
use crate::model::user::UserSummary;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    authz::{require, ManageUsers},
    state::app_state,
    users,
};

/// Every user.
#[server(prefix = "/api", endpoint = "users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::list(&state.pool)
        .await?
        .iter()
        .map(|u| u.summary())
        .collect())
}

/// Creates a user with a temporary password that they must change at first sign-in.
#[server(prefix = "/api", endpoint = "users/create")]
pub async fn create_user(
    username: String,
    role: String,
    password: String,
) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    let role = users::parse_role(&role)?;
    Ok(users::create(
        &state.pool,
        &admin.user().actor(),
        &username,
        role,
        password,
        true,
    )
    .await?)
}

/// Disables a user and ends their sessions.
#[server(prefix = "/api", endpoint = "users/disable")]
pub async fn disable_user(username: String) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::set_disabled(&state.pool, &admin.user().actor(), &username, true).await?)
}

/// Enables a disabled user.
#[server(prefix = "/api", endpoint = "users/enable")]
pub async fn enable_user(username: String) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::set_disabled(&state.pool, &admin.user().actor(), &username, false).await?)
}

/// Sets a temporary password that the user must change at the next sign-in.
#[server(prefix = "/api", endpoint = "users/reset_password")]
pub async fn reset_user_password(
    username: String,
    password: String,
) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::reset_password(
        &state.pool,
        &admin.user().actor(),
        &username,
        password,
        true,
    )
    .await?)
}

/// Changes a user's role.
#[server(prefix = "/api", endpoint = "users/change_role")]
pub async fn change_user_role(username: String, role: String) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    let role = users::parse_role(&role)?;
    Ok(users::set_role(&state.pool, &admin.user().actor(), &username, role).await?)
}

/// Forgets a user's failed sign-ins, so that no wait is left for them. Answers how
/// many were forgotten.
#[server(prefix = "/api", endpoint = "users/unlock")]
pub async fn unlock_user(username: String) -> Result<u64, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::unlock(&state.pool, &admin.user().actor(), &username).await?)
}
