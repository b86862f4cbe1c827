//! Signing in and out, the current user, and changing one's own password.

use crate::error::AppError;
use crate::model::user::Me;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{authz, respond, session, sign_in as sign_in_service, state::app_state};

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
    let client = authz::current_client().await?;
    let updated = sign_in_service::change_own_password(
        &state,
        client,
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
/// users to another site. Browsers drop tabs and newlines inside a URL and read a
/// backslash as a slash, so `/\t/evil.example` would become `//evil.example`:
/// any control character or backslash is refused outright, and what remains is
/// parsed as the browser would, against a fixed origin. The answer is the parsed
/// path (with its query and fragment), so what is checked is what is followed.
#[cfg(feature = "ssr")]
pub fn safe_next(next: Option<&str>) -> String {
    next.and_then(local_path).unwrap_or_else(|| "/".to_string())
}

#[cfg(feature = "ssr")]
fn local_path(next: &str) -> Option<String> {
    if !next.starts_with('/') || next.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let base = url::Url::parse("http://portal.invalid/").ok()?;
    let parsed = base.join(next).ok()?;
    if parsed.origin() != base.origin() {
        return None;
    }
    let path = parsed.path();
    // `/.//x` and `/..//x` come out as `//x`, which a browser reads as a host.
    if !path.starts_with('/') || path.starts_with("//") || path.starts_with("/login") {
        return None;
    }
    let mut local = path.to_string();
    if let Some(query) = parsed.query() {
        local.push('?');
        local.push_str(query);
    }
    if let Some(fragment) = parsed.fragment() {
        local.push('#');
        local.push_str(fragment);
    }
    Some(local)
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/audit?actor=bob")), "/audit?actor=bob");
        assert_eq!(safe_next(Some("/runs/12#step-3")), "/runs/12#step-3");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/login")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn what_a_browser_would_turn_into_another_host_is_refused() {
        for bad in [
            "/\t/evil.example",
            "/\n/evil",
            "/\r/evil",
            "/\r\n/evil",
            "\t//evil",
            "/\u{0}/evil",
            "/\u{1b}/evil",
            "/\u{7f}/evil",
            "\\\\evil",
            "/\\evil",
            "\\/evil",
            "//evil",
            "///evil",
            "https:evil",
            "https://evil",
            "javascript:alert(1)",
            "/.//evil",
            "/..//evil",
            "/./..//evil",
            "/%2e//evil",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }

    #[test]
    fn percent_encoded_controls_stay_harmless_paths() {
        // A browser does not decode these in a Location: they stay one path.
        for path in ["/%09/evil.example", "/%0a/evil", "/%5c/evil", "/%2F/evil"] {
            let followed = safe_next(Some(path));
            assert!(
                followed.starts_with('/') && !followed.starts_with("//"),
                "{path:?} -> {followed:?}"
            );
            let url = url::Url::parse("http://portal.invalid/")
                .unwrap()
                .join(&followed)
                .unwrap();
            assert_eq!(url.host_str(), Some("portal.invalid"), "{path:?}");
        }
        assert_eq!(safe_next(Some("/%09/evil.example")), "/%09/evil.example");
    }
}
