//! The approval gate: who may decide a request for a destructive step, and when an
//! approval lets exactly one attempt of exactly one action run. Pure: the server
//! calls these rules in one place (`ssr::approvals`) with facts read under lock, and
//! the UI uses them only to decide which buttons to show.
//!
//! The rules:
//! - the approver is a supervisor and not the requester (four eyes), unless the
//!   site is in break-glass mode and the approver writes why;
//! - a step may need two different supervisors (its quorum);
//! - an approval is valid once, for the attempt and the action hash it was
//!   requested for, until it expires; only its requester runs the step under it;
//! - a rejection needs a reason; decided, withdrawn, expired, voided and used
//!   requests accept nothing more.

use super::role::{Permission, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a request for approval is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for (more) supervisors.
    Pending,
    /// Enough supervisors approved; not used yet.
    Approved,
    Rejected,
    /// The requester (or another operator of the run) took it back.
    Withdrawn,
    /// Approved, but not used in time.
    Expired,
    /// The action it was for changed (a parameter, a capture, the runbook).
    Voided,
    /// The step ran under it.
    Used,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 7] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Rejected,
        ApprovalState::Withdrawn,
        ApprovalState::Expired,
        ApprovalState::Voided,
        ApprovalState::Used,
    ];

    /// The name stored in the database and shown in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Withdrawn => "withdrawn",
            ApprovalState::Expired => "expired",
            ApprovalState::Voided => "voided",
            ApprovalState::Used => "used",
        }
    }

    /// The state named `name`, as stored.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The request still holds its step in awaiting-approval.
    pub fn is_open(self) -> bool {
        matches!(self, ApprovalState::Pending | ApprovalState::Approved)
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a supervisor decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// The facts about a request that the decision rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub state: ApprovalState,
    pub requested_by: i64,
    /// How many different supervisors must approve.
    pub quorum: u8,
    /// The users who approved it so far and whose approval still counts: each is
    /// still an enabled supervisor.
    pub approved_by: Vec<i64>,
    /// Those who approved it but have since been disabled or lost the supervisor
    /// role: their approval no longer counts.
    pub void_approvers: Vec<String>,
    /// When an approved request stops being valid.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a request still pending expires for lack of decisions.
    pub decide_by: Option<DateTime<Utc>>,
}

impl RequestFacts {
    /// The state as it is at `now`: an approval past its time is expired even
    /// before the sweeper has recorded it.
    pub fn state_at(&self, now: DateTime<Utc>) -> ApprovalState {
        match (self.state, self.expires_at, self.decide_by) {
            (ApprovalState::Approved, Some(at), _) if at <= now => ApprovalState::Expired,
            (ApprovalState::Pending, _, Some(by)) if by <= now => ApprovalState::Expired,
            (state, _, _) => state,
        }
    }
}

/// The one deciding, as the server knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decider {
    pub user_id: i64,
    pub role: Role,
}

/// Break-glass mode as it applies to one decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakGlass<'a> {
    /// An admin switched it on for the request's site.
    pub site_enabled: bool,
    /// The approver's written reason for approving their own request.
    pub reason: Option<&'a str>,
}

/// What a permitted decision does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionEffect {
    /// One more approval; `complete` when the quorum is now met.
    Approval {
        complete: bool,
        break_glass: bool,
    },
    Rejection,
}

/// What may be run: the step attempt as it is now, and who runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionTarget<'a> {
    pub run_id: i64,
    pub position: i32,
    /// The number the attempt about to start would get.
    pub attempt: i32,
    pub runbook_sha256: &'a str,
    /// The hash of the action as rendered now.
    pub action_hash: &'a str,
    pub user_id: i64,
}

/// The facts about an approval that the execution rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalFacts {
    pub request: RequestFacts,
    pub run_id: i64,
    pub position: i32,
    pub attempt: i32,
    pub runbook_sha256: String,
    pub action_hash: String,
}

/// Why a decision or an execution is refused. Each message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("only supervisors approve or reject destructive steps; your role is {role}")]
    NotASupervisor { role: String },
    #[error("you requested this approval yourself: another supervisor must decide it (four eyes)")]
    OwnRequest,
    #[error("break-glass mode lets you approve your own request only with a written reason")]
    BreakGlassNeedsReason,
    #[error("you approved this request already: it needs another supervisor")]
    AlreadyApprovedByYou,
    #[error("a rejection needs a reason, so the operator knows what to change")]
    RejectionNeedsReason,
    #[error("you requested this approval yourself: withdraw it instead of rejecting it")]
    RejectOwn,
    #[error("the request is {state} and can no longer be decided")]
    NotPending { state: ApprovalState },
    #[error("there is no such approval for this step")]
    Unknown,
    #[error("approval {approval} is for another step (run {run_id}, step {step}), not this one")]
    OtherStep {
        approval: i64,
        run_id: i64,
        step: i64,
    },
    #[error("the approval is {state}, not approved: it cannot run the step")]
    NotApproved { state: ApprovalState },
    #[error("the approval has {have} of the {need} supervisor approvals this step needs")]
    QuorumNotMet { have: usize, need: u8 },
    #[error("the approval no longer holds: {} {} since been disabled or lost the supervisor role, so {} approval does not count; request approval again", .names.join(" and "), if .names.len() == 1 { "has" } else { "have" }, if .names.len() == 1 { "that" } else { "their" })]
    ApproverNoLongerValid { names: Vec<String> },
    #[error(
        "the approval was used already: each approval runs the step once; request approval again"
    )]
    AlreadyUsed,
    #[error("the approval expired at {at}: request approval again")]
    Expired { at: String },
    #[error("the approval was for attempt {approved}, but this would be attempt {now}: request approval again")]
    OtherAttempt { approved: i32, now: i32 },
    #[error("the step's action changed since it was approved (a parameter, a captured value or the runbook): request approval again")]
    ActionChanged,
    #[error("the run's runbook is not the one the approval was given for: request approval again")]
    RunbookChanged,
    #[error("only the operator who requested the approval runs the step under it")]
    NotRequester,
    #[error("only the operator who requested the approval, or a supervisor, may withdraw it")]
    NotRequesterOrSupervisor,
}

impl Refusal {
    /// The refusal ends the request for good: it is recorded as expired or voided.
    pub fn ends_request(&self) -> Option<ApprovalState> {
        match self {
            Refusal::Expired { .. } => Some(ApprovalState::Expired),
            Refusal::ActionChanged
            | Refusal::RunbookChanged
            | Refusal::OtherAttempt { .. }
            | Refusal::ApproverNoLongerValid { .. } => Some(ApprovalState::Voided),
            _ => None,
        }
    }
}

/// Whether `who` may take `decision` on `request` at `now`, and what it does.
/// `text` is the comment of an approval or the reason of a rejection.
pub fn check_decision(
    who: Decider,
    request: &RequestFacts,
    decision: Decision,
    text: &str,
    break_glass: BreakGlass<'_>,
    now: DateTime<Utc>,
) -> Result<DecisionEffect, Refusal> {
    if !who.role.permits(Permission::ApproveDestructiveSteps) {
        return Err(Refusal::NotASupervisor {
            role: who.role.as_str().to_string(),
        });
    }
    let state = request.state_at(now);
    if state != ApprovalState::Pending {
        return Err(Refusal::NotPending { state });
    }
    let own = who.user_id == request.requested_by;
    match decision {
        Decision::Reject if own => Err(Refusal::RejectOwn),
        Decision::Reject if text.trim().is_empty() => Err(Refusal::RejectionNeedsReason),
        Decision::Reject => Ok(DecisionEffect::Rejection),
        Decision::Approve => {
            if request.approved_by.contains(&who.user_id) {
                return Err(Refusal::AlreadyApprovedByYou);
            }
            let break_glass_used = if own {
                if !break_glass.site_enabled {
                    return Err(Refusal::OwnRequest);
                }
                if break_glass.reason.is_none_or(|r| r.trim().is_empty()) {
                    return Err(Refusal::BreakGlassNeedsReason);
                }
                true
            } else {
                false
            };
            Ok(DecisionEffect::Approval {
                complete: request.approved_by.len() + 1 >= usize::from(request.quorum.max(1)),
                break_glass: break_glass_used,
            })
        }
    }
}

/// Whether `approval` lets `target` run at `now`. Checked in the transaction that
/// marks the approval used, on facts read under lock.
pub fn check_execution(
    approval_id: i64,
    approval: &ApprovalFacts,
    target: &ExecutionTarget<'_>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if approval.run_id != target.run_id || approval.position != target.position {
        return Err(Refusal::OtherStep {
            approval: approval_id,
            run_id: approval.run_id,
            step: i64::from(approval.position) + 1,
        });
    }
    let request = &approval.request;
    match request.state_at(now) {
        ApprovalState::Approved => {}
        ApprovalState::Used => return Err(Refusal::AlreadyUsed),
        ApprovalState::Expired if request.state == ApprovalState::Pending => {
            return Err(Refusal::NotApproved {
                state: ApprovalState::Expired,
            })
        }
        ApprovalState::Expired => {
            return Err(Refusal::Expired {
                at: request
                    .expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "an earlier time".into()),
            })
        }
        ApprovalState::Pending => {
            return Err(Refusal::QuorumNotMet {
                have: request.approved_by.len(),
                need: request.quorum,
            })
        }
        state => return Err(Refusal::NotApproved { state }),
    }
    if !request.void_approvers.is_empty() {
        return Err(Refusal::ApproverNoLongerValid {
            names: request.void_approvers.clone(),
        });
    }
    if request.approved_by.len() < usize::from(request.quorum.max(1)) {
        return Err(Refusal::QuorumNotMet {
            have: request.approved_by.len(),
            need: request.quorum,
        });
    }
    if target.user_id != request.requested_by {
        return Err(Refusal::NotRequester);
    }
    if approval.attempt != target.attempt {
        return Err(Refusal::OtherAttempt {
            approved: approval.attempt,
            now: target.attempt,
        });
    }
    if approval.runbook_sha256 != target.runbook_sha256 {
        return Err(Refusal::RunbookChanged);
    }
    if approval.action_hash != target.action_hash {
        return Err(Refusal::ActionChanged);
    }
    Ok(())
}

/// The text an approval's hash is taken over: everything that decides what runs
/// where. One `key=value` line each, in a fixed order; the action's own canonical
/// text (from `runbook::render`) escapes its values, so no field can forge another.
pub fn action_fingerprint(
    site: &str,
    runbook_sha256: &str,
    step_id: &str,
    canonical_action: &str,
) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
    format!(
        "site={}\nrunbook_sha256={}\nstep={}\n{}",
        esc(site),
        esc(runbook_sha256),
        esc(step_id),
        canonical_action
    )
}

/// A request for approval as the run page and the approvals page show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub id: i64,
    pub run_id: i64,
    pub position: i32,
    pub step_id: String,
    pub step_title: String,
    pub site: String,
    pub host: Option<String>,
    pub attempt: i32,
    pub state: ApprovalState,
    pub quorum: u8,
    pub requested_by: String,
    pub requested_by_id: i64,
    /// RFC 3339.
    pub requested_at: String,
    pub justification: String,
    /// The canonical rendered action, exactly as approved.
    pub action: String,
    /// SHA-256 of the action's fingerprint ([`action_fingerprint`]).
    pub action_hash: String,
    pub runbook_sha256: String,
    pub decisions: Vec<DecisionView>,
    /// RFC 3339: when an approved request stops being valid.
    pub expires_at: Option<String>,
    /// RFC 3339: when it was rejected, withdrawn, expired, voided or used.
    pub ended_at: Option<String>,
    /// Who ended it (the rejecting supervisor, the withdrawing operator), if a person.
    pub ended_by: Option<String>,
    /// Why it ended: the rejection's reason, the withdrawal's, what changed.
    pub ended_reason: Option<String>,
    /// A supervisor approved their own request under break-glass mode.
    pub break_glass: bool,
}

/// One supervisor's decision on a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionView {
    pub by: String,
    pub decision: Decision,
    /// The approval's comment or the rejection's reason.
    pub text: String,
    /// RFC 3339.
    pub at: String,
    /// Set when a supervisor approved their own request under break-glass mode.
    pub break_glass_reason: Option<String>,
}

/// A site's break-glass setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassView {
    pub enabled: bool,
    /// Why it was switched on (or off).
    pub reason: String,
    pub changed_by: String,
    /// RFC 3339.
    pub changed_at: String,
    /// While on: when it switches itself off (RFC 3339).
    pub until: Option<String>,
}

/// A request with the run it belongs to, for the approvals page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDetail {
    pub approval: ApprovalView,
    pub run: super::run_view::RunView,
    /// The site is in break-glass mode now.
    pub site_break_glass: bool,
}

/// The approvals page: open requests first, then the latest decided ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalsOverview {
    pub open: Vec<ApprovalDetail>,
    pub recent: Vec<ApprovalView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const OPERATOR: i64 = 1;
    const SUPERVISOR: i64 = 2;
    const SECOND: i64 = 3;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pending(quorum: u8) -> RequestFacts {
        RequestFacts {
            state: ApprovalState::Pending,
            requested_by: OPERATOR,
            quorum,
            approved_by: vec![],
            void_approvers: vec![],
            expires_at: None,
            decide_by: Some(now() + Duration::hours(24)),
        }
    }

    fn supervisor(id: i64) -> Decider {
        Decider {
            user_id: id,
            role: Role::Supervisor,
        }
    }

    fn approve(who: Decider, r: &RequestFacts) -> Result<DecisionEffect, Refusal> {
        check_decision(who, r, Decision::Approve, "", BreakGlass::default(), now())
    }

    #[test]
    fn only_supervisors_decide() {
        for role in [Role::Operator, Role::Auditor, Role::Admin] {
            let who = Decider { user_id: 9, role };
            assert_eq!(
                approve(who, &pending(1)),
                Err(Refusal::NotASupervisor {
                    role: role.as_str().into()
                })
            );
            assert!(check_decision(
                who,
                &pending(1),
                Decision::Reject,
                "no",
                BreakGlass::default(),
                now()
            )
            .is_err());
        }
        assert_eq!(
            approve(supervisor(SUPERVISOR), &pending(1)),
            Ok(DecisionEffect::Approval {
                complete: true,
                break_glass: false
            })
        );
    }

    #[test]
    fn the_requester_never_approves_without_break_glass() {
        let mine = RequestFacts {
            requested_by: SUPERVISOR,
            ..pending(1)
        };
        assert_eq!(
            approve(supervisor(SUPERVISOR), &mine),
            Err(Refusal::OwnRequest)
        );
        // Break-glass mode on, but no reason written.
        let on = |reason| BreakGlass {
            site_enabled: true,
            reason,
        };
        assert_eq!(
            check_decision(
                supervisor(SUPERVISOR),
                &mine,
                Decision::Approve,
                "",
                on(Some("  ")),
                now()
            ),
            Err(Refusal::BreakGlassNeedsReason)
        );
        assert_eq!(
            check_decision(
                supervisor(SUPERVISOR),
                &mine,
                Decision::Approve,
                "",
                on(None),
                now()
            ),
            Err(Refusal::BreakGlassNeedsReason)
        );
        assert_eq!(
            check_decision(
                supervisor(SUPERVISOR),
                &mine,
                Decision::Approve,
                "",
                on(Some("the other supervisor is unreachable")),
                now()
            ),
            Ok(DecisionEffect::Approval {
                complete: true,
                break_glass: true
            })
        );
        // A reason without the mode changes nothing.
        assert_eq!(
            check_decision(
                supervisor(SUPERVISOR),
                &mine,
                Decision::Approve,
                "",
                BreakGlass {
                    site_enabled: false,
                    reason: Some("please")
                },
                now()
            ),
            Err(Refusal::OwnRequest)
        );
    }

    #[test]
    fn rejections_need_a_reason_and_are_not_for_ones_own_request() {
        let reject = |who, r: &RequestFacts, text| {
            check_decision(who, r, Decision::Reject, text, BreakGlass::default(), now())
        };
        assert_eq!(
            reject(supervisor(SUPERVISOR), &pending(1), " "),
            Err(Refusal::RejectionNeedsReason)
        );
        assert_eq!(
            reject(supervisor(SUPERVISOR), &pending(1), "wrong backup date"),
            Ok(DecisionEffect::Rejection)
        );
        let mine = RequestFacts {
            requested_by: SUPERVISOR,
            ..pending(1)
        };
        assert_eq!(
            reject(supervisor(SUPERVISOR), &mine, "x"),
            Err(Refusal::RejectOwn)
        );
    }

    #[test]
    fn a_quorum_of_two_needs_two_different_supervisors() {
        assert_eq!(
            approve(supervisor(SUPERVISOR), &pending(2)),
            Ok(DecisionEffect::Approval {
                complete: false,
                break_glass: false
            })
        );
        let once = RequestFacts {
            approved_by: vec![SUPERVISOR],
            ..pending(2)
        };
        assert_eq!(
            approve(supervisor(SUPERVISOR), &once),
            Err(Refusal::AlreadyApprovedByYou)
        );
        assert_eq!(
            approve(supervisor(SECOND), &once),
            Ok(DecisionEffect::Approval {
                complete: true,
                break_glass: false
            })
        );
    }

    #[test]
    fn only_pending_requests_are_decided() {
        for state in ApprovalState::ALL {
            if state == ApprovalState::Pending {
                continue;
            }
            let r = RequestFacts {
                state,
                ..pending(1)
            };
            assert_eq!(
                approve(supervisor(SUPERVISOR), &r),
                Err(Refusal::NotPending { state })
            );
        }
    }

    fn approved() -> ApprovalFacts {
        ApprovalFacts {
            request: RequestFacts {
                state: ApprovalState::Approved,
                approved_by: vec![SUPERVISOR],
                expires_at: Some(now() + Duration::minutes(15)),
                ..pending(1)
            },
            run_id: 7,
            position: 2,
            attempt: 1,
            runbook_sha256: "r".repeat(64),
            action_hash: "a".repeat(64),
        }
    }

    fn target<'a>(rb: &'a str, hash: &'a str) -> ExecutionTarget<'a> {
        ExecutionTarget {
            run_id: 7,
            position: 2,
            attempt: 1,
            runbook_sha256: rb,
            action_hash: hash,
            user_id: OPERATOR,
        }
    }

    #[test]
    fn an_approval_by_a_supervisor_disabled_or_demoted_since_does_not_run() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let mut a = approved();
        a.request.approved_by.clear();
        a.request.void_approvers = vec!["sam".into()];
        let refusal = check_execution(5, &a, &target(&rb, &hash), now()).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::ApproverNoLongerValid {
                names: vec!["sam".into()]
            }
        );
        assert!(refusal.to_string().contains("sam has since been disabled"));
        assert_eq!(refusal.ends_request(), Some(ApprovalState::Voided));
    }

    #[test]
    fn a_pending_request_expires_when_nobody_decides_in_time() {
        let late = RequestFacts {
            decide_by: Some(now() - Duration::seconds(1)),
            ..pending(1)
        };
        assert_eq!(late.state_at(now()), ApprovalState::Expired);
        assert_eq!(
            approve(supervisor(SUPERVISOR), &late),
            Err(Refusal::NotPending {
                state: ApprovalState::Expired
            })
        );
        assert_eq!(pending(1).state_at(now()), ApprovalState::Pending);
    }

    #[test]
    fn a_valid_approval_runs_its_step_once() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        assert_eq!(
            check_execution(5, &approved(), &target(&rb, &hash), now()),
            Ok(())
        );
        let mut used = approved();
        used.request.state = ApprovalState::Used;
        assert_eq!(
            check_execution(5, &used, &target(&rb, &hash), now()),
            Err(Refusal::AlreadyUsed)
        );
    }

    #[test]
    fn an_approval_for_another_step_is_refused() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let other = ExecutionTarget {
            position: 3,
            ..target(&rb, &hash)
        };
        assert_eq!(
            check_execution(5, &approved(), &other, now()),
            Err(Refusal::OtherStep {
                approval: 5,
                run_id: 7,
                step: 3
            })
        );
        let other_run = ExecutionTarget {
            run_id: 8,
            ..target(&rb, &hash)
        };
        assert!(matches!(
            check_execution(5, &approved(), &other_run, now()),
            Err(Refusal::OtherStep { .. })
        ));
    }

    #[test]
    fn an_approval_expires() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let later = now() + Duration::minutes(15);
        let refused = check_execution(5, &approved(), &target(&rb, &hash), later);
        assert_eq!(
            refused,
            Err(Refusal::Expired {
                at: "2026-11-27 03:15:00 UTC".into()
            })
        );
        assert_eq!(
            refused.unwrap_err().ends_request(),
            Some(ApprovalState::Expired)
        );
        // Recorded as expired by the sweeper: the same answer.
        let mut swept = approved();
        swept.request.state = ApprovalState::Expired;
        assert!(matches!(
            check_execution(5, &swept, &target(&rb, &hash), now()),
            Err(Refusal::Expired { .. })
        ));
        // Nor can an expired approval be decided again.
        assert_eq!(
            check_decision(
                supervisor(SECOND),
                &approved().request,
                Decision::Approve,
                "",
                BreakGlass::default(),
                later
            ),
            Err(Refusal::NotPending {
                state: ApprovalState::Expired
            })
        );
    }

    #[test]
    fn a_changed_action_attempt_or_runbook_voids_the_approval() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let changed = "b".repeat(64);
        let refused = check_execution(5, &approved(), &target(&rb, &changed), now());
        assert_eq!(refused, Err(Refusal::ActionChanged));
        assert_eq!(
            refused.unwrap_err().ends_request(),
            Some(ApprovalState::Voided)
        );
        let other_rb = "c".repeat(64);
        assert_eq!(
            check_execution(5, &approved(), &target(&other_rb, &hash), now()),
            Err(Refusal::RunbookChanged)
        );
        let next_attempt = ExecutionTarget {
            attempt: 2,
            ..target(&rb, &hash)
        };
        assert_eq!(
            check_execution(5, &approved(), &next_attempt, now()),
            Err(Refusal::OtherAttempt {
                approved: 1,
                now: 2
            })
        );
    }

    #[test]
    fn pending_rejected_and_withdrawn_approvals_run_nothing() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let mut half = approved();
        half.request.state = ApprovalState::Pending;
        half.request.quorum = 2;
        assert_eq!(
            check_execution(5, &half, &target(&rb, &hash), now()),
            Err(Refusal::QuorumNotMet { have: 1, need: 2 })
        );
        for state in [
            ApprovalState::Rejected,
            ApprovalState::Withdrawn,
            ApprovalState::Voided,
        ] {
            let mut a = approved();
            a.request.state = state;
            assert_eq!(
                check_execution(5, &a, &target(&rb, &hash), now()),
                Err(Refusal::NotApproved { state })
            );
            assert_eq!(Refusal::NotApproved { state }.ends_request(), None);
        }
        // Marked approved with too few approvals (a forged row): still refused.
        let mut forged = approved();
        forged.request.quorum = 2;
        assert_eq!(
            check_execution(5, &forged, &target(&rb, &hash), now()),
            Err(Refusal::QuorumNotMet { have: 1, need: 2 })
        );
    }

    #[test]
    fn only_the_requester_runs_under_the_approval() {
        let (rb, hash) = ("r".repeat(64), "a".repeat(64));
        let someone_else = ExecutionTarget {
            user_id: SECOND,
            ..target(&rb, &hash)
        };
        assert_eq!(
            check_execution(5, &approved(), &someone_else, now()),
            Err(Refusal::NotRequester)
        );
    }

    #[test]
    fn the_fingerprint_covers_site_runbook_and_step() {
        let a = action_fingerprint("site-a", "r", "install", "kind=shell\nhost=cluman");
        assert_eq!(
            a,
            "site=site-a\nrunbook_sha256=r\nstep=install\nkind=shell\nhost=cluman"
        );
        assert_ne!(
            a,
            action_fingerprint("site-b", "r", "install", "kind=shell\nhost=cluman")
        );
        // A line break in the site cannot pose as another field.
        assert_ne!(
            action_fingerprint("a\nrunbook_sha256=r", "x", "install", ""),
            action_fingerprint("a", "r", "install", "")
        );
    }
}
