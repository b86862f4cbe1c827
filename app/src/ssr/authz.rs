//! Authorization as a value.
//!
//! A service that needs a permission takes an [`Authorized<C>`], and only
//! [`require`] (or the pure [`authorize`]) can make one, after checking the
//! caller's session and role on the server. An unguarded call does not compile.

use super::session;
use super::state::app_state;
use super::users::UserRecord;
use super::ServiceError;
use crate::error::AppError;
use crate::model::Permission;
use std::marker::PhantomData;
use tower_sessions::Session;

/// A permission as a type, so that proofs of different permissions differ in type.
pub trait Capability {
    const PERMISSION: Permission;
}

macro_rules! capability {
    ($name:ident) => {
        #[doc = concat!("The [`Permission::", stringify!($name), "`] capability.")]
        #[derive(Debug)]
        pub struct $name;
        impl Capability for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    };
}
capability!(ViewRuns);
capability!(RunRecoveries);
capability!(ApproveDestructiveSteps);
capability!(ReadAudit);
capability!(ManageUsers);
capability!(ManageSites);

/// Proof that `user` holds capability `C`.
#[derive(Debug)]
pub struct Authorized<C: Capability> {
    user: UserRecord,
    _capability: PhantomData<C>,
}

impl<C: Capability> Authorized<C> {
    /// The authorized user.
    pub fn user(&self) -> &UserRecord {
        &self.user
    }
}

/// A signed-in user of any role, possibly still owing a password change.
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserRecord,
    pub session: Session,
}

/// Checks a user against a capability, without I/O.
pub fn authorize<C: Capability>(user: UserRecord) -> Result<Authorized<C>, AppError> {
    if user.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    if !user.role.permits(C::PERMISSION) {
        return Err(AppError::Forbidden {
            role: user.role.to_string(),
            needed: C::PERMISSION.description().to_string(),
        });
    }
    Ok(Authorized {
        user,
        _capability: PhantomData,
    })
}

/// The current request's session.
pub async fn current_session() -> Result<Session, ServiceError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| ServiceError::Internal(format!("no session layer: {e}")))
}

/// The client of the current request (address, https), as the server's client
/// layer identified it.
pub async fn current_client() -> Result<super::client::ClientInfo, ServiceError> {
    leptos_axum::extract::<axum::Extension<super::client::ClientInfo>>()
        .await
        .map(|axum::Extension(client)| client)
        .map_err(|e| ServiceError::Internal(format!("no client layer: {e}")))
}

/// The signed-in caller, or [`AppError::Unauthenticated`].
pub async fn signed_in() -> Result<SignedIn, ServiceError> {
    let state = app_state()?;
    let session = current_session().await?;
    match session::resolve(&session, &state).await? {
        Some(user) => Ok(SignedIn { user, session }),
        None => Err(AppError::Unauthenticated.into()),
    }
}

/// The signed-in caller with capability `C`.
pub async fn require<C: Capability>() -> Result<Authorized<C>, ServiceError> {
    let caller = signed_in().await?;
    Ok(authorize::<C>(caller.user)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::ssr::passwords::PasswordDigest;

    fn user(role: Role, must_change_password: bool) -> UserRecord {
        UserRecord {
            id: 1,
            username: "u".into(),
            role,
            password: PasswordDigest::from_stored(String::new()),
            disabled: false,
            must_change_password,
            session_epoch: 0,
            created_at: chrono::Utc::now(),
            last_sign_in_at: None,
            email: None,
            display_name: None,
        }
    }

    #[test]
    fn admits_exactly_the_roles_that_hold_the_permission() {
        for role in Role::ALL {
            assert_eq!(
                authorize::<ManageUsers>(user(role, false)).is_ok(),
                role == Role::Admin
            );
            assert_eq!(
                authorize::<ReadAudit>(user(role, false)).is_ok(),
                matches!(role, Role::Admin | Role::Auditor | Role::Supervisor)
            );
        }
    }

    #[test]
    fn a_pending_password_change_blocks_everything() {
        let err = authorize::<ManageUsers>(user(Role::Admin, true)).unwrap_err();
        assert_eq!(err, AppError::PasswordChangeRequired);
    }

    #[test]
    fn forbidden_names_role_and_need() {
        let err = authorize::<ManageUsers>(user(Role::Operator, false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Your role (operator) does not allow you to manage users and their roles."
        );
    }
}
