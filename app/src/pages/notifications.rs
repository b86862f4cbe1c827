//! The approval notifications section of `/sites` (admins): each site's webhooks
//! and e-mail recipients, forms to add them (each mistake shown at its field),
//! and the latest deliveries with their state, attempts and last error.

use crate::api::notifications::{get_notifications, AddEmail, AddWebhook, RemoveChannel};
use crate::components::notice::{ActionResult, ErrorBox};
use crate::components::when;
use crate::error::AppError;
use crate::model::notification::{
    ChannelKind, ChannelView, DeliveryState, DeliveryView, NotificationsOverview,
};
use leptos::form::ActionForm;
use leptos::prelude::*;

fn field_error(error: Option<AppError>, field: &str) -> Option<String> {
    match error? {
        AppError::Fields(fields) => fields.into_iter().find(|(f, _)| f == field).map(|(_, m)| m),
        AppError::Invalid { field: f, message } if f == field => Some(message),
        _ => None,
    }
}

/// The message under a field, when the last submission was wrong there.
fn at_field(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        field_error(error.get(), field)
            .map(|m| view! { <small class="field-error" role="alert">{m}</small> })
    }
}

/// Errors that are not about one field (a site that does not exist, a role).
fn not_at_a_field(error: Signal<Option<AppError>>) -> impl IntoView {
    move || match error.get() {
        Some(AppError::Fields(_)) | Some(AppError::Invalid { .. }) | None => None,
        Some(e) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }),
    }
}

fn site_select(sites: Vec<String>, id: &'static str) -> impl IntoView {
    view! {
        <select id=id name="site" required>
            {sites.into_iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
        </select>
    }
}

fn channel_row(c: ChannelView, remove: ServerAction<RemoveChannel>) -> impl IntoView {
    let kind = match c.kind {
        ChannelKind::Webhook => "webhook",
        ChannelKind::Email => "e-mail",
    };
    view! {
        <tr data-channel=c.id.to_string()>
            <td data-label="Site">{c.site.clone()}</td>
            <td data-label="Kind">{kind}</td>
            <td data-label="Target"><code>{c.target.clone()}</code></td>
            <td data-label="Secret">{c.secret_hint.clone().map(|h| view! { <code title="Only the last characters are ever shown">{h}</code> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"—"</span> }.into_any())}</td>
            <td data-label="Added">{format!("{} by {}", when(&c.added_at), c.added_by)}</td>
            <td>
                <ActionForm action=remove attr:class="inline">
                    <input type="hidden" name="id" value=c.id.to_string()/>
                    <button type="submit" class="secondary">"Remove"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

fn state_label(d: &DeliveryView) -> &'static str {
    match d.state {
        DeliveryState::Pending if d.attempts == 0 => "queued",
        DeliveryState::Pending => "retrying",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::Cancelled => "cancelled",
    }
}

fn delivery_row(d: DeliveryView, max_attempts: u32) -> impl IntoView {
    let class = match d.state {
        DeliveryState::Failed => "delivery failed",
        DeliveryState::Pending if d.attempts > 0 => "delivery retrying",
        _ => "delivery",
    };
    let next = match (&d.next_attempt_at, &d.finished_at) {
        (Some(next), _) => format!("next attempt {}", when(next)),
        (None, Some(done)) => when(done),
        (None, None) => String::new(),
    };
    view! {
        <tr class=class data-delivery=d.id.to_string() data-state=d.state.as_str()>
            <td data-label="#">{d.id}</td>
            <td data-label="Request">{format!("approval #{} of ", d.approval_id)}<a href=format!("/runs/{}", d.run_id)>{format!("run #{}", d.run_id)}</a>{format!(" · {}", d.site)}</td>
            <td data-label="To"><code>{d.target.clone()}</code></td>
            <td data-label="State"><span class=format!("delivery-state state-{}", d.state.as_str())>{state_label(&d)}</span></td>
            <td data-label="Attempts">{format!("{} of {max_attempts}", d.attempts)}</td>
            <td data-label="When">{next}</td>
            <td data-label="Last error">{d.last_error.clone().unwrap_or_default()}</td>
        </tr>
    }
}

fn section(
    o: NotificationsOverview,
    add_webhook: ServerAction<AddWebhook>,
    add_email: ServerAction<AddEmail>,
    remove: ServerAction<RemoveChannel>,
) -> impl IntoView {
    let webhook_error = Signal::derive(move || add_webhook.value().get().and_then(Result::err));
    let email_error = Signal::derive(move || add_email.value().get().and_then(Result::err));
    let no_sites = o.sites.is_empty();
    let (webhook_sites, email_sites) = (o.sites.clone(), o.sites.clone());
    let max_attempts = o.max_attempts;
    let counts_class = if o.failed > 0 {
        "notice error"
    } else {
        "muted"
    };
    view! {
        <p>
            {match o.smtp_relay.clone() {
                Some(relay) => view! { <span>"E-mails go through " <code>{relay}</code> "."</span> }.into_any(),
                None => view! { <span class="notice warn">"No SMTP relay is configured: e-mail recipients are not reached until PORTAL_SMTP_URL is set (see README)."</span> }.into_any(),
            }}
        </p>
        <h3>"Channels"</h3>
        {if o.channels.is_empty() {
            view! { <p class="muted">"No site notifies anyone yet."</p> }.into_any()
        } else {
            view! {
                <table class="data notification-channels">
                    <thead><tr><th>"Site"</th><th>"Kind"</th><th>"Webhook URL or address"</th><th>"Secret"</th><th>"Added"</th><th></th></tr></thead>
                    <tbody>{o.channels.into_iter().map(|c| channel_row(c, remove)).collect_view()}</tbody>
                </table>
            }.into_any()
        }}
        {(!no_sites).then(move || view! {
            <div class="notification-forms">
                <ActionForm action=add_webhook attr:class="stack">
                    <h3>"Add a webhook"</h3>
                    <label for="webhook-site">"Site"</label>
                    {site_select(webhook_sites, "webhook-site")}
                    <label for="webhook-url">"URL"</label>
                    <input id="webhook-url" name="url" type="url" required placeholder="https://chat.example.net/hooks/portal"/>
                    {at_field(webhook_error, "url")}
                    <label for="webhook-secret">"Secret (at least 16 characters)"</label>
                    <input id="webhook-secret" name="secret" type="password" required autocomplete="off" minlength="16"/>
                    {at_field(webhook_error, "secret")}
                    <small class="muted">"The receiver checks " <code>"X-Portal-Signature: sha256=…"</code> ", the HMAC-SHA256 of the body under this secret. It is never shown again, only its last characters."</small>
                    {not_at_a_field(webhook_error)}
                    <button type="submit">"Add the webhook"</button>
                </ActionForm>
                <ActionForm action=add_email attr:class="stack">
                    <h3>"Add an e-mail recipient"</h3>
                    <label for="email-site">"Site"</label>
                    {site_select(email_sites, "email-site")}
                    <label for="email-address">"Address"</label>
                    <input id="email-address" name="address" type="email" required placeholder="oncall@example.net"/>
                    {at_field(email_error, "address")}
                    {not_at_a_field(email_error)}
                    <button type="submit">"Add the recipient"</button>
                </ActionForm>
            </div>
        })}
        <h3>"Deliveries"</h3>
        <p data-testid="delivery-counts" class=counts_class>
            {format!("{} failed for good, {} waiting for an attempt. Each delivery gets {max_attempts} attempts, the wait doubling after each failure.", o.failed, o.pending)}
        </p>
        {if o.deliveries.is_empty() {
            view! { <p class="muted">"Nothing was sent yet."</p> }.into_any()
        } else {
            view! {
                <table class="data notification-deliveries">
                    <thead><tr><th>"#"</th><th>"Request"</th><th>"To"</th><th>"State"</th><th>"Attempts"</th><th>"When"</th><th>"Last error"</th></tr></thead>
                    <tbody>{o.deliveries.into_iter().map(|d| delivery_row(d, max_attempts)).collect_view()}</tbody>
                </table>
            }.into_any()
        }}
    }
}

/// The section, with its own data and actions.
#[component]
pub fn NotificationsSection() -> impl IntoView {
    let add_webhook = ServerAction::<AddWebhook>::new();
    let add_email = ServerAction::<AddEmail>::new();
    let remove = ServerAction::<RemoveChannel>::new();
    let overview = Resource::new(
        move || {
            (
                add_webhook.version().get(),
                add_email.version().get(),
                remove.version().get(),
            )
        },
        |_| get_notifications(),
    );
    view! {
        <section class="card notifications" id="notifications">
            <h2>"Approval notifications"</h2>
            <p class="muted">"Every request for approval is sent to each channel of its site: a signed JSON POST to each webhook, an e-mail to each recipient, with the step, host, exact action and its hash, the requester's justification and a link to the approvals page. Failed deliveries are tried again; a run never waits for them."</p>
            // Mistakes in the forms are shown at their fields, below.
            {move || matches!(add_webhook.value().get(), Some(Ok(_))).then(|| view! { <p class="notice ok" role="status">"The webhook is added."</p> })}
            {move || matches!(add_email.value().get(), Some(Ok(_))).then(|| view! { <p class="notice ok" role="status">"The recipient is added."</p> })}
            <ActionResult value=remove.value() success="The channel is removed; what it still had to deliver is cancelled."/>
            <button type="button" class="secondary" on:click=move |_| overview.refetch()>"Refresh"</button>
            <Transition fallback=|| view! { <p class="loading">"Loading notifications…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(o) => section(o, add_webhook, add_email, remove).into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
