//! The application shell, the routes, and the signed-in user shared by all pages.

use crate::api::auth::{current_user, ChangePassword, SignIn, SignOut};
use crate::components::nav::NavBar;
use crate::error::AppError;
use crate::model::user::Me;
use crate::pages::{
    AccountPage, ApprovalsPage, AuditEventPage, AuditPage, HomePage, LoginPage, NotFound, RunPage,
    RunReportPage, RunbookPage, RunbooksPage, RunsPage, SitesPage, UsersPage, VerifyChainPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The signed-in user and the actions that change who that is.
#[derive(Clone, Copy)]
pub struct AuthContext {
    /// Reloaded whenever one of the actions below completes.
    pub me: Resource<Result<Option<Me>, AppError>>,
    pub sign_in: ServerAction<SignIn>,
    pub sign_out: ServerAction<SignOut>,
    pub change_password: ServerAction<ChangePassword>,
}

/// After signing in or out the page is loaded anew, so no state of the previous
/// session survives in the browser.
fn reload_at(path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

/// The application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let sign_in = ServerAction::<SignIn>::new();
    let sign_out = ServerAction::<SignOut>::new();
    let change_password = ServerAction::<ChangePassword>::new();
    let me = Resource::new(
        move || {
            (
                sign_in.version().get(),
                sign_out.version().get(),
                change_password.version().get(),
            )
        },
        |_| current_user(),
    );
    provide_context(AuthContext {
        me,
        sign_in,
        sign_out,
        change_password,
    });

    // Effects run only in the browser, once the page is hydrated: the marker tells
    // browser tests (and anyone curious) that the client has taken over.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(next)) = sign_in.value().get() {
            reload_at(&next);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = sign_out.value().get() {
            reload_at("/login");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/recovery-portal.css"/>
        <Title text="Recovery Portal"/>
        <Router>
            <NavBar/>
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=HomePage/>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/account") view=AccountPage/>
                    <Route path=path!("/users") view=UsersPage/>
                    <Route path=path!("/audit") view=AuditPage/>
                    <Route path=path!("/audit/verify") view=VerifyChainPage/>
                    <Route path=path!("/audit/events/:id") view=AuditEventPage/>
                    <Route path=path!("/runbooks") view=RunbooksPage/>
                    <Route path=path!("/runbooks/:id") view=RunbookPage/>
                    <Route path=path!("/runs") view=RunsPage/>
                    <Route path=path!("/runs/:id") view=RunPage/>
                    <Route path=path!("/runs/:id/report") view=RunReportPage/>
                    <Route path=path!("/sites") view=SitesPage/>
                    <Route path=path!("/approvals") view=ApprovalsPage/>
                </Routes>
            </main>
        </Router>
    }
}
