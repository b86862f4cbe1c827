//! Server functions, one file per area. Each checks the caller on the server,
//! makes one call into `crate::ssr`, and returns model types.
//!
//! Every endpoint is named explicitly (`/api/<area>/<verb>`), so the role matrix
//! test in `server/tests` can list them and a new one cannot go unnoticed.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod notifications;
pub mod runbooks;
pub mod runs;
pub mod sites;
pub mod users;
