//! Types shared by the browser and the server, and the pure rules on them.

pub mod ansi;
pub mod approval;
pub mod audit;
pub mod audit_query;
pub mod duties;
pub mod notification;
pub mod password;
pub mod progress;
pub mod role;
pub mod run;
pub mod run_report;
pub mod run_view;
pub mod runbook;
pub mod site;
pub mod text;
pub mod throttle;
pub mod user;

pub use role::{Permission, Role};
