//! The executor as the admin page sees it: sites, trusted and refused host keys,
//! trusting more keys, and the lab's faults.

use super::executor::{SiteEntry, SiteExecutor};
use super::known_hosts::KnownHosts;
use super::site::{self, Site};
use app::model::site::{FaultView, HostView, SightingView, SiteDetail, TrustedKeyView};
use app::ssr::sites::{CheckedLine, SiteDirectory};
use lab::{Fault, OpenStackFault};
use std::path::{Component, Path};

/// The faults the page always lists; any other active one is listed too.
const LISTED_FAULTS: [&str; 6] = [
    "replica-set-unhealthy",
    "svn-not-synced",
    "command-hangs:diagnostics.sh",
    "host-down:qns01",
    "host-down:cluman",
    "host-key-changed:pcrfclient01",
];

fn fault_description(f: &Fault) -> String {
    match f {
        Fault::ReplicaSetUnhealthy => "a sessionmgr member is RECOVERING: diagnostics fail".into(),
        Fault::SvnNotSynced => "the SVN repositories of pcrfclient01 and 02 are out of sync".into(),
        Fault::HostKeyChanged { host } => format!("{host} presents another host key"),
        Fault::CommandHangs { pattern } => {
            format!("commands containing {pattern:?} print a line, then hang")
        }
        Fault::HostDown { host } => format!("{host} refuses connections"),
    }
}

fn openstack_fault_description(f: &OpenStackFault) -> String {
    match f {
        OpenStackFault::SnapshotKilled => "the next snapshot ends with its image killed".into(),
        OpenStackFault::ServerError { host } => {
            format!("the server of {host} goes to ERROR on its next action")
        }
        OpenStackFault::DownloadDrops => {
            "image downloads drop the connection halfway (a resume completes)".into()
        }
        OpenStackFault::TokenExpired => "the tokens issued so far are refused (401)".into(),
        OpenStackFault::OverQuota => "creating an image or a server is over quota (413)".into(),
    }
}

/// Whether `path` lies inside `dir`: no `..` on the way, and, when it exists,
/// not a link that leads out.
fn inside(dir: &Path, path: &Path) -> bool {
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return false;
    }
    let real_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !path.starts_with(dir) && !path.starts_with(&real_dir) {
        return false;
    }
    path.canonicalize()
        .map(|real| real.starts_with(&real_dir))
        .unwrap_or(true)
}

/// Refuses a site defined in the portal whose key, known hosts, agent socket or
/// clouds.yaml lies outside `secrets`: an admin could otherwise give a new site
/// another site's key or cloud credentials (or any file the portal can read).
/// Checked before any file is opened, and in words that say nothing of whether
/// the file exists.
fn files_inside(site: &Site, secrets: &Path) -> Result<(), String> {
    let mut files: Vec<(&str, &Path)> = vec![("known_hosts", &site.known_hosts_path)];
    match &site.auth {
        site::SiteAuth::Key { path, .. } => files.push(("key", path)),
        site::SiteAuth::Agent { socket: Some(s) } => files.push(("agent_socket", s)),
        site::SiteAuth::Agent { socket: None } => {}
    }
    if let Some(f) = site.cloud.as_ref().and_then(|c| c.clouds_file.as_ref()) {
        files.push(("clouds_file", f));
    }
    let outside: Vec<String> = files
        .into_iter()
        .filter(|(_, path)| !inside(secrets, path))
        .map(|(field, path)| format!("{field} {:?}", path.display().to_string()))
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "site {:?}: {} must be inside the directory for site secrets ({}, set by site_secrets_dir); sites defined in the portal use only files there",
            site.name,
            outside.join(" and "),
            secrets.display()
        ))
    }
}

/// The one site of a definition typed in the portal, its files inside `secrets`.
fn one_site(definition: &str, base: &Path, secrets: &Path) -> Result<Site, String> {
    let mut sites = site::parse("the definition", definition, base).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    match (sites.pop(), sites.is_empty()) {
        (Some(site), true) => {
            files_inside(&site, secrets)?;
            Ok(site)
        }
        (None, _) => Err("the definition holds no [[sites]] block".into()),
        (Some(_), false) => {
            Err("define one site at a time: the definition holds several [[sites]] blocks".into())
        }
    }
}

/// The keys an entry trusts: its file's and those added in the portal.
fn trusted_keys(entry: &SiteEntry) -> KnownHosts {
    let mut known = entry.file_keys.clone();
    for (line, _) in &entry.added {
        if let Ok(k) = KnownHosts::parse(line) {
            known.extend(k);
        }
    }
    known
}

impl SiteDirectory for SiteExecutor {
    fn sites(&self) -> Vec<SiteDetail> {
        let sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites
            .values()
            .map(|e| {
                let mut trusted: Vec<TrustedKeyView> = e
                    .file_keys
                    .describe()
                    .into_iter()
                    .map(|(hosts, fingerprint)| TrustedKeyView {
                        hosts,
                        fingerprint,
                        source: "file".into(),
                    })
                    .collect();
                for (line, source) in &e.added {
                    if let Ok(k) = KnownHosts::parse(line) {
                        trusted.extend(k.describe().into_iter().map(|(hosts, fingerprint)| {
                            TrustedKeyView {
                                hosts,
                                fingerprint,
                                source: source.clone(),
                            }
                        }));
                    }
                }
                SiteDetail {
                    name: e.site.name.clone(),
                    description: e.site.description.clone(),
                    jump_host: e.site.jump_host.clone(),
                    hosts: e
                        .site
                        .hosts
                        .iter()
                        .map(|h| HostView {
                            name: h.endpoint.name.clone(),
                            address: h.endpoint.address.clone(),
                            port: h.endpoint.port,
                            user: h.endpoint.user.clone(),
                            via_jump: h.via_jump,
                        })
                        .collect(),
                    trusted,
                    unconfirmed: e
                        .refused
                        .iter()
                        .rev()
                        .map(|r| SightingView {
                            host: r.host.clone(),
                            fingerprint: r.fingerprint.clone(),
                            verdict: r.verdict.into(),
                            seen_at: r.seen_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn has_site(&self, name: &str) -> bool {
        self.sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    fn check_known_hosts(&self, text: &str) -> Result<Vec<CheckedLine>, String> {
        KnownHosts::entry_lines(text)
            .map(|lines| {
                lines
                    .into_iter()
                    .map(|(line, fingerprint)| CheckedLine { line, fingerprint })
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    fn trust(&self, site: &str, lines: &[(String, String)]) -> Result<(), String> {
        {
            let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
            let entry = sites
                .get_mut(site)
                .ok_or_else(|| format!("site {site:?} is not configured"))?;
            for (line, source) in lines {
                KnownHosts::parse(line).map_err(|e| e.to_string())?;
                if !entry.added.iter().any(|(l, _)| l == line) {
                    entry.added.push((line.clone(), source.clone()));
                }
            }
            let known = trusted_keys(entry);
            let now_trusted: Vec<String> = known.describe().into_iter().map(|(_, f)| f).collect();
            entry
                .refused
                .retain(|r| !now_trusted.contains(&r.fingerprint));
            entry.connector = entry.connector.trusting(known);
        }
        // Runs reconnect with the new trust on their next step.
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.site_name() != site);
        Ok(())
    }

    fn refused_key(&self, site: &str, host: &str, fingerprint: &str) -> Option<String> {
        let sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites.get(site).and_then(|e| {
            e.refused
                .iter()
                .find(|r| r.host == host && r.fingerprint == fingerprint)
                .map(|r| r.line.clone())
        })
    }

    fn check_site(&self, definition: &str) -> Result<String, String> {
        let site = one_site(definition, &self.base, self.secrets_dir())?;
        site.connector().map_err(|e| e.message)?;
        site.known_hosts().map_err(|e| e.message)?;
        Ok(site.name)
    }

    fn add_site(&self, definition: &str) -> Result<(), String> {
        let site = one_site(definition, &self.base, self.secrets_dir())?;
        self.add(site).map_err(|e| e.message)
    }

    fn lab_faults(&self) -> Option<Vec<FaultView>> {
        let faults = self.lab.as_ref()?;
        let active = faults.active();
        let mut listed: Vec<Fault> = LISTED_FAULTS
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect();
        for f in &active {
            if !listed.contains(f) {
                listed.push(f.clone());
            }
        }
        let mut views: Vec<FaultView> = listed
            .into_iter()
            .map(|f| FaultView {
                name: f.to_string(),
                description: fault_description(&f),
                on: active.contains(&f),
            })
            .collect();
        let cloud_active = faults.active_openstack();
        let mut cloud: Vec<OpenStackFault> = [
            OpenStackFault::SnapshotKilled,
            OpenStackFault::DownloadDrops,
            OpenStackFault::TokenExpired,
            OpenStackFault::OverQuota,
            OpenStackFault::ServerError {
                host: "pcrfclient01".into(),
            },
        ]
        .into_iter()
        .collect();
        for f in &cloud_active {
            if !cloud.contains(f) {
                cloud.push(f.clone());
            }
        }
        views.extend(cloud.into_iter().map(|f| FaultView {
            name: f.to_string(),
            description: openstack_fault_description(&f),
            on: cloud_active.contains(&f),
        }));
        Some(views)
    }

    fn set_lab_fault(&self, fault: &str, on: bool) -> Result<(), String> {
        let faults = self
            .lab
            .as_ref()
            .ok_or_else(|| "the portal does not serve the lab".to_string())?;
        // A fault of the VMs, or of the lab's OpenStack.
        faults
            .set_named(fault.trim(), on)
            .map_err(|e: lab::faults::ParseFaultError| e.to_string())
    }
}
