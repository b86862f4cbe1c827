//! The chain's integrity for auditors: `/audit/verify` verifies the whole chain
//! (in the background, with progress) and states the last result and when it was
//! reached; `/audit/events/:id` shows one event whole, with its hash recomputed
//! and its link to the event before it checked.

use crate::api::audit::{chain_verification, show_audit_event, VerifyChain};
use crate::components::guard::Guarded;
use crate::components::notice::{ActionResult, ErrorBox};
use crate::error::AppError;
use crate::model::audit::{
    run_of_subject, AuditEventDetail, ChainVerification, VerificationStatus,
};
use crate::model::user::Me;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// What the verification compared the chain with, besides its own links.
fn anchor_line(v: &ChainVerification) -> AnyView {
    match (v.anchor_head_id, v.anchor_head_hash.clone()) {
        (Some(id), Some(hash)) => view! {
            <p class="hash" data-testid="verify-anchor">
                {format!("Compared with the signed checkpoint of {} ({}): head {id} ", v.anchor_at.clone().unwrap_or_default(), v.anchor_source.clone().unwrap_or_default())}
                <code>{hash}</code>
            </p>
        }
        .into_any(),
        _ => view! { <p class="muted" data-testid="verify-anchor">"No signed checkpoint of the head was found to compare with: only the chain's own links were checked."</p> }.into_any(),
    }
}

fn result_line(v: &ChainVerification) -> AnyView {
    let when = v.finished_at.clone().unwrap_or_default();
    let anchor = anchor_line(v);
    match v.state.as_str() {
        "intact" => view! {
            <p class="verdict good" data-testid="verify-result">
                {format!("Intact: all {} events verified (up to event {}), {} by {}.", v.checked, v.head_id.unwrap_or(0), when, v.started_by)}
            </p>
            {v.head_hash.clone().map(|h| view! { <p class="hash">"Head hash " <code>{h}</code></p> })}
            {anchor}
        }
        .into_any(),
        "broken" => view! {
            <p class="verdict bad" data-testid="verify-result" role="alert">
                {match v.broken_at {
                    Some(at) => format!("BROKEN at event {at}: {} ({} events before it verified; {} by {}).",
                        v.reason.clone().unwrap_or_default(), v.checked, when, v.started_by),
                    None => format!("BROKEN: {} ({} events verified; {} by {}).",
                        v.reason.clone().unwrap_or_default(), v.checked, when, v.started_by),
                }}
            </p>
            {v.broken_at.map(|id| view! { <p><a href=format!("/audit/events/{id}")>{format!("Open event {id}")}</a></p> })}
            {anchor}
        }
        .into_any(),
        _ => view! {
            <p class="verdict bad" data-testid="verify-result">
                {format!("Could not finish: {} ({} by {}).", v.reason.clone().unwrap_or_default(), when, v.started_by)}
            </p>
        }
        .into_any(),
    }
}

fn status_view(s: VerificationStatus, verify: ServerAction<VerifyChain>) -> AnyView {
    let running = s.latest.clone().filter(ChainVerification::running);
    view! {
        {s.role_warnings.iter().map(|w| view! {
            <p class="verdict bad" role="alert" data-testid="verify-role-warning">
                {format!("Warning: {w}. The append-only triggers do not protect the trail from the portal's own database role; serve as a role with only SELECT and INSERT on audit_events (README, Database roles).")}
            </p>
        }).collect_view()}
        <table class="fields" data-testid="verify-head"><tbody>
            <tr><th scope="row">"Chain head now"</th><td>{match s.head.clone() {
                Some(h) => view! { {format!("event {} ", h.id)} <code>{h.hash}</code> }.into_any(),
                None => view! { "no events yet" }.into_any(),
            }}</td></tr>
            <tr><th scope="row">"Last signed checkpoint"</th><td data-testid="verify-checkpoint">{match s.checkpoint.clone() {
                Some(c) => view! { {format!("head {} ", c.head_id)} <code>{c.head_hash}</code> {format!(", signed {} ({})", c.at, c.source)} }.into_any(),
                None => view! { "none yet" }.into_any(),
            }}</td></tr>
        </tbody></table>
        {match &running {
            Some(v) => {
                let total = v.total.max(1);
                let percent = (v.checked as f64 / total as f64 * 100.0).min(100.0);
                view! {
                    <div class="verify-progress" data-testid="verify-progress">
                        <p>{format!("Verification {} started by {} at {}: {} of {} events checked ({percent:.0} %).", v.id, v.started_by, v.started_at, v.checked, v.total)}</p>
                        <progress max=v.total.to_string() value=v.checked.to_string()></progress>
                    </div>
                }.into_any()
            }
            None => view! {
                <ActionForm action=verify>
                    <button type="submit" data-testid="verify-start">"Verify the whole chain now"</button>
                </ActionForm>
            }.into_any(),
        }}
        <h2>"Last result"</h2>
        {match s.last_finished {
            Some(v) => result_line(&v),
            None => view! { <p data-testid="verify-result">"The chain has not been verified yet."</p> }.into_any(),
        }}
    }
    .into_any()
}

/// `/audit/verify`
#[component]
pub fn VerifyChainPage() -> impl IntoView {
    let verify = ServerAction::<VerifyChain>::new();
    let verify_result = verify.value();
    let reload = RwSignal::new(0u32);
    let status = Resource::new(
        move || (reload.get(), verify.version().get()),
        |_| chain_verification(),
    );
    // While a verification runs, its progress is read again every second.
    Effect::new(move |_| {
        let running = status
            .get()
            .and_then(|s| s.ok())
            .and_then(|s| s.latest)
            .is_some_and(|v| v.running());
        if running {
            set_timeout(
                move || reload.update(|n| *n += 1),
                std::time::Duration::from_millis(800),
            );
        }
    });
    view! {
        <Guarded view=move |_me: Me| view! {
            <Title text="Verify the audit chain · Recovery Portal"/>
            <section class="card">
                <p><a href="/audit">"← Audit trail"</a></p>
                <h1>"Audit chain verification"</h1>
                <p class="muted">"Every event's hash is recomputed from its fields and checked against the next event's link, from event 1 to the last, and the chain is compared with the newest signed checkpoint of its head: a changed, removed or re-ordered event is named here, and so are events removed from the end since the checkpoint."</p>
                <ActionResult value=verify_result/>
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match status.await {
                            Err(error) => view! { <ErrorBox error/> }.into_any(),
                            Ok(s) => status_view(s, verify),
                        }
                    })}
                </Transition>
            </section>
        }.into_any()/>
    }
}

fn event_view(d: AuditEventDetail) -> AnyView {
    let e = d.event;
    let id = e.id;
    let run = run_of_subject(&e.subject);
    view! {
        <Title text=format!("Audit event {id} · Recovery Portal")/>
        <section class="card">
            <p class="event-links">
                <a href="/audit">"← Audit trail"</a>
                {(id > 1).then(|| view! { <a href=format!("/audit/events/{}", id - 1)>"← previous event"</a> })}
                {d.next.map(|n| view! { <a href=format!("/audit/events/{n}")>"next event →"</a> })}
            </p>
            <h1>{format!("Audit event {id}")}</h1>
            <table class="fields"><tbody>
                <tr><th scope="row">"Time"</th><td>{e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}</td></tr>
                <tr><th scope="row">"Actor"</th><td>{e.actor.clone()}</td></tr>
                <tr><th scope="row">"Action"</th><td><code>{e.action.clone()}</code></td></tr>
                <tr><th scope="row">"Subject"</th><td>
                    {e.subject.clone()}
                    {run.map(|r| view! { " · " <a href=format!("/runs/{r}")>"the run"</a> " · " <a href=format!("/runs/{r}/report")>"its report"</a> " · " <a href=format!("/audit?run={r}")>"its trail"</a> })}
                </td></tr>
                <tr><th scope="row">"Hash"</th><td><code data-testid="event-hash">{e.hash.clone()}</code></td></tr>
                <tr><th scope="row">"Previous hash"</th><td><code>{e.prev_hash.clone()}</code></td></tr>
                <tr><th scope="row">"Hash recomputed"</th>
                    <td class=if d.hash_matches { "good" } else { "bad" } data-testid="event-hash-check">
                        {if d.hash_matches { "matches the stored hash" } else { "DOES NOT match the stored hash: the event was altered" }}
                    </td></tr>
                <tr><th scope="row">"Link"</th>
                    {match d.linked {
                        Some(true) => view! { <td class="good">{if id == 1 { "the first event, linked to the genesis hash" } else { "its previous hash is the stored hash of the event before it" }}</td> }.into_any(),
                        Some(false) => view! { <td class="bad">"its previous hash is NOT the hash of the event before it"</td> }.into_any(),
                        None => view! { <td class="bad">"the event before it is missing"</td> }.into_any(),
                    }}
                </tr>
            </tbody></table>
            <h2>"Details"</h2>
            <pre class="action">{e.details.clone()}</pre>
        </section>
    }
    .into_any()
}

/// `/audit/events/:id`
#[component]
pub fn AuditEventPage() -> impl IntoView {
    let params = use_params_map();
    let event = Resource::new(
        move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()),
        |id| async move {
            match id {
                Some(id) => show_audit_event(id).await,
                None => Err(AppError::NotFound("There is no such audit event.".into())),
            }
        },
    );
    view! {
        <Guarded view=move |_me: Me| view! {
            <Transition fallback=|| view! { <p class="loading">"Loading the event…"</p> }>
                {move || Suspend::new(async move {
                    match event.await {
                        Err(error) => view! { <section class="card"><ErrorBox error/></section> }.into_any(),
                        Ok(d) => event_view(d),
                    }
                })}
            </Transition>
        }.into_any()/>
    }
}
