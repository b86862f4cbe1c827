//! Signing in and out.

use super::audit::{self, Actor, NewEvent};
use super::client::ClientInfo;
use super::throttle::{self, AttemptKind, NotAdmitted};
use super::users::{self, UserRecord};
use super::{passwords, session, AppState, ServiceError};
use crate::error::AppError;
use crate::model::audit::AuditAction;
use crate::model::throttle::{seconds_to_wait, Slowed};
use crate::model::user::Username;
use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tower_sessions::Session;

/// The name an attempt is counted and audited under: the username as a user
/// would be found (trimmed, lower-cased), or `?` for anything that cannot be a
/// username, so that attacker-chosen text (formulas, control characters, a
/// spoofed `system`) never becomes an actor or a key.
fn attempt_key(username: &str) -> Option<Username> {
    Username::parse(username).ok()
}

/// Checks the credentials and, if they are good, makes the session the user's.
///
/// In order, each step cheaper than the next: the attempt is admitted by the
/// [`throttle::SignInGate`] (one per client address, no more password checks than
/// cores; else 429 at once), then refused with a wait if its address or its
/// username from that address failed too often lately (slowed down, never locked),
/// then the password is checked without holding any database connection, and
/// only then is the outcome written in one short transaction.
///
/// Unknown user, wrong password and disabled account all answer
/// [`AppError::BadCredentials`] after the same argon2 work; the audit says which.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    client: ClientInfo,
    username: &str,
    password: String,
) -> Result<UserRecord, ServiceError> {
    if username.trim().is_empty() {
        return Err(ServiceError::invalid("Username", "is empty"));
    }
    let name = attempt_key(username);
    let key = name.as_ref().map_or("?", |n| n.as_str()).to_string();
    let address = client.address.to_string();
    let _admission = state
        .sign_in_gate
        .admit(client.address)
        .await
        .map_err(|e| match e {
            NotAdmitted::AddressBusy => AppError::Busy {
                what: "Too many sign-ins from your address are being checked".into(),
            },
            NotAdmitted::AtCapacity => AppError::Busy {
                what: "The portal is checking as many sign-ins as it can".into(),
            },
        })?;

    let now = Utc::now();
    let rules = state.auth.throttle;
    let (from_address, user_at_address) =
        throttle::recent_failures(&state.pool, &key, &address, rules.since(now)).await?;
    if let Some(slowed) = rules.check(&from_address, &user_at_address, now) {
        let seconds = seconds_to_wait(slowed.wait());
        let mut tx = state.pool.begin().await?;
        let window = rules.per_address.window;
        let n =
            throttle::note_attempt(&mut tx, AttemptKind::Throttled, &address, &key, now, window)
                .await?;
        if n == 1 {
            audit::append(
                &mut tx,
                NewEvent::new(
                    &Actor::Anonymous(key.clone()),
                    AuditAction::SignInThrottled,
                    format!("address:{address}"),
                    json!({
                        "address": address,
                        "username": key,
                        "because": match slowed { Slowed::Address(_) => "address", Slowed::UserAtAddress(_) => "username_at_address" },
                        "retry_after_seconds": seconds,
                        "note": "further refusals from this address in this window are counted in one summary event",
                    }),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        return Err(AppError::Throttled {
            seconds,
            per_account: matches!(slowed, Slowed::UserAtAddress(_)),
        }
        .into());
    }

    // A short read, released before argon2 runs: hashing never holds a connection.
    let user = match &name {
        Some(name) => users::find_by_username(&state.pool, name).await?,
        None => None,
    };
    let password_ok = match &name {
        Some(_) => passwords::verify(password, user.as_ref().map(|u| u.password.clone())).await?,
        // Not a possible username (a public rule): nothing to hide by hashing.
        None => false,
    };

    let mut tx = state.pool.begin().await?;
    match user {
        Some(user) if password_ok && !user.disabled => {
            throttle::clear_failures(&mut tx, &key, &address).await?;
            users::touch_sign_in(&mut tx, user.id).await?;
            audit::append(
                &mut tx,
                NewEvent::new(
                    &user.actor(),
                    AuditAction::SignIn,
                    format!("user:{key}"),
                    json!({ "role": user.role.as_str(), "address": address }),
                ),
            )
            .await?;
            tx.commit().await?;
            session::establish(session, &user).await?;
            Ok(user)
        }
        user => {
            let reason = match &user {
                None if name.is_none() => "invalid_username",
                None => "unknown_user",
                Some(u) if u.disabled => "disabled",
                Some(_) => "wrong_password",
            };
            // Counted from when the answer is given, not when the attempt began, so
            // the wait it causes is the one the client sees.
            let now = Utc::now();
            throttle::record_failure(&mut tx, &key, &address, now).await?;
            let window = rules.per_user_and_address.window;
            let n =
                throttle::note_attempt(&mut tx, AttemptKind::Failed, &key, &address, now, window)
                    .await?;
            if n == 1 {
                audit::append(
                    &mut tx,
                    NewEvent::new(
                        &Actor::Anonymous(key.clone()),
                        AuditAction::SignInFailed,
                        format!("user:{key}"),
                        json!({
                            "reason": reason,
                            "address": address,
                            "at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
                            "note": "further failures on this username in this window are counted in one summary event",
                        }),
                    ),
                )
                .await?;
            }
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
