//! The start form of a run: the site and the runbook's typed parameters. The
//! browser checks what it can (required, numbers, dates, choices, patterns) and
//! the server checks everything again; its messages appear at their fields.

use crate::api::runs::{list_sites, StartRun};
use crate::error::AppError;
use crate::model::run_view::SiteView;
use crate::model::runbook::{ParameterView, RunbookDetail};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// A runbook pattern as an HTML `pattern` attribute. Browsers compile it with the
/// `v` flag, where a bare `-` at the end of a class is an error (and the pattern
/// would be ignored), so it is escaped.
fn html_pattern(pattern: &str) -> String {
    pattern.replace("-]", "\\-]")
}

/// The choices of a parameter shown as a list: an enum's values, or a host
/// parameter whose pattern is a plain alternation of names.
fn choices(p: &ParameterView) -> Vec<String> {
    if !p.values.is_empty() {
        return p.values.clone();
    }
    match (&p.pattern, p.kind.as_str()) {
        (Some(pattern), "host")
            if pattern.split('|').all(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }) =>
        {
            pattern.split('|').map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

fn field_error(error: Option<AppError>, field: &str) -> Option<String> {
    match error? {
        AppError::Fields(fields) => fields.into_iter().find(|(f, _)| f == field).map(|(_, m)| m),
        AppError::Invalid { field: f, message } if f == field => Some(message),
        _ => None,
    }
}

fn parameter_input(
    p: ParameterView,
    first_site: Option<String>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("param-{}", p.name);
    let name = format!("params[{}]", p.name);
    let label = if p.label.is_empty() {
        p.name.clone()
    } else {
        p.label.clone()
    };
    let options = choices(&p);
    let default = match (p.default.as_deref(), p.name.as_str()) {
        (Some("today"), _) => String::new(),
        (Some(d), _) => d.to_string(),
        (None, "site") => first_site.unwrap_or_default(),
        _ => String::new(),
    };
    let field = name.clone();
    let message = move || field_error(error.get(), &field);
    let input = if !options.is_empty() {
        let selected = default.clone();
        view! {
            <select id=id.clone() name=name required=p.required>
                {(!p.required).then(|| view! { <option value="">"—"</option> })}
                {options.into_iter().map(|o| {
                    let is = o == selected;
                    view! { <option value=o.clone() selected=is>{o.clone()}</option> }
                }).collect_view()}
            </select>
        }
        .into_any()
    } else {
        let (kind, pattern) = match p.kind.as_str() {
            "integer" => ("number", None),
            "date" => ("date", None),
            _ => ("text", p.pattern.as_deref().map(html_pattern)),
        };
        let placeholder = match p.default.as_deref() {
            Some("today") => "today".to_string(),
            _ => String::new(),
        };
        view! {
            <input id=id.clone() name=name type=kind value=default required=p.required
                pattern=pattern placeholder=placeholder title=p.help.clone() autocomplete="off"/>
        }
        .into_any()
    };
    view! {
        <div class="field" data-field=p.name.clone()>
            <label for=id>{label}{p.required.then_some(" *")}</label>
            {input}
            {(!p.help.is_empty()).then(|| view! { <small class="muted">{p.help.clone()}</small> })}
            {move || message().map(|m| view! { <small class="field-error" role="alert">{m}</small> })}
        </div>
    }
}

/// What the start form needs that must exist before the page suspends (resources
/// created inside a suspended view break hydration): the sites and the action.
#[derive(Clone, Copy)]
pub struct StartRunState {
    pub start: ServerAction<StartRun>,
    pub sites: Resource<Result<Vec<SiteView>, AppError>>,
    /// The server's refusal of the last submission.
    pub error: Signal<Option<AppError>>,
}

impl StartRunState {
    /// Creates them; call at the top of the page component.
    pub fn new() -> Self {
        let start = ServerAction::<StartRun>::new();
        let value = start.value();
        let navigate = use_navigate();
        Effect::new(move |_| {
            if let Some(Ok(id)) = value.get() {
                navigate(&format!("/runs/{id}"), Default::default());
            }
        });
        Self {
            start,
            sites: Resource::new(|| (), |_| list_sites()),
            error: Signal::derive(move || match value.get() {
                Some(Err(e)) => Some(e),
                _ => None,
            }),
        }
    }
}

/// The start form for `rb`.
#[component]
pub fn StartRunForm(rb: RunbookDetail, state: StartRunState) -> impl IntoView {
    let StartRunState {
        start,
        sites,
        error,
    } = state;
    let runbook_id = rb.summary.id.clone();
    let parameters = rb.parameters.clone();
    view! {
        <section class="card" id="start">
            <h2>"Start a run"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading sites…"</p> }>
                {move || {
                    let runbook_id = runbook_id.clone();
                    let parameters = parameters.clone();
                    Suspend::new(async move {
                        let sites = match sites.await {
                            Ok(s) => s,
                            Err(e) => return view! { <p class="notice error">{e.to_string()}</p> }.into_any(),
                        };
                        if sites.is_empty() {
                            return view! { <p class="notice warn">"No site is configured, so no run can be started. An administrator adds sites in the sites file (see README), or starts the portal with the lab."</p> }.into_any();
                        }
                        let first = sites.first().map(|s| s.name.clone());
                        view! {
                            <ActionForm action=start attr:class="stack start-form">
                                <input type="hidden" name="runbook" value=runbook_id/>
                                <div class="field" data-field="site">
                                    <label for="site">"Site *"</label>
                                    <select id="site" name="site" required>
                                        {sites.into_iter().map(|s| view! { <option value=s.name.clone()>{format!("{} {}", s.name, s.description)}</option> }).collect_view()}
                                    </select>
                                    {move || field_error(error.get(), "site").map(|m| view! { <small class="field-error" role="alert">{m}</small> })}
                                </div>
                                {parameters.into_iter().map(|p| parameter_input(p, first.clone(), error)).collect_view()}
                                {move || match error.get() {
                                    Some(AppError::Fields(_)) | None => None,
                                    Some(e) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }),
                                }}
                                <button type="submit" disabled=move || start.pending().get()>"Start the run"</button>
                            </ActionForm>
                        }.into_any()
                    })
                }}
            </Transition>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_survive_the_browsers_v_flag() {
        assert_eq!(html_pattern("[a-z0-9][a-z0-9_-]*"), "[a-z0-9][a-z0-9_\\-]*");
    }

    #[test]
    fn host_alternations_become_choices() {
        let p = ParameterView {
            name: "target".into(),
            label: "VM".into(),
            kind: "host".into(),
            required: false,
            default: Some("cluman".into()),
            pattern: Some("cluman|pcrfclient01".into()),
            values: vec![],
            help: String::new(),
        };
        assert_eq!(choices(&p), ["cluman", "pcrfclient01"]);
        let free = ParameterView {
            pattern: Some("qns0[1-4]".into()),
            ..p
        };
        assert!(choices(&free).is_empty());
    }
}
