//! Client-side counterpart of the server's page guard: what a page shows when the
//! user navigates inside the app. The server checks again on every call.

use crate::app::AuthContext;
use crate::components::notice::ErrorBox;
use crate::model::user::Me;
use crate::pages::{page_access, Forbidden, PageAccess};
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;

/// Renders `view` with the signed-in user if the current path's rule admits them;
/// otherwise leads to sign-in, to Account (pending password change) or shows 403.
#[component]
pub fn Guarded<F>(view: F) -> impl IntoView
where
    F: Fn(Me) -> AnyView + Send + Sync + Clone + 'static,
{
    let auth = expect_context::<AuthContext>();
    let location = use_location();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {
                let view = view.clone();
                move || {
                    let view = view.clone();
                    let path = location.pathname.get_untracked();
                    Suspend::new(async move {
                        match auth.me.await {
                            Err(error) => view! { <ErrorBox error/> }.into_any(),
                            Ok(None) => {
                                let next = format!("/login?next={}", path);
                                view! { <Redirect path=next/> }.into_any()
                            }
                            Ok(Some(me)) => match page_access(&path) {
                                PageAccess::Account => view(me),
                                _ if me.must_change_password => {
                                    view! { <Redirect path="/account"/> }.into_any()
                                }
                                PageAccess::Needs(p) if !me.role.permits(p) => {
                                    view! { <Forbidden/> }.into_any()
                                }
                                _ => view(me),
                            },
                        }
                    })
                }
            }
        </Suspense>
    }
}
