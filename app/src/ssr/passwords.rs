//! Password hashing with argon2id.
//!
//! Hashing and verification run on the blocking pool: they take tens of
//! milliseconds by design and must not stall the async workers.

use super::ServiceError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::OnceLock;

/// A PHC-format argon2id hash. Deliberately not `Serialize`: it never leaves the server.
#[derive(Clone)]
pub struct PasswordDigest(String);

impl PasswordDigest {
    /// Wraps a hash read from the database.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }
    /// The PHC string, for storing.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordDigest(..)")
    }
}

fn hash_blocking(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
}

/// Hashes a password with argon2id (the crate's defaults: m=19 MiB, t=2, p=1).
pub async fn hash(password: String) -> Result<PasswordDigest, ServiceError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))?
        .map(PasswordDigest)
}

/// A hash verified against when the user is unknown, so that unknown users and
/// wrong passwords cost the same argon2 work. Its password is irrelevant: a match
/// against it never signs anyone in (see [`verify`]).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // A fixed salt: nothing secret rides on this hash, and no RNG can fail here.
        SaltString::from_b64("cmVjb3Zlcnlwb3J0YWxkdW1teQ")
            .ok()
            .and_then(|salt| {
                Argon2::default()
                    .hash_password(b"no user has this password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

/// Computes the dummy hash ahead of the first sign-in, so that the first attempt
/// with an unknown username takes no longer than any other.
pub async fn warm_up() -> Result<(), ServiceError> {
    tokio::task::spawn_blocking(|| {
        dummy_hash();
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("warm-up task: {e}")))
}

/// Checks a password against a stored hash, or against a dummy hash when there is
/// no user, so the answer takes comparable time either way.
pub async fn verify(
    password: String,
    stored: Option<PasswordDigest>,
) -> Result<bool, ServiceError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored
            .map(|d| d.0)
            .unwrap_or_else(|| dummy_hash().to_string());
        let matches = match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        known && matches
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("verification task: {e}")))
}

/// A random password for the first administrator: 20 characters from an alphabet
/// without look-alikes (no 0/O, 1/l/I), about 117 bits.
pub fn random_password() -> String {
    use rand::seq::SliceRandom;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| *ALPHABET.choose(&mut rng).unwrap_or(&b'x') as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let digest = hash("correct horse battery".into()).await.unwrap();
        assert!(digest.as_str().starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(digest.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong".into(), Some(digest)).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let real = hash_blocking("x").unwrap();
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(dummy_hash()), params(&real));
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn random_passwords_differ_and_are_long() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
