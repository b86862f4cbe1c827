//! `/runs/:id/report` (auditor, supervisor, admin): the run's report as a page,
//! with the PDF and the outputs' JSONL to download. It shows what the PDF shows,
//! with every output whole.

use crate::api::audit::show_run_report;
use crate::components::guard::Guarded;
use crate::components::notice::ErrorBox;
use crate::error::AppError;
use crate::model::approval::ApprovalView;
use crate::model::run_report::{
    approval_heading, decision_line, ended_line, jsonl_name, outcome_line, output_text, pdf_name,
    RunReport,
};
use crate::model::run_view::{AttemptView, RunStepView};
use crate::model::user::Me;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

fn field(label: &'static str, value: impl IntoView) -> impl IntoView {
    view! { <tr><th scope="row">{label}</th><td>{value}</td></tr> }
}

fn approval(a: ApprovalView) -> impl IntoView {
    view! {
        <div class="report-approval" data-testid="report-approval">
            <h4>{approval_heading(&a)}</h4>
            <table class="fields"><tbody>
                {field("Requested", format!("{} by {}", a.requested_at, a.requested_by))}
                {field("Justification", a.justification.clone())}
                {a.host.clone().map(|h| field("Host", h))}
                {field("Action hash", view! { <code>{a.action_hash.clone()}</code> })}
                {a.decisions.iter().map(|d| {
                    let (label, line) = decision_line(d);
                    field(label, line)
                }).collect_view()}
                {a.expires_at.clone().map(|e| field("Valid until", e))}
                {ended_line(&a).map(|e| field("Ended", e))}
            </tbody></table>
            <pre class="action">{a.action.clone()}</pre>
        </div>
    }
}

fn attempt(report: &RunReport, a: AttemptView) -> impl IntoView {
    let digest = report.output_of(a.id).cloned();
    let output = output_text(&a);
    let outcome = a.outcome.clone();
    view! {
        <div class="report-attempt" data-testid="report-attempt">
            <h4>{format!("Attempt {}", a.attempt)}</h4>
            <table class="fields"><tbody>
                {a.host.clone().map(|h| field("Host", h))}
                {field("Started", format!("{} by {}", a.started_at, a.started_by))}
                {field("Ended", a.finished_at.clone().unwrap_or_else(|| "not ended".into()))}
                {a.approval_id.map(|id| field("Under approval", format!("#{id}")))}
                {match outcome {
                    None => field("Outcome", "none recorded (still running or interrupted)".to_string()).into_any(),
                    Some(o) => {
                        view! {
                            <tr><th scope="row">"Outcome"</th><td class=if o.passed { "good" } else { "bad" }>{outcome_line(&o)}</td></tr>
                            {o.error.clone().map(|e| field("Error", e))}
                            {o.expectations.iter().map(|e| field(if e.passed { "Expected ✓" } else { "Expected ✗" }, e.description.clone())).collect_view()}
                            {o.captures.iter().map(|(k, v)| view! { <tr><th scope="row">{format!("Captured {k}")}</th><td><code>{v.clone()}</code></td></tr> }).collect_view()}
                            {o.missing_captures.iter().map(|k| view! { <tr><th scope="row">{format!("Captured {k}")}</th><td>"(no match)"</td></tr> }).collect_view()}
                            {o.observation.clone().map(|t| field("Observation", t))}
                            {o.transfer.clone().map(|t| field("Transferred", format!("{} bytes, SHA-256 {}", t.bytes, t.sha256)))}
                        }.into_any()
                    }
                }}
                {digest.map(|d| field("Output", format!("{} bytes, {} lines, SHA-256 {}", d.bytes, d.lines, d.sha256)))}
            </tbody></table>
            <pre class="action">{a.action.clone()}</pre>
            {(!output.is_empty()).then(|| view! { <pre class="output report-output">{output}</pre> })}
        </div>
    }
}

fn step(report: &RunReport, s: RunStepView) -> impl IntoView {
    let mut kind = s.kind.clone();
    if s.destructive {
        kind.push_str(", destructive");
    }
    let unrun = s.attempts.is_empty().then(|| match &s.action {
        Ok(a) => view! { <pre class="action">{a.host.clone().map(|h| format!("[{h}] ")).unwrap_or_default()}{a.text.clone()}</pre> }.into_any(),
        Err(why) => view! { <p class="muted">{format!("Action not rendered: {why}")}</p> }.into_any(),
    });
    view! {
        <section class="report-step" data-testid="report-step">
            <h3>{format!("Step {}. {} ({kind})", s.position + 1, s.title)}</h3>
            <table class="fields"><tbody>
                {field("Step id", s.id.clone())}
                {field("State", s.state.as_str())}
                {s.when.clone().map(|(c, holds)| field("When", format!("{c} ({})", if holds { "holds" } else { "does not hold" })))}
                {s.note.clone().map(|n| field(if s.state.as_str() == "skipped" { "Skipped because" } else { "Note" }, n))}
            </tbody></table>
            {unrun}
            {s.approvals.clone().into_iter().map(approval).collect_view()}
            {s.attempts.clone().into_iter().map(|a| attempt(report, a)).collect_view()}
        </section>
    }
}

fn report_view(r: RunReport) -> AnyView {
    let s = r.run.summary.clone();
    let id = s.id;
    let chain = r.chain.clone();
    view! {
        <Title text=format!("Report of run {id} · Recovery Portal")/>
        <section class="card report">
            <h1>{format!("Run #{id} — {}", s.runbook_title)}</h1>
            <p class="report-downloads">
                <a class="button" href=format!("/api/runs/{id}/report.pdf") download=pdf_name(id) data-testid="report-pdf">"Download PDF"</a>
                " "
                <a class="button secondary" href=format!("/api/runs/{id}/report.jsonl") download=jsonl_name(id) data-testid="report-jsonl">"Outputs and events (JSONL)"</a>
                " "
                <a class="button secondary" href=format!("/api/audit/export.csv?run={id}") download data-testid="report-csv">"Audit events (CSV)"</a>
                " "
                <a href=format!("/runs/{id}")>"Open the run"</a>
                " · "
                <a href=format!("/audit?run={id}")>"Its audit trail"</a>
            </p>
            <table class="fields"><tbody>
                {field("Runbook", s.runbook_id.clone())}
                {field("Runbook SHA-256", view! { <code>{r.run.runbook_sha256.clone()}</code> })}
                {field("Site", s.site.clone())}
                {field("State", format!("{:?}", s.state).to_lowercase())}
                {field("Started", format!("{} by {}", s.started_at, s.started_by))}
                {field("Finished", s.finished_at.clone().unwrap_or_else(|| "not finished".into()))}
                {field("Report", format!("generated {} for {}", r.generated_at, r.generated_by))}
            </tbody></table>
            <h2>"Parameters"</h2>
            <table class="fields" data-testid="report-parameters"><tbody>
                {r.run.parameters.iter().map(|(k, v)| view! { <tr><th scope="row">{k.clone()}</th><td><code>{v.clone()}</code></td></tr> }).collect_view()}
            </tbody></table>
            {(!r.run.captures.is_empty()).then(|| view! {
                <h2>"Captured values"</h2>
                <table class="fields"><tbody>
                    {r.run.captures.iter().map(|(k, v)| view! { <tr><th scope="row">{k.clone()}</th><td><code>{v.clone()}</code></td></tr> }).collect_view()}
                </tbody></table>
            })}
            <h2>"Steps"</h2>
            {r.run.steps.clone().into_iter().map(|s| step(&r, s)).collect_view()}
            <h2>{format!("Audit events ({})", r.events.len())}</h2>
            <table class="data audit-table">
                <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Subject"</th></tr></thead>
                <tbody>
                    {r.events.iter().map(|e| view! {
                        <tr>
                            <td><a href=format!("/audit/events/{}", e.id)>{e.id}</a></td>
                            <td>{e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</td>
                            <td>{e.actor.clone()}</td>
                            <td><code>{e.action.clone()}</code></td>
                            <td>{e.subject.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <h2>"Audit chain"</h2>
            <table class="fields" data-testid="report-chain"><tbody>
                {chain.first.clone().map(|e| field("First event", view! { {format!("#{} ", e.id)} <code>{e.hash}</code> }))}
                {chain.last.clone().map(|e| field("Last event", view! { {format!("#{} ", e.id)} <code>{e.hash}</code> }))}
                {chain.head.clone().map(|e| field("Chain head", view! { {format!("#{} ", e.id)} <code data-testid="report-head">{e.hash}</code> " (the whole trail's last event when this report was made)" }))}
            </tbody></table>
            <p class=if chain.intact() { "verdict good" } else { "verdict bad" } data-testid="report-verdict">{chain.sentence()}</p>
        </section>
    }
    .into_any()
}

/// `/runs/:id/report`
#[component]
pub fn RunReportPage() -> impl IntoView {
    let params = use_params_map();
    let report = Resource::new(
        move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()),
        |id| async move {
            match id {
                Some(id) => show_run_report(id).await,
                None => Err(AppError::NotFound("There is no such run.".into())),
            }
        },
    );
    view! {
        <Guarded view=move |_me: Me| view! {
            <Transition fallback=|| view! { <p class="loading">"Loading the report…"</p> }>
                {move || Suspend::new(async move {
                    match report.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(r) => report_view(r),
                    }
                })}
            </Transition>
        }.into_any()/>
    }
}
