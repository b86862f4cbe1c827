//! Server-only services. Nothing here is compiled into the browser bundle.
//!
//! - [`state`]: what every request can reach (database pool, settings).
//! - [`error`]: server-side errors and their one mapping to [`crate::error::AppError`].
//! - [`session`] and [`authz`]: who is calling, and the proof that they may.
//! - [`client`]: the client's address and scheme, also behind trusted proxies.
//! - [`passwords`], [`throttle`], [`sign_in`]: authentication.
//! - [`users`]: the user repository and user administration.
//! - [`oversight`]: admins watching admins: notices of account changes, one
//!   person holding both an admin and a supervisor account.
//! - [`audit`]: the hash-chained, append-only audit store.
//! - [`runs`]: runs and their steps in the database, through the step state machine.
//! - [`approvals`]: the approval gate of destructive steps, enforced in one place.
//! - [`engine`]: executing runs: the operator's commands, the executor, outcomes.
//! - [`live`]: live events of runs for open run pages.
//! - [`notify`]: approval notifications by webhook and e-mail: each site's
//!   channels, the outbox, and the worker that delivers with retries.
//! - [`sites`]: sites for the admin: trusted host keys, the lab's faults.
//! - [`catalogue`]: the loaded runbooks as the catalogue shows them.
//! - [`bootstrap`]: the first administrator.
//! - [`report`]: a run's report (HTML page, PDF, attached JSONL) and its chain check.
//! - [`respond`]: answers that depend on how a server function was called.

pub mod approvals;
pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod catalogue;
pub mod client;
pub mod engine;
pub mod error;
pub mod live;
pub mod notify;
pub mod oversight;
pub mod passwords;
pub mod report;
pub mod respond;
pub mod runs;
pub mod session;
pub mod sign_in;
pub mod sites;
pub mod state;
pub mod throttle;
pub mod users;

pub use error::ServiceError;
pub use state::AppState;
