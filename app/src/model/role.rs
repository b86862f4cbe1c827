//! Roles and what each may do. The server decides with [`Role::permits`]; the UI
//! only uses the same table to decide what to show.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role. Exactly one per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs recovery wizards.
    Operator,
    /// Everything an operator may, plus approving destructive steps and reading the audit trail.
    Supervisor,
    /// Reads the audit trail and reports; changes nothing.
    Auditor,
    /// Manages users; reads the audit trail.
    Admin,
}

/// Something a role may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    ViewRuns,
    RunRecoveries,
    ApproveDestructiveSteps,
    ReadAudit,
    ManageUsers,
    ManageSites,
}

impl Permission {
    /// Every permission, in the order the UI lists them.
    pub const ALL: [Permission; 6] = [
        Permission::ViewRuns,
        Permission::RunRecoveries,
        Permission::ApproveDestructiveSteps,
        Permission::ReadAudit,
        Permission::ManageUsers,
        Permission::ManageSites,
    ];

    /// What the permission lets a user do, in the words the UI uses.
    pub fn description(self) -> &'static str {
        match self {
            Permission::ViewRuns => "follow runs and their output",
            Permission::RunRecoveries => "run recovery procedures on a site",
            Permission::ApproveDestructiveSteps => {
                "approve destructive steps requested by other users"
            }
            Permission::ReadAudit => "read the audit trail",
            Permission::ManageUsers => "manage users and their roles",
            Permission::ManageSites => "manage sites, their trusted host keys and the lab",
        }
    }
}

impl Role {
    /// Every role, in the order the UI lists them.
    pub const ALL: [Role; 4] = [Role::Operator, Role::Supervisor, Role::Auditor, Role::Admin];

    /// The role's name as stored and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// The single source of truth for authorization.
    pub fn permits(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Operator => matches!(permission, ViewRuns | RunRecoveries),
            Role::Supervisor => matches!(
                permission,
                ViewRuns | RunRecoveries | ApproveDestructiveSteps | ReadAudit
            ),
            Role::Auditor => matches!(permission, ViewRuns | ReadAudit),
            Role::Admin => matches!(permission, ViewRuns | ManageUsers | ManageSites | ReadAudit),
        }
    }

    /// The permissions this role has.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.permits(*p))
            .collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment work in tables (`user list`).
        f.pad(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected operator, supervisor, auditor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "operator" => Ok(Role::Operator),
            "supervisor" => Ok(Role::Supervisor),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table_matches_the_issue() {
        use Permission::*;
        let table = [
            (Role::Operator, vec![ViewRuns, RunRecoveries]),
            (
                Role::Supervisor,
                vec![ViewRuns, RunRecoveries, ApproveDestructiveSteps, ReadAudit],
            ),
            (Role::Auditor, vec![ViewRuns, ReadAudit]),
            (
                Role::Admin,
                vec![ViewRuns, ReadAudit, ManageUsers, ManageSites],
            ),
        ];
        for (role, expected) in table {
            assert_eq!(role.permissions(), expected, "{role}");
        }
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_others() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.as_str().to_uppercase().parse::<Role>(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".to_string())));
    }

    #[test]
    fn auditor_changes_nothing() {
        assert!(!Role::Auditor.permits(Permission::RunRecoveries));
        assert!(!Role::Auditor.permits(Permission::ManageUsers));
        assert!(!Role::Auditor.permits(Permission::ApproveDestructiveSteps));
    }
}
