//! The home page: who is signed in and what their role can do here.

use crate::components::guard::Guarded;
use crate::model::user::Me;
use crate::model::{Permission, Role};
use leptos::prelude::*;
use leptos_meta::Title;

fn role_summary(role: Role) -> &'static str {
    match role {
        Role::Operator => "You run recovery procedures on CPS sites. Destructive steps wait for a supervisor's approval.",
        Role::Supervisor => "You run recovery procedures and approve destructive steps that other users request.",
        Role::Auditor => "You read the audit trail and run reports. You cannot change anything.",
        Role::Admin => "You manage the portal's users and their roles, and can read the audit trail.",
    }
}

fn home(me: Me) -> AnyView {
    let permissions = me.role.permissions();
    view! {
        <Title text="Home · Recovery Portal"/>
        <section class="card">
            <h1>"Welcome, " {me.username.clone()}</h1>
            <p>"Signed in as " <strong data-testid="home-username">{me.username.clone()}</strong>
               " with the role " <strong data-testid="home-role">{me.role.as_str()}</strong> "."</p>
            <p>{role_summary(me.role)}</p>
            <h2>"What you can do here"</h2>
            <ul class="capabilities">
                {permissions.into_iter().map(|p| {
                    let link = match p {
                        Permission::ManageUsers => Some(("/users", "Open Users")),
                        Permission::ReadAudit => Some(("/audit", "Open the audit trail")),
                        Permission::RunRecoveries => Some(("/runbooks", "Browse the runbooks")),
                        _ => None,
                    };
                    view! {
                        <li>
                            {p.description()}
                            {link.map(|(href, label)| view! { " · " <a href=href>{label}</a> })}
                        </li>
                    }
                }).collect_view()}
                <li>"change your own password · " <a href="/account">"Account"</a></li>
            </ul>
        </section>
    }
    .into_any()
}

/// `/`
#[component]
pub fn HomePage() -> impl IntoView {
    view! { <Guarded view=home/> }
}
