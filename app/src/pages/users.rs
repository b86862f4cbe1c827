//! Users (admin): list, create, disable/enable, reset password, change role,
//! unlock; what other admins changed, and accounts that seem to be one person's.

use crate::api::users::{
    get_users_oversight, list_users, AcknowledgeNotices, ChangeUserRole, CreateUser, DisableUser,
    EnableUser, ResetUserPassword, UnlockUser,
};
use crate::components::guard::Guarded;
use crate::components::notice::{ActionResult, ErrorBox};
use crate::error::AppError;
use crate::model::password::MIN_PASSWORD_CHARS;
use crate::model::user::{Me, UserSummary, UsersOversight};
use crate::model::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

#[derive(Clone, Copy)]
struct UserActions {
    create: ServerAction<CreateUser>,
    disable: ServerAction<DisableUser>,
    enable: ServerAction<EnableUser>,
    reset: ServerAction<ResetUserPassword>,
    role: ServerAction<ChangeUserRole>,
    unlock: ServerAction<UnlockUser>,
    acknowledge: ServerAction<AcknowledgeNotices>,
}

fn user_row(user: UserSummary, me: &str, actions: UserActions) -> impl IntoView {
    let is_me = user.username == me;
    let name = user.username.clone();
    let row_name = name.clone();
    let label_name = name.clone();
    let status = if user.disabled {
        "disabled"
    } else if user.must_change_password {
        "must change password"
    } else {
        "active"
    };
    view! {
        <tr data-username=row_name>
            <td data-label="User">
                <strong>{label_name}</strong>{is_me.then_some(" (you)")}
                {user.display_name.clone().map(|n| view! { <br/><span class="muted">{n}</span> })}
                {user.email.clone().map(|e| view! { <br/><span class="muted">{e}</span> })}
            </td>
            <td data-label="Role">{user.role.as_str()}</td>
            <td data-label="Status"><span class=format!("status status-{}", if user.disabled { "off" } else if user.must_change_password { "warn" } else { "on" })>{status}</span></td>
            <td data-label="Last sign-in">{when(user.last_sign_in_at)}</td>
            <td data-label="Actions" class="row-actions">
                {is_me.then_some(view! { <span class="muted">"Use Account for your own password; another admin changes your role."</span> })}
                {(!is_me).then(move || {
                    let role_id = format!("role-{name}");
                    let role_label = format!("New role for {name}");
                    let reset_id = format!("reset-{name}");
                    let reset_label = format!("Temporary password for {name}");
                    let (n1, n2, n3, n4) = (name.clone(), name.clone(), name.clone(), name.clone());
                    let current_role = user.role;
                    let toggle = if user.disabled {
                        view! {
                            <ActionForm action=actions.enable attr:class="inline">
                                <input type="hidden" name="username" value=n2/>
                                <button type="submit" class="secondary">"Enable"</button>
                            </ActionForm>
                        }.into_any()
                    } else {
                        view! {
                            <ActionForm action=actions.disable attr:class="inline">
                                <input type="hidden" name="username" value=n2/>
                                <button type="submit" class="danger">"Disable"</button>
                            </ActionForm>
                        }.into_any()
                    };
                    view! {
                        <ActionForm action=actions.role attr:class="inline">
                            <input type="hidden" name="username" value=n1/>
                            <label class="sr-only" for=role_id.clone()>{role_label}</label>
                            <select id=role_id name="role">
                                {Role::ALL.into_iter().map(|r| view! {
                                    <option value=r.as_str() selected=r == current_role>{r.as_str()}</option>
                                }).collect_view()}
                            </select>
                            <button type="submit" class="secondary">"Change role"</button>
                        </ActionForm>
                        {toggle}
                        <ActionForm action=actions.reset attr:class="inline">
                            <input type="hidden" name="username" value=n3/>
                            <label class="sr-only" for=reset_id.clone()>{reset_label}</label>
                            <input id=reset_id name="password" type="password" placeholder="temporary password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS required/>
                            <button type="submit" class="secondary">"Reset password"</button>
                        </ActionForm>
                        <ActionForm action=actions.unlock attr:class="inline">
                            <input type="hidden" name="username" value=n4/>
                            <button type="submit" class="secondary" title="Forget this user's failed sign-ins from every address">"Unlock"</button>
                        </ActionForm>
                    }
                })}
            </td>
        </tr>
    }
}

/// Changes other admins made, and accounts that seem to be one person's: what
/// keeps one admin from getting round four eyes unnoticed.
fn oversight_section(o: UsersOversight, acknowledge: ServerAction<AcknowledgeNotices>) -> AnyView {
    let newest = o.notices.first().map(|n| n.event_id).unwrap_or(0);
    let unseen = o.notices.iter().filter(|n| n.unseen).count();
    view! {
        <section class="card oversight" data-testid="oversight">
            <h2>"Separation of duties"</h2>
            {if o.shared.is_empty() {
                view! { <p class="muted">"No admin account shares an e-mail address or display name with a supervisor account."</p> }.into_any()
            } else {
                view! {
                    <div class="notice error" role="alert" data-testid="shared-identities">
                        <p><strong>"One person may hold both an admin and a supervisor account:"</strong></p>
                        <ul>
                            {o.shared.into_iter().map(|s| view! {
                                <li>{format!("admin {} and supervisor {} share the {}", s.admin, s.supervisor, s.shared)}</li>
                            }).collect_view()}
                        </ul>
                        <p>"Such a person can reset, grant and approve alone. Disable one of the accounts, or record why both are needed."</p>
                    </div>
                }.into_any()
            }}
            <h3>"Changes by other admins (last 7 days)"</h3>
            {if o.notices.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! {
                    <ul class="notices" data-testid="notices">
                        {o.notices.into_iter().map(|n| view! {
                            <li class=if n.unseen { "unseen" } else { "seen" }>
                                {n.unseen.then_some(view! { <span class="count-badge">"new"</span>" " })}
                                {format!("{}: {} {}", n.at.format("%Y-%m-%d %H:%M UTC"), n.actor, n.what)}
                                " "<a href=format!("/audit/events/{}", n.event_id)>"(event)"</a>
                            </li>
                        }).collect_view()}
                    </ul>
                    {(unseen > 0).then(|| view! {
                        <ActionForm action=acknowledge attr:class="inline">
                            <input type="hidden" name="up_to" value=newest.to_string()/>
                            <button type="submit" class="secondary">"Mark as seen"</button>
                        </ActionForm>
                    })}
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

fn users_page(
    me: Me,
    actions: UserActions,
    users: Resource<Result<Vec<UserSummary>, AppError>>,
    oversight: Resource<Result<UsersOversight, AppError>>,
) -> AnyView {
    let me_name = me.username.clone();
    view! {
        <Title text="Users · Recovery Portal"/>
        <section class="card">
            <h1>"Users"</h1>
            <ActionResult value=actions.disable.value() success="User disabled; their sessions have ended."/>
            <ActionResult value=actions.enable.value() success="User enabled."/>
            <ActionResult value=actions.reset.value() success="Temporary password set; the user must change it at the next sign-in."/>
            <ActionResult value=actions.role.value() success="Role changed; the user's sessions have ended."/>
            <ActionResult value=actions.unlock.value() success="Unlocked: the user's failed sign-ins are forgotten, so no wait is left for them."/>
            <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
                {
                    let me_name = me_name.clone();
                    move || {
                        let me_name = me_name.clone();
                        Suspend::new(async move {
                            match users.await {
                                Err(error) => view! { <ErrorBox error/> }.into_any(),
                                Ok(list) => view! {
                                    <table class="data users-table">
                                        <thead><tr><th>"User"</th><th>"Role"</th><th>"Status"</th><th>"Last sign-in"</th><th>"Actions"</th></tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|u| user_row(u, &me_name, actions)).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match oversight.await {
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                    Ok(o) => oversight_section(o, actions.acknowledge),
                }
            })}
        </Transition>
        <section class="card narrow">
            <h2>"Create a user"</h2>
            <p class="muted">"The user signs in with this temporary password and must choose their own at once."</p>
            <ActionForm action=actions.create attr:class="stack">
                <label for="new-username">"Username"</label>
                <input id="new-username" name="username" type="text" autocomplete="off" autocapitalize="none" required/>
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">
                    {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                </select>
                <label for="new-password">"Temporary password"</label>
                <input id="new-password" name="password" type="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS required/>
                <label for="new-display-name">"Display name (optional)"</label>
                <input id="new-display-name" name="display_name" type="text" autocomplete="off"/>
                <label for="new-email">"E-mail (optional)"</label>
                <input id="new-email" name="email" type="email" autocomplete="off"/>
                <p class="muted">"With these the portal recognises one person's admin and supervisor accounts."</p>
                <button type="submit">"Create user"</button>
            </ActionForm>
            <ActionResult value=actions.create.value() success="User created."/>
        </section>
    }
    .into_any()
}

/// `/users`
///
/// The actions and the resource are created here, before the guard suspends, so
/// that server and browser create them in the same order (hydration depends on it).
#[component]
pub fn UsersPage() -> impl IntoView {
    let actions = UserActions {
        create: ServerAction::new(),
        disable: ServerAction::new(),
        enable: ServerAction::new(),
        reset: ServerAction::new(),
        role: ServerAction::new(),
        unlock: ServerAction::new(),
        acknowledge: ServerAction::new(),
    };
    let users = Resource::new(
        move || {
            (
                actions.create.version().get(),
                actions.disable.version().get(),
                actions.enable.version().get(),
                actions.reset.version().get(),
                actions.role.version().get(),
            )
        },
        |_| list_users(),
    );
    let oversight = Resource::new(
        move || {
            (
                actions.create.version().get(),
                actions.reset.version().get(),
                actions.role.version().get(),
                actions.acknowledge.version().get(),
            )
        },
        |_| get_users_oversight(),
    );
    view! { <Guarded view=move |me| users_page(me, actions, users, oversight)/> }
}
