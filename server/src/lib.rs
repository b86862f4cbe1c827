//! The `recovery-portal` binary's library: everything but `main`, so that the
//! integration tests can start the real server on a random port.
//!
//! - [`cli`]: the command line.
//! - [`config`]: settings from a TOML file and `PORTAL_*` variables, checked at start.
//! - [`startup`]: the database pool, migrations, and [`startup::Application`] (the HTTP server).
//! - [`exec`]: the real clients that carry out steps (SSH).
//! - [`report`]: a run's report as a PDF (krilla), with its outputs attached.
//! - [`web`]: what wraps the Leptos app: CSRF protection, the page guard, `/healthz`, downloads.
//! - [`commands`]: the subcommands other than `serve`.
//! - [`telemetry`]: structured logs.

pub mod cli;
pub mod commands;
pub mod config;
pub mod exec;
pub mod report;
pub mod startup;
pub mod telemetry;
pub mod web;
