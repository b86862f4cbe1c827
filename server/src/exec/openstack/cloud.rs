//! Which cloud a site's OpenStack steps talk to, configured the way operators
//! already do it: a named cloud of `clouds.yaml` (with `secure.yaml` for the
//! secrets), or the `OS_*` variables. Pure: the caller reads the files and the
//! environment; this checks them and says what is wrong where.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use url::Url;

/// A secret (password, application-credential secret, token): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the portal proves who it is to Keystone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user's password, scoped to a project.
    Password {
        username: String,
        password: Secret,
        user_domain: String,
        project_name: String,
        project_domain: String,
    },
    /// An application credential (already scoped to its project).
    ApplicationCredential { id: String, secret: Secret },
}

/// A checked cloud configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// Where it came from, for messages (`clouds.yaml cloud "lab"`, `OS_* variables`).
    pub origin: String,
    /// Keystone v3, e.g. `https://keystone.example.net:5000/v3`.
    pub auth_url: Url,
    pub credentials: Credentials,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The catalog region; the first endpoint of a service when unset.
    pub region: Option<String>,
    /// A CA bundle to trust besides the system's.
    pub cacert: Option<PathBuf>,
}

/// What is wrong with a cloud configuration, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: there is no cloud {cloud:?} (clouds: {known})")]
    NoSuchCloud {
        file: String,
        cloud: String,
        known: String,
    },
    #[error("{origin}: {field} is missing")]
    Missing { origin: String, field: String },
    #[error("{origin}: {field} {value:?} is not valid: {expected}")]
    Invalid {
        origin: String,
        field: String,
        value: String,
        expected: String,
    },
    #[error("no OpenStack cloud configured: set OS_CLOUD (with a clouds.yaml) or OS_AUTH_URL and the other OS_* variables")]
    NotConfigured,
}

#[derive(Debug, Default, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, RawCloud>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawCloud {
    #[serde(default)]
    auth: RawAuth,
    auth_type: Option<String>,
    region_name: Option<String>,
    interface: Option<String>,
    identity_api_version: Option<serde_yaml::Value>,
    cacert: Option<String>,
    /// Allows an `http://` `auth_url` on a host other than loopback (the
    /// password and every token then travel in clear).
    insecure_http: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawAuth {
    auth_url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    user_domain_name: Option<String>,
    project_name: Option<String>,
    project_domain_name: Option<String>,
    application_credential_id: Option<String>,
    application_credential_secret: Option<String>,
}

impl RawCloud {
    /// `secure` fills what `self` leaves out (secure.yaml holds the passwords).
    fn merged(mut self, secure: Option<RawCloud>) -> Self {
        let Some(s) = secure else { return self };
        let a = &mut self.auth;
        let b = s.auth;
        macro_rules! fill {
            ($($f:ident),*) => { $( if a.$f.is_none() { a.$f = b.$f; } )* };
        }
        fill!(
            auth_url,
            username,
            password,
            user_domain_name,
            project_name,
            project_domain_name,
            application_credential_id,
            application_credential_secret
        );
        self.region_name = self.region_name.or(s.region_name);
        self.interface = self.interface.or(s.interface);
        self.auth_type = self.auth_type.or(s.auth_type);
        self.cacert = self.cacert.or(s.cacert);
        self.insecure_http = self.insecure_http.or(s.insecure_http);
        self
    }
}

fn parse_file(name: &str, text: &str) -> Result<CloudsFile, CloudError> {
    if text.trim().is_empty() {
        return Ok(CloudsFile::default());
    }
    serde_yaml::from_str(text).map_err(|e| CloudError::Yaml {
        file: name.to_string(),
        message: e.to_string(),
    })
}

/// Cloud `cloud` of a `clouds.yaml` text (`file` names it in messages), with the
/// secrets of an optional `secure.yaml` text. Relative `cacert` paths are taken
/// from `base`, the file's directory.
pub fn from_clouds_yaml(
    file: &str,
    text: &str,
    secure: Option<(&str, &str)>,
    cloud: &str,
    base: &Path,
) -> Result<Cloud, CloudError> {
    let mut clouds = parse_file(file, text)?;
    let Some(raw) = clouds.clouds.remove(cloud) else {
        return Err(CloudError::NoSuchCloud {
            file: file.to_string(),
            cloud: cloud.to_string(),
            known: if clouds.clouds.is_empty() {
                "none".into()
            } else {
                clouds.clouds.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        });
    };
    let secure = match secure {
        Some((name, text)) => parse_file(name, text)?.clouds.remove(cloud),
        None => None,
    };
    let raw = raw.merged(secure);
    let origin = format!("{file} cloud {cloud:?}");
    if let Some(v) = &raw.identity_api_version {
        let version = match v {
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::String(s) => s.clone(),
            other => format!("{other:?}"),
        };
        if version.trim_start_matches('v') != "3" {
            return Err(CloudError::Invalid {
                origin,
                field: "identity_api_version".into(),
                value: version,
                expected: "3 (Keystone v3)".into(),
            });
        }
    }
    let field = |name: &str| format!("clouds.{cloud}.{name}");
    check(
        origin.clone(),
        raw.auth_type.as_deref(),
        Fields {
            auth_url: raw.auth.auth_url,
            username: raw.auth.username,
            password: raw.auth.password,
            user_domain: raw.auth.user_domain_name,
            project_name: raw.auth.project_name,
            project_domain: raw.auth.project_domain_name,
            app_id: raw.auth.application_credential_id,
            app_secret: raw.auth.application_credential_secret,
            region: raw.region_name,
            interface: raw.interface,
            cacert: raw.cacert.map(|c| base.join(c)),
            insecure_http: raw.insecure_http.unwrap_or(false),
        },
        &field,
    )
}

/// The cloud the `OS_*` variables of `env` describe; `OS_CLOUD` is for
/// [`from_clouds_yaml`] and is not read here.
pub fn from_env(env: &BTreeMap<String, String>) -> Result<Cloud, CloudError> {
    let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
    if get("OS_AUTH_URL").is_none() {
        return Err(CloudError::NotConfigured);
    }
    check(
        "the OS_* variables".into(),
        get("OS_AUTH_TYPE").as_deref(),
        Fields {
            auth_url: get("OS_AUTH_URL"),
            username: get("OS_USERNAME"),
            password: get("OS_PASSWORD"),
            user_domain: get("OS_USER_DOMAIN_NAME"),
            project_name: get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME")),
            project_domain: get("OS_PROJECT_DOMAIN_NAME"),
            app_id: get("OS_APPLICATION_CREDENTIAL_ID"),
            app_secret: get("OS_APPLICATION_CREDENTIAL_SECRET"),
            region: get("OS_REGION_NAME"),
            interface: get("OS_INTERFACE").or_else(|| get("OS_ENDPOINT_TYPE")),
            cacert: get("OS_CACERT").map(PathBuf::from),
            insecure_http: false,
        },
        &|name| {
            format!(
                "OS_{}",
                match name {
                    "auth.auth_url" => "AUTH_URL",
                    "auth.username" => "USERNAME",
                    "auth.password" => "PASSWORD",
                    "auth.project_name" => "PROJECT_NAME",
                    "auth.application_credential_id" => "APPLICATION_CREDENTIAL_ID",
                    "auth.application_credential_secret" => "APPLICATION_CREDENTIAL_SECRET",
                    "interface" => "INTERFACE",
                    _ => "AUTH_TYPE",
                }
            )
        },
    )
}

/// Where `clouds.yaml` is looked for, in order: `OS_CLIENT_CONFIG_FILE`, the
/// current directory, the user's, the system's (as openstacksdk does).
pub fn clouds_yaml_candidates(env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = env.get("OS_CLIENT_CONFIG_FILE").filter(|f| !f.is_empty()) {
        out.push(PathBuf::from(f));
    }
    out.push(PathBuf::from("clouds.yaml"));
    if let Some(home) = env.get("HOME").filter(|h| !h.is_empty()) {
        out.push(Path::new(home).join(".config/openstack/clouds.yaml"));
    }
    out.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    out
}

struct Fields {
    insecure_http: bool,
    auth_url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    user_domain: Option<String>,
    project_name: Option<String>,
    project_domain: Option<String>,
    app_id: Option<String>,
    app_secret: Option<String>,
    region: Option<String>,
    interface: Option<String>,
    cacert: Option<PathBuf>,
}

fn check(
    origin: String,
    auth_type: Option<&str>,
    f: Fields,
    field: &dyn Fn(&str) -> String,
) -> Result<Cloud, CloudError> {
    let missing = |name: &str| CloudError::Missing {
        origin: origin.clone(),
        field: field(name),
    };
    let auth_url = f.auth_url.ok_or_else(|| missing("auth.auth_url"))?;
    let auth_url = Url::parse(auth_url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| CloudError::Invalid {
            origin: origin.clone(),
            field: field("auth.auth_url"),
            value: auth_url.clone(),
            expected: "an http:// or https:// URL of Keystone v3".into(),
        })?;
    let loopback = match auth_url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if auth_url.scheme() == "http" && !loopback && !f.insecure_http {
        return Err(CloudError::Invalid {
            origin,
            field: field("auth.auth_url"),
            value: auth_url.to_string(),
            expected: "an https:// URL: over http:// the password and every token travel in clear. Plain http is accepted on a loopback address, or when the cloud says `insecure_http: true`".into(),
        });
    }
    let application = match auth_type {
        Some("v3applicationcredential") => true,
        Some("password" | "v3password") | None => false,
        Some(other) => {
            return Err(CloudError::Invalid {
                origin,
                field: field("auth_type"),
                value: other.to_string(),
                expected: "password, v3password or v3applicationcredential".into(),
            })
        }
    };
    let credentials = if application || (f.app_id.is_some() && f.username.is_none()) {
        Credentials::ApplicationCredential {
            id: f
                .app_id
                .ok_or_else(|| missing("auth.application_credential_id"))?,
            secret: Secret::new(
                f.app_secret
                    .ok_or_else(|| missing("auth.application_credential_secret"))?,
            ),
        }
    } else {
        Credentials::Password {
            username: f.username.ok_or_else(|| missing("auth.username"))?,
            password: Secret::new(f.password.ok_or_else(|| missing("auth.password"))?),
            user_domain: f.user_domain.unwrap_or_else(|| "Default".into()),
            project_name: f.project_name.ok_or_else(|| missing("auth.project_name"))?,
            project_domain: f.project_domain.unwrap_or_else(|| "Default".into()),
        }
    };
    let interface = f.interface.unwrap_or_else(|| "public".into());
    let interface = interface.trim_end_matches("URL").to_string();
    if !matches!(interface.as_str(), "public" | "internal" | "admin") {
        return Err(CloudError::Invalid {
            origin,
            field: field("interface"),
            value: interface,
            expected: "public, internal or admin".into(),
        });
    }
    Ok(Cloud {
        origin,
        auth_url,
        credentials,
        interface,
        region: f.region,
        cacert: f.cacert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUDS: &str = r#"
clouds:
  lab:
    auth:
      auth_url: http://127.0.0.1:5000/identity/v3
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example.net:5000/v3
      application_credential_id: abc
      application_credential_secret: s3cret
    cacert: ca.pem
"#;

    #[test]
    fn a_named_cloud_with_its_secret_from_secure_yaml() {
        let secure = "clouds:\n  lab:\n    auth:\n      password: lab-secret\n";
        let c = from_clouds_yaml(
            "clouds.yaml",
            CLOUDS,
            Some(("secure.yaml", secure)),
            "lab",
            Path::new("/etc/openstack"),
        )
        .unwrap();
        assert_eq!(c.auth_url.as_str(), "http://127.0.0.1:5000/identity/v3");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        let Credentials::Password { password, .. } = &c.credentials else {
            panic!("password")
        };
        assert_eq!(password.expose(), "lab-secret");
        // Never printed.
        assert!(!format!("{c:?}").contains("lab-secret"));
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_the_cloud_says_so() {
        let secure = Some((
            "secure.yaml",
            "clouds:\n  lab:\n    auth:\n      password: pw\n",
        ));
        let remote = CLOUDS.replace("127.0.0.1:5000", "keystone.example.net:5000");
        let e = from_clouds_yaml("clouds.yaml", &remote, secure, "lab", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("clouds.yaml cloud \"lab\": clouds.lab.auth.auth_url \"http://keystone.example.net:5000/identity/v3\" is not valid: an https:// URL"),
            "{e}"
        );
        assert!(e.contains("insecure_http: true"), "{e}");
        let allowed = remote.replace(
            "    region_name: RegionOne\n",
            "    region_name: RegionOne\n    insecure_http: true\n",
        );
        assert!(from_clouds_yaml("clouds.yaml", &allowed, secure, "lab", Path::new("/")).is_ok());
        for local in ["http://localhost:5000/v3", "http://[::1]:5000/v3"] {
            let text = CLOUDS.replace("http://127.0.0.1:5000/identity/v3", local);
            assert!(
                from_clouds_yaml("clouds.yaml", &text, secure, "lab", Path::new("/")).is_ok(),
                "{local}"
            );
        }
        let env: BTreeMap<String, String> = [
            ("OS_AUTH_URL", "http://k.example.net/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(from_env(&env)
            .unwrap_err()
            .to_string()
            .contains("OS_AUTH_URL"));
    }

    #[test]
    fn application_credentials_and_a_relative_ca_bundle() {
        let c = from_clouds_yaml(
            "clouds.yaml",
            CLOUDS,
            None,
            "appcred",
            Path::new("/etc/openstack"),
        )
        .unwrap();
        assert!(matches!(
            c.credentials,
            Credentials::ApplicationCredential { ref id, .. } if id == "abc"
        ));
        assert_eq!(
            c.cacert.as_deref(),
            Some(Path::new("/etc/openstack/ca.pem"))
        );
        assert_eq!(c.interface, "public");
    }

    #[test]
    fn problems_name_the_field_and_the_file() {
        assert_eq!(
            from_clouds_yaml("clouds.yaml", CLOUDS, None, "lab", Path::new("/"))
                .unwrap_err()
                .to_string(),
            "clouds.yaml cloud \"lab\": clouds.lab.auth.password is missing"
        );
        assert_eq!(
            from_clouds_yaml("clouds.yaml", CLOUDS, None, "prod", Path::new("/"))
                .unwrap_err()
                .to_string(),
            "clouds.yaml: there is no cloud \"prod\" (clouds: appcred, lab)"
        );
        let bad = CLOUDS.replace("http://127.0.0.1:5000/identity/v3", "ftp://x");
        assert!(
            from_clouds_yaml("clouds.yaml", &bad, None, "lab", Path::new("/"))
                .unwrap_err()
                .to_string()
                .contains("clouds.lab.auth.auth_url \"ftp://x\" is not valid")
        );
        assert!(matches!(
            from_clouds_yaml("clouds.yaml", "clouds: [", None, "lab", Path::new("/")),
            Err(CloudError::Yaml { .. })
        ));
        let v2 = CLOUDS.replace("identity_api_version: 3", "identity_api_version: 2");
        assert!(
            from_clouds_yaml("clouds.yaml", &v2, Some(("s", "")), "lab", Path::new("/"))
                .unwrap_err()
                .to_string()
                .contains("identity_api_version")
        );
    }

    #[test]
    fn the_os_variables() {
        let env: BTreeMap<String, String> = [
            ("OS_AUTH_URL", "https://k.example.net/v3"),
            ("OS_USERNAME", "portal"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "cps"),
            ("OS_INTERFACE", "internalURL"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = from_env(&env).unwrap();
        assert_eq!(c.interface, "internal");
        assert_eq!(c.origin, "the OS_* variables");
        let mut partial = env.clone();
        partial.remove("OS_PASSWORD");
        assert_eq!(
            from_env(&partial).unwrap_err().to_string(),
            "the OS_* variables: OS_PASSWORD is missing"
        );
        assert_eq!(
            from_env(&BTreeMap::new()).unwrap_err(),
            CloudError::NotConfigured
        );
    }

    #[test]
    fn clouds_yaml_is_looked_for_where_openstacksdk_looks() {
        let env: BTreeMap<String, String> =
            [("HOME", "/home/op"), ("OS_CLIENT_CONFIG_FILE", "/x/c.yaml")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(
            clouds_yaml_candidates(&env),
            [
                PathBuf::from("/x/c.yaml"),
                PathBuf::from("clouds.yaml"),
                PathBuf::from("/home/op/.config/openstack/clouds.yaml"),
                PathBuf::from("/etc/openstack/clouds.yaml"),
            ]
        );
    }
}
