//! Messages shown after an action.

use crate::error::AppError;
use leptos::prelude::*;

/// Shows the outcome of a server action: its error in red, or `success` when it
/// succeeded. Announced to screen readers.
#[component]
pub fn ActionResult<T, S>(
    value: S,
    #[prop(into, optional)] success: Option<String>,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(e)) => {
            Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any())
        }
        Some(Ok(_)) => success
            .clone()
            .map(|s| view! { <p class="notice ok" role="status">{s}</p> }.into_any()),
        None => None,
    }
}

/// A block that shows an error that prevented a page from loading.
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    view! { <p class="notice error" role="alert">{error.to_string()}</p> }
}
