//! Separation of duties: the checks that keep one person from holding both ends
//! of the four-eyes rule, and the account facts they look at.

use super::Role;
use serde::{Deserialize, Serialize};

/// An account as these checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountIdentity<'a> {
    pub username: &'a str,
    pub role: Role,
    pub disabled: bool,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

/// An admin account and a supervisor account that seem to belong to one person:
/// that person could grant, reset and approve alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedIdentity {
    pub admin: String,
    pub supervisor: String,
    /// What they share: `e-mail address a@b` or `display name Ann Smith`.
    pub shared: String,
}

fn normal(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Every (enabled admin, enabled supervisor) pair that shares an e-mail address
/// or a display name (compared without case and extra spaces).
pub fn shared_identities(accounts: &[AccountIdentity<'_>]) -> Vec<SharedIdentity> {
    let enabled = |role: Role| {
        accounts
            .iter()
            .filter(move |a| a.role == role && !a.disabled)
    };
    let mut found = Vec::new();
    for admin in enabled(Role::Admin) {
        for supervisor in enabled(Role::Supervisor) {
            let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
                (Some(a), Some(b)) if !a.trim().is_empty() => normal(a) == normal(b),
                _ => false,
            };
            let shared = if same(admin.email, supervisor.email) {
                Some(format!(
                    "e-mail address {}",
                    normal(admin.email.unwrap_or(""))
                ))
            } else if same(admin.display_name, supervisor.display_name) {
                Some(format!(
                    "display name {}",
                    admin.display_name.unwrap_or("").trim()
                ))
            } else {
                None
            };
            if let Some(shared) = shared {
                found.push(SharedIdentity {
                    admin: admin.username.to_string(),
                    supervisor: supervisor.username.to_string(),
                    shared,
                });
            }
        }
    }
    found
}

/// Checks an e-mail address typed for an account (empty: none).
pub fn parse_email(input: &str) -> Result<Option<String>, &'static str> {
    let text = input.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let valid = text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(Some(text.to_lowercase()))
    } else {
        Err("must be an address like ann.smith@example.net")
    }
}

/// Checks a display name typed for an account (empty: none).
pub fn parse_display_name(input: &str) -> Result<Option<String>, &'static str> {
    let text = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > 100 {
        return Err("must be at most 100 characters long");
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account<'a>(
        username: &'a str,
        role: Role,
        email: Option<&'a str>,
        name: Option<&'a str>,
    ) -> AccountIdentity<'a> {
        AccountIdentity {
            username,
            role,
            disabled: false,
            email,
            display_name: name,
        }
    }

    #[test]
    fn an_admin_and_a_supervisor_with_one_address_or_name_are_flagged() {
        let accounts = [
            account(
                "ann-admin",
                Role::Admin,
                Some("Ann@Example.net"),
                Some("Ann Smith"),
            ),
            account("ann", Role::Supervisor, Some("ann@example.net"), None),
            account("bob", Role::Supervisor, None, Some("  ann   smith ")),
            account(
                "carl",
                Role::Supervisor,
                Some("carl@example.net"),
                Some("Carl"),
            ),
            account("olga", Role::Operator, Some("ann@example.net"), None),
        ];
        let found = shared_identities(&accounts);
        assert_eq!(
            found,
            [
                SharedIdentity {
                    admin: "ann-admin".into(),
                    supervisor: "ann".into(),
                    shared: "e-mail address ann@example.net".into(),
                },
                SharedIdentity {
                    admin: "ann-admin".into(),
                    supervisor: "bob".into(),
                    shared: "display name Ann Smith".into(),
                },
            ]
        );
    }

    #[test]
    fn disabled_accounts_and_missing_facts_are_not_flagged() {
        let mut off = account("ann", Role::Supervisor, Some("a@example.net"), None);
        off.disabled = true;
        let accounts = [
            account("root", Role::Admin, Some("a@example.net"), None),
            off,
            account("sam", Role::Supervisor, None, None),
            account("admin2", Role::Admin, None, None),
        ];
        assert!(shared_identities(&accounts).is_empty());
    }

    #[test]
    fn contact_facts_are_checked() {
        assert_eq!(parse_email(" "), Ok(None));
        assert_eq!(
            parse_email("Ann.Smith@Example.net"),
            Ok(Some("ann.smith@example.net".into()))
        );
        assert!(parse_email("ann").is_err());
        assert!(parse_email("ann@localhost").is_err());
        assert!(parse_email("a b@example.net").is_err());
        assert_eq!(
            parse_display_name("  Ann   Smith "),
            Ok(Some("Ann Smith".into()))
        );
        assert!(parse_display_name("a\u{7}b").is_err());
        assert!(parse_display_name(&"x".repeat(101)).is_err());
    }
}
