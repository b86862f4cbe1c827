//! The audit trail: append-only, hash-chained events in `audit_events`.
//!
//! - [`chain`]: the canonical encoding, the hash and the verifier (pure).
//! - [`store`]: appending inside the caller's transaction, and verifying the
//!   live chain.
//! - [`query`]: events by filters: pages for the viewer, a stream for exports.
//! - [`export`]: CSV and JSONL lines, and the offline check of a JSONL export (pure).
//! - [`verification`]: recorded verifications of the whole chain, with progress,
//!   compared with the newest signed checkpoint.
//! - [`checkpoint`]: signed checkpoints of the chain's head, kept in the database
//!   and in a file next to the key, so a shortened trail is seen.
//! - [`privileges`]: whether the portal's database role could rewrite the trail.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod privileges;
pub mod query;
pub mod store;
pub mod verification;

pub use chain::{ChainBreak, GENESIS_HASH};
pub use store::{append, append_alone, verify, Actor, NewEvent, VerifyReport};
