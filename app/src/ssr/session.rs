//! The signed-in user of a session.
//!
//! The session (stored in PostgreSQL by tower-sessions) holds only the user id, the
//! user's session epoch at sign-in and the sign-in time. Every request re-reads the
//! user, so a disabled user, a changed role or a password change (which bumps the
//! epoch) takes effect on the next request of every other session.

use super::users::{self, UserRecord};
use super::{AppState, ServiceError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const AUTH_KEY: &str = "auth";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionAuth {
    user_id: i64,
    epoch: i64,
    signed_in_at: DateTime<Utc>,
}

/// Makes `user` the session's user. The session id changes first, so an id known
/// before sign-in (session fixation) is worthless afterwards.
pub async fn establish(session: &Session, user: &UserRecord) -> Result<(), ServiceError> {
    session.cycle_id().await?;
    session
        .insert(
            AUTH_KEY,
            SessionAuth {
                user_id: user.id,
                epoch: user.session_epoch,
                signed_in_at: Utc::now(),
            },
        )
        .await?;
    Ok(())
}

/// Moves this session to the user's new epoch (after the user changed their own
/// password), keeping it while every other session of the user ends.
pub async fn follow_epoch(session: &Session, user: &UserRecord) -> Result<(), ServiceError> {
    let Some(mut auth) = session.get::<SessionAuth>(AUTH_KEY).await? else {
        return Ok(());
    };
    auth.epoch = user.session_epoch;
    session.cycle_id().await?;
    session.insert(AUTH_KEY, auth).await?;
    Ok(())
}

/// The session's user, if the session is signed in and still valid. An invalid
/// session (expired lifetime, disabled user, stale epoch) is destroyed.
pub async fn resolve(
    session: &Session,
    state: &AppState,
) -> Result<Option<UserRecord>, ServiceError> {
    let Some(auth) = session.get::<SessionAuth>(AUTH_KEY).await? else {
        return Ok(None);
    };
    if outlived(auth.signed_in_at, Utc::now(), state.auth.absolute_lifetime) {
        session.flush().await?;
        return Ok(None);
    }
    match users::find_by_id(&state.pool, auth.user_id).await? {
        Some(user) if !user.disabled && user.session_epoch == auth.epoch => Ok(Some(user)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// Whether a session signed in at `signed_in_at` has passed its absolute lifetime.
pub fn outlived(
    signed_in_at: DateTime<Utc>,
    now: DateTime<Utc>,
    lifetime: chrono::Duration,
) -> bool {
    now - signed_in_at >= lifetime
}

/// Ends the session: its record is deleted and the cookie cleared.
pub async fn end(session: &Session) -> Result<(), ServiceError> {
    session.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::outlived;
    use chrono::{Duration, Utc};

    #[test]
    fn a_session_ends_at_its_absolute_lifetime_however_active() {
        let t0 = Utc::now();
        let twelve_hours = Duration::hours(12);
        assert!(!outlived(
            t0,
            t0 + Duration::hours(11) + Duration::minutes(59),
            twelve_hours
        ));
        assert!(outlived(t0, t0 + twelve_hours, twelve_hours));
        assert!(outlived(t0, t0 + Duration::days(3), twelve_hours));
    }
}
