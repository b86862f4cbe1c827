//! Keystone v3 under `/identity`: the version documents and
//! `POST /identity/v3/auth/tokens` (password or application credential), which
//! answers 201 with the token in `X-Subject-Token` and the catalog in the body.

use super::model::{self, Token};
use super::OpenStack;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Instant;

/// The admin user's id.
pub fn user_id() -> String {
    model::stable_hex("user", model::USERNAME)
}

/// The admin project's id.
pub fn project_id() -> String {
    model::stable_hex("project", model::PROJECT)
}

/// The application credential's id.
pub fn app_credential_id() -> String {
    model::stable_hex("application_credential", model::APP_CREDENTIAL_NAME)
}

/// The routes (no token needed).
pub fn router() -> Router<OpenStack> {
    Router::new()
        .route("/identity", get(root))
        .route("/identity/", get(root))
        .route("/identity/v3", get(v3))
        .route("/identity/v3/", get(v3))
        .route("/identity/v3/auth/tokens", post(issue))
}

fn version(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

async fn root(State(os): State<OpenStack>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [version(&os.0.base)]}})),
    )
        .into_response()
}

async fn v3(State(os): State<OpenStack>) -> Json<Value> {
    Json(json!({"version": version(&os.0.base)}))
}

fn error(code: u16, title: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": {"code": code, "title": title, "message": message}})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        401,
        "Unauthorized",
        "The request you have made requires authentication.",
    )
}

fn is_default_domain(d: Option<&Value>) -> bool {
    match d {
        None => true,
        Some(d) => {
            d.get("name").and_then(Value::as_str) == Some(model::DOMAIN)
                || d.get("id").and_then(Value::as_str) == Some(model::DOMAIN_ID)
        }
    }
}

/// Why an auth request is refused.
enum Refusal {
    Unauthorized,
    BadRequest(&'static str),
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Unauthorized => unauthorized(),
            Refusal::BadRequest(m) => error(400, "Bad Request", m),
        }
    }
}

/// Checks the identity part of an auth request.
fn authenticate(os: &OpenStack, identity: &Value) -> Result<String, Refusal> {
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if methods.contains(&"password") {
        let user = identity
            .pointer("/password/user")
            .ok_or(Refusal::Unauthorized)?;
        let name_ok = user.get("name").and_then(Value::as_str) == Some(model::USERNAME)
            && is_default_domain(user.get("domain"));
        let id_ok = user.get("id").and_then(Value::as_str) == Some(user_id().as_str());
        let password = user.get("password").and_then(Value::as_str);
        let expected = os.lock().password.clone();
        if (name_ok || id_ok) && password == Some(expected.as_str()) {
            return Ok("password".into());
        }
        return Err(Refusal::Unauthorized);
    }
    if methods.contains(&"application_credential") {
        let cred = identity
            .get("application_credential")
            .ok_or(Refusal::Unauthorized)?;
        let id_ok = cred.get("id").and_then(Value::as_str) == Some(app_credential_id().as_str());
        let name_ok = cred.get("name").and_then(Value::as_str) == Some(model::APP_CREDENTIAL_NAME);
        let secret_ok =
            cred.get("secret").and_then(Value::as_str) == Some(model::APP_CREDENTIAL_SECRET);
        if (id_ok || name_ok) && secret_ok {
            return Ok("application_credential".into());
        }
        return Err(Refusal::Unauthorized);
    }
    Err(Refusal::BadRequest(
        "Expecting to find password or application_credential in identity.",
    ))
}

/// Whether the scope asks for the admin project (`None`: unscoped).
fn scope_ok(scope: Option<&Value>) -> Result<bool, Refusal> {
    let Some(scope) = scope else {
        return Ok(false);
    };
    let Some(project) = scope.get("project") else {
        return Err(Refusal::Unauthorized);
    };
    let by_name = project.get("name").and_then(Value::as_str) == Some(model::PROJECT)
        && is_default_domain(project.get("domain"));
    let by_id = project.get("id").and_then(Value::as_str) == Some(project_id().as_str());
    if by_name || by_id {
        Ok(true)
    } else {
        Err(Refusal::Unauthorized)
    }
}

fn endpoint(service: &str, url: String) -> Value {
    json!({
        "id": model::stable_hex("endpoint", service),
        "interface": "public",
        "region_id": model::REGION,
        "region": model::REGION,
        "url": url,
    })
}

/// The catalog: identity, compute, image, orchestration and network, public endpoints.
pub fn catalog(base: &str) -> Value {
    let project = project_id();
    let services = [
        ("identity", "keystone", format!("{base}/identity")),
        ("compute", "nova", format!("{base}/compute/v2.1")),
        ("image", "glance", format!("{base}/image")),
        ("orchestration", "heat", format!("{base}/heat/v1/{project}")),
        ("network", "neutron", format!("{base}/network")),
    ];
    Value::Array(
        services
            .into_iter()
            .map(|(ty, name, url)| {
                json!({
                    "type": ty,
                    "name": name,
                    "id": model::stable_hex("service", ty),
                    "endpoints": [endpoint(ty, url)],
                })
            })
            .collect(),
    )
}

async fn issue(State(os): State<OpenStack>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "Bad Request", "The request body is not valid JSON.");
    };
    let Some(identity) = body.pointer("/auth/identity") else {
        return error(400, "Bad Request", "Expecting to find identity in auth.");
    };
    let method = match authenticate(&os, identity) {
        Ok(m) => m,
        Err(r) => return r.response(),
    };
    let scoped = match scope_ok(body.pointer("/auth/scope")) {
        Ok(s) => s,
        Err(r) => return r.response(),
    };
    let lifetime = os.lock().timing.token_lifetime;
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
    let token_id = format!("gAAAAA{}", hex::encode(rand::random::<[u8; 32]>()));
    os.lock().tokens.insert(
        token_id.clone(),
        Token {
            issued: Instant::now(),
            expires: Instant::now() + lifetime,
            scoped,
        },
    );
    let domain = json!({"id": model::DOMAIN_ID, "name": model::DOMAIN});
    let mut token = json!({
        "methods": [method],
        "user": {"id": user_id(), "name": model::USERNAME, "domain": domain,
                  "password_expires_at": null},
        "audit_ids": [hex::encode(rand::random::<[u8; 8]>())],
        "issued_at": model::keystone_time(now),
        "expires_at": model::keystone_time(expires),
    });
    if scoped {
        token["project"] = json!({"id": project_id(), "name": model::PROJECT, "domain": domain});
        token["is_domain"] = json!(false);
        token["roles"] = json!([
            {"id": model::stable_hex("role", "admin"), "name": "admin"},
            {"id": model::stable_hex("role", "member"), "name": "member"},
            {"id": model::stable_hex("role", "reader"), "name": "reader"},
        ]);
        token["catalog"] = catalog(&os.0.base);
    }
    let mut r = (StatusCode::CREATED, Json(json!({"token": token}))).into_response();
    if let Ok(v) = HeaderValue::from_str(&token_id) {
        r.headers_mut().insert("x-subject-token", v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    r
}
