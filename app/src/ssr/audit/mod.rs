//! The audit trail: append-only, hash-chained events in `audit_events`.
//!
//! - [`chain`]: the canonical encoding, the hash and the verifier (pure).
//! - [`store`]: appending inside the caller's transaction, and verifying the
//!   live chain.
//! - [`query`]: events by filters: pages for the viewer, a stream for exports.
//! - [`export`]: CSV and JSONL lines, and the offline check of a JSONL export (pure).
//! - [`verification`]: recorded verifications of the whole chain, with progress.

pub mod chain;
pub mod export;
pub mod query;
pub mod store;
pub mod verification;

pub use chain::{ChainBreak, GENESIS_HASH};
pub use store::{append, append_alone, verify, Actor, NewEvent, VerifyReport};
