//! The audit trail: append-only, hash-chained events in `audit_events`.
//!
//! - [`chain`]: the canonical encoding, the hash and the verifier (pure).
//! - [`store`]: appending inside the caller's transaction, verifying the live
//!   chain, and reading pages of events.

pub mod chain;
pub mod store;

pub use chain::{ChainBreak, GENESIS_HASH};
pub use store::{append, append_alone, page, verify, Actor, AuditFilter, NewEvent, VerifyReport};
