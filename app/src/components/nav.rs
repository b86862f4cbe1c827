//! The top bar: where the user can go, who they are, and signing out.

use crate::api::approvals::count_approvals;
use crate::api::users::count_notices;
use crate::app::AuthContext;
use crate::components::live::follow_changes;
use crate::model::user::Me;
use crate::model::Permission;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::A;

/// The navigation bar. Links a role cannot use are not shown (the server refuses
/// them anyway).
#[component]
pub fn NavBar() -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    // The count of requests the user could decide, kept live. A plain signal set
    // by an effect (effects run only in the browser), so server rendering and
    // hydration agree (no badge at first) and no suspense waits for it.
    let reload = RwSignal::new(0u32);
    let count = RwSignal::new(0i64);
    Effect::new(move |following: Option<bool>| {
        if following == Some(true) {
            return true;
        }
        match auth.me.get() {
            Some(Ok(Some(me)))
                if me.role.permits(Permission::ApproveDestructiveSteps)
                    && !me.must_change_password =>
            {
                follow_changes("/api/approvals/live", reload);
                true
            }
            _ => false,
        }
    });
    Effect::new(move |_| {
        reload.get();
        leptos::task::spawn_local(async move {
            if let Ok(n) = count_approvals().await {
                count.set(n);
            }
        });
    });
    // Admins: how many changes other admins made that they have not seen.
    let notices = RwSignal::new(0i64);
    Effect::new(move |_| {
        if let Some(Ok(Some(me))) = auth.me.get() {
            if me.role.permits(Permission::ManageUsers) && !me.must_change_password {
                leptos::task::spawn_local(async move {
                    if let Ok(n) = count_notices().await {
                        notices.set(n);
                    }
                });
            }
        }
    });
    let notice_badge = move || {
        let n = notices.get();
        (n > 0).then(|| view! { <span class="count-badge" data-testid="notices-count" aria-label=format!("{n} security notices")>{n}</span> })
    };
    let badge = move || {
        let n = count.get();
        (n > 0).then(|| view! { <span class="count-badge" data-testid="approvals-count" aria-label=format!("{n} waiting")>{n}</span> })
    };
    let links = move |me: Me| {
        let usable = !me.must_change_password;
        view! {
            <ul class="nav-links">
                {usable.then(|| view! { <li><A href="/">"Home"</A></li> })}
                {(usable && me.role.permits(Permission::RunRecoveries))
                    .then(|| view! { <li><A href="/runbooks">"Runbooks"</A></li> })}
                {(usable && me.role.permits(Permission::ViewRuns))
                    .then(|| view! { <li><A href="/runs">"Runs"</A></li> })}
                {(usable && me.role.permits(Permission::ApproveDestructiveSteps))
                    .then(|| view! { <li><A href="/approvals">"Approvals" {badge}</A></li> })}
                {(usable && me.role.permits(Permission::ReadAudit))
                    .then(|| view! { <li><A href="/audit">"Audit"</A></li> })}
                {(usable && me.role.permits(Permission::ManageUsers))
                    .then(|| view! { <li><A href="/users">"Users" {notice_badge}</A></li> })}
                {(usable && me.role.permits(Permission::ManageSites))
                    .then(|| view! { <li><A href="/sites">"Sites"</A></li> })}
                <li><A href="/account">"Account"</A></li>
            </ul>
            <div class="nav-user">
                <span class="who" data-testid="signed-in-as">
                    {me.username.clone()}
                    <span class="role-badge">{me.role.as_str()}</span>
                </span>
                <ActionForm action=auth.sign_out attr:class="inline">
                    <button type="submit" class="link-button">"Sign out"</button>
                </ActionForm>
            </div>
        }
    };
    view! {
        <header class="topbar">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <a class="brand" href="/">"Recovery Portal"</a>
            <nav aria-label="Main">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match auth.me.await {
                            Ok(Some(me)) => Some(links(me)),
                            _ => None,
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}
