//! Reusable parts of the UI.

pub mod guard;
pub mod nav;
pub mod notice;
