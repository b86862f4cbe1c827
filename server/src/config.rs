//! Settings: defaults, overlaid by an optional TOML file, overlaid by environment
//! variables (`PORTAL_<KEY>`; the database also by `DATABASE_URL`, the migration
//! owner's by `MIGRATION_DATABASE_URL`). Every value is
//! checked at start, and a bad one is refused with its key, where it came from and
//! what is expected.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Checked settings.
#[derive(Clone)]
pub struct Settings {
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// The address users reach the portal at; `https` makes session cookies `Secure`.
    pub public_url: Url,
    /// The PostgreSQL connection string; only commands that use the database need it.
    /// The portal serves as this role: it should only read and add audit events.
    pub database_url: Option<DatabaseUrl>,
    /// The role that owns the schema: migrations run as it, and it grants the
    /// runtime role what it needs. None: migrations run as `database_url`.
    pub migration_database_url: Option<DatabaseUrl>,
    /// Serve even when the runtime role could rewrite the audit trail.
    pub allow_owner_role: bool,
    /// The HMAC key that signs checkpoints of the audit chain's head; the
    /// checkpoint file is kept beside it.
    pub audit_key_file: PathBuf,
    /// How often the head is checkpointed while it moves.
    pub audit_checkpoint_seconds: u64,
    /// Minutes of inactivity after which a session ends.
    pub session_idle_minutes: i64,
    /// Hours after sign-in after which a session ends, however active.
    pub session_lifetime_hours: i64,
    /// Seconds an approval of a destructive step stays valid once given.
    pub approval_validity_seconds: i64,
    /// The built site (`target/site`): the wasm bundle, CSS and static files.
    pub site_root: PathBuf,
    /// The directory of runbook files, loaded and checked at start.
    pub runbooks_dir: PathBuf,
    /// The sites file: the clusters' hosts and how to reach them.
    pub sites_file: PathBuf,
    /// Where the key, known hosts, agent socket and clouds.yaml of sites defined
    /// in the portal must be; unset: the sites file's directory.
    pub site_secrets_dir: Option<PathBuf>,
    /// The backup store: where transfer steps keep files taken from the site.
    pub backup_store: PathBuf,
    /// The lab's directory: its host keys and client key, kept between starts.
    pub lab_dir: PathBuf,
    /// Files the portal keeps for itself (the first admin's password when no
    /// terminal shows it).
    pub data_dir: PathBuf,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// The SMTP relay approval e-mails go through; none: no e-mail.
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of approval e-mails.
    pub smtp_from: String,
    /// Attempts a notification gets, the first included.
    pub notify_attempts: u32,
    /// The wait after a notification's first failed attempt, in milliseconds;
    /// it doubles after each further failure.
    pub notify_retry_base_ms: u64,
    /// Seconds a webhook receiver or the SMTP relay has to answer.
    pub notify_timeout_seconds: u64,
    /// Where webhooks may post; empty: anywhere but loopback, link-local and
    /// unspecified addresses.
    pub webhook_allowed_hosts: app::ssr::notify::validate::AllowedHosts,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: app::ssr::client::TrustedProxies,
    /// Minutes a site's break glass stays on once switched on.
    pub break_glass_minutes: i64,
    /// Hours a request for approval may wait for its decisions before it expires.
    pub approval_request_hours: i64,
    /// Audit exports that may run at once (each holds a database connection
    /// while it reads a page).
    pub max_concurrent_exports: usize,
    /// Live event streams (server-sent events) one user may hold open at once.
    pub max_live_streams_per_user: usize,
    /// Output bytes of one step attempt that are stored; the rest is counted
    /// and hashed only.
    pub max_output_bytes_per_attempt: u64,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url.as_str())
            .field("database_url", &self.database_url)
            .field("migration_database_url", &self.migration_database_url)
            .field("allow_owner_role", &self.allow_owner_role)
            .field("audit_key_file", &self.audit_key_file)
            .field("audit_checkpoint_seconds", &self.audit_checkpoint_seconds)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("session_lifetime_hours", &self.session_lifetime_hours)
            .field("approval_validity_seconds", &self.approval_validity_seconds)
            .field("site_root", &self.site_root)
            .field("runbooks_dir", &self.runbooks_dir)
            .field("sites_file", &self.sites_file)
            .field("backup_store", &self.backup_store)
            .field("lab_dir", &self.lab_dir)
            .field("log_format", &self.log_format)
            .field("smtp_url", &self.smtp_url)
            .field("smtp_from", &self.smtp_from)
            .field("notify_attempts", &self.notify_attempts)
            .field("notify_retry_base_ms", &self.notify_retry_base_ms)
            .field("notify_timeout_seconds", &self.notify_timeout_seconds)
            .field("webhook_allowed_hosts", &self.webhook_allowed_hosts)
            .field("site_secrets_dir", &self.site_secrets_dir)
            .field("data_dir", &self.data_dir)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("break_glass_minutes", &self.break_glass_minutes)
            .field("approval_request_hours", &self.approval_request_hours)
            .field("max_concurrent_exports", &self.max_concurrent_exports)
            .field("max_live_streams_per_user", &self.max_live_streams_per_user)
            .field(
                "max_output_bytes_per_attempt",
                &self.max_output_bytes_per_attempt,
            )
            .finish()
    }
}

/// A connection string that may hold a password: never printed whole.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a connection string.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    /// The full string, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The string with any password replaced, for logs and messages.
    pub fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            Err(_) => "(unparseable)".to_string(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An SMTP relay URL that may hold a password: never printed whole.
#[derive(Clone)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The full URL, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&app::ssr::notify::redact_relay(&self.0))
    }
}

/// Default sender of approval e-mails.
pub const DEFAULT_SMTP_FROM: &str = "Recovery Portal <recovery-portal@localhost>";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration key `{key}` (from {origin}): expected {expected}, found {found:?}")]
    BadValue {
        key: String,
        origin: String,
        expected: String,
        found: String,
    },
    #[error("unknown configuration key `{key}` (from {origin}); known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("no database configured: set DATABASE_URL (for example postgres://postgres@127.0.0.1:5432/recovery_portal) or `database_url` in the configuration file")]
    NoDatabase,
}

struct Key {
    name: &'static str,
    expected: &'static str,
}

const KEYS: &[Key] = &[
    Key {
        name: "listen",
        expected: "an address and port such as 127.0.0.1:3000",
    },
    Key {
        name: "public_url",
        expected: "an http:// or https:// URL such as https://portal.example.net",
    },
    Key {
        name: "database_url",
        expected: "a postgres:// or postgresql:// connection URL",
    },
    Key {
        name: "migration_database_url",
        expected: "a postgres:// or postgresql:// connection URL (the role that owns the schema)",
    },
    Key {
        name: "allow_owner_role",
        expected: "`true` or `false`",
    },
    Key {
        name: "audit_key_file",
        expected: "a file path",
    },
    Key {
        name: "audit_checkpoint_seconds",
        expected: "a whole number of seconds from 1 to 86400 (default 60)",
    },
    Key {
        name: "session_idle_minutes",
        expected: "a whole number of minutes from 1 to 1440",
    },
    Key {
        name: "session_lifetime_hours",
        expected: "a whole number of hours from 1 to 168",
    },
    Key {
        name: "approval_validity_seconds",
        expected: "a whole number of seconds from 1 to 86400 (default 900: 15 minutes)",
    },
    Key {
        name: "site_root",
        expected: "a directory path",
    },
    Key {
        name: "runbooks_dir",
        expected: "a directory path",
    },
    Key {
        name: "sites_file",
        expected: "a file path",
    },
    Key {
        name: "site_secrets_dir",
        expected: "a directory path",
    },
    Key {
        name: "backup_store",
        expected: "a directory path",
    },
    Key {
        name: "lab_dir",
        expected: "a directory path",
    },
    Key {
        name: "data_dir",
        expected: "a directory path",
    },
    Key {
        name: "log_format",
        expected: "`text` or `json`",
    },
    Key {
        name: "smtp_url",
        expected: "an SMTP relay URL such as smtp://127.0.0.1:25, smtps://user:password@mail.example.net or smtp://mail.example.net:587?tls=required",
    },
    Key {
        name: "smtp_from",
        expected: "a sender such as Recovery Portal <portal@example.net>",
    },
    Key {
        name: "notify_attempts",
        expected: "a whole number of attempts from 1 to 20 (default 6)",
    },
    Key {
        name: "notify_retry_base_ms",
        expected: "a whole number of milliseconds from 10 to 3600000 (default 30000: the wait after the first failure, doubled after each further one)",
    },
    Key {
        name: "notify_timeout_seconds",
        expected: "a whole number of seconds from 1 to 120 (default 10)",
    },
    Key {
        name: "webhook_allowed_hosts",
        expected: "host names, *.domain patterns, IP addresses or networks (10.0.0.0/8), separated by commas (a list in the file)",
    },
    Key {
        name: "trusted_proxies",
        expected: "IP addresses or CIDR ranges of reverse proxies, comma-separated (or a TOML array), such as 127.0.0.1, 10.0.0.0/24",
    },
    Key {
        name: "break_glass_minutes",
        expected: "a whole number of minutes from 1 to 1440 (default 60)",
    },
    Key {
        name: "approval_request_hours",
        expected: "a whole number of hours from 1 to 168 (default 24)",
    },
    Key {
        name: "max_concurrent_exports",
        expected: "a whole number of exports from 1 to 64 (default 2)",
    },
    Key {
        name: "max_live_streams_per_user",
        expected: "a whole number of streams from 1 to 256 (default 8)",
    },
    Key {
        name: "max_output_bytes_per_attempt",
        expected: "a whole number of bytes from 1024 to 4294967296 (default 67108864: 64 MiB)",
    },
];

/// A raw value and where it came from.
#[derive(Clone, Debug)]
struct Raw {
    value: String,
    origin: String,
}

impl Settings {
    /// Loads settings from the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let text = match file {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: format!("cannot be read: {e}"),
                })?,
            )),
            None => None,
        };
        Self::from_sources(text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), &env)
    }

    /// Builds settings from a file's text (with its path, for messages) and an
    /// environment, without touching the process.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let known = KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
        let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();

        if let Some((path, text)) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.to_string(),
                        message: e.to_string(),
                    })?;
            for (name, value) in table {
                let origin = format!("file {path}");
                let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                    return Err(ConfigError::UnknownKey {
                        key: name,
                        origin,
                        known,
                    });
                };
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Array(items)
                        if items.iter().all(|i| matches!(i, toml::Value::String(_))) =>
                    {
                        items
                            .iter()
                            .filter_map(|i| i.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::BadValue {
                            key: name,
                            origin,
                            expected: key.expected.to_string(),
                            found: other.to_string(),
                        })
                    }
                };
                raw.insert(key.name, Raw { value, origin });
            }
        }
        for (var, value) in env {
            let Some(suffix) = var.strip_prefix("PORTAL_") else {
                continue;
            };
            if suffix == "CONFIG" {
                continue;
            }
            let name = suffix.to_ascii_lowercase();
            let origin = format!("environment variable {var}");
            let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                return Err(ConfigError::UnknownKey {
                    key: var.clone(),
                    origin,
                    known,
                });
            };
            raw.insert(
                key.name,
                Raw {
                    value: value.clone(),
                    origin,
                },
            );
        }
        for (var, key) in [
            ("DATABASE_URL", "database_url"),
            ("MIGRATION_DATABASE_URL", "migration_database_url"),
        ] {
            if let Some(url) = env.get(var) {
                raw.insert(
                    key,
                    Raw {
                        value: url.clone(),
                        origin: format!("environment variable {var}"),
                    },
                );
            }
        }

        let bad = |name: &'static str, r: &Raw| ConfigError::BadValue {
            key: name.to_string(),
            origin: r.origin.clone(),
            expected: KEYS
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.expected)
                .unwrap_or("")
                .to_string(),
            found: r.value.clone(),
        };

        let listen = match raw.get("listen") {
            Some(r) => r
                .value
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| bad("listen", r))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let public_url = match raw.get("public_url") {
            Some(r) => Url::parse(r.value.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| bad("public_url", r))?,
            None => {
                Url::parse(&format!("http://{listen}/")).map_err(|_| ConfigError::BadValue {
                    key: "public_url".into(),
                    origin: "default".into(),
                    expected: "a URL derived from `listen`".into(),
                    found: listen.to_string(),
                })?
            }
        };
        let postgres_url = |name: &'static str| match raw.get(name) {
            Some(r) => {
                let ok = Url::parse(r.value.trim())
                    .map(|u| matches!(u.scheme(), "postgres" | "postgresql"))
                    .unwrap_or(false);
                if !ok {
                    return Err(ConfigError::BadValue {
                        key: name.into(),
                        origin: r.origin.clone(),
                        expected: "a postgres:// or postgresql:// connection URL".into(),
                        found: DatabaseUrl::new(r.value.clone()).redacted(),
                    });
                }
                Ok(Some(DatabaseUrl::new(r.value.trim())))
            }
            None => Ok(None),
        };
        let database_url = postgres_url("database_url")?;
        let migration_database_url = postgres_url("migration_database_url")?;
        let allow_owner_role = match raw.get("allow_owner_role") {
            Some(r) => match r.value.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(bad("allow_owner_role", r)),
            },
            None => false,
        };
        let int_in =
            |name: &'static str, default: i64, range: std::ops::RangeInclusive<i64>| match raw
                .get(name)
            {
                Some(r) => r
                    .value
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|v| range.contains(v))
                    .ok_or_else(|| bad(name, r)),
                None => Ok(default),
            };
        let session_idle_minutes = int_in("session_idle_minutes", 30, 1..=1440)?;
        let session_lifetime_hours = int_in("session_lifetime_hours", 12, 1..=168)?;
        let approval_validity_seconds = int_in("approval_validity_seconds", 900, 1..=86400)?;
        let path = |name: &'static str, default: &str| match raw.get(name) {
            Some(r) if !r.value.trim().is_empty() => Ok(PathBuf::from(r.value.trim())),
            Some(r) => Err(bad(name, r)),
            None => Ok(PathBuf::from(default)),
        };
        let site_root = path("site_root", "target/site")?;
        let runbooks_dir = path("runbooks_dir", "runbooks")?;
        let sites_file = path("sites_file", "sites.toml")?;
        let site_secrets_dir = match raw.get("site_secrets_dir") {
            Some(_) => Some(path("site_secrets_dir", "")?),
            None => None,
        };
        let backup_store = path("backup_store", "backup-store")?;
        let lab_dir = path("lab_dir", ".lab")?;
        let data_dir = path("data_dir", ".data")?;
        let audit_key_file = path("audit_key_file", ".data/audit-checkpoint.key")?;
        let log_format = match raw.get("log_format") {
            Some(r) => match r.value.trim() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(bad("log_format", r)),
            },
            None => LogFormat::Text,
        };
        let smtp_url = match raw.get("smtp_url") {
            Some(r) if r.value.trim().is_empty() => None,
            Some(r) => {
                let text = r.value.trim();
                let scheme_ok = Url::parse(text)
                    .map(|u| {
                        matches!(u.scheme(), "smtp" | "smtps")
                            && u.host_str().is_some_and(|h| !h.is_empty())
                    })
                    .unwrap_or(false);
                if !scheme_ok || app::ssr::notify::email::check_relay(text).is_err() {
                    return Err(ConfigError::BadValue {
                        key: "smtp_url".into(),
                        origin: r.origin.clone(),
                        expected: KEYS
                            .iter()
                            .find(|k| k.name == "smtp_url")
                            .map(|k| k.expected)
                            .unwrap_or("")
                            .to_string(),
                        found: app::ssr::notify::redact_relay(text),
                    });
                }
                Some(SmtpUrl(text.to_string()))
            }
            None => None,
        };
        let smtp_from = match raw.get("smtp_from") {
            Some(r) => {
                app::ssr::notify::email::parse_from(&r.value).map_err(|_| bad("smtp_from", r))?;
                r.value.trim().to_string()
            }
            None => DEFAULT_SMTP_FROM.to_string(),
        };
        let small = |v: i64| u64::try_from(v).unwrap_or(0);
        let notify_attempts = u32::try_from(int_in("notify_attempts", 6, 1..=20)?).unwrap_or(6);
        let notify_retry_base_ms = small(int_in("notify_retry_base_ms", 30_000, 10..=3_600_000)?);
        let notify_timeout_seconds = small(int_in("notify_timeout_seconds", 10, 1..=120)?);
        let webhook_allowed_hosts = match raw.get("webhook_allowed_hosts") {
            Some(r) => {
                app::ssr::notify::validate::AllowedHosts::parse(&r.value).map_err(|why| {
                    ConfigError::BadValue {
                        key: "webhook_allowed_hosts".into(),
                        origin: r.origin.clone(),
                        expected: format!(
                            "{} ({why})",
                            KEYS.iter()
                                .find(|k| k.name == "webhook_allowed_hosts")
                                .map(|k| k.expected)
                                .unwrap_or("")
                        ),
                        found: r.value.clone(),
                    }
                })?
            }
            None => Default::default(),
        };
        let trusted_proxies = match raw.get("trusted_proxies") {
            Some(r) => {
                let entries: Vec<&str> = r
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect();
                app::ssr::client::TrustedProxies::parse(&entries).map_err(|why| {
                    ConfigError::BadValue {
                        key: "trusted_proxies".into(),
                        origin: r.origin.clone(),
                        expected: format!("IP addresses or CIDR ranges, comma-separated ({why})"),
                        found: r.value.clone(),
                    }
                })?
            }
            None => app::ssr::client::TrustedProxies::default(),
        };
        let break_glass_minutes = int_in("break_glass_minutes", 60, 1..=1440)?;
        let approval_request_hours = int_in("approval_request_hours", 24, 1..=168)?;
        let audit_checkpoint_seconds = small(int_in("audit_checkpoint_seconds", 60, 1..=86400)?);
        let count = |v: i64| usize::try_from(v).unwrap_or(1);
        let max_concurrent_exports = count(int_in("max_concurrent_exports", 2, 1..=64)?);
        let max_live_streams_per_user = count(int_in("max_live_streams_per_user", 8, 1..=256)?);
        let max_output_bytes_per_attempt = small(int_in(
            "max_output_bytes_per_attempt",
            64 * 1024 * 1024,
            1024..=4 * 1024 * 1024 * 1024,
        )?);
        Ok(Settings {
            listen,
            public_url,
            database_url,
            migration_database_url,
            allow_owner_role,
            audit_key_file,
            audit_checkpoint_seconds,
            session_idle_minutes,
            session_lifetime_hours,
            approval_validity_seconds,
            site_root,
            runbooks_dir,
            sites_file,
            site_secrets_dir,
            backup_store,
            lab_dir,
            data_dir,
            log_format,
            smtp_url,
            smtp_from,
            notify_attempts,
            notify_retry_base_ms,
            notify_timeout_seconds,
            webhook_allowed_hosts,
            trusted_proxies,
            break_glass_minutes,
            approval_request_hours,
            max_concurrent_exports,
            max_live_streams_per_user,
            max_output_bytes_per_attempt,
        })
    }

    /// The database, for the commands that need one.
    pub fn database(&self) -> Result<&DatabaseUrl, ConfigError> {
        self.database_url.as_ref().ok_or(ConfigError::NoDatabase)
    }

    /// Whether session cookies must be `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public origin (`scheme://host[:port]`), for CSRF checks.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// How approval notifications are sent.
    pub fn notifications(&self) -> app::ssr::notify::NotifySettings {
        use app::ssr::notify::{schedule::RetryPolicy, NotifySettings, SmtpSettings};
        use std::time::Duration;
        NotifySettings {
            public_url: self.public_url.to_string(),
            smtp: self.smtp_url.as_ref().map(|u| SmtpSettings {
                url: u.expose().to_string(),
                from: self.smtp_from.clone(),
            }),
            retry: RetryPolicy {
                base: Duration::from_millis(self.notify_retry_base_ms),
                max_attempts: self.notify_attempts,
            },
            timeout: Duration::from_secs(self.notify_timeout_seconds),
            allowed_hosts: self.webhook_allowed_hosts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal");

    #[test]
    fn defaults() {
        let s = Settings::from_sources(None, &env(&[DB])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(s.session_idle_minutes, 30);
        assert_eq!(s.session_lifetime_hours, 12);
        assert!(!s.secure_cookies());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "listen = \"127.0.0.1:4000\"\nsession_idle_minutes = 10\npublic_url = \"https://portal.example.net\"\n";
        let s = Settings::from_sources(
            Some(("portal.toml", file)),
            &env(&[DB, ("PORTAL_SESSION_IDLE_MINUTES", "15")]),
        )
        .unwrap();
        assert_eq!(s.listen.port(), 4000);
        assert_eq!(s.session_idle_minutes, 15);
        assert!(s.secure_cookies());
        assert_eq!(s.public_origin(), "https://portal.example.net");
    }

    #[test]
    fn a_bad_value_names_key_origin_and_expectation() {
        let err =
            Settings::from_sources(None, &env(&[DB, ("PORTAL_SESSION_IDLE_MINUTES", "soon")]))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration key `session_idle_minutes` (from environment variable PORTAL_SESSION_IDLE_MINUTES): expected a whole number of minutes from 1 to 1440, found \"soon\""
        );
        let err = Settings::from_sources(Some(("p.toml", "listen = \"localhost\"")), &env(&[DB]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "configuration key `listen` (from file p.toml): expected an address and port"
            ),
            "{err}"
        );
        let err =
            Settings::from_sources(Some(("p.toml", "log_format = true")), &env(&[DB])).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadValue { ref key, .. } if key == "log_format"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            Settings::from_sources(Some(("p.toml", "lisen = \"x\"")), &env(&[DB])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "lisen"));
        let err = Settings::from_sources(None, &env(&[DB, ("PORTAL_LISTN", "x")])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "PORTAL_LISTN"));
    }

    #[test]
    fn database_is_required_and_never_printed_with_its_password() {
        let without = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(without.database().unwrap_err(), ConfigError::NoDatabase);
        let err =
            Settings::from_sources(None, &env(&[("DATABASE_URL", "mysql://u:pa55word@h/db")]))
                .unwrap_err();
        assert!(!err.to_string().contains("pa55word"), "{err}");
        let s = Settings::from_sources(
            None,
            &env(&[("DATABASE_URL", "postgres://u:pa55word@h/db")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("pa55word"));
    }

    #[test]
    fn notification_settings() {
        let s = Settings::from_sources(None, &env(&[DB])).unwrap();
        assert!(s.smtp_url.is_none());
        assert_eq!(s.smtp_from, DEFAULT_SMTP_FROM);
        let n = s.notifications();
        assert_eq!(n.retry.max_attempts, 6);
        assert_eq!(n.retry.base.as_secs(), 30);
        assert_eq!(n.timeout.as_secs(), 10);
        assert!(n.smtp.is_none());

        let s = Settings::from_sources(
            None,
            &env(&[
                DB,
                ("PORTAL_SMTP_URL", "smtp://relay:pa55word@127.0.0.1:2525"),
                ("PORTAL_SMTP_FROM", "Portal <portal@example.net>"),
                ("PORTAL_NOTIFY_ATTEMPTS", "3"),
                ("PORTAL_NOTIFY_RETRY_BASE_MS", "100"),
                ("PORTAL_NOTIFY_TIMEOUT_SECONDS", "2"),
            ]),
        )
        .unwrap();
        let n = s.notifications();
        assert_eq!(n.smtp.unwrap().from, "Portal <portal@example.net>");
        assert_eq!(n.retry.max_attempts, 3);
        assert_eq!(n.retry.base.as_millis(), 100);
        assert_eq!(n.timeout.as_secs(), 2);
        assert!(!format!("{s:?}").contains("pa55word"), "{s:?}");

        for (key, value) in [
            ("PORTAL_SMTP_URL", "http://127.0.0.1:2525"),
            ("PORTAL_SMTP_URL", "smtp://"),
            ("PORTAL_SMTP_FROM", "not an address"),
            ("PORTAL_NOTIFY_ATTEMPTS", "0"),
            ("PORTAL_NOTIFY_RETRY_BASE_MS", "5"),
            ("PORTAL_NOTIFY_TIMEOUT_SECONDS", "600"),
        ] {
            let err = Settings::from_sources(None, &env(&[DB, (key, value)])).unwrap_err();
            let name = key.trim_start_matches("PORTAL_").to_ascii_lowercase();
            assert!(
                matches!(err, ConfigError::BadValue { ref key, .. } if *key == name),
                "{key}={value}: {err}"
            );
        }
        let err =
            Settings::from_sources(None, &env(&[DB, ("PORTAL_SMTP_URL", "ftp://u:hunter2@h")]))
                .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn outbound_and_file_locations() {
        use app::ssr::notify::validate::AllowedHosts;
        let s = Settings::from_sources(None, &env(&[DB])).unwrap();
        assert!(s.webhook_allowed_hosts.is_empty());
        assert_eq!(s.site_secrets_dir, None);
        assert_eq!(s.data_dir, PathBuf::from(".data"));
        let s = Settings::from_sources(
            None,
            &env(&[
                DB,
                ("PORTAL_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, *.example.net"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.webhook_allowed_hosts,
            AllowedHosts::parse("127.0.0.1,*.example.net").unwrap()
        );
        assert_eq!(
            s.notifications().allowed_hosts,
            AllowedHosts::parse("127.0.0.1 *.example.net").unwrap()
        );
        // A list in the file.
        let s = Settings::from_sources(
            Some((
                "portal.toml",
                "webhook_allowed_hosts = [\"hooks.example.net\", \"10.0.0.0/8\"]\nsite_secrets_dir = \"/etc/portal/sites\"\ndata_dir = \"/var/lib/portal\"\n",
            )),
            &env(&[DB]),
        )
        .unwrap();
        assert_eq!(
            s.webhook_allowed_hosts,
            AllowedHosts::parse("hooks.example.net,10.0.0.0/8").unwrap()
        );
        assert_eq!(s.site_secrets_dir, Some(PathBuf::from("/etc/portal/sites")));
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/portal"));
        let err = Settings::from_sources(
            None,
            &env(&[DB, ("PORTAL_WEBHOOK_ALLOWED_HOSTS", "10.0.0.0/99")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("webhook_allowed_hosts") && err.contains("0 to 32 bits"),
            "{err}"
        );
    }

    #[test]
    fn database_roles_and_the_checkpoint_key() {
        let s = Settings::from_sources(None, &env(&[DB])).unwrap();
        assert!(s.migration_database_url.is_none());
        assert!(!s.allow_owner_role);
        assert_eq!(
            s.audit_key_file,
            PathBuf::from(".data/audit-checkpoint.key")
        );
        assert_eq!(s.audit_checkpoint_seconds, 60);

        let s = Settings::from_sources(
            Some((
                "p.toml",
                "allow_owner_role = true\naudit_checkpoint_seconds = 5\n",
            )),
            &env(&[
                DB,
                (
                    "MIGRATION_DATABASE_URL",
                    "postgres://owner:hunter2@127.0.0.1/portal",
                ),
                ("PORTAL_AUDIT_KEY_FILE", "/etc/portal/checkpoint.key"),
            ]),
        )
        .unwrap();
        assert!(s.allow_owner_role);
        assert_eq!(s.audit_checkpoint_seconds, 5);
        assert_eq!(
            s.audit_key_file,
            PathBuf::from("/etc/portal/checkpoint.key")
        );
        assert_eq!(
            s.migration_database_url.as_ref().unwrap().expose(),
            "postgres://owner:hunter2@127.0.0.1/portal"
        );
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");

        for (key, value) in [
            ("MIGRATION_DATABASE_URL", "mysql://owner@h/db"),
            ("PORTAL_ALLOW_OWNER_ROLE", "yes"),
            ("PORTAL_AUDIT_CHECKPOINT_SECONDS", "0"),
            ("PORTAL_AUDIT_KEY_FILE", " "),
        ] {
            let err = Settings::from_sources(None, &env(&[DB, (key, value)])).unwrap_err();
            let name = key.trim_start_matches("PORTAL_").to_ascii_lowercase();
            assert!(
                matches!(err, ConfigError::BadValue { ref key, .. } if *key == name),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn a_broken_file_is_reported_with_its_path() {
        let err = Settings::from_sources(Some(("p.toml", "listen = ")), &env(&[DB])).unwrap_err();
        assert!(matches!(err, ConfigError::File { ref path, .. } if path == "p.toml"));
    }
}
