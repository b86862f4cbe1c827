//! Settings: defaults, overlaid by an optional TOML file, overlaid by environment
//! variables (`PORTAL_<KEY>`; the database also by `DATABASE_URL`). Every value is
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
    pub database_url: Option<DatabaseUrl>,
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
    /// The backup store: where transfer steps keep files taken from the site.
    pub backup_store: PathBuf,
    /// The lab's directory: its host keys and client key, kept between starts.
    pub lab_dir: PathBuf,
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
        name: "backup_store",
        expected: "a directory path",
    },
    Key {
        name: "lab_dir",
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
        if let Some(url) = env.get("DATABASE_URL") {
            raw.insert(
                "database_url",
                Raw {
                    value: url.clone(),
                    origin: "environment variable DATABASE_URL".into(),
                },
            );
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
        let database_url = match raw.get("database_url") {
            Some(r) => {
                let ok = Url::parse(r.value.trim())
                    .map(|u| matches!(u.scheme(), "postgres" | "postgresql"))
                    .unwrap_or(false);
                if !ok {
                    return Err(ConfigError::BadValue {
                        key: "database_url".into(),
                        origin: r.origin.clone(),
                        expected: "a postgres:// or postgresql:// connection URL".into(),
                        found: DatabaseUrl::new(r.value.clone()).redacted(),
                    });
                }
                Some(DatabaseUrl::new(r.value.trim()))
            }
            None => None,
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
        let backup_store = path("backup_store", "backup-store")?;
        let lab_dir = path("lab_dir", ".lab")?;
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
            session_idle_minutes,
            session_lifetime_hours,
            approval_validity_seconds,
            site_root,
            runbooks_dir,
            sites_file,
            backup_store,
            lab_dir,
            log_format,
            smtp_url,
            smtp_from,
            notify_attempts,
            notify_retry_base_ms,
            notify_timeout_seconds,
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
        let err = Settings::from_sources(None, &env(&[("DATABASE_URL", "mysql://u:secret@h/db")]))
            .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let s = Settings::from_sources(None, &env(&[("DATABASE_URL", "postgres://u:secret@h/db")]))
            .unwrap();
        assert!(!format!("{s:?}").contains("secret"));
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
                ("PORTAL_SMTP_URL", "smtp://relay:secret@127.0.0.1:2525"),
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
        assert!(!format!("{s:?}").contains("secret"), "{s:?}");

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
    fn a_broken_file_is_reported_with_its_path() {
        let err = Settings::from_sources(Some(("p.toml", "listen = ")), &env(&[DB])).unwrap_err();
        assert!(matches!(err, ConfigError::File { ref path, .. } if path == "p.toml"));
    }
}
