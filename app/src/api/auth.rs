//! Signing in and out, the current user, and changing one's own password.

use crate::error::AppError;
use crate::model::user::Me;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{authz, respond, session, sign_in as sign_in_service, state::app_state, users};

/// The signed-in user, or `None`. Anyone may ask.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    let state = app_state()?;
    let session = authz::current_session().await?;
    Ok(session::resolve(&session, &state).await?.map(|u| Me {
        username: u.username,
        role: u.role,
        must_change_password: u.must_change_password,
    }))
}

/// Signs in and returns where to go next (a local path). Anyone may call it.
#[server(prefix = "/api", endpoint = "auth/sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<String, AppError> {
    let state = app_state()?;
    let session = authz::current_session().await?;
    let client = authz::current_client().await?;
    let user = sign_in_service::sign_in(&state, &session, client, &username, password).await?;
    let target = if user.must_change_password {
        "/account".to_string()
    } else {
        safe_next(next.as_deref())
    };
    respond::redirect_plain_form(&target);
    Ok(target)
}

/// Signs out. Harmless without a session.
#[server(prefix = "/api", endpoint = "auth/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let state = app_state()?;
    let session = authz::current_session().await?;
    sign_in_service::sign_out(&state, &session).await?;
    respond::redirect_plain_form("/login");
    Ok(())
}

/// Changes the caller's own password and ends their other sessions. Any signed-in
/// user, including one who must change the password.
#[server(prefix = "/api", endpoint = "account/change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    let state = app_state()?;
    let caller = authz::signed_in().await?;
    let updated = users::change_own_password(
        &state.pool,
        &caller.user,
        current_password,
        new_password,
        confirm_password,
    )
    .await?;
    session::follow_epoch(&caller.session, &updated).await?;
    Ok(())
}

/// Only local paths are followed after sign-in, so the form cannot be used to send
/// users to another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with("/login") =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/audit?actor=bob")), "/audit?actor=bob");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/login")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
