//! Following a stream of `changed` events (`/api/approvals/live`,
//! `/api/audit/live`): each event
//! bumps a counter that resources reload on. When the stream breaks for good (an
//! error answer, which browsers do not retry), a new one is tried after a pause.

use leptos::prelude::*;

/// Bumps `reload` on every `changed` event of `url` while the current owner lives.
#[cfg(feature = "hydrate")]
pub fn follow_changes(url: impl Into<String>, reload: RwSignal<u32>) {
    let url: String = url.into();
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let owner = Owner::current();
    let Ok(source) = web_sys::EventSource::new(&url) else {
        return;
    };
    let on_changed =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_e: web_sys::MessageEvent| {
            reload.update(|n| *n += 1);
        });
    let closed = StoredValue::new(false);
    let on_error = {
        let source = source.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
            if source.ready_state() == web_sys::EventSource::CLOSED && !closed.get_value() {
                closed.set_value(true);
                let owner = owner.clone();
                let url = url.clone();
                set_timeout(
                    move || {
                        if let Some(owner) = owner.filter(|_| !closed.is_disposed()) {
                            owner.with(|| follow_changes(url, reload));
                        }
                    },
                    std::time::Duration::from_secs(3),
                );
            }
        })
    };
    let _ = source.add_event_listener_with_callback("changed", on_changed.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
    let handle = StoredValue::new_local(Some((source, on_changed, on_error)));
    on_cleanup(move || {
        closed.set_value(true);
        if let Some(Some((source, _, _))) = handle.try_update_value(|h| h.take()) {
            source.close();
        }
    });
}

/// Without a browser there is nothing to follow.
#[cfg(not(feature = "hydrate"))]
pub fn follow_changes(_url: impl Into<String>, _reload: RwSignal<u32>) {}
