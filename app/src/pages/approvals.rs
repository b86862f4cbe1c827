//! `/approvals` (supervisors): the requests waiting for a decision, each with who
//! asks and why, the run and site, the step's instructions, the exact action and
//! its hash, and the run so far with its output; approve (optional comment) or
//! reject (required reason). New requests appear without a reload
//! (`/api/approvals/live`). The latest ended requests follow.

use super::runs::{draft_input, output_view, Drafts};
use crate::api::approvals::{list_approvals, refresh_approvals, DecideApproval};
use crate::components::approval::{approval_view, state_label};
use crate::components::guard::Guarded;
use crate::components::live::follow_changes;
use crate::components::notice::{ActionResult, ErrorBox};
use crate::components::when;
use crate::model::approval::{
    ApprovalDetail, ApprovalState, ApprovalView, ApprovalsOverview, Decision,
};
use crate::model::run_view::RunStepView;
use crate::model::user::Me;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use std::collections::HashMap;

/// The steps before the one to approve, with their states and output.
fn run_so_far(steps: &[RunStepView], position: i32) -> impl IntoView {
    let before: Vec<RunStepView> = steps
        .iter()
        .filter(|s| s.position < position)
        .cloned()
        .collect();
    view! {
        <details class="run-so-far">
            <summary>{format!("The run so far: {} earlier step(s)", before.len())}</summary>
            {if before.is_empty() {
                view! { <p class="muted">"This is the run's first step."</p> }.into_any()
            } else {
                view! {
                    <ol class="earlier-steps">
                        {before.into_iter().map(|s| view! {
                            <li data-step=s.id.clone()>
                                <strong>{format!("{}. {}", s.position + 1, s.title)}</strong>
                                <span class=format!("state state-{}", s.state.as_str())>{format!(" {}", s.state.as_str().replace('_', " "))}</span>
                                {s.note.clone().map(|n| view! { <span class="muted">{format!(" — {n}")}</span> })}
                                {s.attempts.last().cloned().map(|a| view! {
                                    <pre class="output">{output_view(a.output)}</pre>
                                })}
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </details>
    }
}

fn decision_forms(
    d: &ApprovalDetail,
    me: &str,
    decide: ServerAction<DecideApproval>,
    drafts: Drafts,
) -> AnyView {
    let a = &d.approval;
    let rid = a.id;
    let id = move || rid.to_string();
    let key = move |what: &str| format!("{rid}:{what}");
    if a.state == ApprovalState::Approved {
        return view! { <p class="notice ok">{format!("Approved. Waiting for {} to run it{}.", a.requested_by, a.expires_at.clone().map(|t| format!(" before {}", when(&t))).unwrap_or_default())}</p> }.into_any();
    }
    if a.decisions
        .iter()
        .any(|x| x.by == me && x.decision == Decision::Approve)
    {
        return view! { <p class="notice">"You approved this request. It needs another supervisor."</p> }.into_any();
    }
    if a.requested_by == me {
        if !d.site_break_glass {
            return view! { <p class="notice">"You requested this approval: another supervisor must decide it (four eyes)."</p> }.into_any();
        }
        return view! {
            <ActionForm action=decide attr:class="decision break-glass">
                <input type="hidden" name="id" value=id()/>
                <input type="hidden" name="decision" value="approve"/>
                <p><strong>"Break-glass mode is on for this site."</strong>" You may approve your own request only with a written reason; it is shown in red wherever this approval appears."</p>
                <label>"Break-glass reason *" {draft_input(drafts, key("bg"), "break_glass_reason", true, "Why no other supervisor can decide")}</label>
                <label>"Comment " {draft_input(drafts, key("bgc"), "text", false, "optional")}</label>
                <button type="submit" class="danger" data-decision="break-glass">"Approve my own request (break glass)"</button>
            </ActionForm>
        }.into_any();
    }
    view! {
        <div class="decisions-forms">
            <ActionForm action=decide attr:class="decision">
                <input type="hidden" name="id" value=id()/>
                <input type="hidden" name="decision" value="approve"/>
                <label>"Comment " {draft_input(drafts, key("comment"), "text", false, "optional")}</label>
                <button type="submit" data-decision="approve" disabled=move || decide.pending().get()>"Approve this exact action"</button>
            </ActionForm>
            <ActionForm action=decide attr:class="decision">
                <input type="hidden" name="id" value=id()/>
                <input type="hidden" name="decision" value="reject"/>
                <label>"Reason *" {draft_input(drafts, key("reason"), "text", true, "What is wrong, what to change")}</label>
                <button type="submit" class="danger" data-decision="reject" disabled=move || decide.pending().get()>"Reject"</button>
            </ActionForm>
        </div>
    }
    .into_any()
}

fn request_card(
    d: ApprovalDetail,
    me: &str,
    decide: ServerAction<DecideApproval>,
    drafts: Drafts,
) -> impl IntoView {
    let a = d.approval.clone();
    let step = d
        .run
        .steps
        .iter()
        .find(|s| s.position == a.position)
        .cloned();
    let forms = decision_forms(&d, me, decide, drafts);
    let approvals = a
        .decisions
        .iter()
        .filter(|x| x.decision == Decision::Approve)
        .count();
    view! {
        <section class=format!("card approval-request{}", if a.break_glass || d.site_break_glass { " break-glass" } else { "" })
            id=format!("approval-{}", a.id) data-approval=a.id.to_string() data-run=a.run_id.to_string() data-step=a.step_id.clone()>
            <h2>
                {format!("Step {}: {}", a.position + 1, a.step_title)}
                <span class="destructive-badge">"destructive"</span>
                <span class=format!("approval-state state-{}", a.state.as_str())>{state_label(a.state)}</span>
            </h2>
            <p class="facts">
                <span><a href=format!("/runs/{}", a.run_id)>{format!("Run #{} · {}", a.run_id, d.run.summary.runbook_title)}</a></span>
                <span>"Site " <strong>{a.site.clone()}</strong></span>
                <span>{format!("asked by {} at {}", a.requested_by, when(&a.requested_at))}</span>
                <span>{format!("attempt {}", a.attempt)}</span>
                <span>{format!("{approvals} of {} approval(s)", a.quorum)}</span>
            </p>
            {d.site_break_glass.then(|| view! { <p class="notice break-glass">"Break-glass mode is on for this site."</p> })}
            <p class="justification"><strong>"Justification: "</strong>{a.justification.clone()}</p>
            {step.as_ref().filter(|s| !s.instructions.is_empty()).map(|s| view! { <p class="instructions">{s.instructions.clone()}</p> })}
            <div class="action">
                {a.host.clone().map(|h| view! { <p>"On " <code data-testid="host">{h}</code></p> })}
                {step.as_ref().and_then(|s| s.action.clone().ok()).map(|act| view! { <pre class="command" data-testid="command">{act.text}</pre> })}
                <p class="muted">"What is approved, exactly (SHA-256 " <code class="hash" data-testid="action-hash">{a.action_hash.clone()}</code> "):"</p>
                <pre class="command canonical">{a.action.clone()}</pre>
            </div>
            {run_so_far(&d.run.steps, a.position)}
            {(!a.decisions.is_empty()).then(|| approval_view(&a, true))}
            {forms}
        </section>
    }
}

fn recent_table(recent: Vec<ApprovalView>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Recently ended"</h2>
            {if recent.is_empty() {
                view! { <p class="muted">"None yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data recent-approvals">
                        <thead><tr><th>"#"</th><th>"Run"</th><th>"Step"</th><th>"Asked by"</th><th>"State"</th><th>"Decided by"</th><th>"Why it ended"</th></tr></thead>
                        <tbody>{recent.into_iter().map(|a| {
                            let deciders = a.decisions.iter().map(|d| d.by.clone()).collect::<Vec<_>>().join(", ");
                            view! {
                                <tr class=if a.break_glass { "break-glass" } else { "" } data-approval=a.id.to_string()>
                                    <td data-label="#">{a.id}</td>
                                    <td data-label="Run"><a href=format!("/runs/{}", a.run_id)>{format!("#{}", a.run_id)}</a>{format!(" · {}", a.site)}</td>
                                    <td data-label="Step">{a.step_title.clone()}</td>
                                    <td data-label="Asked by">{a.requested_by.clone()}</td>
                                    <td data-label="State"><span class=format!("approval-state state-{}", a.state.as_str())>{a.state.as_str()}</span>{a.break_glass.then(|| view! { <strong class="danger-text">" break glass"</strong> })}</td>
                                    <td data-label="Decided by">{deciders}</td>
                                    <td data-label="Why it ended">{a.ended_reason.clone().unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

fn page_body(
    o: ApprovalsOverview,
    me: String,
    decide: ServerAction<DecideApproval>,
    drafts: Drafts,
) -> AnyView {
    view! {
        <section class="card">
            <h1>"Approvals"</h1>
            <p class="muted">"Destructive steps wait here for a supervisor other than the operator who asks. An approval is for the action shown, on that attempt only, once, and for a limited time; any change to the action voids it."</p>
            <p data-testid="open-count">{format!("{} request(s) open.", o.open.len())}</p>
        </section>
        {if o.open.is_empty() {
            view! { <section class="card"><p class="muted" data-testid="no-requests">"No request is waiting for a decision."</p></section> }.into_any()
        } else {
            o.open.into_iter().map(|d| request_card(d, &me, decide, drafts)).collect_view().into_any()
        }}
        {recent_table(o.recent)}
    }
    .into_any()
}

/// `/approvals`
#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let drafts: Drafts = StoredValue::new(HashMap::new());
    let decide = ServerAction::<DecideApproval>::new();
    let decide_result = decide.value();
    // Reads after the first follow the live stream, not the person.
    let list = Resource::new(
        move || reload.get(),
        |n| async move {
            if n > 0 {
                refresh_approvals().await
            } else {
                list_approvals().await
            }
        },
    );
    Effect::new(move |_| {
        if decide.version().get() > 0 {
            reload.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| follow_changes("/api/approvals/live", reload));
    view! {
        <Title text="Approvals"/>
        <Guarded view=move |me: Me| {
            view! {
                <ActionResult value=decide_result/>
                <Transition fallback=|| view! { <p class="loading">"Loading the requests…"</p> }>
                    {move || {
                        let me = me.username.clone();
                        Suspend::new(async move {
                            match list.await {
                                Err(error) => view! { <section class="card"><ErrorBox error/></section> }.into_any(),
                                Ok(o) => page_body(o, me, decide, drafts),
                            }
                        })
                    }}
                </Transition>
            }.into_any()
        }/>
    }
}
