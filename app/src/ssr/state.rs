//! The state every request can reach, provided to server functions as context.

use super::throttle::SignInGate;
use super::ServiceError;
use crate::model::throttle::SignInThrottle;
use chrono::Duration;
use sqlx::PgPool;
use std::sync::Arc;

/// Settings of authentication that the services need.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub absolute_lifetime: Duration,
    /// Failed sign-in throttling.
    pub throttle: SignInThrottle,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::minutes(30),
            absolute_lifetime: Duration::hours(12),
            throttle: SignInThrottle::default(),
        }
    }
}

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub auth: Arc<AuthSettings>,
    /// The runbooks loaded (and checked) at start.
    pub runbooks: Arc<Vec<runbook::Runbook>>,
    /// Executes runs.
    pub engine: Arc<super::engine::Engine>,
    /// Admits sign-in attempts: one per client address, no more password
    /// checks at once than cores.
    pub sign_in_gate: Arc<SignInGate>,
    /// The sites as the executor knows them.
    pub sites: Arc<dyn super::sites::SiteDirectory>,
    /// Approval notifications (webhooks, e-mail).
    pub notifier: Arc<super::notify::Notifier>,
    /// Signed checkpoints of the audit chain's head.
    pub checkpoints: Arc<super::audit::checkpoint::Checkpoints>,
}

/// The state provided to the current server function or page render.
pub fn app_state() -> Result<AppState, ServiceError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| ServiceError::Internal("application state missing from context".into()))
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
