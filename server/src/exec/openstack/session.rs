//! A Keystone session: authenticates with the cloud's credentials, keeps the
//! token and its catalog, renews it before it expires and once on a 401, and sends
//! requests to a service found in the catalog. Every call has a timeout; secrets
//! are never logged.

use super::catalog::{self, CatalogError, Service, TokenBody};
use super::cloud::{Cloud, CloudError, Credentials, Secret};
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::json;
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;

/// What went wrong talking to the cloud, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum OpenStackError {
    #[error("{0}")]
    Config(#[from] CloudError),
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("the CA bundle {path} cannot be used: {message}")]
    CaBundle { path: String, message: String },
    #[error("{service} at {url} cannot be reached: {message}")]
    Unreachable {
        service: String,
        url: String,
        message: String,
    },
    #[error("Keystone refused the portal's credentials ({origin}): {message}")]
    Unauthorized { origin: String, message: String },
    #[error("{service} answered {status}: {message}")]
    Api {
        service: String,
        status: u16,
        message: String,
    },
    #[error("{service} answered something the portal cannot read: {message}")]
    Decode { service: String, message: String },
}

/// The body of an answer as text; a body that cannot be read is a decode error
/// of `service`.
pub async fn body_text(service: &str, r: reqwest::Response) -> Result<String, OpenStackError> {
    r.text().await.map_err(|e| OpenStackError::Decode {
        service: service.into(),
        message: e.to_string(),
    })
}

/// The message of an OpenStack error body: Nova's `{"itemNotFound": {"message":
/// ...}}`, Keystone's and Heat's `{"error": {"message": ...}}`, Glance's HTML or
/// plain text; else the status text.
pub fn api_message(status: StatusCode, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
        {
            let explanation = v.get("explanation").and_then(|e| e.as_str());
            return match explanation {
                Some(x) if !x.is_empty() && !m.contains(x) => format!("{m} ({x})"),
                _ => m.to_string(),
            };
        }
        if let Some(obj) = v.as_object() {
            for (_, inner) in obj {
                if let Some(m) = inner.get("message").and_then(|m| m.as_str()) {
                    return m.to_string();
                }
            }
        }
    }
    // Glance answers HTML: the text without its tags, one line.
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    } else {
        text
    }
}

struct Held {
    value: Secret,
    expires_at: DateTime<Utc>,
    catalog: Vec<Service>,
    project_id: Option<String>,
}

/// A session with one cloud.
pub struct Session {
    http: reqwest::Client,
    cloud: Cloud,
    token: Mutex<Option<Held>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cloud", &self.cloud)
            .finish_non_exhaustive()
    }
}

/// Redirects are followed within the origin the request went to (Heat answers
/// a stack's name with one) and not elsewhere: every request carries the token in
/// `X-Auth-Token`, which reqwest, unlike `Authorization`, would send on to
/// wherever a redirect points (a storage backend, or anything an endpoint names).
/// A redirect not followed is an error that says so ([`redirect_refused`]).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A redirect answer that was not followed because it leads to another origin.
fn redirect_refused(service: &str, url: &Url, response: &Response) -> Option<OpenStackError> {
    let status = response.status();
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| "elsewhere".into());
    Some(OpenStackError::Api {
        service: service.into(),
        status: status.as_u16(),
        message: format!(
            "a redirect from {} to {to}, which the portal does not follow: the request carries the cloud token, which must not go to another origin. Configure the service's endpoint (catalog or auth_url) as the final address",
            url.origin().ascii_serialization()
        ),
    })
}

impl Session {
    /// A session with `cloud`; a request fails when the cloud sends nothing for
    /// `timeout` (a whole download may take much longer), and a connection
    /// attempt after at most 10 s.
    pub fn new(cloud: Cloud, timeout: Duration) -> Result<Self, OpenStackError> {
        let mut builder = reqwest::Client::builder()
            .redirect(same_origin_redirects())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .read_timeout(timeout)
            .user_agent(concat!("recovery-portal/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cloud.cacert {
            let bad = |message: String| OpenStackError::CaBundle {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| OpenStackError::Unreachable {
            service: "the HTTP client".into(),
            url: cloud.auth_url.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            http,
            cloud,
            token: Mutex::new(None),
        })
    }

    /// The cloud this session talks to.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    async fn authenticate(&self) -> Result<Held, OpenStackError> {
        let identity = match &self.cloud.credentials {
            Credentials::Password {
                username,
                password,
                user_domain,
                ..
            } => json!({
                "methods": ["password"],
                "password": { "user": { "name": username, "domain": { "name": user_domain }, "password": password.expose() } }
            }),
            Credentials::ApplicationCredential { id, secret } => json!({
                "methods": ["application_credential"],
                "application_credential": { "id": id, "secret": secret.expose() }
            }),
        };
        let mut auth = json!({ "auth": { "identity": identity } });
        if let Credentials::Password {
            project_name,
            project_domain,
            ..
        } = &self.cloud.credentials
        {
            auth["auth"]["scope"] = json!({ "project": { "name": project_name, "domain": { "name": project_domain } } });
        }
        let mut url = self.cloud.auth_url.clone();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let url = url
            .join("auth/tokens")
            .map_err(|e| OpenStackError::Unreachable {
                service: "Keystone".into(),
                url: self.cloud.auth_url.to_string(),
                message: e.to_string(),
            })?;
        let response = self
            .http
            .post(url.clone())
            .json(&auth)
            .send()
            .await
            .map_err(|e| unreachable("Keystone", &url, &e))?;
        if let Some(refused) = redirect_refused("Keystone", &url, &response) {
            return Err(refused);
        }
        let status = response.status();
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new);
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(OpenStackError::Unauthorized {
                origin: self.cloud.origin.clone(),
                message: api_message(status, &body),
            });
        }
        if !status.is_success() {
            return Err(OpenStackError::Api {
                service: "Keystone".into(),
                status: status.as_u16(),
                message: api_message(status, &body),
            });
        }
        let value = token.ok_or_else(|| OpenStackError::Decode {
            service: "Keystone".into(),
            message: "no X-Subject-Token header in the answer to POST /auth/tokens".into(),
        })?;
        let parsed: TokenBody =
            serde_json::from_str(&body).map_err(|e| OpenStackError::Decode {
                service: "Keystone".into(),
                message: e.to_string(),
            })?;
        Ok(Held {
            value,
            expires_at: parsed.token.expires_at,
            catalog: parsed.token.catalog,
            project_id: parsed.token.project.map(|p| p.id),
        })
    }

    /// The token and the endpoint of service `kinds` (the first kind names it),
    /// authenticating first when there is no fresh token or `renew` asks for one.
    async fn token_for(
        &self,
        kinds: &[&str],
        renew: bool,
    ) -> Result<(Secret, Url), OpenStackError> {
        let mut held = self.token.lock().await;
        let fresh = held
            .as_ref()
            .is_some_and(|h| !renew && !catalog::is_stale(h.expires_at, Utc::now()));
        if !fresh {
            *held = Some(self.authenticate().await?);
        }
        let h = held.as_ref().ok_or_else(|| OpenStackError::Decode {
            service: "Keystone".into(),
            message: "no token after authenticating".into(),
        })?;
        let url = catalog::endpoint(
            &h.catalog,
            kinds,
            &self.cloud.interface,
            self.cloud.region.as_deref(),
        )?;
        Ok((h.value.clone(), url))
    }

    /// The project the token is scoped to.
    pub async fn project_id(&self) -> Result<Option<String>, OpenStackError> {
        self.token_for(&["identity"], false).await?;
        Ok(self
            .token
            .lock()
            .await
            .as_ref()
            .and_then(|h| h.project_id.clone()))
    }

    /// Sends a request to service `kinds` at `path` (relative to its catalog
    /// endpoint), built by `build`; on a 401 the token is renewed and the request
    /// sent once more. Answers that are not 2xx become [`OpenStackError::Api`].
    pub async fn send(
        &self,
        kinds: &[&str],
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, OpenStackError> {
        let service = kinds.first().copied().unwrap_or("OpenStack");
        for renew in [false, true] {
            let (token, base) = self.token_for(kinds, renew).await?;
            let url = base.join(path).map_err(|e| OpenStackError::Decode {
                service: service.into(),
                message: format!("{path:?} is not a path: {e}"),
            })?;
            let request = build(
                self.http
                    .request(method.clone(), url.clone())
                    .header("X-Auth-Token", token.expose()),
            );
            let response = request
                .send()
                .await
                .map_err(|e| unreachable(service, &url, &e))?;
            if let Some(refused) = redirect_refused(service, &url, &response) {
                return Err(refused);
            }
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renew {
                continue;
            }
            if status.is_success() || status.is_redirection() {
                return Ok(response);
            }
            let body = response.text().await.unwrap_or_default();
            return Err(OpenStackError::Api {
                service: service.into(),
                status: status.as_u16(),
                message: api_message(status, &body),
            });
        }
        Err(OpenStackError::Unauthorized {
            origin: self.cloud.origin.clone(),
            message: "a renewed token was refused as well".into(),
        })
    }
}

fn unreachable(service: &str, url: &Url, e: &reqwest::Error) -> OpenStackError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    OpenStackError::Unreachable {
        service: service.into(),
        url: url.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_own_message_is_kept() {
        assert_eq!(
            api_message(
                StatusCode::NOT_FOUND,
                r#"{"itemNotFound": {"code": 404, "message": "Instance abc could not be found."}}"#
            ),
            "Instance abc could not be found."
        );
        assert_eq!(
            api_message(
                StatusCode::CONFLICT,
                r#"{"conflictingRequest": {"code": 409, "message": "Cannot 'stop' instance while it is in vm_state stopped"}}"#
            ),
            "Cannot 'stop' instance while it is in vm_state stopped"
        );
        assert_eq!(
            api_message(
                StatusCode::UNAUTHORIZED,
                r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            api_message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "<html><head><title>413 Request Entity Too Large</title></head><body><h1>413 Request Entity Too Large</h1>Denying attempt to upload image because it exceeds the quota</body></html>"
            ),
            "413 Request Entity Too Large 413 Request Entity Too Large Denying attempt to upload image because it exceeds the quota"
        );
        assert_eq!(api_message(StatusCode::BAD_GATEWAY, ""), "Bad Gateway");
    }
}
