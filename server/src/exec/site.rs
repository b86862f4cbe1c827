//! Sites: the hosts of one CPS cluster and how to reach them, from a TOML file.
//!
//! ```toml
//! [[sites]]
//! name = "fra1"
//! description = "Frankfurt, Ultra-M pod 1"
//! user = "cps"                            # default login for every host
//! key = "fra1/id_ed25519"                 # relative to the sites file
//! key_passphrase_env = "FRA1_KEY_PASS"    # optional: where the passphrase is (never in the file)
//! # agent = true                          # instead of key: the identities of the ssh-agent at
//! # agent_socket = "/run/portal/agent"    #   SSH_AUTH_SOCK, or at agent_socket (optional)
//! known_hosts = "fra1/known_hosts"        # the host keys to trust (OpenSSH format)
//! jump_host = "cluman"                    # internal hosts are reached through it (ssh -J)
//! cloud = "fra1"                          # its OpenStack: a cloud of clouds.yaml (optional)
//! clouds_file = "fra1/clouds.yaml"        # optional; else OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
//!                                         #   ~/.config/openstack/, /etc/openstack/
//!
//! [[sites.hosts]]
//! name = "cluman"
//! address = "10.10.1.5"
//! port = 22                               # default 22
//!
//! [[sites.hosts]]
//! name = "pcrfclient01"
//! address = "172.16.2.20"                 # as seen from the jump host
//! ```

use super::known_hosts::KnownHosts;
use super::openstack::cloud;
use super::openstack::session::Session;
use super::ssh::{load_key, Connection, Connector, Credentials, Endpoint, SshError};
use runbook::hosts::KNOWN_HOSTS;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sites: Vec<RawSite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    #[serde(default)]
    description: String,
    user: String,
    key: Option<String>,
    key_passphrase_env: Option<String>,
    #[serde(default)]
    agent: bool,
    agent_socket: Option<String>,
    known_hosts: String,
    jump_host: String,
    cloud: Option<String>,
    clouds_file: Option<String>,
    hosts: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    address: String,
    port: Option<u16>,
    user: Option<String>,
}

/// A VM of a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteHost {
    pub endpoint: Endpoint,
    /// Reached through the jump host (every host but the jump host itself).
    pub via_jump: bool,
}

/// How a site's hosts are logged into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteAuth {
    /// A key file, with its passphrase in an environment variable if it has one.
    Key {
        path: PathBuf,
        passphrase_env: Option<String>,
    },
    /// The identities of the ssh-agent at `socket`, or at `SSH_AUTH_SOCK` when `None`.
    Agent { socket: Option<PathBuf> },
}

/// A site as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    pub description: String,
    pub jump_host: String,
    pub hosts: Vec<SiteHost>,
    pub auth: SiteAuth,
    pub known_hosts_path: PathBuf,
    /// The site's OpenStack cloud, when its OpenStack steps run from the portal.
    pub cloud: Option<SiteCloud>,
}

/// Which cloud of which `clouds.yaml` a site's OpenStack steps use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteCloud {
    pub name: String,
    /// Else the standard locations.
    pub clouds_file: Option<PathBuf>,
}

/// A problem with the sites file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SiteError {
    pub file: String,
    pub message: String,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Reads a sites file's text; relative key and known_hosts paths are taken from `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Vec<Site>, Vec<SiteError>> {
    let err = |message: String| SiteError {
        file: file.to_string(),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| {
            let before = &text[..s.start.min(text.len())];
            format!("line {}: ", before.matches('\n').count() + 1)
        });
        vec![err(format!("{}{}", at.unwrap_or_default(), e.message()))]
    })?;
    let mut errors = Vec::new();
    let mut sites: Vec<Site> = Vec::new();
    for s in raw.sites {
        let label = format!("site {:?}", s.name);
        if !valid_name(&s.name) {
            errors.push(err(format!(
                "{label}: the name must be lower-case letters, digits, '-' and '_'"
            )));
        }
        if sites.iter().any(|o| o.name == s.name) {
            errors.push(err(format!("{label} is defined twice")));
        }
        let mut hosts: Vec<SiteHost> = Vec::new();
        for h in s.hosts {
            if !valid_name(&h.name) {
                errors.push(err(format!(
                    "{label}: host name {:?} must be lower-case letters, digits, '-' and '_'",
                    h.name
                )));
            }
            if hosts.iter().any(|o| o.endpoint.name == h.name) {
                errors.push(err(format!("{label}: host {:?} is defined twice", h.name)));
            }
            if h.address.trim().is_empty() || h.address.contains(char::is_whitespace) {
                errors.push(err(format!(
                    "{label}: host {:?} needs an address without spaces",
                    h.name
                )));
            }
            if h.port == Some(0) {
                errors.push(err(format!(
                    "{label}: host {:?}: port 0 is not a port",
                    h.name
                )));
            }
            hosts.push(SiteHost {
                via_jump: h.name != s.jump_host,
                endpoint: Endpoint {
                    name: h.name,
                    address: h.address.trim().to_string(),
                    port: h.port.unwrap_or(22),
                    user: h.user.unwrap_or_else(|| s.user.clone()),
                },
            });
        }
        if !hosts.iter().any(|h| h.endpoint.name == s.jump_host) {
            errors.push(err(format!(
                "{label}: jump_host {:?} is not one of its hosts",
                s.jump_host
            )));
        }
        let auth = match (s.key, s.agent) {
            (Some(key), false) => {
                if s.agent_socket.is_some() {
                    errors.push(err(format!(
                        "{label}: agent_socket is only for agent = true"
                    )));
                }
                SiteAuth::Key {
                    path: base.join(key),
                    passphrase_env: s.key_passphrase_env,
                }
            }
            (None, true) => {
                if s.key_passphrase_env.is_some() {
                    errors.push(err(format!(
                        "{label}: key_passphrase_env is only for a key file, not for agent = true"
                    )));
                }
                SiteAuth::Agent {
                    socket: s.agent_socket.map(|p| base.join(p)),
                }
            }
            (Some(_), true) => {
                errors.push(err(format!(
                    "{label}: give either key or agent = true, not both"
                )));
                SiteAuth::Agent { socket: None }
            }
            (None, false) => {
                errors.push(err(format!(
                    "{label}: needs key = \"path\" or agent = true"
                )));
                SiteAuth::Agent { socket: None }
            }
        };
        if s.clouds_file.is_some() && s.cloud.is_none() {
            errors.push(err(format!(
                "{label}: clouds_file needs cloud = \"<name of the cloud in it>\""
            )));
        }
        sites.push(Site {
            name: s.name,
            description: s.description,
            jump_host: s.jump_host,
            hosts,
            auth,
            known_hosts_path: base.join(&s.known_hosts),
            cloud: s.cloud.map(|name| SiteCloud {
                name,
                clouds_file: s.clouds_file.map(|f| base.join(f)),
            }),
        });
    }
    if errors.is_empty() {
        Ok(sites)
    } else {
        Err(errors)
    }
}

impl Site {
    /// A session with the site's cloud, if it has one: its clouds.yaml (and the
    /// secure.yaml beside it) is read now, so a mistake stops the portal at start.
    pub fn openstack(
        &self,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Arc<Session>>, SiteError> {
        let Some(c) = &self.cloud else {
            return Ok(None);
        };
        let err = |message: String| SiteError {
            file: format!("site {:?}", self.name),
            message,
        };
        let candidates = match &c.clouds_file {
            Some(f) => vec![f.clone()],
            None => cloud::clouds_yaml_candidates(env),
        };
        let file = candidates.iter().find(|f| f.is_file()).ok_or_else(|| {
            err(format!(
                "cloud {:?}: no clouds.yaml at {}",
                c.name,
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let text =
            std::fs::read_to_string(file).map_err(|e| err(format!("{}: {e}", file.display())))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let secure_path = dir.join("secure.yaml");
        let secure = std::fs::read_to_string(&secure_path).ok();
        let cloud = cloud::from_clouds_yaml(
            &file.display().to_string(),
            &text,
            secure
                .as_deref()
                .map(|t| (secure_path.to_str().unwrap_or("secure.yaml"), t)),
            &c.name,
            dir,
        )
        .map_err(|e| err(e.to_string()))?;
        Session::new(cloud, std::time::Duration::from_secs(60))
            .map(|s| Some(Arc::new(s)))
            .map_err(|e| err(e.to_string()))
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&SiteHost> {
        self.hosts.iter().find(|h| h.endpoint.name == name)
    }

    /// Host names that runbooks use but this site does not define (their steps
    /// cannot run here).
    pub fn missing_runbook_hosts(&self) -> Vec<&'static str> {
        KNOWN_HOSTS
            .iter()
            .copied()
            .filter(|n| self.host(n).is_none())
            .collect()
    }

    /// Reads the site's key (with the passphrase from its environment variable)
    /// and trusted host keys, and makes a connector from them. A site using the
    /// ssh-agent reaches it only when it connects (a missing agent fails the step).
    pub fn connector(&self) -> Result<Connector, SiteError> {
        let err = |message: String| SiteError {
            file: self.name.clone(),
            message,
        };
        let credentials = match &self.auth {
            SiteAuth::Key {
                path,
                passphrase_env,
            } => {
                let passphrase = match passphrase_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        err(format!("the key passphrase variable {var} is not set"))
                    })?),
                    None => None,
                };
                let key = load_key(path, passphrase.as_deref()).map_err(|e| err(e.to_string()))?;
                Credentials::Key(Arc::new(key))
            }
            SiteAuth::Agent { socket } => Credentials::Agent {
                socket: socket.clone(),
            },
        };
        let known = self.known_hosts()?;
        Ok(Connector::with_credentials(credentials, known).for_site(&self.name))
    }

    /// The host keys of the site's known_hosts file.
    pub fn known_hosts(&self) -> Result<KnownHosts, SiteError> {
        let err = |message: String| SiteError {
            file: self.name.clone(),
            message,
        };
        let text = std::fs::read_to_string(&self.known_hosts_path).map_err(|e| {
            err(format!(
                "cannot read {}: {e}",
                self.known_hosts_path.display()
            ))
        })?;
        KnownHosts::parse(&text)
            .map_err(|e| err(format!("{}: {e}", self.known_hosts_path.display())))
    }
}

/// The connections of one run to one site: one per host, opened on first use and
/// reused; internal hosts through the jump host.
pub struct SiteSession {
    site: Arc<Site>,
    connector: Connector,
    open: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl SiteSession {
    /// A session that has not connected yet.
    pub fn new(site: Arc<Site>, connector: Connector) -> Self {
        Self {
            site,
            connector,
            open: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The name of the site.
    pub fn site_name(&self) -> &str {
        &self.site.name
    }

    /// Drops the connection to `host` (after it failed), so the next use reconnects.
    pub async fn forget(&self, host: &str) {
        self.open.lock().await.remove(host);
    }

    /// The connection to `host`, opening it (and the jump host's) if needed.
    pub async fn connection(&self, host: &str) -> Result<Arc<Connection>, SshError> {
        let mut open = self.open.lock().await;
        // A connection that ended (a rebooted VM, a broken network) is replaced.
        open.retain(|_, c| !c.is_closed());
        if let Some(c) = open.get(host) {
            return Ok(c.clone());
        }
        let target = self.site.host(host).ok_or_else(|| SshError::Connect {
            host: host.to_string(),
            address: "-".into(),
            message: format!("site {} has no host {host:?}", self.site.name),
        })?;
        let conn = if target.via_jump {
            let jump_name = self.site.jump_host.clone();
            let jump = match open.get(&jump_name) {
                Some(j) => j.clone(),
                None => {
                    let jump_host =
                        self.site
                            .host(&jump_name)
                            .ok_or_else(|| SshError::Connect {
                                host: jump_name.clone(),
                                address: "-".into(),
                                message: "the jump host is not defined".into(),
                            })?;
                    let j = Arc::new(self.connector.connect(&jump_host.endpoint).await?);
                    open.insert(jump_name, j.clone());
                    j
                }
            };
            Arc::new(self.connector.connect_via(&jump, &target.endpoint).await?)
        } else {
            Arc::new(self.connector.connect(&target.endpoint).await?)
        };
        open.insert(host.to_string(), conn.clone());
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[sites]]
name = "fra1"
user = "cps"
key = "fra1/id_ed25519"
known_hosts = "fra1/known_hosts"
jump_host = "cluman"

[[sites.hosts]]
name = "cluman"
address = "10.10.1.5"

[[sites.hosts]]
name = "pcrfclient01"
address = "172.16.2.20"
port = 2222
user = "root"
"#;

    #[test]
    fn a_site_is_read_with_defaults_and_routes() {
        let sites = parse("sites.toml", GOOD, Path::new("/etc/portal")).unwrap();
        let fra1 = &sites[0];
        assert_eq!(
            fra1.auth,
            SiteAuth::Key {
                path: PathBuf::from("/etc/portal/fra1/id_ed25519"),
                passphrase_env: None
            }
        );
        let cluman = fra1.host("cluman").unwrap();
        assert_eq!(
            (
                cluman.endpoint.port,
                cluman.endpoint.user.as_str(),
                cluman.via_jump
            ),
            (22, "cps", false)
        );
        let p1 = fra1.host("pcrfclient01").unwrap();
        assert_eq!(
            (p1.endpoint.port, p1.endpoint.user.as_str(), p1.via_jump),
            (2222, "root", true)
        );
        assert!(fra1.missing_runbook_hosts().contains(&"qns01"));
    }

    #[test]
    fn mistakes_are_named() {
        let bad = GOOD
            .replace("jump_host = \"cluman\"", "jump_host = \"ospd\"")
            .replace("port = 2222", "port = 0");
        let errors = parse("sites.toml", &bad, Path::new(".")).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.contains(
                &"sites.toml: site \"fra1\": jump_host \"ospd\" is not one of its hosts"
                    .to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("port 0 is not a port")),
            "{text:?}"
        );
        let unknown = parse(
            "sites.toml",
            &GOOD.replace("user = \"cps\"", "usr = \"cps\""),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            unknown[0].message.contains("unknown field `usr`"),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_site_uses_either_a_key_file_or_the_agent() {
        let agent = GOOD.replace("key = \"fra1/id_ed25519\"", "agent = true");
        let sites = parse("sites.toml", &agent, Path::new("/etc/portal")).unwrap();
        assert_eq!(sites[0].auth, SiteAuth::Agent { socket: None });

        let socket = GOOD.replace(
            "key = \"fra1/id_ed25519\"",
            "agent = true\nagent_socket = \"run/agent.sock\"",
        );
        let sites = parse("sites.toml", &socket, Path::new("/etc/portal")).unwrap();
        assert_eq!(
            sites[0].auth,
            SiteAuth::Agent {
                socket: Some(PathBuf::from("/etc/portal/run/agent.sock"))
            }
        );

        let messages = |text: &str| -> Vec<String> {
            parse("sites.toml", text, Path::new("."))
                .unwrap_err()
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let both = GOOD.replace(
            "key = \"fra1/id_ed25519\"",
            "key = \"fra1/id_ed25519\"\nagent = true",
        );
        assert_eq!(
            messages(&both),
            ["sites.toml: site \"fra1\": give either key or agent = true, not both"]
        );
        let neither = GOOD.replace("key = \"fra1/id_ed25519\"\n", "");
        assert_eq!(
            messages(&neither),
            ["sites.toml: site \"fra1\": needs key = \"path\" or agent = true"]
        );
        let off = GOOD.replace("key = \"fra1/id_ed25519\"", "agent = false");
        assert_eq!(
            messages(&off),
            ["sites.toml: site \"fra1\": needs key = \"path\" or agent = true"]
        );
        let stray_socket = GOOD.replace(
            "key = \"fra1/id_ed25519\"",
            "key = \"fra1/id_ed25519\"\nagent_socket = \"agent.sock\"",
        );
        assert!(
            messages(&stray_socket)[0].contains("agent_socket is only for agent = true"),
            "{:?}",
            messages(&stray_socket)
        );
        let stray_passphrase =
            agent.replace("agent = true", "agent = true\nkey_passphrase_env = \"P\"");
        assert!(
            messages(&stray_passphrase)[0].contains("key_passphrase_env is only for a key file"),
            "{:?}",
            messages(&stray_passphrase)
        );
    }
}
