//! Audit (auditor, supervisor, admin): the trail, newest first, filtered by time,
//! actor, action, run, site, host and text, paginated by id, with each event's
//! details and chain hashes, links to its page, its run and the run's report,
//! exports of what the filters select (CSV, JSONL with the hashes), and a live
//! tail that shows new events as they are written.

use crate::api::audit::{list_audit_events, refresh_audit_events};
use crate::components::guard::Guarded;
use crate::components::live::follow_changes;
use crate::components::notice::ErrorBox;
use crate::error::AppError;
use crate::model::audit::{run_of_subject, AuditAction, AuditEventView, AuditPage as AuditEvents};
use crate::model::audit_query::{percent_encode, FILTERS};
use crate::model::user::Me;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use std::collections::BTreeMap;

fn event_row(e: AuditEventView) -> impl IntoView {
    let run = run_of_subject(&e.subject);
    view! {
        <tr data-event=e.id>
            <td data-label="#"><a href=format!("/audit/events/{}", e.id)>{e.id}</a></td>
            <td data-label="Time">{e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</td>
            <td data-label="Actor">{e.actor}</td>
            <td data-label="Action"><code>{e.action}</code></td>
            <td data-label="Subject">
                {match run {
                    Some(id) => view! {
                        <a href=format!("/runs/{id}")>{e.subject.clone()}</a>
                        " " <a class="muted" href=format!("/audit?run={id}") title="Every event of this run">"(trail)"</a>
                        " " <a class="muted" href=format!("/runs/{id}/report") title="The run's report">"(report)"</a>
                    }.into_any(),
                    None => view! { {e.subject.clone()} }.into_any(),
                }}
            </td>
            <td data-label="Details">
                <details>
                    <summary>"details"</summary>
                    <pre>{e.details}</pre>
                    <p class="hash">"hash " <code data-testid="event-hash">{e.hash}</code></p>
                    <p class="hash">"previous " <code>{e.prev_hash}</code></p>
                </details>
            </td>
        </tr>
    }
}

fn filters_of(query: &ParamsMap) -> BTreeMap<String, String> {
    FILTERS
        .iter()
        .filter_map(|k| {
            query
                .get(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (k.to_string(), v))
        })
        .collect()
}

fn query_string(filters: &BTreeMap<String, String>) -> String {
    filters
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn text_filter(
    query: Memo<ParamsMap>,
    name: &'static str,
    label: &'static str,
    placeholder: &'static str,
) -> impl IntoView {
    view! {
        <div>
            <label for=name>{label}</label>
            <input id=name name=name type="text" placeholder=placeholder
                prop:value=move || query.read().get(name).unwrap_or_default()/>
        </div>
    }
}

fn audit_page(query: Memo<ParamsMap>, events: Resource<Result<AuditEvents, AppError>>) -> AnyView {
    let action = move || query.read().get("action").unwrap_or_default();
    let tail = move || query.read().get("tail").as_deref() == Some("1");
    let filters = move || filters_of(&query.read());
    let link = move |path: &str, extra: Option<(&str, String)>| {
        let mut q = query_string(&filters());
        if let Some((k, v)) = extra {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&format!("{k}={v}"));
        }
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    };
    view! {
        <Title text="Audit · Recovery Portal"/>
        <section class="card">
            <h1>"Audit trail"</h1>
            <p class="audit-tools">
                {move || if tail() {
                    view! {
                        <span class="live-badge" data-testid="tail-on">"● Live: new events appear as they are written"</span>
                        " " <a href=link("/audit", None)>"Stop the live tail"</a>
                    }.into_any()
                } else {
                    view! { <a href=link("/audit", Some(("tail", "1".into()))) data-testid="tail-start">"Live tail"</a> }.into_any()
                }}
                " · " <a href="/audit/verify" data-testid="open-verify">"Verify the chain"</a>
            </p>
            <Form method="GET" action="/audit" attr:class="filters audit-filters">
                {text_filter(query, "from", "From", "2026-11-27 or 2026-11-27 10:30")}
                {text_filter(query, "until", "Until", "2026-11-28")}
                {text_filter(query, "actor", "Actor", "e.g. olga")}
                <div>
                    <label for="action">"Action"</label>
                    <select id="action" name="action">
                        <option value="" selected=move || action().is_empty()>"any action"</option>
                        {["auth.", "user.", "portal.", "run.", "step.", "approval.", "site.", "audit.", "report.", "notification."].into_iter().map(|prefix| view! {
                            <option value=prefix selected=move || action() == prefix>{format!("{prefix}*")}</option>
                        }).collect_view()}
                        {AuditAction::ALL.into_iter().map(|a| view! {
                            <option value=a.as_str() selected=move || action() == a.as_str()>{a.as_str()}</option>
                        }).collect_view()}
                    </select>
                </div>
                {text_filter(query, "run", "Run", "e.g. 12")}
                {text_filter(query, "site", "Site", "e.g. fra1")}
                {text_filter(query, "host", "Host", "e.g. pcrfclient01")}
                {text_filter(query, "text", "Text in details", "e.g. crontab")}
                {move || tail().then(|| view! { <input type="hidden" name="tail" value="1"/> })}
                <div class="filter-buttons">
                    <button type="submit">"Filter"</button>
                    <a href="/audit" class="button secondary">"Clear"</a>
                </div>
            </Form>
            <p class="exports">
                "Export what the filters select: "
                <a href=move || link("/api/audit/export.csv", None) download data-testid="export-csv">"CSV"</a>
                " · "
                <a href=move || link("/api/audit/export.jsonl", None) download data-testid="export-jsonl">"JSONL with hashes"</a>
                <span class="muted">" (check a JSONL offline with "<code>"recovery-portal audit verify --file"</code>")"</span>
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading events…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(page) if page.events.is_empty() => view! { <p data-testid="no-events">"No events match."</p> }.into_any(),
                        Ok(page) => view! {
                            <table class="data audit-table">
                                <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Subject"</th><th>"Details"</th></tr></thead>
                                <tbody>{page.events.into_iter().map(event_row).collect_view()}</tbody>
                            </table>
                            <nav class="pager" aria-label="Pages">
                                <a href=move || link("/audit", None)>"Newest"</a>
                                {(!tail()).then(|| page.next_before.map(|b| view! { <a href=move || link("/audit", Some(("before", b.to_string()))) rel="next">"Older events →"</a> }))}
                            </nav>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// `/audit`
///
/// The resource is created before the guard suspends, so that server and browser
/// create it in the same order (hydration depends on it).
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let reload = RwSignal::new(0u32);
    let events = Resource::new(
        move || {
            let q = query.read();
            let tail = q.get("tail").as_deref() == Some("1");
            (
                filters_of(&q),
                // A live tail shows the newest page.
                q.get("before")
                    .filter(|_| !tail)
                    .and_then(|b| b.parse::<i64>().ok()),
                reload.get(),
            )
        },
        |(filters, before, n)| async move {
            // Reads after the first are the live tail's, not the person's.
            if n > 0 {
                refresh_audit_events(Some(filters), before).await
            } else {
                list_audit_events(Some(filters), before).await
            }
        },
    );
    // The live tail: the newest page is read again whenever a matching event is
    // written.
    Effect::new(move |_| {
        let q = query.read();
        if q.get("tail").as_deref() == Some("1") {
            let filters = query_string(&filters_of(&q));
            follow_changes(format!("/api/audit/live?{filters}"), reload);
        }
    });
    view! { <Guarded view=move |_me: Me| audit_page(query, events)/> }
}
