//! A Keystone v3 token as the portal keeps it: the service catalog that says where
//! Nova, Glance and Heat are, and when the token must be renewed. Pure.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use url::Url;

/// A token is renewed this long before it expires, so a request never starts
/// with a token about to lapse (keystoneauth uses a similar window).
pub const RENEW_BEFORE: Duration = Duration::minutes(5);

/// The body of `POST /v3/auth/tokens` (the token itself is in `X-Subject-Token`).
#[derive(Clone, Debug, Deserialize)]
pub struct TokenBody {
    pub token: TokenInfo,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenInfo {
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub project: Option<Named>,
    #[serde(default)]
    pub catalog: Vec<Service>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Named {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// One service of the catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Endpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

/// Why no endpoint fits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the cloud's catalog has no {kind} service (it has: {known})")]
    NoService { kind: String, known: String },
    #[error("the {kind} service has no {interface} endpoint{}", region.as_ref().map(|r| format!(" in region {r}")).unwrap_or_default())]
    NoEndpoint {
        kind: String,
        interface: String,
        region: Option<String>,
    },
    #[error("the {kind} endpoint {url:?} is not a URL")]
    BadUrl { kind: String, url: String },
}

/// The endpoint of service `kind` (`compute`, `image`, `orchestration`, …) for
/// `interface`, in `region` (the first one when `None`).
pub fn endpoint(
    catalog: &[Service],
    kinds: &[&str],
    interface: &str,
    region: Option<&str>,
) -> Result<Url, CatalogError> {
    let kind = kinds.first().copied().unwrap_or_default();
    let service = catalog
        .iter()
        .find(|s| kinds.contains(&s.kind.as_str()))
        .ok_or_else(|| CatalogError::NoService {
            kind: kind.to_string(),
            known: catalog
                .iter()
                .map(|s| s.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let found = service.endpoints.iter().find(|e| {
        e.interface == interface
            && region
                .is_none_or(|r| e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r))
    });
    let e = found.ok_or_else(|| CatalogError::NoEndpoint {
        kind: kind.to_string(),
        interface: interface.to_string(),
        region: region.map(str::to_string),
    })?;
    // A trailing slash, so that joining a relative path appends to it.
    let mut text = e.url.clone();
    if !text.ends_with('/') {
        text.push('/');
    }
    Url::parse(&text).map_err(|_| CatalogError::BadUrl {
        kind: kind.to_string(),
        url: e.url.clone(),
    })
}

/// Whether a token expiring at `expires_at` must be renewed before use at `now`.
pub fn is_stale(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now + RENEW_BEFORE >= expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"token":{"methods":["password"],"expires_at":"2026-11-27T01:52:02.000000Z",
      "project":{"id":"p1","name":"admin","domain":{"id":"default","name":"Default"}},
      "catalog":[
        {"type":"compute","name":"nova","id":"c","endpoints":[
          {"id":"1","interface":"internal","region_id":"RegionOne","region":"RegionOne","url":"http://nova.internal/v2.1"},
          {"id":"2","interface":"public","region_id":"RegionTwo","region":"RegionTwo","url":"http://nova.two/v2.1"},
          {"id":"3","interface":"public","region_id":"RegionOne","region":"RegionOne","url":"http://nova.one/v2.1"}]},
        {"type":"image","name":"glance","id":"i","endpoints":[
          {"id":"4","interface":"public","region_id":"RegionOne","url":"http://glance:9292"}]}
      ]}}"#;

    fn catalog() -> TokenInfo {
        serde_json::from_str::<TokenBody>(BODY).unwrap().token
    }

    #[test]
    fn the_endpoint_of_a_service_by_interface_and_region() {
        let t = catalog();
        assert_eq!(t.project.unwrap().id, "p1");
        let c = &t.catalog;
        assert_eq!(
            endpoint(c, &["compute"], "public", Some("RegionOne"))
                .unwrap()
                .as_str(),
            "http://nova.one/v2.1/"
        );
        assert_eq!(
            endpoint(c, &["compute"], "public", None).unwrap().as_str(),
            "http://nova.two/v2.1/"
        );
        assert_eq!(
            endpoint(c, &["compute"], "internal", None)
                .unwrap()
                .as_str(),
            "http://nova.internal/v2.1/"
        );
        // Glance has no /v2 in the catalog: paths are joined onto it.
        assert_eq!(
            endpoint(c, &["image"], "public", None)
                .unwrap()
                .join("v2/images")
                .unwrap()
                .as_str(),
            "http://glance:9292/v2/images"
        );
    }

    #[test]
    fn what_is_missing_is_said() {
        let c = catalog().catalog;
        assert_eq!(
            endpoint(&c, &["orchestration"], "public", None)
                .unwrap_err()
                .to_string(),
            "the cloud's catalog has no orchestration service (it has: compute, image)"
        );
        assert_eq!(
            endpoint(&c, &["image"], "admin", Some("RegionOne"))
                .unwrap_err()
                .to_string(),
            "the image service has no admin endpoint in region RegionOne"
        );
    }

    #[test]
    fn tokens_are_renewed_five_minutes_before_they_expire() {
        let expires = catalog().expires_at;
        assert!(!is_stale(expires, expires - Duration::minutes(6)));
        assert!(is_stale(expires, expires - Duration::minutes(5)));
        assert!(is_stale(expires, expires + Duration::seconds(1)));
    }
}
