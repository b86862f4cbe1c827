//! Neutron v2.0 under `/network/v2.0`: the site's networks, read only, so that
//! clients can turn the network names of a `server create` into ids.

use super::model;
use super::OpenStack;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The CPS networks: name and subnet.
pub const NETWORKS: [(&str, &str); 2] = [
    (model::NETWORK, "172.16.2.0/24"),
    ("management", "172.20.67.0/24"),
];

/// A network's id.
pub fn network_id(name: &str) -> String {
    model::stable_id("network", name)
}

/// Whether `id` is one of the site's networks.
pub fn known(id: &str) -> bool {
    NETWORKS.iter().any(|(n, _)| network_id(n) == id)
}

/// The routes under `/network/v2.0`.
pub fn router() -> Router<OpenStack> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/{id}", get(show))
}

fn network_json(name: &str, cidr: &str) -> Value {
    let id = network_id(name);
    json!({
        "id": id,
        "name": name,
        "status": "ACTIVE",
        "admin_state_up": true,
        "shared": false,
        "external": false,
        "mtu": 1500,
        "project_id": super::keystone::project_id(),
        "tenant_id": super::keystone::project_id(),
        "subnets": [model::stable_id("subnet", cidr)],
        "router:external": false,
        "provider:network_type": "vlan",
    })
}

async fn list(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let networks: Vec<Value> = NETWORKS
        .iter()
        .filter(|(name, _)| q.get("name").is_none_or(|n| n == name))
        .filter(|(name, _)| q.get("id").is_none_or(|i| *i == network_id(name)))
        .map(|(name, cidr)| network_json(name, cidr))
        .collect();
    Json(json!({ "networks": networks }))
}

async fn show(State(_os): State<OpenStack>, Path(id): Path<String>) -> Response {
    match NETWORKS.iter().find(|(name, _)| network_id(name) == id) {
        Some((name, cidr)) => Json(json!({ "network": network_json(name, cidr) })).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"NeutronError": {
                "type": "NetworkNotFound",
                "message": format!("Network {id} could not be found."),
                "detail": "",
            }})),
        )
            .into_response(),
    }
}
