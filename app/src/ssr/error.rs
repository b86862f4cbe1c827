//! Server-side errors and their single mapping to what the browser sees.

use crate::error::AppError;

/// An error inside a server-side service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An error the user can act on; passed through as it is.
    #[error(transparent)]
    Client(#[from] AppError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// Shorthand for an [`AppError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        ServiceError::Client(AppError::invalid(field, message))
    }
}

/// The one place where server-side errors become client-visible ones: internal
/// causes are logged under a short reference and replaced by a generic message,
/// and the HTTP status of the current response is set to match the error.
impl From<ServiceError> for AppError {
    fn from(err: ServiceError) -> Self {
        let app = match err {
            ServiceError::Client(app) => app,
            internal => AppError::Internal {
                reference: log_with_reference(&internal),
            },
        };
        super::respond::set_status(app.status_code());
        app
    }
}

/// Logs an internal failure under a new short reference, returned for the user.
pub fn log_with_reference(internal: &ServiceError) -> String {
    let reference = reference_id();
    tracing::error!(%reference, error = %internal, "request failed");
    reference
}

fn reference_id() -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().gen();
    format!("{n:08x}")
}
