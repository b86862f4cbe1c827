//! How a webhook receiver knows a message comes from the portal. Pure.
//!
//! `X-Portal-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes
//! under the channel's secret (the scheme GitHub's webhooks use, so receivers'
//! usual checks work). The body carries the event id and its creation time, so
//! both are signed: a receiver drops an event id it has seen (retries send the
//! same bytes) and may drop old ones. The timestamp header is the time of the
//! attempt, for logs only.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Portal-Signature";
/// The event's id: the same on every attempt and every channel.
pub const EVENT_ID_HEADER: &str = "X-Portal-Event-Id";
/// The event's kind (`approval.requested`).
pub const EVENT_HEADER: &str = "X-Portal-Event";
/// Unix seconds of the attempt.
pub const TIMESTAMP_HEADER: &str = "X-Portal-Timestamp";
/// Which attempt this is, from 1.
pub const ATTEMPT_HEADER: &str = "X-Portal-Delivery-Attempt";

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed first): this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// The signature header's value for `body`: `sha256=<hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` under `secret`, compared in
/// constant time. What a receiver does; the tests use it.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_hmac_sha256_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_its_own_signature_and_nothing_else() {
        let body = br#"{"event":"approval.requested"}"#;
        let header = sign(b"a secret of some length", body);
        assert!(verify(b"a secret of some length", body, &header));
        assert!(!verify(b"another secret entirely", body, &header));
        assert!(!verify(b"a secret of some length", b"{}", &header));
        assert!(!verify(b"a secret of some length", body, "sha1=00"));
        assert!(!verify(b"a secret of some length", body, "sha256=zz"));
        assert!(!verify(
            b"a secret of some length",
            body,
            &header[..header.len() - 2]
        ));
    }
}
