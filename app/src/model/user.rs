//! Users as the UI sees them, and the username rule.

use super::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A valid username: 2 to 32 characters, lower-case letters, digits, `.`, `_`, `-`,
/// starting with a letter. Input is trimmed and lower-cased, so `Bob` and `bob` are
/// the same user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Username(String);

/// Why a username was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("is empty")]
    Empty,
    #[error("must be 2 to 32 characters long")]
    Length,
    #[error("must start with a letter")]
    FirstChar,
    #[error("may contain only letters, digits, '.', '_' and '-' (found {0:?})")]
    BadChar(char),
}

impl Username {
    /// Parses user input into a username.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let name = input.trim().to_lowercase();
        if name.is_empty() {
            return Err(UsernameError::Empty);
        }
        let len = name.chars().count();
        if !(2..=32).contains(&len) {
            return Err(UsernameError::Length);
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(UsernameError::FirstChar);
        }
        if let Some(c) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(UsernameError::BadChar(c));
        }
        Ok(Self(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signed-in user, as the UI needs to know them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub role: Role,
    /// Set for a new account or after an admin reset: every page leads to Account
    /// until the user has chosen a password.
    pub must_change_password: bool,
}

/// One row of the Users page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A change to accounts or break glass made by someone else, for admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityNotice {
    /// The audit event it comes from.
    pub event_id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// What was done, in words: `reset the password of sam`.
    pub what: String,
    /// Not yet acknowledged by the viewer.
    pub unseen: bool,
}

/// What the Users page shows an admin above the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersOversight {
    /// Newest first, from the last seven days.
    pub notices: Vec<SecurityNotice>,
    /// Admin and supervisor accounts that seem to belong to one person.
    pub shared: Vec<super::duties::SharedIdentity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised() {
        assert_eq!(
            Username::parse("  Bob.Smith ").unwrap().as_str(),
            "bob.smith"
        );
    }

    #[test]
    fn bad_usernames_say_why() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse("a"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("1abc"), Err(UsernameError::FirstChar));
        assert_eq!(Username::parse("ab c"), Err(UsernameError::BadChar(' ')));
        assert_eq!(Username::parse("ab;c"), Err(UsernameError::BadChar(';')));
    }
}
