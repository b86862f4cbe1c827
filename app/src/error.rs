//! The one error type that crosses from the server to the browser.
//!
//! Every server function returns `Result<_, AppError>`. Server-side failures are
//! mapped into it in one place (`ssr::error`), where internal causes are logged
//! with a reference and replaced by a generic message, so nothing internal leaks.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// What went wrong, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session.
    #[error("Please sign in to continue.")]
    Unauthenticated,
    /// Signed in, but the password must be changed first.
    #[error("You must change your password before you can do anything else.")]
    PasswordChangeRequired,
    /// Signed in, but the role does not allow this.
    #[error("Your role ({role}) does not allow you to {needed}.")]
    Forbidden { role: String, needed: String },
    /// Unknown user, wrong password or disabled account: deliberately one message.
    #[error("Invalid username or password.")]
    BadCredentials,
    /// Signed in with a role that may act on runs, but this run is someone else's.
    #[error("Run {run} belongs to {owner}; take it over (with a reason) to act on it.")]
    NotRunOwner { run: i64, owner: String },
    /// Too many failed sign-ins from the caller's address (or on this username
    /// from it): slowed down, never locked.
    #[error("{}", throttled_message(*.seconds, *.per_account))]
    Throttled { seconds: i64, per_account: bool },
    /// The server is at its limit for this kind of request; nothing was done.
    #[error("{what}; nothing was done. Try again in a few seconds.")]
    Busy { what: String },
    /// A field of a form or argument was not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Several fields of a form were not acceptable: (the field's form name, a
    /// message that names the field) each.
    #[error("Please correct: {}", .0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; "))]
    Fields(Vec<(String, String)>),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A failure inside the server; the log has the cause under this reference.
    #[error("The server could not complete the request (reference {reference}). The cause is in the portal's log under that reference.")]
    Internal { reference: String },
    /// A destructive step was not started because its approval or audit record
    /// could not be stored (fail closed).
    #[error("Nothing was executed: the approval and its audit record could not be stored (reference {reference}). The step has not run; try again, or ask an administrator to look in the portal's log under that reference.")]
    NotExecuted { reference: String },
    /// The request did not reach the server or its answer could not be read.
    #[error("Request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The HTTP status the error is answered with.
    pub fn status_code(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::PasswordChangeRequired
            | AppError::Forbidden { .. }
            | AppError::NotRunOwner { .. } => 403,
            AppError::Throttled { .. } | AppError::Busy { .. } => 429,
            AppError::Invalid { .. } | AppError::Fields(_) => 400,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::Internal { .. } => 500,
            AppError::NotExecuted { .. } => 503,
            AppError::Transport(_) => 502,
        }
    }
}

fn throttled_message(seconds: i64, per_account: bool) -> String {
    let wait = if seconds >= 120 {
        format!("{} minutes", (seconds + 59) / 60)
    } else {
        format!("{seconds} second{}", if seconds == 1 { "" } else { "s" })
    };
    let what = if per_account {
        "Too many failed sign-ins on this username from your address"
    } else {
        "Too many failed sign-ins from your address"
    };
    format!("{what}: please wait {wait} before trying again. Signing in from another address works at once; an administrator can also unlock the account.")
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = match value {
            ServerFnErrorErr::Args(msg) => AppError::invalid("request", msg),
            ServerFnErrorErr::MissingArg(arg) => {
                AppError::invalid(arg, "is missing from the request")
            }
            other => AppError::Transport(other.to_string()),
        };
        // On the server this is a request the function could not even decode:
        // answer 400, not the default 500.
        #[cfg(feature = "ssr")]
        if matches!(error, AppError::Invalid { .. }) {
            crate::ssr::respond::set_status(400);
        }
        error
    }
}
