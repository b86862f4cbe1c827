//! Readable 403 and 404 pages.

use leptos::prelude::*;
use leptos_meta::Title;

/// Shown when the signed-in user's role does not allow the page.
#[component]
pub fn Forbidden() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::ssr::respond::set_status(403);
    view! {
        <Title text="Not allowed · Recovery Portal"/>
        <section class="error-page">
            <h1>"403 · Not allowed"</h1>
            <p>"Your role does not give access to this page. If you need it, ask an administrator to change your role."</p>
            <p><a href="/">"Back to the home page"</a></p>
        </section>
    }
}

/// Shown for a path that is not a page of the portal.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::ssr::respond::set_status(404);
    view! {
        <Title text="Not found · Recovery Portal"/>
        <section class="error-page">
            <h1>"404 · Page not found"</h1>
            <p>"There is no page at this address. Check the link, or start again from the home page."</p>
            <p><a href="/">"Back to the home page"</a></p>
        </section>
    }
}
