//! The password policy for passwords that users choose.
//!
//! Length over composition rules (NIST SP 800-63B): at least 12 characters, not the
//! username, typed the same twice.

use serde::{Deserialize, Serialize};

/// Minimum length of a chosen password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum length, so hashing cost stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a new password was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    #[error("must not be the username")]
    SameAsUsername,
    #[error("the two entries do not match")]
    Mismatch,
}

/// Checks a new password against the policy.
pub fn check_new_password(
    username: &str,
    password: &str,
    confirmation: &str,
) -> Result<(), PasswordPolicyError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    if password.trim().eq_ignore_ascii_case(username.trim()) {
        return Err(PasswordPolicyError::SameAsUsername);
    }
    if password != confirmation {
        return Err(PasswordPolicyError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_long_matching_password() {
        assert_eq!(
            check_new_password("bob", "correct horse battery", "correct horse battery"),
            Ok(())
        );
    }

    #[test]
    fn refuses_each_violation() {
        assert_eq!(
            check_new_password("bob", "short", "short"),
            Err(PasswordPolicyError::TooShort)
        );
        let long = "x".repeat(257);
        assert_eq!(
            check_new_password("bob", &long, &long),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check_new_password("administrator", "Administrator", "Administrator"),
            Err(PasswordPolicyError::SameAsUsername)
        );
        assert_eq!(
            check_new_password("bob", "correct horse battery", "correct horse batterY"),
            Err(PasswordPolicyError::Mismatch)
        );
    }
}
