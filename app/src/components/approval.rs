//! Requests for approval as the run page and the approvals page show them: who
//! asked and why, the exact action and its hash, each supervisor's decision, and
//! how the request ended. Break-glass approvals are shown in red.

use super::when;
use crate::model::approval::{ApprovalState, ApprovalView, Decision};
use leptos::prelude::*;

/// What a request's state means, in words.
pub fn state_label(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "waiting for approval",
        ApprovalState::Approved => "approved, not used yet",
        ApprovalState::Rejected => "rejected",
        ApprovalState::Withdrawn => "withdrawn",
        ApprovalState::Expired => "expired",
        ApprovalState::Voided => "voided: the action changed",
        ApprovalState::Used => "used",
    }
}

/// One request: justification, action, decisions, and how it ended.
pub fn approval_view(a: &ApprovalView, open: bool) -> impl IntoView {
    let approvals = a
        .decisions
        .iter()
        .filter(|d| d.decision == Decision::Approve)
        .count();
    let class = format!(
        "approval approval-{}{}",
        a.state.as_str(),
        if a.break_glass { " break-glass" } else { "" }
    );
    view! {
        <details class=class open=open data-approval=a.id.to_string() data-state=a.state.as_str()>
            <summary>
                <strong>{format!("Approval #{} ", a.id)}</strong>
                <span class=format!("approval-state state-{}", a.state.as_str()) data-testid="approval-state">{state_label(a.state)}</span>
                {format!(" · requested by {} at {} for attempt {}", a.requested_by, when(&a.requested_at), a.attempt)}
                {(a.quorum > 1).then(|| format!(" · {approvals} of {} approvals", a.quorum))}
                {a.break_glass.then(|| view! { <strong class="danger-text">" · BREAK GLASS"</strong> })}
            </summary>
            <p class="justification"><strong>"Justification: "</strong>{a.justification.clone()}</p>
            <p class="muted">{if a.state == ApprovalState::Pending { "The action to approve (SHA-256 " } else { "The action as approved (SHA-256 " }}<code class="hash" data-testid="action-hash">{a.action_hash.clone()}</code> ")"</p>
            <pre class="command canonical">{a.action.clone()}</pre>
            {(!a.decisions.is_empty()).then(|| view! {
                <ul class="decisions">
                    {a.decisions.iter().map(|d| {
                        let verb = match d.decision { Decision::Approve => "approved", Decision::Reject => "rejected" };
                        view! {
                            <li class=format!("decision-{}", d.decision.as_str())>
                                {format!("{} {verb} at {}", d.by, when(&d.at))}
                                {(!d.text.is_empty()).then(|| format!(": {}", d.text))}
                                {d.break_glass_reason.clone().map(|r| view! { <strong class="danger-text">{format!(" — own request approved under break glass: {r}")}</strong> })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            {a.expires_at.clone().filter(|_| a.state == ApprovalState::Approved).map(|t| view! { <p class="notice ok">{format!("Valid until {} for this action and attempt only.", when(&t))}</p> })}
            {a.ended_at.clone().map(|t| view! {
                <p class="muted">{format!("Ended ({}) at {}{}{}", a.state.as_str(), when(&t),
                    a.ended_by.clone().map(|b| format!(" by {b}")).unwrap_or_default(),
                    a.ended_reason.clone().map(|r| format!(": {r}")).unwrap_or_default())}</p>
            })}
        </details>
    }
}

/// A step's requests, newest first; the open one and the latest are unfolded.
pub fn approvals_view(approvals: &[ApprovalView]) -> AnyView {
    if approvals.is_empty() {
        return ().into_any();
    }
    let last = approvals.len() - 1;
    view! {
        <div class="approvals">
            {approvals.iter().enumerate().rev().map(|(i, a)| approval_view(a, i == last || a.state.is_open())).collect_view()}
        </div>
    }
    .into_any()
}
