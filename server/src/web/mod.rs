//! The HTTP layer around the Leptos app.
//!
//! - [`client`]: who the client is (address, https), also behind trusted proxies.
//! - [`csrf`]: refuses state-changing requests that come from another site.
//! - [`page_guard`]: sends pages to sign-in, Account or 403 before rendering.
//! - [`health`]: `GET /healthz`.
//! - [`live`]: a run's live events (server-sent events).
//! - [`audit_export`]: the audit trail as CSV or JSONL, streamed.
//! - [`run_report`]: a run's report as a PDF, and its JSONL.

pub mod audit_export;
pub mod client;
pub mod csrf;
pub mod health;
pub mod live;
pub mod page_guard;
pub mod run_report;
