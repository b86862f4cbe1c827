//! The audit chain's canonical encoding and hash, and a streaming verifier.
//!
//! An event's hash is the lower-case hex SHA-256 of its canonical encoding: a JSON
//! object with keys sorted, no insignificant whitespace, and these members:
//! `v` (encoding version, 1), `id`, `at` (RFC 3339, UTC, microseconds, `Z`),
//! `actor`, `action`, `subject`, `details` (canonical JSON), `prev_hash`.
//! The first event's `prev_hash` is [`GENESIS_HASH`]. This is all a third party
//! needs to check an exported trail offline.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an event that the hash covers.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainedEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
    pub prev_hash: String,
}

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no
/// whitespace, strings escaped as serde_json escapes them.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Rounds a time to what PostgreSQL's `timestamptz` keeps (microseconds), so the
/// hash computed before the insert equals the one computed after reading back.
pub fn to_stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    let micros = at.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(at)
}

/// The canonical encoding of an event.
pub fn encode(event: &ChainedEvent) -> String {
    let doc = serde_json::json!({
        "v": 1,
        "id": event.id,
        "at": event.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "details": event.details,
        "prev_hash": event.prev_hash,
    });
    let mut out = String::new();
    canonical_json(&doc, &mut out);
    out
}

/// The event's hash: hex SHA-256 of [`encode`].
pub fn event_hash(event: &ChainedEvent) -> String {
    hex::encode(Sha256::digest(encode(event).as_bytes()))
}

/// The first place where a sequence of stored events stops being a valid chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("event {found}: expected event {expected} next; events are missing or reordered")]
    Gap { expected: i64, found: i64 },
    #[error("event {id}: its prev_hash does not equal the hash of the event before it")]
    PrevHashMismatch { id: i64 },
    #[error("event {id}: its content does not match its hash (the event was altered)")]
    HashMismatch { id: i64 },
}

impl ChainBreak {
    /// The id of the first event that does not fit.
    pub fn event_id(&self) -> i64 {
        match self {
            ChainBreak::Gap { found, .. } => *found,
            ChainBreak::PrevHashMismatch { id } | ChainBreak::HashMismatch { id } => *id,
        }
    }
}

/// Checks events one at a time, in id order, in constant memory.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    expected_id: i64,
    expected_prev: String,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_id: 1,
            expected_prev: GENESIS_HASH.to_string(),
            checked: 0,
        }
    }
}

impl ChainVerifier {
    /// A verifier that expects event `next_id` next, linked to `prev_hash` (the
    /// stored hash of the event before it): for checking part of a chain.
    pub fn resume(next_id: i64, prev_hash: String) -> Self {
        Self {
            expected_id: next_id,
            expected_prev: prev_hash,
            checked: 0,
        }
    }

    /// Checks the next event and its stored hash.
    pub fn push(&mut self, event: &ChainedEvent, stored_hash: &str) -> Result<(), ChainBreak> {
        if event.id != self.expected_id {
            return Err(ChainBreak::Gap {
                expected: self.expected_id,
                found: event.id,
            });
        }
        if event.prev_hash != self.expected_prev {
            return Err(ChainBreak::PrevHashMismatch { id: event.id });
        }
        if event_hash(event) != stored_hash {
            return Err(ChainBreak::HashMismatch { id: event.id });
        }
        self.expected_id += 1;
        self.expected_prev = stored_hash.to_string();
        self.checked += 1;
        Ok(())
    }

    /// How many events passed.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The hash of the last event that passed.
    pub fn head(&self) -> &str {
        &self.expected_prev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: i64, prev: &str, details: Value) -> ChainedEvent {
        ChainedEvent {
            id,
            at: DateTime::from_timestamp(1_800_000_000, 123_456_000).unwrap(),
            actor: "alice".into(),
            action: "user.created".into(),
            subject: "user:bob".into(),
            details,
            prev_hash: prev.into(),
        }
    }

    fn chain(n: i64) -> Vec<(ChainedEvent, String)> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|id| {
                let e = event(id, &prev, json!({ "n": id }));
                let h = event_hash(&e);
                prev = h.clone();
                (e, h)
            })
            .collect()
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let mut out = String::new();
        canonical_json(
            &json!({"b": [1, {"z": true, "a": null}], "a": "x\"y"}),
            &mut out,
        );
        assert_eq!(out, r#"{"a":"x\"y","b":[1,{"a":null,"z":true}]}"#);
    }

    #[test]
    fn encoding_is_stable() {
        let e = event(1, GENESIS_HASH, json!({"role": "operator"}));
        assert_eq!(
            encode(&e),
            format!(
                r#"{{"action":"user.created","actor":"alice","at":"2027-01-15T08:00:00.123456Z","details":{{"role":"operator"}},"id":1,"prev_hash":"{GENESIS_HASH}","subject":"user:bob","v":1}}"#
            )
        );
        assert_eq!(event_hash(&e).len(), 64);
    }

    #[test]
    fn hash_covers_every_field() {
        let base = event(1, GENESIS_HASH, json!({"k": 1}));
        let h = event_hash(&base);
        let mut variants = vec![base.clone(); 7];
        variants[0].id = 2;
        variants[1].at += chrono::Duration::microseconds(1);
        variants[2].actor = "mallory".into();
        variants[3].action = "user.disabled".into();
        variants[4].subject = "user:eve".into();
        variants[5].details = json!({"k": 2});
        variants[6].prev_hash = "1".repeat(64);
        for v in variants {
            assert_ne!(event_hash(&v), h, "{v:?}");
        }
    }

    #[test]
    fn verifier_accepts_an_intact_chain() {
        let mut v = ChainVerifier::default();
        for (e, h) in chain(5) {
            v.push(&e, &h).unwrap();
        }
        assert_eq!(v.checked(), 5);
    }

    #[test]
    fn verifier_names_an_altered_event() {
        let mut events = chain(5);
        events[2].0.details = json!({"n": 99});
        let mut v = ChainVerifier::default();
        let err = events
            .iter()
            .try_for_each(|(e, h)| v.push(e, h))
            .unwrap_err();
        assert_eq!(err, ChainBreak::HashMismatch { id: 3 });
        assert_eq!(err.event_id(), 3);
    }

    #[test]
    fn verifier_names_a_rehashed_event_by_its_successor() {
        // Someone alters event 3 and recomputes its hash: event 4 no longer fits.
        let mut events = chain(5);
        events[2].0.actor = "mallory".into();
        events[2].1 = event_hash(&events[2].0);
        let mut v = ChainVerifier::default();
        let err = events
            .iter()
            .try_for_each(|(e, h)| v.push(e, h))
            .unwrap_err();
        assert_eq!(err, ChainBreak::PrevHashMismatch { id: 4 });
    }

    #[test]
    fn verifier_names_a_gap() {
        let mut events = chain(5);
        events.remove(1);
        let mut v = ChainVerifier::default();
        let err = events
            .iter()
            .try_for_each(|(e, h)| v.push(e, h))
            .unwrap_err();
        assert_eq!(
            err,
            ChainBreak::Gap {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn stored_precision_is_microseconds() {
        let t = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        assert_eq!(to_stored_precision(t).timestamp_subsec_nanos(), 123_456_000);
    }
}
