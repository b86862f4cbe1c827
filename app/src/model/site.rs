//! Sites as the admin page shows them: hosts, trusted host keys, keys the portal
//! was shown and does not trust yet, and the lab's faults.

use serde::{Deserialize, Serialize};

/// A site with everything the admin page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDetail {
    pub name: String,
    pub description: String,
    pub jump_host: String,
    pub hosts: Vec<HostView>,
    /// Trusted host keys: (known_hosts line, fingerprint, where it comes from).
    pub trusted: Vec<TrustedKeyView>,
    /// Keys presented by hosts that the site does not trust (yet).
    pub unconfirmed: Vec<SightingView>,
}

/// A VM of a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub via_jump: bool,
}

/// A trusted host key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKeyView {
    pub hosts: String,
    pub fingerprint: String,
    /// `file` (the site's known_hosts file), `import` or `confirmed`.
    pub source: String,
}

/// A host key the portal was shown and refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SightingView {
    pub host: String,
    pub fingerprint: String,
    /// `unknown` or `changed`: a changed key may be an attack.
    pub verdict: String,
    /// RFC 3339.
    pub seen_at: String,
}

/// A fault of the lab and whether it is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultView {
    /// As the CLI writes it (`host-down:qns01`).
    pub name: String,
    pub description: String,
    pub on: bool,
}

/// The sites page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitesOverview {
    pub sites: Vec<SiteDetail>,
    /// The lab's faults, when the portal serves the lab.
    pub lab_faults: Option<Vec<FaultView>>,
    /// Break-glass settings, by site.
    pub break_glass: std::collections::BTreeMap<String, super::approval::BreakGlassView>,
}
