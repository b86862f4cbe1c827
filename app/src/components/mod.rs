//! Reusable parts of the UI.

pub mod approval;
pub mod guard;
pub mod live;
pub mod nav;
pub mod notice;
