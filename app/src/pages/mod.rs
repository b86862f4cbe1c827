//! The pages, and who may open each.

mod account;
mod approvals;
mod audit;
mod audit_chain;
mod errors;
mod home;
mod login;
mod notifications;
mod run_report;
mod runbooks;
mod runs;
mod sites;
mod start_run;
mod users;

pub use account::AccountPage;
pub use approvals::ApprovalsPage;
pub use audit::AuditPage;
pub use audit_chain::{AuditEventPage, VerifyChainPage};
pub use errors::{Forbidden, NotFound};
pub use home::HomePage;
pub use login::LoginPage;
pub use run_report::RunReportPage;
pub use runbooks::{RunbookPage, RunbooksPage};
pub use runs::{RunPage, RunsPage};
pub use sites::SitesPage;
pub use users::UsersPage;

use crate::model::Permission;

/// Who may open a page. The server's page guard and the client's [`crate::components::guard::Guarded`]
/// both decide from this one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAccess {
    /// Anyone (the sign-in page).
    Public,
    /// Any signed-in user; also reachable while a password change is pending.
    Account,
    /// Any signed-in user.
    SignedIn,
    /// Signed-in users whose role has the permission.
    Needs(Permission),
    /// Not a page of the portal (404).
    Unknown,
}

/// The access rule of a path (without query string).
pub fn page_access(path: &str) -> PageAccess {
    match path.trim_end_matches('/') {
        "/login" => PageAccess::Public,
        "" => PageAccess::SignedIn,
        "/account" => PageAccess::Account,
        "/users" => PageAccess::Needs(Permission::ManageUsers),
        "/audit" | "/audit/verify" => PageAccess::Needs(Permission::ReadAudit),
        p if p.starts_with("/audit/events/")
            && p["/audit/events/".len()..].parse::<i64>().is_ok() =>
        {
            PageAccess::Needs(Permission::ReadAudit)
        }
        p if p.starts_with("/runs/")
            && p.ends_with("/report")
            && p["/runs/".len()..p.len() - "/report".len()]
                .parse::<i64>()
                .is_ok() =>
        {
            PageAccess::Needs(Permission::ReadAudit)
        }
        "/runbooks" => PageAccess::Needs(Permission::RunRecoveries),
        p if p.starts_with("/runbooks/") && !p["/runbooks/".len()..].contains('/') => {
            PageAccess::Needs(Permission::RunRecoveries)
        }
        "/runs" => PageAccess::Needs(Permission::ViewRuns),
        "/sites" => PageAccess::Needs(Permission::ManageSites),
        "/approvals" => PageAccess::Needs(Permission::ApproveDestructiveSteps),
        p if p.starts_with("/runs/") && p["/runs/".len()..].parse::<i64>().is_ok() => {
            PageAccess::Needs(Permission::ViewRuns)
        }
        _ => PageAccess::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_a_rule() {
        assert_eq!(page_access("/"), PageAccess::SignedIn);
        assert_eq!(page_access("/login"), PageAccess::Public);
        assert_eq!(page_access("/account"), PageAccess::Account);
        assert_eq!(
            page_access("/users"),
            PageAccess::Needs(Permission::ManageUsers)
        );
        assert_eq!(
            page_access("/users/"),
            PageAccess::Needs(Permission::ManageUsers)
        );
        assert_eq!(
            page_access("/audit"),
            PageAccess::Needs(Permission::ReadAudit)
        );
        assert_eq!(
            page_access("/runbooks"),
            PageAccess::Needs(Permission::RunRecoveries)
        );
        assert_eq!(
            page_access("/runbooks/cps-backup"),
            PageAccess::Needs(Permission::RunRecoveries)
        );
        assert_eq!(
            page_access("/approvals"),
            PageAccess::Needs(Permission::ApproveDestructiveSteps)
        );
        for audit in ["/audit/verify", "/audit/events/12", "/runs/3/report"] {
            assert_eq!(page_access(audit), PageAccess::Needs(Permission::ReadAudit));
        }
        assert_eq!(page_access("/runs/x/report"), PageAccess::Unknown);
        assert_eq!(page_access("/audit/events/x"), PageAccess::Unknown);
        assert_eq!(page_access("/runbooks/a/b"), PageAccess::Unknown);
        assert_eq!(page_access("/nope"), PageAccess::Unknown);
    }
}
