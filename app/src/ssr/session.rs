//! The signed-in user of a session.
//!
//! The session (stored in PostgreSQL by tower-sessions) holds only the user id, the
//! user's session epoch at sign-in and the sign-in time. Every request re-reads the
//! user, so a disabled user, a changed role or a password change (which bumps the
//! epoch) takes effect on the next request of every other session.
//!
//! The idle timeout counts a person's requests only: [`touch`] records the time
//! of each (pages, actions) and is not called for live streams and background
//! reads, so a tab left open does not keep its session alive; [`resolve`] ends a
//! session idle for longer than the timeout. The session store's own expiry
//! slides only when the session is saved, which is when [`touch`] changes it.

use super::users::{self, UserRecord};
use super::{AppState, ServiceError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const AUTH_KEY: &str = "auth";
/// When the person behind the session last did something.
const ACTIVITY_KEY: &str = "last_activity";

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
    session.insert(ACTIVITY_KEY, Utc::now()).await?;
    Ok(())
}

/// When the person behind `auth`'s session last did something.
async fn last_activity(
    session: &Session,
    auth: &SessionAuth,
) -> Result<DateTime<Utc>, ServiceError> {
    Ok(session
        .get::<DateTime<Utc>>(ACTIVITY_KEY)
        .await?
        .unwrap_or(auth.signed_in_at))
}

/// Records a request made by the person behind the session (a page, an action),
/// which keeps the session from going idle. A session already idle for longer
/// than the timeout is ended instead.
pub async fn touch(session: &Session, state: &AppState) -> Result<(), ServiceError> {
    let Some(auth) = session.get::<SessionAuth>(AUTH_KEY).await? else {
        return Ok(());
    };
    let now = Utc::now();
    if idle(
        last_activity(session, &auth).await?,
        now,
        state.auth.idle_timeout,
    ) {
        session.flush().await?;
        return Ok(());
    }
    session.insert(ACTIVITY_KEY, now).await?;
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
    let now = Utc::now();
    if outlived(auth.signed_in_at, now, state.auth.absolute_lifetime)
        || idle(
            last_activity(session, &auth).await?,
            now,
            state.auth.idle_timeout,
        )
    {
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

/// Whether a session whose person was last active at `last_activity` has been
/// idle for `timeout` or longer.
pub fn idle(last_activity: DateTime<Utc>, now: DateTime<Utc>, timeout: chrono::Duration) -> bool {
    now - last_activity >= timeout
}

/// Ends the session: its record is deleted and the cookie cleared.
pub async fn end(session: &Session) -> Result<(), ServiceError> {
    session.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{idle, outlived};
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

    #[test]
    fn a_session_goes_idle_only_by_the_time_since_its_person_was_active() {
        let t0 = Utc::now();
        let thirty = Duration::minutes(30);
        assert!(!idle(t0, t0 + Duration::minutes(29), thirty));
        assert!(idle(t0, t0 + thirty, thirty));
        assert!(idle(t0, t0 + Duration::hours(5), thirty));
    }
}
