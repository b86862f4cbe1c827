//! The runbook catalogue and the preview of one procedure (operators, supervisors).

use crate::api::runbooks::{list_runbooks, show_runbook};
use crate::components::guard::Guarded;
use crate::components::notice::ErrorBox;
use crate::error::AppError;
use crate::model::runbook::{ParameterView, RunbookDetail, RunbookSummary, StepView};
use crate::model::user::Me;
use crate::pages::start_run::{StartRunForm, StartRunState};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

fn destructive_label(n: usize) -> String {
    match n {
        0 => "no destructive step".to_string(),
        1 => "1 destructive step".to_string(),
        n => format!("{n} destructive steps"),
    }
}

fn card(rb: RunbookSummary) -> impl IntoView {
    let href = format!("/runbooks/{}", rb.id);
    let count_class = if rb.destructive_steps > 0 {
        "destructive-count"
    } else {
        ""
    };
    view! {
        <li class="runbook-card" data-runbook=rb.id.clone()>
            <h2><a href=href>{rb.title}</a></h2>
            <p class="muted">{rb.description}</p>
            <p class="facts">
                <span>{format!("about {} min", rb.expected_duration_minutes)}</span>
                <span>{format!("{} steps", rb.steps)}</span>
                <span class=count_class>{destructive_label(rb.destructive_steps)}</span>
            </p>
        </li>
    }
}

fn catalogue(runbooks: Resource<Result<Vec<RunbookSummary>, AppError>>) -> AnyView {
    view! {
        <Title text="Runbooks · Recovery Portal"/>
        <section class="card">
            <h1>"Runbooks"</h1>
            <p class="muted">"The recovery procedures of a CPS cluster on OpenStack. Open one to see its parameters and every step, with the destructive ones marked."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading runbooks…"</p> }>
                {move || Suspend::new(async move {
                    match runbooks.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(list) => view! { <ul class="runbook-list">{list.into_iter().map(card).collect_view()}</ul> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// `/runbooks`
#[component]
pub fn RunbooksPage() -> impl IntoView {
    let runbooks = Resource::new(|| (), |_| list_runbooks());
    view! { <Guarded view=move |_me: Me| catalogue(runbooks)/> }
}

fn parameter_row(p: ParameterView) -> impl IntoView {
    let mut rule = Vec::new();
    if !p.values.is_empty() {
        rule.push(format!("one of {}", p.values.join(", ")));
    }
    if let Some(pattern) = &p.pattern {
        rule.push(format!("matches {pattern}"));
    }
    if let Some(default) = &p.default {
        rule.push(format!("default {default}"));
    }
    view! {
        <tr>
            <td data-label="Parameter"><strong>{p.label}</strong><br/><code>{p.name}</code></td>
            <td data-label="Type">{p.kind}{p.required.then_some(" · required")}</td>
            <td data-label="Rule">{rule.join("; ")}</td>
            <td data-label="Help">{p.help}</td>
        </tr>
    }
}

fn step_item(index: usize, s: StepView) -> impl IntoView {
    let class = if s.destructive {
        "step destructive"
    } else {
        "step"
    };
    view! {
        <li class=class data-step=s.id.clone()>
            <div class="step-head">
                <span class="step-number">{index + 1}</span>
                <strong>{s.title}</strong>
                <span class="kind-badge">{s.kind}</span>
                {s.destructive.then(|| view! { <span class="destructive-badge">"destructive · needs approval"</span> })}
            </div>
            {s.when.map(|w| view! { <p class="muted">"Only when " {w} "."</p> })}
            {s.host.map(|h| view! { <p class="muted">"On " <code>{h}</code></p> })}
            <pre class="command">{s.action}</pre>
            {(!s.instructions.is_empty()).then(|| view! { <p class="instructions">{s.instructions}</p> })}
        </li>
    }
}

fn detail(rb: Resource<Result<RunbookDetail, AppError>>, start: StartRunState) -> AnyView {
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading the runbook…"</p> }>
            {move || Suspend::new(async move {
                match rb.await {
                    Err(error) => view! { <section class="card"><ErrorBox error/><p><a href="/runbooks">"All runbooks"</a></p></section> }.into_any(),
                    Ok(rb) => view! {
                        <Title text=format!("{} · Recovery Portal", rb.summary.title)/>
                        <section class="card">
                            <p><a href="/runbooks">"← All runbooks"</a></p>
                            <h1>{rb.summary.title.clone()}</h1>
                            <p>{rb.summary.description.clone()}</p>
                            <p class="facts">
                                <span>{format!("about {} min", rb.summary.expected_duration_minutes)}</span>
                                <span>{format!("{} steps", rb.summary.steps)}</span>
                                <span>{destructive_label(rb.summary.destructive_steps)}</span>
                            </p>
                            <p class="hash">"File " <code>{rb.source_path.clone()}</code> " · SHA-256 " <code>{rb.sha256.clone()}</code></p>
                        </section>
                        <StartRunForm rb=rb.clone() state=start/>
                        <section class="card">
                            <h2>"Parameters"</h2>
                            {if rb.parameters.is_empty() {
                                view! { <p class="muted">"None."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="data">
                                        <thead><tr><th>"Parameter"</th><th>"Type"</th><th>"Rule"</th><th>"Help"</th></tr></thead>
                                        <tbody>{rb.parameters.into_iter().map(parameter_row).collect_view()}</tbody>
                                    </table>
                                }.into_any()
                            }}
                        </section>
                        <section class="card">
                            <h2>"Steps"</h2>
                            <p class="muted">"Values in " <code>"{{ … }}"</code> " are filled in from the parameters and from values captured by earlier steps, shell-quoted unless marked " <code>"raw"</code> "."</p>
                            <ol class="steps">{rb.steps.into_iter().enumerate().map(|(i, s)| step_item(i, s)).collect_view()}</ol>
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// `/runbooks/:id`
#[component]
pub fn RunbookPage() -> impl IntoView {
    let params = use_params_map();
    let rb = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        show_runbook,
    );
    let start = StartRunState::new();
    view! { <Guarded view=move |_me: Me| detail(rb, start)/> }
}
