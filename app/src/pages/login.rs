//! The sign-in page.

use crate::app::AuthContext;
use crate::components::notice::ActionResult;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// `/login`
#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    // Only works once the page is hydrated: the Playwright suite uses it to prove
    // that the client took over.
    let show_password = RwSignal::new(false);
    let pending = auth.sign_in.pending();
    view! {
        <Title text="Sign in · Recovery Portal"/>
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <p class="muted">"Recovery Portal guides CPS cluster recoveries step by step. Sign in with the account an administrator gave you."</p>
            <ActionForm action=auth.sign_in attr:class="stack">
                <label for="username">"Username"</label>
                <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" required autofocus/>
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type=move || if show_password.get() { "text" } else { "password" }
                    autocomplete="current-password"
                    required
                />
                <label class="checkbox" for="show-password">
                    <input
                        id="show-password"
                        type="checkbox"
                        prop:checked=move || show_password.get()
                        on:change=move |ev| show_password.set(event_target_checked(&ev))
                    />
                    "Show password"
                </label>
                <input type="hidden" name="next" value=next/>
                <button type="submit" disabled=move || pending.get()>"Sign in"</button>
            </ActionForm>
            <ActionResult value=auth.sign_in.value()/>
        </section>
    }
}
