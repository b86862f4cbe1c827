//! The HTTP layer around the Leptos app.
//!
//! - [`csrf`]: refuses state-changing requests that come from another site.
//! - [`page_guard`]: sends pages to sign-in, Account or 403 before rendering.
//! - [`health`]: `GET /healthz`.

pub mod csrf;
pub mod health;
pub mod page_guard;
