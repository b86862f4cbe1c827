//! Answers that depend on how a server function was called.

use leptos::prelude::use_context;

/// Sets the HTTP status of the response being built (a server function's answer or
/// a rendered page). Does nothing outside a request.
pub fn set_status(code: u16) {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
}

/// Sends a browser that submitted a plain HTML form (JavaScript not yet loaded or
/// off) to `path` with a 303. Calls from the hydrated app are left alone: the app
/// navigates itself, and a redirect there would break reading the result.
pub fn redirect_plain_form(path: &str) {
    let (Some(request), Some(response)) = (
        use_context::<http::request::Parts>(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let plain_form = request
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if plain_form {
        if let Ok(location) = http::HeaderValue::from_str(path) {
            set_status(303);
            response.insert_header(http::header::LOCATION, location);
        }
    }
}
