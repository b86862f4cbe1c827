//! `/sites` (admins): each site's hosts and trusted host keys, keys the portal was
//! shown and refused (to confirm after comparing the fingerprint with the site),
//! an import of OpenSSH known_hosts lines, the lab's faults, and approval
//! notifications (`super::notifications`).

use super::notifications::NotificationsSection;
use crate::api::approvals::SetBreakGlass;
use crate::api::sites::{get_sites, ConfirmHostKey, DefineSite, ImportKnownHosts, SetLabFault};
use crate::components::guard::Guarded;
use crate::components::notice::{ActionResult, ErrorBox};
use crate::components::when;
use crate::model::approval::BreakGlassView;
use crate::model::site::{FaultView, SiteDetail};
use crate::model::user::Me;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[derive(Clone, Copy)]
struct Actions {
    import: ServerAction<ImportKnownHosts>,
    confirm: ServerAction<ConfirmHostKey>,
    fault: ServerAction<SetLabFault>,
    define: ServerAction<DefineSite>,
    break_glass: ServerAction<SetBreakGlass>,
}

fn break_glass_form(site: String, current: Option<BreakGlassView>, a: Actions) -> impl IntoView {
    let on = current.as_ref().is_some_and(|b| b.enabled);
    view! {
        <div class=if on { "break-glass-setting break-glass" } else { "break-glass-setting" } data-break-glass=if on { "on" } else { "off" }>
            <h3>"Break-glass mode"</h3>
            {match current {
                Some(b) => view! { <p class=if b.enabled { "notice break-glass" } else { "muted" }>
                    {match (b.enabled, &b.until) {
                        (true, Some(until)) => format!("ON since {} by {} until {} (it then switches itself off): {}", when(&b.changed_at), b.changed_by, when(until), b.reason),
                        (false, Some(until)) => format!("Off: switched itself off at {} (switched on at {} by {}: {})", when(until), when(&b.changed_at), b.changed_by, b.reason),
                        (enabled, None) => format!("{} since {} by {}: {}", if enabled { "ON" } else { "Off" }, when(&b.changed_at), b.changed_by, b.reason),
                    }}
                </p> }.into_any(),
                None => view! { <p class="muted">"Off (never switched on)."</p> }.into_any(),
            }}
            <p class="muted">"While it is on, a supervisor may approve their own request for a destructive step on this site, with a written reason. Such approvals are shown in red everywhere, and audited. It switches itself off after the time the portal is configured for (break_glass_minutes, 60 by default)."</p>
            <ActionForm action=a.break_glass attr:class="inline">
                <input type="hidden" name="site" value=site/>
                {(!on).then(|| view! { <input type="hidden" name="enabled" value="true"/> })}
                <label>"Reason * " <input name="reason" type="text" required placeholder=if on { "Why it can be switched off" } else { "The emergency" }/></label>
                <button type="submit" class=if on { "secondary" } else { "danger" }>{if on { "Switch off" } else { "Switch on" }}</button>
            </ActionForm>
        </div>
    }
}

fn site_card(s: SiteDetail, break_glass: Option<BreakGlassView>, a: Actions) -> impl IntoView {
    let name = s.name.clone();
    let bg_site = s.name.clone();
    let site_name = s.name.clone();
    let textarea_id = format!("kh-{}", s.name);
    view! {
        <section class="card" data-site=s.name.clone()>
            <h2>{format!("Site {}", s.name)}</h2>
            <p class="muted">{s.description.clone()}" · jump host " <code>{s.jump_host.clone()}</code></p>
            <table class="data">
                <thead><tr><th>"Host"</th><th>"Address"</th><th>"User"</th><th>"Route"</th></tr></thead>
                <tbody>{s.hosts.into_iter().map(|h| view! {
                    <tr><td data-label="Host"><code>{h.name}</code></td><td data-label="Address">{format!("{}:{}", h.address, h.port)}</td>
                    <td data-label="User">{h.user}</td><td data-label="Route">{if h.via_jump { "through the jump host" } else { "direct" }}</td></tr>
                }).collect_view()}</tbody>
            </table>
            {break_glass_form(bg_site, break_glass, a)}
            <h3>"Host keys presented but not trusted"</h3>
            {if s.unconfirmed.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! {
                    <p>"Compare each fingerprint with the one the site's team reads on the VM (" <code>"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"</code> ") before confirming it."</p>
                    <table class="data unconfirmed">
                        <thead><tr><th>"Host"</th><th>"Fingerprint"</th><th>"Seen"</th><th></th></tr></thead>
                        <tbody>{s.unconfirmed.into_iter().map(|k| {
                            let name = name.clone();
                            let changed = k.verdict == "changed";
                            view! {
                                <tr class=if changed { "changed" } else { "" }>
                                    <td data-label="Host"><code>{k.host.clone()}</code>{changed.then(|| view! { <strong class="danger-text">" CHANGED"</strong> })}</td>
                                    <td data-label="Fingerprint"><code>{k.fingerprint.clone()}</code></td>
                                    <td data-label="Seen">{when(&k.seen_at)}</td>
                                    <td>
                                        <ActionForm action=a.confirm attr:class="inline">
                                            <input type="hidden" name="site" value=name.clone()/>
                                            <input type="hidden" name="host" value=k.host.clone()/>
                                            <input type="hidden" name="fingerprint" value=k.fingerprint.clone()/>
                                            <button type="submit" class=if changed { "danger" } else { "secondary" }>"Trust this key"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
            <h3>"Trusted host keys"</h3>
            <table class="data trusted">
                <thead><tr><th>"Hosts"</th><th>"Fingerprint"</th><th>"From"</th></tr></thead>
                <tbody>{s.trusted.into_iter().map(|k| view! {
                    <tr><td data-label="Hosts"><code>{k.hosts}</code></td><td data-label="Fingerprint"><code>{k.fingerprint}</code></td><td data-label="From">{k.source}</td></tr>
                }).collect_view()}</tbody>
            </table>
            <ActionForm action=a.import attr:class="stack">
                <input type="hidden" name="site" value=site_name/>
                <label for=textarea_id.clone()>"Import known_hosts lines"</label>
                <textarea id=textarea_id name="known_hosts" rows="4" required
                    placeholder="[10.10.1.5]:22 ssh-ed25519 AAAAC3Nza…"></textarea>
                <button type="submit" class="secondary">"Trust these keys"</button>
            </ActionForm>
        </section>
    }
}

fn fault_row(f: FaultView, a: Actions) -> impl IntoView {
    let fault_name = f.name.clone();
    view! {
        <tr data-fault=f.name.clone()>
            <td data-label="Fault"><code>{f.name.clone()}</code></td>
            <td data-label="Effect">{f.description}</td>
            <td data-label="State"><span class=if f.on { "status-off" } else { "status-on" }>{if f.on { "on" } else { "off" }}</span></td>
            <td>
                <ActionForm action=a.fault attr:class="inline">
                    <input type="hidden" name="fault" value=fault_name/>
                    <input type="hidden" name="on" value=(!f.on).to_string()/>
                    <button type="submit" class=if f.on { "secondary" } else { "danger" }>{if f.on { "Switch off" } else { "Switch on" }}</button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// `/sites`
#[component]
pub fn SitesPage() -> impl IntoView {
    let actions = Actions {
        import: ServerAction::new(),
        confirm: ServerAction::new(),
        fault: ServerAction::new(),
        define: ServerAction::new(),
        break_glass: ServerAction::new(),
    };
    let break_glass_result = actions.break_glass.value();
    let define_result = actions.define.value();
    let import_result = actions.import.value();
    let confirm_result = actions.confirm.value();
    let fault_result = actions.fault.value();
    let overview = Resource::new(
        move || {
            (
                actions.import.version().get(),
                actions.confirm.version().get(),
                actions.fault.version().get(),
                actions.define.version().get(),
                actions.break_glass.version().get(),
            )
        },
        |_| get_sites(),
    );
    view! {
        <Guarded view=move |_me: Me| view! {
            <Title text="Sites · Recovery Portal"/>
            <section class="card">
                <h1>"Sites"</h1>
                <p class="muted">"Sites come from the sites file (see README) and, with " <code>"serve --lab"</code> ", the built-in lab. A step whose host presents a key that is not trusted stops before any command is sent; its key appears here."</p>
                <ActionResult value=import_result success="The host keys are trusted."/>
                <ActionResult value=confirm_result success="The host key is trusted."/>
                <ActionResult value=fault_result/>
                <ActionResult value=break_glass_result success="Break-glass mode changed."/>
            </section>
            <section class="card">
                <h2>"Add a site"</h2>
                <p class="muted">"One " <code>"[[sites]]"</code> " block in the sites file's format (see README): name, user, key or " <code>"agent = true"</code> ", known_hosts, jump host and its hosts. Paths are read on the portal's server, relative to the sites file's directory. It is checked like the file, kept in the database and audited."</p>
                <ActionForm action=actions.define attr:class="stack">
                    <label for="site-definition">"Definition"</label>
                    <textarea id="site-definition" name="definition" rows="10" required
                        placeholder="[[sites]]\nname = \"fra1\"\nuser = \"root\"\nkey = \"fra1/id_ed25519\"\nknown_hosts = \"fra1/known_hosts\"\njump_host = \"cluman\"\n\n[[sites.hosts]]\nname = \"cluman\"\naddress = \"10.10.1.5\""></textarea>
                    <button type="submit">"Add the site"</button>
                </ActionForm>
                <ActionResult value=define_result success="The site is added."/>
            </section>
            <NotificationsSection/>
            <Transition fallback=|| view! { <p class="loading">"Loading sites…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                        Ok(o) => view! {
                            {o.lab_faults.map(|faults| view! {
                                <section class="card lab-faults">
                                    <h2>"Lab faults"</h2>
                                    <p class="muted">"Rehearse what goes wrong: each fault changes what the lab's VMs answer until it is switched off."</p>
                                    <table class="data">
                                        <thead><tr><th>"Fault"</th><th>"Effect"</th><th>"State"</th><th></th></tr></thead>
                                        <tbody>{faults.into_iter().map(|f| fault_row(f, actions)).collect_view()}</tbody>
                                    </table>
                                </section>
                            })}
                            {if o.sites.is_empty() {
                                view! { <section class="card"><p class="notice warn">"No site is configured."</p></section> }.into_any()
                            } else {
                                let mut bg = o.break_glass;
                                o.sites.into_iter().map(|s| {
                                    let b = bg.remove(&s.name);
                                    site_card(s, b, actions)
                                }).collect_view().into_any()
                            }}
                        }.into_any(),
                    }
                })}
            </Transition>
        }.into_any()/>
    }
}
