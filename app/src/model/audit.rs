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

/// A verification of the whole chain, running or finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainVerification {
    pub id: i64,
    pub started_by: String,
    /// RFC 3339.
    pub started_at: String,
    /// The chain's last event id when it started.
    pub total: i64,
    pub checked: i64,
    /// `running`, `intact`, `broken` or `failed`.
    pub state: String,
    pub finished_at: Option<String>,
    pub head_id: Option<i64>,
    pub head_hash: Option<String>,
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
    /// The signed checkpoint the chain was compared with: its head, when it was
    /// signed (RFC 3339) and where it was read.
    #[serde(default)]
    pub anchor_head_id: Option<i64>,
    #[serde(default)]
    pub anchor_head_hash: Option<String>,
    #[serde(default)]
    pub anchor_at: Option<String>,
    #[serde(default)]
    pub anchor_source: Option<String>,
}

impl ChainVerification {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// What the verification page shows: the latest verification (perhaps running)
/// and the last one that finished.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationStatus {
    pub latest: Option<ChainVerification>,
    pub last_finished: Option<ChainVerification>,
    /// The chain's last event now.
    #[serde(default)]
    pub head: Option<HeadRef>,
    /// The newest signed checkpoint of the head known to the portal.
    #[serde(default)]
    pub checkpoint: Option<CheckpointView>,
    /// Why the portal's database role could rewrite the trail (empty: it cannot).
    #[serde(default)]
    pub role_warnings: Vec<String>,
}

/// An event by id and hash: the chain's head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRef {
    pub id: i64,
    pub hash: String,
}

/// A signed checkpoint as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub head_id: i64,
    pub head_hash: String,
    /// When it was signed, RFC 3339.
    pub at: String,
    /// Where it was read (a row of the table, a line of the file).
    pub source: String,
}

/// One event with what its own fields say about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEventDetail {
    pub event: AuditEventView,
    /// The hash recomputed from the stored fields equals the stored hash.
    pub hash_matches: bool,
    /// The previous event's stored hash equals this one's `prev_hash` (`None` for
    /// the first event, or when the previous event is missing).
    pub linked: Option<bool>,
    /// The next event's id, if any.
    pub next: Option<i64>,
}

/// The run an event belongs to, from its subject (`run:12`, `run:12/step:x`).
pub fn run_of_subject(subject: &str) -> Option<i64> {
    subject
        .strip_prefix("run:")?
        .split('/')
        .next()?
        .parse()
        .ok()
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
    /// How many sign-ins on one username failed in a closed window (the first
    /// was audited on its own).
    SignInFailuresSummarized,
    /// How many attempts from one address were refused for throttling in a
    /// closed window.
    SignInThrottlesSummarized,
    /// An administrator forgot a user's failed sign-ins.
    UserUnlocked,
    /// A user's e-mail address or display name was set.
    UserContactChanged,
    SignOut,
    InitialAdminCreated,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserRoleChanged,
    UserPasswordReset,
    PasswordChanged,
    /// A signed-in user gave a wrong current password when changing it.
    PasswordChangeFailed,
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
    /// An operator changed a parameter of a running run.
    RunParameterChanged,
    /// Someone took an active run over from its owner, with a reason.
    RunTakenOver,
    /// An admin switched a site's break-glass mode on or off.
    BreakGlassChanged,
    /// Audit events were exported (format and filters in the details).
    AuditExported,
    /// A run's report was downloaded (run and format in the details).
    ReportExported,
    /// The whole chain was verified (the result in the details).
    ChainVerified,
    /// An admin added a webhook or e-mail recipient to a site's notifications.
    NotificationChannelAdded,
    /// An admin removed one (its pending deliveries are cancelled).
    NotificationChannelRemoved,
    /// A notification could not be delivered in any of its attempts.
    NotificationFailed,
    /// Something happened to a step of a run.
    Step(crate::model::run::StepEvent),
    /// Something happened to a request for approval.
    Approval(ApprovalEvent),
}

/// What happens to requests for approval, each audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalEvent {
    Requested,
    /// One supervisor approved (the request is approved once the quorum is met).
    Approved,
    Rejected,
    Withdrawn,
    Expired,
    /// The action it was for changed.
    Voided,
    /// A decision or an execution under it was refused.
    Refused,
    /// The step was executed under the approval.
    Used,
}

impl ApprovalEvent {
    pub const ALL: [ApprovalEvent; 8] = [
        ApprovalEvent::Requested,
        ApprovalEvent::Approved,
        ApprovalEvent::Rejected,
        ApprovalEvent::Withdrawn,
        ApprovalEvent::Expired,
        ApprovalEvent::Voided,
        ApprovalEvent::Refused,
        ApprovalEvent::Used,
    ];
}

impl AuditAction {
    /// Every action that is not about a step, for filters.
    pub const ALL: [AuditAction; 41] = [
        AuditAction::PortalStarted,
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignInThrottled,
        AuditAction::SignInFailuresSummarized,
        AuditAction::SignInThrottlesSummarized,
        AuditAction::UserUnlocked,
        AuditAction::UserContactChanged,
        AuditAction::SignOut,
        AuditAction::InitialAdminCreated,
        AuditAction::UserCreated,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::UserRoleChanged,
        AuditAction::UserPasswordReset,
        AuditAction::PasswordChanged,
        AuditAction::PasswordChangeFailed,
        AuditAction::RunStarted,
        AuditAction::RunCompleted,
        AuditAction::RunCancelled,
        AuditAction::HostKeysImported,
        AuditAction::HostKeyConfirmed,
        AuditAction::LabFaultChanged,
        AuditAction::SiteDefined,
        AuditAction::RunParameterChanged,
        AuditAction::RunTakenOver,
        AuditAction::BreakGlassChanged,
        AuditAction::AuditExported,
        AuditAction::ReportExported,
        AuditAction::ChainVerified,
        AuditAction::NotificationChannelAdded,
        AuditAction::NotificationChannelRemoved,
        AuditAction::NotificationFailed,
        AuditAction::Approval(ApprovalEvent::Requested),
        AuditAction::Approval(ApprovalEvent::Approved),
        AuditAction::Approval(ApprovalEvent::Rejected),
        AuditAction::Approval(ApprovalEvent::Withdrawn),
        AuditAction::Approval(ApprovalEvent::Expired),
        AuditAction::Approval(ApprovalEvent::Voided),
        AuditAction::Approval(ApprovalEvent::Refused),
        AuditAction::Approval(ApprovalEvent::Used),
    ];

    /// The name stored in `audit_events.action`: `area.verb`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PortalStarted => "portal.started",
            AuditAction::SignIn => "auth.sign_in",
            AuditAction::SignInFailed => "auth.sign_in_failed",
            AuditAction::SignInThrottled => "auth.sign_in_throttled",
            AuditAction::SignInFailuresSummarized => "auth.sign_in_failures_summarized",
            AuditAction::SignInThrottlesSummarized => "auth.sign_in_throttles_summarized",
            AuditAction::UserUnlocked => "user.unlocked",
            AuditAction::UserContactChanged => "user.contact_changed",
            AuditAction::SignOut => "auth.sign_out",
            AuditAction::InitialAdminCreated => "user.initial_admin_created",
            AuditAction::UserCreated => "user.created",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::UserEnabled => "user.enabled",
            AuditAction::UserRoleChanged => "user.role_changed",
            AuditAction::UserPasswordReset => "user.password_reset",
            AuditAction::PasswordChanged => "user.password_changed",
            AuditAction::PasswordChangeFailed => "user.password_change_failed",
            AuditAction::RunStarted => "run.started",
            AuditAction::RunCompleted => "run.completed",
            AuditAction::RunCancelled => "run.cancelled",
            AuditAction::HostKeysImported => "site.host_keys_imported",
            AuditAction::HostKeyConfirmed => "site.host_key_confirmed",
            AuditAction::LabFaultChanged => "lab.fault_changed",
            AuditAction::SiteDefined => "site.defined",
            AuditAction::RunParameterChanged => "run.parameter_changed",
            AuditAction::RunTakenOver => "run.taken_over",
            AuditAction::BreakGlassChanged => "site.break_glass_changed",
            AuditAction::AuditExported => "audit.exported",
            AuditAction::ReportExported => "report.exported",
            AuditAction::ChainVerified => "audit.verified",
            AuditAction::NotificationChannelAdded => "notification.channel_added",
            AuditAction::NotificationChannelRemoved => "notification.channel_removed",
            AuditAction::NotificationFailed => "notification.delivery_failed",
            AuditAction::Approval(event) => match event {
                ApprovalEvent::Requested => "approval.requested",
                ApprovalEvent::Approved => "approval.approved",
                ApprovalEvent::Rejected => "approval.rejected",
                ApprovalEvent::Withdrawn => "approval.withdrawn",
                ApprovalEvent::Expired => "approval.expired",
                ApprovalEvent::Voided => "approval.voided",
                ApprovalEvent::Refused => "approval.refused",
                // The step executed under the approval; the approval is used up.
                ApprovalEvent::Used => "approval.used",
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_run() {
        assert_eq!(run_of_subject("run:12/step:x/approval:3"), Some(12));
        assert_eq!(run_of_subject("run:7"), Some(7));
        assert_eq!(run_of_subject("user:olga"), None);
    }
}
