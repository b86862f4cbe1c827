//! Recovery Portal, the Leptos application.
//!
//! Read this crate top-down:
//! - [`model`]: types shared by the browser and the server (roles, users, audit events)
//!   and the pure rules on them (password policy, username syntax).
//! - [`error`]: [`error::AppError`], the one error type that crosses to the browser.
//! - [`api`]: the server functions, one file per area. Each is thin: it checks the
//!   caller's session and role, makes one call into [`ssr`], and returns a model type.
//! - [`pages`] and [`components`]: the user interface.
//! - [`ssr`] (server only): state, sessions, authorization, password hashing, the
//!   repositories and the hash-chained audit store.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod components;
pub mod error;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use app::{shell, App};

/// Entry point of the browser bundle: attaches the client to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
