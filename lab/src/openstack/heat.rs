//! Heat v1 under `/heat/v1/{project_id}`: one stack, `cps`, for the CPS
//! deployment, whose resources are the lab VMs' servers (found by name, so a
//! re-created server is the resource again).

use super::model::{self, STACK_NAME};
use super::OpenStack;
use crate::state::topology::VMS;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The stack's id.
pub fn stack_id() -> String {
    model::stable_id("stack", STACK_NAME)
}

/// The routes under `/heat/v1/{project_id}`.
pub fn router() -> Router<OpenStack> {
    Router::new()
        .route("/stacks", get(list))
        .route("/stacks/{name}", get(redirect))
        .route("/stacks/{name}/{id}", get(show))
        .route("/stacks/{name}/{id}/resources", get(resources))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "explanation": "The resource could not be found.",
            "code": 404,
            "error": {"message": format!("The Stack ({what}) could not be found."),
                      "traceback": null, "type": "EntityNotFound"},
            "title": "Not Found",
        })),
    )
        .into_response()
}

fn is_stack(name: &str) -> bool {
    name == STACK_NAME || name == stack_id()
}

fn created() -> &'static str {
    "2026-01-12T09:14:03Z"
}

fn stack_url(os: &OpenStack) -> String {
    format!(
        "{}/heat/v1/{}/stacks/{STACK_NAME}/{}",
        os.0.base,
        os.project_id(),
        stack_id()
    )
}

/// The stack's status: complete unless one of its servers is in ERROR.
fn status(os: &OpenStack) -> (&'static str, String) {
    let inner = os.lock();
    let broken: Vec<String> = VMS
        .iter()
        .filter(|vm| {
            inner
                .servers
                .iter()
                .find(|s| s.name == vm.name)
                .is_none_or(|s| s.status == "ERROR")
        })
        .map(|vm| vm.name.to_string())
        .collect();
    if broken.is_empty() {
        (
            "CREATE_COMPLETE",
            "Stack CREATE completed successfully".into(),
        )
    } else {
        (
            "CHECK_FAILED",
            format!("Resources not healthy: {}", broken.join(", ")),
        )
    }
}

fn summary(os: &OpenStack) -> Value {
    let (stack_status, reason) = status(os);
    json!({
        "id": stack_id(),
        "stack_name": STACK_NAME,
        "description": "Cisco Policy Suite 18.2.0 (Ultra-M)",
        "stack_status": stack_status,
        "stack_status_reason": reason,
        "creation_time": created(),
        "updated_time": null,
        "deletion_time": null,
        "stack_owner": model::USERNAME,
        "stack_user_project_id": os.project_id(),
        "project": os.project_id(),
        "parent": null,
        "tags": null,
        "links": [{"rel": "self", "href": stack_url(os)}],
    })
}

async fn list(State(os): State<OpenStack>) -> Json<Value> {
    Json(json!({"stacks": [summary(&os)]}))
}

async fn redirect(
    State(os): State<OpenStack>,
    Path((_, name)): Path<(String, String)>,
) -> Response {
    if !is_stack(&name) {
        return not_found(&name);
    }
    found(&stack_url(&os))
}

fn found(location: &str) -> Response {
    let mut r = (
        StatusCode::FOUND,
        Json(json!({"explanation": "The resource was found at",
                    "code": 302, "title": "Found"})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn show(
    State(os): State<OpenStack>,
    Path((_, name, id)): Path<(String, String, String)>,
) -> Response {
    if !is_stack(&name) {
        return not_found(&name);
    }
    if id != stack_id() {
        // `/stacks/{name}/resources` and the like: Heat looks the stack up
        // and redirects to the same path under its id.
        return found(&format!("{}/{id}", stack_url(&os)));
    }
    let mut stack = summary(&os);
    let servers: Vec<Value> = {
        let inner = os.lock();
        inner
            .servers
            .iter()
            .filter(|s| s.vm.is_some())
            .map(|s| json!({"name": s.name, "id": s.id, "ip": s.ip}))
            .collect()
    };
    stack["parameters"] = json!({
        "OS::stack_name": STACK_NAME,
        "OS::stack_id": stack_id(),
        "OS::project_id": os.project_id(),
        "cps_image": super::nova::CPS_IMAGE,
        "esc_image": super::nova::ESC_IMAGE,
        "network": model::NETWORK,
    });
    stack["outputs"] = json!([{
        "output_key": "servers",
        "description": "The CPS VMs",
        "output_value": servers,
    }]);
    stack["disable_rollback"] = json!(true);
    stack["timeout_mins"] = json!(null);
    stack["capabilities"] = json!([]);
    stack["notification_topics"] = json!([]);
    stack["template_description"] = json!("Cisco Policy Suite 18.2.0 (Ultra-M)");
    Json(json!({"stack": stack})).into_response()
}

async fn resources(
    State(os): State<OpenStack>,
    Path((_, name, id)): Path<(String, String, String)>,
) -> Response {
    if !is_stack(&name) || id != stack_id() {
        return not_found(&name);
    }
    let inner = os.lock();
    let list: Vec<Value> = VMS
        .iter()
        .map(|vm| {
            let server = inner.servers.iter().find(|s| s.name == vm.name);
            let (physical, status, reason) = match server {
                Some(s) if s.status == "ERROR" => (s.id.clone(), "CHECK_FAILED", "server in ERROR"),
                Some(s) => (s.id.clone(), "CREATE_COMPLETE", "state changed"),
                None => (String::new(), "DELETE_COMPLETE", "server deleted"),
            };
            json!({
                "resource_name": vm.name,
                "logical_resource_id": vm.name,
                "physical_resource_id": physical,
                "resource_type": "OS::Nova::Server",
                "resource_status": status,
                "resource_status_reason": reason,
                "creation_time": created(),
                "updated_time": created(),
                "required_by": [],
                "links": [{"rel": "stack", "href": stack_url(&os)}],
            })
        })
        .collect();
    Json(json!({"resources": list})).into_response()
}
