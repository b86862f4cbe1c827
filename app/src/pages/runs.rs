//! The runs list and the run page: a run's steps with their states, the current
//! step's exact action and buttons, and its output, kept live by server-sent
//! events (`/api/runs/{id}/live`).

use crate::api::runs::{
    attempt_output, list_runs, refresh_run, show_run, CancelRun, ChangeParameter, CommandStep,
    TakeOverRun,
};
use crate::components::approval::approvals_view;
use crate::components::guard::Guarded;
use crate::components::notice::{ActionResult, ErrorBox};
use crate::components::when;
use crate::error::AppError;
use crate::model::ansi;
use crate::model::approval::ApprovalState;
use crate::model::progress::Progress;
use crate::model::run::{RunState, StepEvent, StepState};
use crate::model::run_view::{AttemptView, OutputChunk, RunStepView, RunSummary, RunView};
use crate::model::user::Me;
use crate::model::Permission;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::HashMap;

fn run_state_label(s: RunState) -> &'static str {
    match s {
        RunState::Active => "active",
        RunState::Completed => "completed",
        RunState::Cancelled => "cancelled",
    }
}

fn state_label(s: StepState) -> &'static str {
    match s {
        StepState::AwaitingApproval => "awaiting approval",
        other => other.as_str(),
    }
}

fn run_row(r: RunSummary) -> impl IntoView {
    let href = format!("/runs/{}", r.id);
    view! {
        <tr data-run=r.id.to_string()>
            <td data-label="Run"><a href=href>{format!("#{}", r.id)}</a></td>
            <td data-label="Procedure">{r.runbook_title}</td>
            <td data-label="Site">{r.site}</td>
            <td data-label="State"><span class=format!("state state-{}", run_state_label(r.state))>{run_state_label(r.state)}</span></td>
            <td data-label="Progress">{format!("{} of {} steps", r.steps_done, r.steps)}
                {r.current.map(|(title, state)| view! { <br/><small class="muted">{title}" · "{state_label(state)}</small> })}
            </td>
            <td data-label="Started">{r.started_by.clone()}<br/><small class="muted">{when(&r.started_at)}</small>
                {(r.owner != r.started_by).then(|| view! { <br/><small data-testid="run-owner">{format!("taken over by {}", r.owner)}</small> })}
            </td>
        </tr>
    }
}

/// `/runs`
#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.read().get("state").unwrap_or_else(|| "active".into());
    let runs = Resource::new(filter, |f| list_runs(f, None));
    let tab = move |value: &'static str, label: &'static str| {
        let href = format!("/runs?state={value}");
        view! { <a href=href class=move || if filter() == value { "tab current" } else { "tab" }>{label}</a> }
    };
    view! {
        <Guarded view=move |_me: Me| view! {
            <Title text="Runs · Recovery Portal"/>
            <section class="card">
                <h1>"Runs"</h1>
                <nav class="tabs" aria-label="Filter runs">{tab("active", "Active")}{tab("finished", "Finished")}{tab("all", "All")}</nav>
                <Transition fallback=|| view! { <p class="loading">"Loading runs…"</p> }>
                    {move || Suspend::new(async move {
                        match runs.await {
                            Err(error) => view! { <ErrorBox error/> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <p class="muted">"No runs here. Start one from a runbook."</p> }.into_any(),
                            Ok(list) => view! {
                                <table class="data runs">
                                    <thead><tr><th>"Run"</th><th>"Procedure"</th><th>"Site"</th><th>"State"</th><th>"Progress"</th><th>"Started"</th></tr></thead>
                                    <tbody>{list.into_iter().map(run_row).collect_view()}</tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }.into_any()/>
    }
}

/// Output text as styled spans; the text is never read as HTML.
pub(crate) fn output_view(chunks: Vec<OutputChunk>) -> impl IntoView {
    chunks
        .into_iter()
        .map(|c| {
            let class = if c.stderr { "stderr" } else { "stdout" };
            view! {
                <span class=class>
                    {ansi::spans(&c.text).into_iter().map(|s| view! { <span class=s.classes>{s.text}</span> }).collect_view()}
                </span>
            }
        })
        .collect_view()
}

/// Text typed into the step forms, by form, kept outside the re-rendered run view
/// so that a live update does not wipe a half-written reason.
pub(crate) type Drafts = StoredValue<HashMap<String, String>>;

/// A text input whose value survives re-rendering.
pub(crate) fn draft_input(
    drafts: Drafts,
    key: String,
    name: &'static str,
    required: bool,
    placeholder: &'static str,
) -> impl IntoView {
    let initial = drafts.with_value(|d| d.get(&key).cloned().unwrap_or_default());
    view! {
        <input name=name type="text" required=required placeholder=placeholder prop:value=initial
            on:input=move |ev| {
                let text = event_target_value(&ev);
                drafts.update_value(|d| {
                    d.insert(key.clone(), text);
                });
            }/>
    }
}

/// Live chunks heard since the run was loaded, by attempt, and the last
/// progress reading of each attempt.
#[derive(Clone, Debug, Default)]
struct LiveOutput {
    chunks: Vec<(i64, OutputChunk)>,
    progress: HashMap<i64, Progress>,
}

/// A progress bar with what it measures, how much and how fast.
fn progress_bar(p: Progress) -> impl IntoView {
    let text = p.text();
    let state = if p.finished { "finished" } else { "running" };
    view! {
        <div class="progress" data-testid="progress" data-state=state>
            <div class="progress-label">{p.label.clone()}</div>
            {match p.percent() {
                Some(pc) => view! { <progress max="100" value=pc.to_string()></progress> }.into_any(),
                // An unknown total: an indeterminate bar.
                None => view! { <progress></progress> }.into_any(),
            }}
            <div class="progress-text">{text}</div>
        </div>
    }
}

/// Earlier output of a long attempt, loaded a page at a time when asked: what
/// was loaded, how many bytes are still before it, and where it starts.
#[derive(Clone, Debug)]
struct Earlier {
    chunks: Vec<OutputChunk>,
    bytes: u64,
    from_seq: i32,
    error: Option<String>,
}

/// The note and button above an attempt's output when its beginning is not shown.
fn earlier_output(attempt_id: i64, earlier: RwSignal<Earlier>) -> impl IntoView {
    let loading = RwSignal::new(false);
    let load = move |_| {
        let before_seq = earlier.with_untracked(|e| e.from_seq);
        loading.set(true);
        leptos::task::spawn_local(async move {
            let page = attempt_output(attempt_id, before_seq).await;
            earlier.update(|e| match page {
                Ok(page) => {
                    let mut chunks = page.chunks;
                    chunks.append(&mut e.chunks);
                    e.chunks = chunks;
                    e.bytes = page.earlier_bytes;
                    e.from_seq = page.from_seq;
                    e.error = None;
                }
                Err(err) => e.error = Some(err.to_string()),
            });
            loading.set(false);
        });
    };
    move || {
        let e = earlier.get();
        (e.bytes > 0).then(|| {
            view! {
                <p class="muted earlier-output" data-testid="earlier-output">
                    {format!("{} bytes of earlier output are not shown. ", e.bytes)}
                    <button type="button" on:click=load disabled=move || loading.get()>"Load earlier output"</button>
                    {e.error.map(|m| view! { <span class="notice error">{m}</span> })}
                </p>
            }
        })
    }
}

fn attempt_view(a: AttemptView, live: RwSignal<LiveOutput>, open: bool) -> impl IntoView {
    let stored_until = a.output.last().map(|c| c.seq).unwrap_or(-1);
    let attempt_id = a.id;
    let stored = a.output.clone();
    let earlier = RwSignal::new(Earlier {
        chunks: Vec::new(),
        bytes: a.earlier_bytes,
        from_seq: a.loaded_from_seq,
        error: None,
    });
    let extra = move || {
        live.with(|l| {
            l.chunks
                .iter()
                .filter(|(id, c)| *id == attempt_id && c.seq > stored_until)
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>()
        })
    };
    let outcome = a.outcome.clone();
    let stored_progress = a.progress.clone();
    let progress = move || {
        live.with(|l| l.progress.get(&attempt_id).cloned())
            .or_else(|| stored_progress.clone())
            .map(progress_bar)
    };
    view! {
        <details class="attempt" open=open data-attempt=a.attempt.to_string()>
            <summary>
                {format!("Attempt {} · started by {} at {}", a.attempt, a.started_by, when(&a.started_at))}
                {a.host.clone().map(|h| view! { " · on " <code>{h}</code> })}
                {a.approval_id.map(|id| view! { <span class="under-approval">{format!(" · under approval #{id}")}</span> })}
                {match &outcome {
                    None => view! { <span class="state state-running">" running"</span> }.into_any(),
                    Some(o) if o.passed => view! { <span class="state state-succeeded">" passed"</span> }.into_any(),
                    Some(o) => view! { <span class="state state-failed">{format!(" failed ({})", o.ending.replace('_', " "))}</span> }.into_any(),
                }}
            </summary>
            {progress}
            {earlier_output(attempt_id, earlier)}
            <pre class="output" data-testid="output">{move || output_view(earlier.get().chunks)}{output_view(stored)}{move || output_view(extra())}</pre>
            {outcome.map(|o| view! {
                <div class="outcome">
                    {o.output.as_ref().and_then(|t| t.truncation_note()).map(|note| view! { <p class="notice warn" data-testid="output-truncated">{note}</p> })}
                    {o.error.map(|e| view! { <p class="notice error">{e}</p> })}
                    {o.exit_status.map(|s| view! { <p>"Exit status " <code>{s}</code></p> })}
                    {(!o.expectations.is_empty()).then(|| view! {
                        <ul class="expectations">
                            {o.expectations.into_iter().map(|e| view! {
                                <li class=if e.passed { "passed" } else { "failed" }>{if e.passed { "✓ " } else { "✗ " }}{e.description}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    {(!o.captures.is_empty()).then(|| view! {
                        <table class="data captures">
                            <thead><tr><th>"Captured"</th><th>"Value"</th></tr></thead>
                            <tbody>{o.captures.into_iter().map(|(k, v)| view! { <tr><td><code>{k}</code></td><td><code>{v}</code></td></tr> }).collect_view()}</tbody>
                        </table>
                    })}
                    {o.observation.map(|t| view! { <p>"Observation: " {t}</p> })}
                    {o.transfer.map(|t| view! { <p>{format!("{} bytes, SHA-256 ", t.bytes)}<code>{t.sha256}</code></p> })}
                    {o.checks.map(|n| view! { <p class="muted">{format!("Checked {n} times.")}</p> })}
                </div>
            })}
        </details>
    }
}

/// What every step card of a run page shares.
#[derive(Clone)]
struct StepCtx {
    run_id: i64,
    live: RwSignal<LiveOutput>,
    command: ServerAction<CommandStep>,
    can_operate: bool,
    /// The signed-in user's name.
    me: String,
    drafts: Drafts,
}

fn step_buttons(s: &RunStepView, ctx: &StepCtx) -> AnyView {
    let (run_id, command, drafts) = (ctx.run_id, ctx.command, ctx.drafts);
    let me = ctx.me.as_str();
    if !ctx.can_operate {
        return ().into_any();
    }
    let position = s.position;
    let hidden = move |cmd: &'static str| {
        view! {
            <input type="hidden" name="run" value=run_id.to_string()/>
            <input type="hidden" name="position" value=position.to_string()/>
            <input type="hidden" name="command" value=cmd/>
        }
    };
    let mut buttons: Vec<AnyView> = Vec::new();
    let runnable = s.blocked.is_none() && s.action.is_ok();
    let manual = s.kind == "manual";
    for action in &s.actions {
        match action {
            StepEvent::Run | StepEvent::Retry if manual => {
                let required = s.observation == Some(true);
                buttons.push(view! {
                    <ActionForm action=command attr:class="inline step-command">
                        {hidden("confirm")}
                        <label>"Observation" {required.then_some(" *")}
                            {draft_input(drafts, format!("{position}:confirm"), "text", required, "What you saw")}</label>
                        <button type="submit" data-command="confirm">"Confirm done"</button>
                    </ActionForm>
                }.into_any());
            }
            StepEvent::Run | StepEvent::Retry if runnable => {
                let label = if *action == StepEvent::Run {
                    "Run"
                } else {
                    "Run again"
                };
                buttons.push(view! {
                    <ActionForm action=command attr:class="inline step-command">
                        {hidden("run")}
                        <button type="submit" data-command="run" disabled=move || command.pending().get()>{label}</button>
                    </ActionForm>
                }.into_any());
            }
            StepEvent::RequestApproval => {
                let label = if s.approvals.is_empty() {
                    "Request approval"
                } else {
                    "Request approval again"
                };
                let needed = match s.approvals_needed {
                    2 => "Two supervisors must approve this step.",
                    _ => "A supervisor other than you must approve this step.",
                };
                buttons.push(view! {
                    <ActionForm action=command attr:class="step-command request-approval">
                        {hidden("request_approval")}
                        <p class="muted">{needed}" They see the exact action above; any change to it voids their approval."</p>
                        <label>"Justification *" {draft_input(drafts, format!("{position}:request_approval"), "text", true, "Why this must run now, and what you checked")}</label>
                        <button type="submit" class="danger" data-command="request_approval" disabled=move || command.pending().get()>{label}</button>
                    </ActionForm>
                }.into_any());
            }
            StepEvent::Skip | StepEvent::MarkDone => {
                let (cmd, label) = if *action == StepEvent::Skip {
                    ("skip", "Skip")
                } else {
                    ("mark_done", "Mark done")
                };
                buttons.push(view! {
                    <ActionForm action=command attr:class="inline step-command">
                        {hidden(cmd)}
                        <label>"Reason *" {draft_input(drafts, format!("{position}:{cmd}"), "text", true, "Why")}</label>
                        <button type="submit" class="secondary" data-command=cmd>{label}</button>
                    </ActionForm>
                }.into_any());
            }
            _ => {}
        }
    }
    if let Some(a) = s.open_approval() {
        let id = a.id;
        if a.state == ApprovalState::Approved && a.requested_by == me {
            buttons.push(view! {
                <ActionForm action=command attr:class="inline step-command">
                    {hidden("run")}
                    <input type="hidden" name="approval" value=id.to_string()/>
                    <button type="submit" class="danger" data-command="run_approved" disabled=move || command.pending().get()>{format!("Run under approval #{id}")}</button>
                </ActionForm>
            }.into_any());
        }
        buttons.push(view! {
            <ActionForm action=command attr:class="inline step-command">
                {hidden("withdraw")}
                <label>"Reason " {draft_input(drafts, format!("{position}:withdraw"), "text", false, "Why it is withdrawn")}</label>
                <button type="submit" class="secondary" data-command="withdraw">"Withdraw the request"</button>
            </ActionForm>
        }.into_any());
    }
    if s.state == StepState::Running {
        buttons.push(
            view! {
                <ActionForm action=command attr:class="inline step-command">
                    {hidden("stop")}
                    <button type="submit" class="danger" data-command="stop">"Stop"</button>
                </ActionForm>
            }
            .into_any(),
        );
    }
    view! { <div class="step-buttons">{buttons}</div> }.into_any()
}

fn step_card(s: RunStepView, current: bool, ctx: &StepCtx) -> impl IntoView {
    let live = ctx.live;
    let class = format!(
        "run-step state-{}{}{}",
        s.state.as_str(),
        if s.destructive { " destructive" } else { "" },
        if current { " current" } else { "" }
    );
    let last = s.attempts.len();
    let buttons = step_buttons(&s, ctx);
    let approvals = approvals_view(&s.approvals);
    let open_all = current
        || matches!(
            s.state,
            StepState::Failed | StepState::Running | StepState::Interrupted
        );
    view! {
        <li class=class id=format!("step-{}", s.id) data-step=s.id.clone() data-state=s.state.as_str()>
            <details open=open_all>
                <summary class="step-head">
                    <span class="step-number">{s.position + 1}</span>
                    <strong>{s.title.clone()}</strong>
                    <span class="kind-badge">{s.kind.clone()}</span>
                    {s.destructive.then(|| view! { <span class="destructive-badge">"destructive"</span> })}
                    <span class=format!("state state-{}", s.state.as_str())>{state_label(s.state)}</span>
                </summary>
                {s.when.clone().map(|(w, holds)| view! { <p class="muted">"Only when " {w} {if holds { " (holds)" } else { " (does not hold)" }}</p> })}
                {(!s.instructions.is_empty()).then(|| view! { <p class="instructions">{s.instructions.clone()}</p> })}
                {match s.action.clone() {
                    Ok(a) => view! {
                        <div class="action">
                            {a.host.map(|h| view! { <p>"On " <code data-testid="host">{h}</code></p> })}
                            <pre class="command" data-testid="command">{a.text}</pre>
                        </div>
                    }.into_any(),
                    Err(why) => view! { <p class="notice warn">{why}</p> }.into_any(),
                }}
                {s.blocked.clone().map(|b| view! { <p class="notice warn">{b}</p> })}
                {s.note.clone().map(|n| view! { <p class="note">"Note: " {n}</p> })}
                {(s.state == StepState::Interrupted).then(|| view! { <p class="notice warn">"This step was running when the portal stopped. Check on the host what happened, then run it again or mark it done with a reason."</p> })}
                {approvals}
                {buttons}
                {s.attempts.into_iter().enumerate().map(|(i, a)| attempt_view(a, live, i + 1 == last)).collect_view()}
            </details>
        </li>
    }
}

#[allow(clippy::too_many_arguments)]
fn run_body(
    v: RunView,
    live: RwSignal<LiveOutput>,
    command: ServerAction<CommandStep>,
    cancel: ServerAction<CancelRun>,
    parameter: ServerAction<ChangeParameter>,
    take_over: ServerAction<TakeOverRun>,
    can_run: bool,
    can_audit: bool,
    me: String,
    drafts: Drafts,
) -> AnyView {
    let run_id = v.summary.id;
    let current = v.current;
    let active = v.summary.state == RunState::Active;
    // The server refuses anyone but the owner; this only spares them buttons
    // that would be refused, and offers the takeover instead.
    let owner = v.summary.owner.clone();
    let can_operate = can_run && owner == me;
    let can_take_over = can_run && active && owner != me;
    let ctx = StepCtx {
        run_id,
        live,
        command,
        can_operate,
        me,
        drafts,
    };
    view! {
        <Title text=format!("Run #{} · {}", run_id, v.summary.runbook_title)/>
        <section class="card run-head">
            <p><a href="/runs">"← Runs"</a></p>
            <h1>{format!("Run #{} · {}", run_id, v.summary.runbook_title)}</h1>
            <p class="facts">
                <span>"Site " <strong>{v.summary.site.clone()}</strong></span>
                <span class=format!("state state-{}", run_state_label(v.summary.state)) data-testid="run-state">{run_state_label(v.summary.state)}</span>
                <span>{format!("{} of {} steps done", v.summary.steps_done, v.summary.steps)}</span>
                <span>{format!("started by {} at {}", v.summary.started_by, when(&v.summary.started_at))}</span>
                <span data-testid="run-owner">{format!("owner {owner}")}</span>
            </p>
            {can_take_over.then(|| view! {
                <div class="notice take-over" data-testid="take-over">
                    <p>{format!("Run {run_id} belongs to {owner}; take it over (with a reason) to act on it. Its open request for approval, if any, is voided; you request approval anew.")}</p>
                    <ActionForm action=take_over attr:class="inline">
                        <input type="hidden" name="run" value=run_id.to_string()/>
                        <label>"Reason " {draft_input(drafts, "take-over".into(), "reason", true, "Why you take it over")}</label>
                        <button type="submit" class="secondary">"Take over"</button>
                    </ActionForm>
                </div>
            })}
            <p class="hash">"Runbook SHA-256 " <code>{v.runbook_sha256.clone()}</code></p>
            {can_audit.then(|| view! {
                <p class="report-links">
                    <a href=format!("/runs/{run_id}/report") data-testid="open-report">"Report (HTML, PDF)"</a>
                    " · "
                    <a href=format!("/audit?run={run_id}")>"Audit trail of this run"</a>
                </p>
            })}
            {v.break_glass.clone().map(|b| view! {
                <p class="notice break-glass" role="alert">
                    <strong>"Break-glass mode is on for this site: "</strong>
                    {format!("supervisors may approve their own requests. Switched on by {} at {}: {}", b.changed_by, when(&b.changed_at), b.reason)}
                </p>
            })}
            {(!v.parameters.is_empty()).then(|| view! {
                <table class="data params">
                    <thead><tr><th>"Parameter"</th><th>"Value"</th></tr></thead>
                    <tbody>{v.parameters.clone().into_iter().map(|(k, val)| view! { <tr><td><code>{k}</code></td><td><code>{val}</code></td></tr> }).collect_view()}</tbody>
                </table>
            })}
            {(!v.captures.is_empty()).then(|| view! {
                <details><summary>{format!("{} captured values", v.captures.len())}</summary>
                    <table class="data captures"><tbody>{v.captures.clone().into_iter().map(|(k, val)| view! { <tr><td><code>{k}</code></td><td><code>{val}</code></td></tr> }).collect_view()}</tbody></table>
                </details>
            })}
            {(active && can_operate && !v.parameters.is_empty()).then(|| {
                let names: Vec<String> = v.parameters.keys().cloned().collect();
                view! {
                    <details class="change-parameter">
                        <summary>"Change a parameter"</summary>
                        <p class="muted">"Later steps render with the new value. A request for approval whose action changes with it is voided."</p>
                        <ActionForm action=parameter attr:class="inline">
                            <input type="hidden" name="run" value=run_id.to_string()/>
                            <label>"Parameter "
                                <select name="name">{names.into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}</select>
                            </label>
                            <label>"New value " {draft_input(drafts, "param:value".into(), "value", true, "value")}</label>
                            <label>"Reason " {draft_input(drafts, "param:reason".into(), "reason", true, "Why it changes")}</label>
                            <button type="submit" class="secondary">"Change"</button>
                        </ActionForm>
                    </details>
                }
            })}
            {(active && can_operate).then(|| view! {
                <ActionForm action=cancel attr:class="inline cancel-run">
                    <input type="hidden" name="run" value=run_id.to_string()/>
                    <label>"Reason " {draft_input(drafts, "cancel".into(), "reason", true, "Why the run is cancelled")}</label>
                    <button type="submit" class="danger">"Cancel the run"</button>
                </ActionForm>
            })}
        </section>
        <div class="run-layout">
            <nav class="progress card" aria-label="Steps">
                <ol>
                    {v.steps.iter().map(|s| {
                        let href = format!("#step-{}", s.id);
                        let class = format!("state-{}{}", s.state.as_str(), if Some(s.position as usize) == current { " current" } else { "" });
                        view! { <li class=class><a href=href>{s.title.clone()}</a> <small>{state_label(s.state)}</small></li> }
                    }).collect_view()}
                </ol>
            </nav>
            <section class="steps-panel">
                <ol class="run-steps">
                    {v.steps.into_iter().map(|s| {
                        let is_current = Some(s.position as usize) == current;
                        step_card(s, is_current, &ctx)
                    }).collect_view()}
                </ol>
            </section>
        </div>
    }
    .into_any()
}

/// Listens to the run's live events: output is added to `live`, any other change
/// reloads the run. When the stream breaks for good (an error answer: browsers do
/// not retry those), `paused` says so and a new stream is tried after a pause.
#[cfg(feature = "hydrate")]
fn listen(run_id: i64, live: RwSignal<LiveOutput>, reload: RwSignal<u32>, paused: RwSignal<bool>) {
    use crate::model::run_view::LiveEvent;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    // The retry runs from a timer, outside the page's reactive owner: it is put
    // back under it so its cleanup still runs when the page goes.
    let owner = Owner::current();
    let Ok(source) = web_sys::EventSource::new(&format!("/api/runs/{run_id}/live")) else {
        paused.set(true);
        return;
    };
    let on_output =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            if let Ok(LiveEvent::Output {
                attempt_id, chunk, ..
            }) = serde_json::from_str::<LiveEvent>(&text)
            {
                live.update(|l| l.chunks.push((attempt_id, chunk)));
            }
        });
    let on_progress =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            if let Ok(LiveEvent::Progress {
                attempt_id,
                progress,
                ..
            }) = serde_json::from_str::<LiveEvent>(&text)
            {
                live.update(|l| {
                    l.progress.insert(attempt_id, progress);
                });
            }
        });
    let on_changed =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_e: web_sys::MessageEvent| {
            paused.set(false);
            reload.update(|n| *n += 1);
        });
    let closed = StoredValue::new(false);
    let on_error = {
        let source = source.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
            if source.ready_state() == web_sys::EventSource::CLOSED && !closed.get_value() {
                closed.set_value(true);
                paused.set(true);
                let owner = owner.clone();
                set_timeout(
                    move || {
                        if let Some(owner) = owner.filter(|_| !closed.is_disposed()) {
                            owner.with(|| listen(run_id, live, reload, paused));
                        }
                    },
                    std::time::Duration::from_secs(3),
                );
            }
        })
    };
    let _ = source.add_event_listener_with_callback("output", on_output.as_ref().unchecked_ref());
    let _ =
        source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("changed", on_changed.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
    let handle =
        StoredValue::new_local(Some((source, on_output, on_progress, on_changed, on_error)));
    on_cleanup(move || {
        closed.set_value(true);
        if let Some(Some((source, _, _, _, _))) = handle.try_update_value(|h| h.take()) {
            source.close();
        }
    });
}

/// `/runs/:id`
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let run_id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let reload = RwSignal::new(0u32);
    let live = RwSignal::new(LiveOutput::default());
    let paused = RwSignal::new(false);
    let drafts: Drafts = StoredValue::new(HashMap::new());
    let command = ServerAction::<CommandStep>::new();
    let cancel = ServerAction::<CancelRun>::new();
    let parameter = ServerAction::<ChangeParameter>::new();
    let take_over = ServerAction::<TakeOverRun>::new();
    // Made here, outside the suspended view, so re-rendering it never disposes them.
    let command_result = command.value();
    let cancel_result = cancel.value();
    let parameter_result = parameter.value();
    let take_over_result = take_over.value();
    let run = Resource::new(
        move || (run_id(), reload.get()),
        |(id, n)| async move {
            match id {
                // Reads after the first are the page following its run, not the
                // person: they must not keep the session from going idle.
                Some(id) if n > 0 => refresh_run(id).await,
                Some(id) => show_run(id).await,
                None => Err(AppError::NotFound("There is no such run.".into())),
            }
        },
    );
    Effect::new(move |_| {
        if command.version().get() > 0
            || cancel.version().get() > 0
            || parameter.version().get() > 0
            || take_over.version().get() > 0
        {
            reload.update(|n| *n += 1);
        }
    });
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(id) = run_id() {
            listen(id, live, reload, paused);
        }
    });
    view! {
        <Guarded view=move |me: Me| {
            let can_operate = me.role.permits(Permission::RunRecoveries);
            let can_audit = me.role.permits(Permission::ReadAudit);
            let me_name = me.username.clone();
            view! {
                {move || paused.get().then(|| view! { <p class="notice warn live-paused" role="status">"Live updates are paused: the connection to the portal broke. Reconnecting…"</p> })}
                <ActionResult value=command_result/>
                <ActionResult value=cancel_result/>
                <ActionResult value=parameter_result/>
                <ActionResult value=take_over_result/>
                <Transition fallback=|| view! { <p class="loading">"Loading the run…"</p> }>
                    {move || {
                        let me_name = me_name.clone();
                        Suspend::new(async move {
                            match run.await {
                                Err(error) => view! { <section class="card"><ErrorBox error/><p><a href="/runs">"All runs"</a></p></section> }.into_any(),
                                Ok(v) => run_body(v, live, command, cancel, parameter, take_over, can_operate, can_audit, me_name, drafts),
                            }
                        })
                    }}
                </Transition>
            }.into_any()
        }/>
    }
}
