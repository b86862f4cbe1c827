//! User administration (admin only).

use crate::error::AppError;
use crate::model::user::{UserSummary, UsersOversight};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{
    authz::{require, ManageUsers},
    oversight,
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

/// Creates a user with a temporary password that they must change at first
/// sign-in, and optionally their e-mail address and display name.
#[server(prefix = "/api", endpoint = "users/create")]
pub async fn create_user(
    username: String,
    role: String,
    password: String,
    #[server(default)] email: String,
    #[server(default)] display_name: String,
) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    let role = users::parse_role(&role)?;
    // Checked before the account exists, so a bad address creates nothing.
    users::check_contact(&email, &display_name)?;
    let actor = admin.user().actor();
    let created = users::create(&state.pool, &actor, &username, role, password, true).await?;
    if email.trim().is_empty() && display_name.trim().is_empty() {
        return Ok(created);
    }
    Ok(users::set_contact(
        &state.pool,
        &actor,
        &created.username,
        &email,
        &display_name,
    )
    .await?)
}

/// Sets a user's e-mail address and display name (empty clears them).
#[server(prefix = "/api", endpoint = "users/set_contact")]
pub async fn set_user_contact(
    username: String,
    #[server(default)] email: String,
    #[server(default)] display_name: String,
) -> Result<UserSummary, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(users::set_contact(
        &state.pool,
        &admin.user().actor(),
        &username,
        &email,
        &display_name,
    )
    .await?)
}

/// What another admin changed lately, and accounts that seem to be one person's.
#[server(prefix = "/api", endpoint = "users/oversight")]
pub async fn get_users_oversight() -> Result<UsersOversight, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    let me = admin.user();
    Ok(oversight::for_admin(&state.pool, &me.username, me.id).await?)
}

/// How many notices the caller (an admin) has not seen yet.
#[server(prefix = "/api", endpoint = "users/notice_count")]
pub async fn count_notices() -> Result<i64, AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    let me = admin.user();
    Ok(oversight::unseen(&state.pool, &me.username, me.id).await?)
}

/// Marks the notices up to event `up_to` as seen by the caller.
#[server(prefix = "/api", endpoint = "users/acknowledge_notices")]
pub async fn acknowledge_notices(up_to: i64) -> Result<(), AppError> {
    let admin = require::<ManageUsers>().await?;
    let state = app_state()?;
    Ok(oversight::acknowledge(&state.pool, admin.user().id, up_to).await?)
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
