//! Audit (auditor, supervisor, admin): the trail, newest first, filtered by actor
//! and action, paginated by id.

use crate::api::audit::list_audit_events;
use crate::components::guard::Guarded;
use crate::components::notice::ErrorBox;
use crate::error::AppError;
use crate::model::audit::{AuditAction, AuditEventView, AuditPage as AuditEvents};
use crate::model::user::Me;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

fn event_row(e: AuditEventView) -> impl IntoView {
    view! {
        <tr>
            <td data-label="#">{e.id}</td>
            <td data-label="Time">{e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</td>
            <td data-label="Actor">{e.actor}</td>
            <td data-label="Action"><code>{e.action}</code></td>
            <td data-label="Subject">{e.subject}</td>
            <td data-label="Details">
                <details>
                    <summary>"details"</summary>
                    <pre>{e.details}</pre>
                    <p class="hash">"hash " <code>{e.hash}</code></p>
                    <p class="hash">"previous " <code>{e.prev_hash}</code></p>
                </details>
            </td>
        </tr>
    }
}

fn query_param(query: Memo<ParamsMap>, key: &str) -> Option<String> {
    query.read().get(key).filter(|v| !v.is_empty())
}

fn audit_page(query: Memo<ParamsMap>, events: Resource<Result<AuditEvents, AppError>>) -> AnyView {
    let param = move |k: &str| query_param(query, k);
    let older_link = move |before: i64| {
        let mut href = format!("/audit?before={before}");
        if let Some(a) = param("actor") {
            href.push_str(&format!("&actor={}", urlencode(&a)));
        }
        if let Some(a) = param("action") {
            href.push_str(&format!("&action={}", urlencode(&a)));
        }
        href
    };
    view! {
        <Title text="Audit · Recovery Portal"/>
        <section class="card">
            <h1>"Audit trail"</h1>
            <Form method="GET" action="/audit" attr:class="filters">
                <div>
                    <label for="actor">"Actor"</label>
                    <input id="actor" name="actor" type="text" prop:value=move || param("actor").unwrap_or_default() placeholder="e.g. admin"/>
                </div>
                <div>
                    <label for="action">"Action"</label>
                    <select id="action" name="action">
                        <option value="" selected=move || param("action").is_none()>"any action"</option>
                        {["auth.", "user.", "portal.", "run.", "step.", "approval.", "site."].into_iter().map(|prefix| view! {
                            <option value=prefix selected=move || param("action").as_deref() == Some(prefix)>{format!("{prefix}*")}</option>
                        }).collect_view()}
                        {AuditAction::ALL.into_iter().map(|a| view! {
                            <option value=a.as_str() selected=move || param("action").as_deref() == Some(a.as_str())>{a.as_str()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="filter-buttons">
                    <button type="submit">"Filter"</button>
                    <a href="/audit" class="button secondary">"Clear"</a>
                </div>
            </Form>
            <Transition fallback=|| view! { <p class="loading">"Loading events…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(page) if page.events.is_empty() => view! { <p>"No events match."</p> }.into_any(),
                        Ok(page) => view! {
                            <table class="data audit-table">
                                <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Subject"</th><th>"Details"</th></tr></thead>
                                <tbody>{page.events.into_iter().map(event_row).collect_view()}</tbody>
                            </table>
                            <nav class="pager" aria-label="Pages">
                                <a href="/audit">"Newest"</a>
                                {page.next_before.map(|b| view! { <a href=older_link(b) rel="next">"Older events →"</a> })}
                            </nav>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/audit`
///
/// The resource is created before the guard suspends, so that server and browser
/// create it in the same order (hydration depends on it).
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let events = Resource::new(
        move || {
            (
                query_param(query, "actor"),
                query_param(query, "action"),
                query_param(query, "before").and_then(|b| b.parse::<i64>().ok()),
            )
        },
        |(actor, action, before)| list_audit_events(actor, action, before),
    );
    view! { <Guarded view=move |_me: Me| audit_page(query, events)/> }
}
