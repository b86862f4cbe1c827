//! Reusable parts of the UI.

pub mod approval;
pub mod guard;
pub mod live;
pub mod nav;
pub mod notice;

/// `2026-11-27T05:30:12Z` as `2026-11-27 05:30:12 UTC`.
pub fn when(t: &str) -> String {
    t.replace('T', " ").replace('Z', " UTC")
}
