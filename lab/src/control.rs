//! The lab's control API on 127.0.0.1, for tests and for people driving the
//! lab by hand (`curl`):
//!
//! - `GET /faults`: the active faults, as a JSON list of their names;
//! - `PUT /faults/{fault}` / `DELETE /faults/{fault}`: switch one on or off
//!   (400 naming the valid faults for an unknown one); both answer with the list;
//! - `GET /hosts`: the VMs with their ports;
//! - `GET /state/{host}/file?path=...`: a file of a VM.

use crate::faults::Faults;
use crate::state::SiteState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone)]
struct Ctl {
    state: SiteState,
    faults: Faults,
    hosts: Arc<Vec<HostInfo>>,
}

/// A VM as `GET /hosts` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct HostInfo {
    pub name: String,
    pub port: u16,
    pub jump: bool,
}

fn active(faults: &Faults) -> Json<Vec<String>> {
    Json(faults.active_names())
}

async fn list(State(ctl): State<Ctl>) -> Json<Vec<String>> {
    active(&ctl.faults)
}

fn switch(ctl: &Ctl, name: &str, on: bool) -> Response {
    match ctl.faults.set_named(name, on) {
        Ok(()) => active(&ctl.faults).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn turn_on(State(ctl): State<Ctl>, Path(fault): Path<String>) -> Response {
    switch(&ctl, &fault, true)
}

async fn turn_off(State(ctl): State<Ctl>, Path(fault): Path<String>) -> Response {
    switch(&ctl, &fault, false)
}

async fn list_hosts(State(ctl): State<Ctl>) -> Json<Vec<HostInfo>> {
    Json(ctl.hosts.as_ref().clone())
}

#[derive(Deserialize)]
struct FileQuery {
    path: Option<String>,
}

async fn file(
    State(ctl): State<Ctl>,
    Path(host): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let Some(path) = q.path else {
        return (
            StatusCode::BAD_REQUEST,
            "give the file as ?path=/absolute/path\n",
        )
            .into_response();
    };
    if !ctl.hosts.iter().any(|h| h.name == host) {
        return (StatusCode::NOT_FOUND, format!("no VM named {host:?}\n")).into_response();
    }
    match ctl.state.read_file(&host, &path) {
        Ok(data) => ([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{host}:{path}: {e}\n")).into_response(),
    }
}

async fn index() -> &'static str {
    "Recovery Portal lab control API\n\
     GET    /faults                      active faults\n\
     PUT    /faults/{fault}              switch a fault on\n\
     DELETE /faults/{fault}              switch a fault off\n\
     GET    /hosts                       VMs and their SSH ports\n\
     GET    /state/{host}/file?path=...  a file of a VM\n\
     faults: replica-set-unhealthy, svn-not-synced, host-key-changed:HOST, command-hangs:PATTERN, host-down:HOST,\n\
     OpenStack faults: snapshot-killed, server-error:HOST, download-drops, token-expired, over-quota\n"
}

/// The control API's routes.
pub fn router(state: SiteState, faults: Faults, hosts: Vec<HostInfo>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/faults", get(list))
        .route("/faults/{fault}", put(turn_on).delete(turn_off))
        .route("/hosts", get(list_hosts))
        .route("/state/{host}/file", get(file))
        .with_state(Ctl {
            state,
            faults,
            hosts: Arc::new(hosts),
        })
}
