//! Signing in and out.

use super::audit::{self, Actor, NewEvent};
use super::throttle::{self, minutes_to_wait};
use super::users::{self, UserRecord};
use super::{passwords, session, AppState, ServiceError};
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::user::Username;
use chrono::Utc;
use serde_json::json;
use tower_sessions::Session;

/// The longest username kept as a throttling key; longer input cannot be a user.
const MAX_KEY_CHARS: usize = 64;

/// Checks the credentials and, if they are good, makes the session the user's.
///
/// Unknown user, wrong password and disabled account all answer
/// [`AppError::BadCredentials`] after the same argon2 work; the audit event says
/// which it was. While the username is throttled the password is not checked.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    username: &str,
    password: String,
) -> Result<UserRecord, ServiceError> {
    let key: String = username
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_KEY_CHARS)
        .collect();
    if key.is_empty() {
        return Err(ServiceError::invalid("Username", "is empty"));
    }
    let actor = Actor::User(key.clone());
    let subject = format!("user:{key}");
    let mut tx = state.pool.begin().await?;
    // One sign-in per username at a time, so parallel guesses cannot overshoot the limit.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sign-in:' || $1))")
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    let now = Utc::now();
    let throttle = state.auth.throttle;
    let failures = throttle::recent_failures(&mut tx, &key, throttle.since(now)).await?;
    if let Some(wait) = throttle.blocked_for(&failures, now) {
        let minutes = minutes_to_wait(wait);
        audit::append(
            &mut tx,
            NewEvent::new(
                &actor,
                AuditAction::SignInThrottled,
                subject,
                json!({ "retry_after_minutes": minutes }),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(AppError::Throttled { minutes }.into());
    }
    let user = match Username::parse(&key) {
        Ok(name) => users::find_by_username(&mut *tx, &name).await?,
        Err(_) => None,
    };
    let password_ok =
        passwords::verify(password, user.as_ref().map(|u| u.password.clone())).await?;
    match user {
        Some(user) if password_ok && !user.disabled => {
            throttle::clear_failures(&mut tx, &key).await?;
            users::touch_sign_in(&mut tx, user.id).await?;
            audit::append(
                &mut tx,
                NewEvent::new(
                    &actor,
                    AuditAction::SignIn,
                    subject,
                    json!({ "role": user.role.as_str() }),
                ),
            )
            .await?;
            tx.commit().await?;
            session::establish(session, &user).await?;
            Ok(user)
        }
        user => {
            let reason = match &user {
                None => "unknown_user",
                Some(u) if u.disabled => "disabled",
                Some(_) => "wrong_password",
            };
            throttle::record_failure(&mut tx, &key, now).await?;
            audit::append(
                &mut tx,
                NewEvent::new(
                    &actor,
                    AuditAction::SignInFailed,
                    subject,
                    json!({ "reason": reason, "failures_in_window": failures.len() + 1 }),
                ),
            )
            .await?;
            tx.commit().await?;
            Err(AppError::BadCredentials.into())
        }
    }
}

/// Ends the session, recording who signed out.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<(), ServiceError> {
    if let Some(user) = session::resolve(session, state).await? {
        audit::append_alone(
            &state.pool,
            NewEvent::new(
                &user.actor(),
                AuditAction::SignOut,
                format!("user:{}", user.username),
                json!({}),
            ),
        )
        .await?;
    }
    session::end(session).await
}
