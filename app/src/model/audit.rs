//! Audit events as the UI shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audit event with its chain hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// The details as pretty-printed JSON.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One page of audit events, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// How many events a page shows.
pub const AUDIT_PAGE_SIZE: i64 = 50;

/// Every kind of audit event the portal writes. The stored `action` is
/// [`AuditAction::as_str`]; the audit page offers these as filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    PortalStarted,
    SignIn,
    SignInFailed,
    SignInThrottled,
    SignOut,
    InitialAdminCreated,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserRoleChanged,
    UserPasswordReset,
    PasswordChanged,
    RunStarted,
    RunCompleted,
    RunCancelled,
    /// An admin trusted host keys from an OpenSSH known_hosts file.
    HostKeysImported,
    /// An admin confirmed a host key the portal was shown.
    HostKeyConfirmed,
    /// A fault of the lab was switched on or off.
    LabFaultChanged,
    /// An admin defined a site in the portal.
    SiteDefined,
    /// Something happened to a step of a run.
    Step(crate::model::run::StepEvent),
}

impl AuditAction {
    /// Every action that is not about a step, for filters.
    pub const ALL: [AuditAction; 19] = [
        AuditAction::PortalStarted,
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignInThrottled,
        AuditAction::SignOut,
        AuditAction::InitialAdminCreated,
        AuditAction::UserCreated,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::UserRoleChanged,
        AuditAction::UserPasswordReset,
        AuditAction::PasswordChanged,
        AuditAction::RunStarted,
        AuditAction::RunCompleted,
        AuditAction::RunCancelled,
        AuditAction::HostKeysImported,
        AuditAction::HostKeyConfirmed,
        AuditAction::LabFaultChanged,
        AuditAction::SiteDefined,
    ];

    /// The name stored in `audit_events.action`: `area.verb`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PortalStarted => "portal.started",
            AuditAction::SignIn => "auth.sign_in",
            AuditAction::SignInFailed => "auth.sign_in_failed",
            AuditAction::SignInThrottled => "auth.sign_in_throttled",
            AuditAction::SignOut => "auth.sign_out",
            AuditAction::InitialAdminCreated => "user.initial_admin_created",
            AuditAction::UserCreated => "user.created",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::UserEnabled => "user.enabled",
            AuditAction::UserRoleChanged => "user.role_changed",
            AuditAction::UserPasswordReset => "user.password_reset",
            AuditAction::PasswordChanged => "user.password_changed",
            AuditAction::RunStarted => "run.started",
            AuditAction::RunCompleted => "run.completed",
            AuditAction::RunCancelled => "run.cancelled",
            AuditAction::HostKeysImported => "site.host_keys_imported",
            AuditAction::HostKeyConfirmed => "site.host_key_confirmed",
            AuditAction::LabFaultChanged => "lab.fault_changed",
            AuditAction::SiteDefined => "site.defined",
            AuditAction::Step(event) => {
                use crate::model::run::StepEvent as E;
                match event {
                    E::Run => "step.run",
                    E::RequestApproval => "step.approval_requested",
                    E::Approved => "step.approved",
                    E::ApprovalEnded => "step.approval_ended",
                    E::Passed => "step.passed",
                    E::Failed => "step.failed",
                    E::Retry => "step.retried",
                    E::Skip => "step.skipped",
                    E::ConditionFalse => "step.condition_false",
                    E::MarkDone => "step.marked_done",
                    E::Cancel => "step.cancelled",
                    E::PortalRestarted => "step.interrupted",
                }
            }
        }
    }
}
