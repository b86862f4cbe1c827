//! Black-box tests of the real server and binary, each on its own database
//! (`#[sqlx::test]` creates one per test from DATABASE_URL and applies `migrations/`).
//! One test binary, so linking happens once.

mod approvals;
mod audit_export;
mod audit_integrity;
mod audit_store;
mod auth;
mod cli;
mod hardening;
mod health;
mod helpers;
mod keystone;
mod lab_portal;
mod notifications;
mod openstack;
mod pages;
mod rehearsal;
mod roles;
mod run_owner;
mod run_report;
mod runbooks;
mod runs;
mod sign_in_security;
mod ssh;
mod users;
mod wizard;
