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
    fn a_broken_file_is_reported_with_its_path() {
        let err = Settings::from_sources(Some(("p.toml", "listen = ")), &env(&[DB])).unwrap_err();
        assert!(matches!(err, ConfigError::File { ref path, .. } if path == "p.toml"));
    }
}
