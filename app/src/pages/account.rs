//! Account: change one's own password.

use crate::app::AuthContext;
use crate::components::guard::Guarded;
use crate::components::notice::ActionResult;
use crate::model::password::MIN_PASSWORD_CHARS;
use crate::model::user::Me;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

fn account(me: Me) -> AnyView {
    let auth = expect_context::<AuthContext>();
    let must_change = me.must_change_password;
    view! {
        <Title text="Account · Recovery Portal"/>
        <section class="card narrow">
            <h1>"Account"</h1>
            <p>"Signed in as " <strong>{me.username.clone()}</strong> " (" {me.role.as_str()} ")."</p>
            {must_change.then(|| view! {
                <p class="notice warn" role="alert" data-testid="must-change">
                    "You must choose a new password before you can use the portal."
                </p>
            })}
            <h2>"Change password"</h2>
            <p class="muted">
                "At least " {MIN_PASSWORD_CHARS} " characters; a few unrelated words are easy to type and hard to guess. Changing it signs you out everywhere else."
            </p>
            <ActionForm action=auth.change_password attr:class="stack">
                <label for="current_password">"Current password"</label>
                <input id="current_password" name="current_password" type="password" autocomplete="current-password" required/>
                <label for="new_password">"New password"</label>
                <input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS required/>
                <label for="confirm_password">"Repeat new password"</label>
                <input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS required/>
                <button type="submit">"Change password"</button>
            </ActionForm>
            <ActionResult value=auth.change_password.value() success="Your password has been changed. Your other sessions have been signed out."/>
            {must_change.then(|| view! { <p class="muted">"After changing it, continue to the " <a href="/">"home page"</a> "."</p> })}
        </section>
    }
    .into_any()
}

/// `/account`
#[component]
pub fn AccountPage() -> impl IntoView {
    view! { <Guarded view=account/> }
}
