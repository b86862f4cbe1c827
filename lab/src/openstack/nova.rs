//! Nova v2.1 under `/compute/v2.1`: one server per lab VM (stable ids, the
//! VM's internal address), their actions with the real intermediate task
//! states, flavors, limits and hypervisor statistics.
//!
//! Actions run in the background, one step per [`super::model::Timing::step`];
//! a server that is not running makes its VM refuse SSH, and rebuilding or
//! re-creating a VM's server replaces the VM's state with what the image holds
//! (the captured VM of a snapshot, or a fresh install from a base image).

use super::model::{self, Flavor, Server, ServerFault};
use super::{header_str, OpenStack};
use crate::faults::OpenStackFault;
use crate::state::topology::{self, VmSpec};
use crate::state::PowerAction;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The base image of the CPS VMs.
pub const CPS_IMAGE: &str = "CPS_18.2.0_Base.qcow2";
/// The base image of the ESC VMs.
pub const ESC_IMAGE: &str = "ESC-4.3.0.121.qcow2";

/// The server of a lab VM as the lab starts: ACTIVE on its base image.
pub fn initial_server(vm: &VmSpec, created: &str) -> Server {
    let image = if vm.role == topology::Role::Esc {
        ESC_IMAGE
    } else {
        CPS_IMAGE
    };
    Server {
        id: model::stable_id("server", vm.name),
        name: vm.name.to_string(),
        vm: Some(vm.name.to_string()),
        status: "ACTIVE".into(),
        task_state: None,
        vm_state: "active".into(),
        power_state: 1,
        image_id: model::stable_id("image", image),
        flavor_id: model::stable_id("flavor", model::flavor_for(vm.role)),
        ip: vm.ip.to_string(),
        availability_zone: "nova".into(),
        created: created.to_string(),
        updated: created.to_string(),
        launched_at: Some(created.to_string()),
        fault: None,
        metadata: Map::new(),
        history: vec![("ACTIVE".into(), None)],
    }
}

/// `/compute` and `/compute/v2.1` version documents (no token needed).
pub fn version_routes() -> Router<OpenStack> {
    Router::new()
        .route("/compute", get(versions))
        .route("/compute/", get(versions))
        .route("/compute/v2.1", get(version))
        .route("/compute/v2.1/", get(version))
}

/// The routes under `/compute/v2.1`.
pub fn router() -> Router<OpenStack> {
    Router::new()
        .route("/servers", get(list).post(create))
        .route("/servers/detail", get(list_detail))
        .route("/servers/{id}", get(show).delete(delete))
        .route("/servers/{id}/action", post(action))
        .route("/flavors", get(flavor_list))
        .route("/flavors/detail", get(flavor_detail))
        .route("/flavors/{id}", get(flavor_show))
        .route("/limits", get(limits))
        .route("/os-hypervisors/statistics", get(hypervisor_statistics))
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": format!("{}.{}", model::MAX_MICROVERSION.0, model::MAX_MICROVERSION.1),
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}],
        "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

async fn versions(State(os): State<OpenStack>) -> Json<Value> {
    Json(json!({"versions": [version_doc(&os.0.base)]}))
}

async fn version(State(os): State<OpenStack>) -> Json<Value> {
    Json(json!({"version": version_doc(&os.0.base)}))
}

/// The microversion a request asks for (2.1 without a header).
fn microversion(headers: &HeaderMap) -> (u32, u32) {
    let raw = header_str(headers, "openstack-api-version")
        .and_then(|v| v.trim().strip_prefix("compute").map(str::trim))
        .or_else(|| header_str(headers, "x-openstack-nova-api-version"))
        .map(str::trim);
    let parse = |v: &str| -> Option<(u32, u32)> {
        if v == "latest" {
            return Some(model::MAX_MICROVERSION);
        }
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    raw.and_then(parse)
        .map(|v| v.min(model::MAX_MICROVERSION))
        .unwrap_or((2, 1))
}

/// A Nova error body: `{"itemNotFound": {"code": 404, "message": ...}}`.
pub fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let mut body = Map::new();
    body.insert(
        kind.to_string(),
        json!({"code": status.as_u16(), "message": message.into()}),
    );
    (status, Json(Value::Object(body))).into_response()
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        format!("Instance {id} could not be found."),
    )
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "badRequest", message)
}

fn with_version(mut r: Response, mv: (u32, u32)) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("compute {}.{}", mv.0, mv.1)) {
        r.headers_mut().insert("openstack-api-version", v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}.{}", mv.0, mv.1)) {
        r.headers_mut().insert("x-openstack-nova-api-version", v);
    }
    r.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    r
}

fn flavor_json(os: &OpenStack, f: &Flavor) -> Value {
    let href = format!("{}/compute/v2.1/flavors/{}", os.0.base, f.id);
    json!({
        "id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
        "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": false,
        "swap": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": true,
        "description": null, "extra_specs": {},
        "links": [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}],
    })
}

fn server_json(os: &OpenStack, s: &Server, mv: (u32, u32)) -> Value {
    let href = format!("{}/compute/v2.1/servers/{}", os.0.base, s.id);
    let flavors = model::flavors();
    let flavor = flavors.iter().find(|f| f.id == s.flavor_id);
    let flavor_value = match (flavor, mv >= (2, 47)) {
        (Some(f), true) => json!({
            "original_name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
            "ephemeral": 0, "swap": 0, "extra_specs": {},
        }),
        _ => json!({"id": s.flavor_id, "links": [{"rel": "bookmark",
            "href": format!("{}/compute/v2.1/flavors/{}", os.0.base, s.flavor_id)}]}),
    };
    let mac = {
        let h = model::stable_hex("mac", &s.id);
        format!("fa:16:3e:{}:{}:{}", &h[0..2], &h[2..4], &h[4..6])
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "tenant_id": super::keystone::project_id(),
        "user_id": super::keystone::user_id(),
        "metadata": s.metadata,
        "hostId": model::stable_hex("host", model::COMPUTE_HOST),
        "image": {"id": s.image_id, "links": [{"rel": "bookmark",
            "href": format!("{}/compute/v2.1/images/{}", os.0.base, s.image_id)}]},
        "flavor": flavor_value,
        "created": s.created,
        "updated": s.updated,
        "addresses": {model::NETWORK: [{
            "version": 4, "addr": s.ip,
            "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac,
        }]},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}],
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 0,
        "OS-EXT-AZ:availability_zone": s.availability_zone,
        "config_drive": "",
        "key_name": null,
        "OS-SRV-USG:launched_at": s.launched_at,
        "OS-SRV-USG:terminated_at": null,
        "OS-EXT-SRV-ATTR:host": model::COMPUTE_HOST,
        "OS-EXT-SRV-ATTR:instance_name": format!("instance-{}", &s.id[..8]),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": format!("{}.localdomain", model::COMPUTE_HOST),
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": s.power_state,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
        "locked": false,
        "description": null,
        "tags": [],
        "trusted_image_certificates": null,
        "host_status": "UP",
        "server_groups": [],
    });
    if let Some(f) = &s.fault {
        v["fault"] = json!({"code": f.code, "message": f.message, "created": f.created});
    }
    v
}

async fn show(State(os): State<OpenStack>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mv = microversion(&headers);
    let inner = os.lock();
    match inner.servers.iter().find(|s| s.id == id) {
        Some(s) => with_version(
            Json(json!({"server": server_json(&os, s, mv)})).into_response(),
            mv,
        ),
        None => not_found(&id),
    }
}

async fn list(
    state: State<OpenStack>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    list_servers(state, query, headers, false)
}

async fn list_detail(
    state: State<OpenStack>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    list_servers(state, query, headers, true)
}

fn list_servers(
    State(os): State<OpenStack>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    detail: bool,
) -> Response {
    let mv = microversion(&headers);
    let name = match q.get("name").map(|n| regex::Regex::new(n)) {
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => return bad_request("Invalid regular expression in name filter."),
        None => None,
    };
    let status = q.get("status").map(|s| s.to_uppercase());
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return bad_request("limit param must be an integer"),
        None => None,
    };
    let inner = os.lock();
    let matching: Vec<&Server> = inner
        .servers
        .iter()
        .filter(|s| name.as_ref().is_none_or(|r| r.is_match(&s.name)))
        .filter(|s| status.as_ref().is_none_or(|st| s.status == *st))
        .collect();
    let start = match q.get("marker") {
        Some(m) => match matching.iter().position(|s| s.id == *m) {
            Some(p) => p + 1,
            None => return bad_request(format!("marker [{m}] not found")),
        },
        None => 0,
    };
    let rest = &matching[start.min(matching.len())..];
    let page: &[&Server] = match limit {
        Some(l) if l < rest.len() => &rest[..l],
        _ => rest,
    };
    let servers: Vec<Value> = page
        .iter()
        .map(|s| {
            if detail {
                server_json(&os, s, mv)
            } else {
                let href = format!("{}/compute/v2.1/servers/{}", os.0.base, s.id);
                json!({"id": s.id, "name": s.name,
                       "links": [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]})
            }
        })
        .collect();
    let mut body = json!({"servers": servers});
    if let (Some(l), Some(last)) = (limit, page.last()) {
        if rest.len() > page.len() {
            let mut params = vec![format!("limit={l}"), format!("marker={}", last.id)];
            for key in ["name", "status"] {
                if let Some(v) = q.get(key) {
                    params.push(format!("{key}={}", encode(v)));
                }
            }
            let path = if detail { "servers/detail" } else { "servers" };
            body["servers_links"] = json!([{"rel": "next",
                "href": format!("{}/compute/v2.1/{path}?{}", os.0.base, params.join("&"))}]);
        }
    }
    with_version(Json(body).into_response(), mv)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn flavor_list(State(os): State<OpenStack>) -> Json<Value> {
    let flavors: Vec<Value> = model::flavors()
        .iter()
        .map(|f| {
            let v = flavor_json(&os, f);
            json!({"id": f.id, "name": f.name, "links": v["links"], "description": null})
        })
        .collect();
    Json(json!({"flavors": flavors}))
}

async fn flavor_detail(State(os): State<OpenStack>) -> Json<Value> {
    let flavors: Vec<Value> = model::flavors()
        .iter()
        .map(|f| flavor_json(&os, f))
        .collect();
    Json(json!({"flavors": flavors}))
}

async fn flavor_show(State(os): State<OpenStack>, Path(id): Path<String>) -> Response {
    match model::flavors().iter().find(|f| f.id == id || f.name == id) {
        Some(f) => Json(json!({"flavor": flavor_json(&os, f)})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("Flavor {id} could not be found."),
        ),
    }
}

/// (vcpus, ram, disk) used by the servers.
fn usage(os: &OpenStack) -> (u64, u64, u64, u64) {
    let flavors = model::flavors();
    let inner = os.lock();
    let mut used = (0, 0, 0, 0);
    for s in &inner.servers {
        if let Some(f) = flavors.iter().find(|f| f.id == s.flavor_id) {
            used.0 += u64::from(f.vcpus);
            used.1 += f.ram;
            used.2 += f.disk;
        }
        used.3 += 1;
    }
    used
}

async fn limits(State(os): State<OpenStack>) -> Json<Value> {
    let (cores, ram, _, count) = usage(&os);
    let max_instances = os.lock().max_instances;
    Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalCores": 200, "totalCoresUsed": cores,
        "maxTotalRAMSize": 1_024_000, "totalRAMUsed": ram,
        "maxTotalInstances": max_instances, "totalInstancesUsed": count,
        "maxServerMeta": 128, "maxImageMeta": 128, "maxPersonality": 5,
        "maxPersonalitySize": 10240, "maxTotalKeypairs": 100,
        "maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
        "maxServerGroups": 10, "maxServerGroupMembers": 10,
        "maxTotalFloatingIps": 10, "totalFloatingIpsUsed": 0,
        "totalSecurityGroupsUsed": 1, "totalServerGroupsUsed": 0,
    }}}))
}

async fn hypervisor_statistics(State(os): State<OpenStack>, headers: HeaderMap) -> Response {
    let mv = microversion(&headers);
    if mv > (2, 87) {
        return error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The resource could not be found.",
        );
    }
    let (cores, ram, disk, count) = usage(&os);
    let (vcpus, memory_mb, local_gb) = (128u64, 786_432u64, 4096u64);
    Json(json!({"hypervisor_statistics": {
        "count": 1, "vcpus": vcpus, "vcpus_used": cores,
        "memory_mb": memory_mb, "memory_mb_used": ram,
        "free_ram_mb": memory_mb.saturating_sub(ram),
        "local_gb": local_gb, "local_gb_used": disk,
        "free_disk_gb": local_gb.saturating_sub(disk),
        "disk_available_least": local_gb.saturating_sub(disk),
        "running_vms": count, "current_workload": 0,
    }}))
    .into_response()
}

// ---------------------------------------------------------------- actions

fn conflict(action: &str, s: &Server) -> Response {
    let why = match &s.task_state {
        Some(t) => format!("task_state {t}"),
        None => format!("vm_state {}", s.vm_state),
    };
    error(
        StatusCode::CONFLICT,
        "conflictingRequest",
        format!("Cannot '{action}' instance {} while it is in {why}", s.id),
    )
}

fn over_limit(message: &str) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, "overLimit", message)
}

/// Waits one step, then changes the server; false when it is gone.
async fn advance(os: &OpenStack, id: &str, change: impl FnOnce(&mut Server)) -> bool {
    tokio::time::sleep(os.step()).await;
    let mut inner = os.lock();
    match inner.servers.iter_mut().find(|s| s.id == id) {
        Some(s) => {
            change(s);
            true
        }
        None => false,
    }
}

/// If the `server-error` fault is on for this server's VM, puts it in ERROR
/// and answers true.
fn fail_if_faulted(os: &OpenStack, id: &str, action: &str) -> bool {
    let mut inner = os.lock();
    let Some(s) = inner.servers.iter_mut().find(|s| s.id == id) else {
        return false;
    };
    let Some(vm) = s.vm.clone() else {
        return false;
    };
    if !os.fault(&OpenStackFault::ServerError { host: vm.clone() }) {
        return false;
    }
    s.vm_state = "error".into();
    s.power_state = 0;
    s.fault = Some(ServerFault {
        code: 500,
        message: format!(
            "Failed to {action} instance: libvirtError: internal error: qemu unexpectedly closed the monitor (simulated fault on {vm})"
        ),
        created: model::now_iso(),
    });
    s.set("ERROR", None);
    drop(inner);
    os.set_vm_running(Some(&vm), false);
    true
}

/// Puts the image's VM into `vm`'s place in the site: the captured VM of a
/// snapshot, else a fresh install.
fn install(os: &OpenStack, vm: &str, image_id: &str) {
    let captured = os
        .lock()
        .images
        .iter()
        .find(|i| i.id == image_id)
        .and_then(|i| i.captured.clone());
    let Some(spec) = topology::vm(vm) else {
        return;
    };
    let host = match captured {
        Some(h) => {
            let mut h = *h;
            h.name = spec.name.to_string();
            h.ip = spec.ip.to_string();
            h.role = spec.role;
            Some(h)
        }
        None => crate::state::initial::fresh_host(vm),
    };
    if let Some(host) = host {
        os.0.site.with(|s| {
            s.hosts.insert(vm.to_string(), host);
        });
    }
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// ESC's request to power the VM `vm` (its server), as Nova's os-stop,
/// os-start and soft reboot would; refused like them when the server is busy or
/// in the wrong state.
pub(crate) fn power(os: &OpenStack, vm: &str, action: PowerAction) -> Result<(), String> {
    let (id, vm_state, busy) = {
        let inner = os.lock();
        let s = inner
            .servers
            .iter()
            .find(|s| s.vm.as_deref() == Some(vm))
            .ok_or_else(|| format!("VM {vm} has no server in the VIM"))?;
        (s.id.clone(), s.vm_state.clone(), s.task_state.is_some())
    };
    let refused = |what: &str| {
        Err(format!(
            "VIM refused to {what} {vm}: the server is {vm_state}{}",
            if busy { " and busy" } else { "" }
        ))
    };
    let vm = Some(vm.to_string());
    match action {
        PowerAction::Stop => {
            if busy || !matches!(vm_state.as_str(), "active" | "error") {
                return refused("stop");
            }
            start_step(os, &id, None, Some("powering-off"));
            tokio::spawn(stop_task(os.clone(), id, vm));
        }
        PowerAction::Start => {
            if busy || vm_state != "stopped" {
                return refused("start");
            }
            start_step(os, &id, None, Some("powering-on"));
            tokio::spawn(start_task(os.clone(), id, vm));
        }
        PowerAction::Reboot => {
            if busy || vm_state != "active" {
                return refused("reboot");
            }
            start_step(os, &id, Some("REBOOT"), Some("rebooting"));
            os.set_vm_running(vm.as_deref(), false);
            tokio::spawn(reboot_task(os.clone(), id, vm, false));
        }
    }
    Ok(())
}

async fn action(
    State(os): State<OpenStack>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mv = microversion(&headers);
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Malformed request body");
    };
    let Some((name, arg)) = body.into_iter().next() else {
        return bad_request("Malformed request body");
    };
    let (vm_state, task, vm) = {
        let inner = os.lock();
        match inner.servers.iter().find(|s| s.id == id) {
            Some(s) => (s.vm_state.clone(), s.task_state.clone(), s.vm.clone()),
            None => return not_found(&id),
        }
    };
    let busy = task.is_some();
    let current = || os.lock().servers.iter().find(|s| s.id == id).cloned();
    let refuse = |action: &str| match current() {
        Some(s) => conflict(action, &s),
        None => not_found(&id),
    };
    match name.as_str() {
        "os-stop" => {
            if busy || !matches!(vm_state.as_str(), "active" | "error") {
                return refuse("stop");
            }
            start_step(&os, &id, None, Some("powering-off"));
            tokio::spawn(stop_task(os.clone(), id.clone(), vm));
            accepted()
        }
        "os-start" => {
            if busy || vm_state != "stopped" {
                return refuse("start");
            }
            start_step(&os, &id, None, Some("powering-on"));
            tokio::spawn(start_task(os.clone(), id.clone(), vm));
            accepted()
        }
        "reboot" => {
            let hard = arg.pointer("/type").and_then(Value::as_str) == Some("HARD");
            let allowed = if hard {
                matches!(vm_state.as_str(), "active" | "stopped" | "error")
            } else {
                vm_state == "active"
            };
            if busy || !allowed {
                return refuse("reboot");
            }
            let (status, task) = if hard {
                ("HARD_REBOOT", "rebooting_hard")
            } else {
                ("REBOOT", "rebooting")
            };
            start_step(&os, &id, Some(status), Some(task));
            os.set_vm_running(vm.as_deref(), false);
            tokio::spawn(reboot_task(os.clone(), id.clone(), vm, hard));
            accepted()
        }
        "createImage" => {
            if busy || !matches!(vm_state.as_str(), "active" | "stopped") {
                return refuse("createImage");
            }
            if os.fault(&OpenStackFault::OverQuota) {
                return over_limit("Quota exceeded for images.");
            }
            let Some(image_name) = arg.get("name").and_then(Value::as_str) else {
                return bad_request(
                    "Invalid input for field/attribute createImage. 'name' is a required property",
                );
            };
            let metadata = arg
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let image_id = super::glance::begin_snapshot(&os, &id, image_name, metadata);
            start_step(&os, &id, None, Some("image_snapshot"));
            tokio::spawn(snapshot_task(os.clone(), id.clone(), vm, image_id.clone()));
            let location = format!("{}/image/v2/images/{image_id}", os.0.base);
            let mut r = if mv >= (2, 45) {
                (StatusCode::ACCEPTED, Json(json!({"image_id": image_id}))).into_response()
            } else {
                accepted()
            };
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            with_version(r, mv)
        }
        "rebuild" => {
            if busy || !matches!(vm_state.as_str(), "active" | "stopped" | "error") {
                return refuse("rebuild");
            }
            let Some(image_ref) = arg.get("imageRef").and_then(Value::as_str) else {
                return bad_request(
                    "Invalid input for field/attribute rebuild. 'imageRef' is a required property",
                );
            };
            let image_ref = image_ref
                .rsplit('/')
                .next()
                .unwrap_or(image_ref)
                .to_string();
            if os.image_status(&image_ref).as_deref() != Some("active") {
                return bad_request(format!(
                    "Image {image_ref} could not be found or is not active."
                ));
            }
            let was_stopped = vm_state == "stopped";
            {
                let mut inner = os.lock();
                if let Some(s) = inner.servers.iter_mut().find(|s| s.id == id) {
                    if let Some(n) = arg.get("name").and_then(Value::as_str) {
                        s.name = n.to_string();
                    }
                    s.image_id = image_ref.clone();
                    s.fault = None;
                    s.set("REBUILD", Some("rebuilding"));
                }
            }
            os.set_vm_running(vm.as_deref(), false);
            tokio::spawn(rebuild_task(
                os.clone(),
                id.clone(),
                vm,
                image_ref,
                was_stopped,
            ));
            let Some(s) = current() else {
                return not_found(&id);
            };
            let mut server = server_json(&os, &s, mv);
            server["adminPass"] = json!(hex::encode(rand::random::<[u8; 6]>()));
            with_version(
                (StatusCode::ACCEPTED, Json(json!({"server": server}))).into_response(),
                mv,
            )
        }
        "os-resetState" => {
            let state = arg.pointer("/state").and_then(Value::as_str).unwrap_or("");
            let (status, vm_state, running) = match state {
                "active" => ("ACTIVE", "active", true),
                "error" => ("ERROR", "error", false),
                _ => return bad_request("Invalid input for field/attribute state."),
            };
            let mut inner = os.lock();
            if let Some(s) = inner.servers.iter_mut().find(|s| s.id == id) {
                s.vm_state = vm_state.into();
                s.power_state = if running { 1 } else { 0 };
                if running {
                    s.fault = None;
                }
                s.set(status, None);
            }
            drop(inner);
            os.set_vm_running(vm.as_deref(), running);
            accepted()
        }
        other => bad_request(format!("There is no such action: {other}")),
    }
}

/// Sets the first state of an action at once (what the API call returns with).
fn start_step(os: &OpenStack, id: &str, status: Option<&str>, task: Option<&str>) {
    let mut inner = os.lock();
    if let Some(s) = inner.servers.iter_mut().find(|s| s.id == id) {
        let status = status
            .map(str::to_string)
            .unwrap_or_else(|| s.status.clone());
        s.set(&status, task);
    }
}

async fn stop_task(os: OpenStack, id: String, vm: Option<String>) {
    tokio::time::sleep(os.step()).await;
    if fail_if_faulted(&os, &id, "stop") {
        return;
    }
    if advance(&os, &id, |s| {
        s.vm_state = "stopped".into();
        s.power_state = 4;
        s.fault = None;
        s.set("SHUTOFF", None);
    })
    .await
    {
        os.set_vm_running(vm.as_deref(), false);
    }
}

async fn start_task(os: OpenStack, id: String, vm: Option<String>) {
    tokio::time::sleep(os.step()).await;
    if fail_if_faulted(&os, &id, "start") {
        return;
    }
    if advance(&os, &id, |s| {
        s.vm_state = "active".into();
        s.power_state = 1;
        s.set("ACTIVE", None);
    })
    .await
    {
        os.set_vm_running(vm.as_deref(), true);
    }
}

async fn reboot_task(os: OpenStack, id: String, vm: Option<String>, hard: bool) {
    let (status, started) = if hard {
        ("HARD_REBOOT", "reboot_started_hard")
    } else {
        ("REBOOT", "reboot_started")
    };
    if !advance(&os, &id, |s| s.set(status, Some(started))).await {
        return;
    }
    if fail_if_faulted(&os, &id, "reboot") {
        return;
    }
    if advance(&os, &id, |s| {
        s.vm_state = "active".into();
        s.power_state = 1;
        s.fault = None;
        s.set("ACTIVE", None);
    })
    .await
    {
        os.set_vm_running(vm.as_deref(), true);
    }
}

async fn snapshot_task(os: OpenStack, id: String, vm: Option<String>, image_id: String) {
    // The VM as it is now is what the snapshot holds.
    let captured = vm
        .as_deref()
        .and_then(|vm| os.0.site.with(|s| s.host(vm).cloned()));
    super::glance::capture(&os, &image_id, captured);
    if fail_if_faulted(&os, &id, "snapshot") {
        super::glance::finish_snapshot(&os, &image_id, false).await;
        return;
    }
    if !advance(&os, &id, |s| {
        let status = s.status.clone();
        s.set(&status, Some("image_pending_upload"));
    })
    .await
    {
        return;
    }
    if !advance(&os, &id, |s| {
        let status = s.status.clone();
        s.set(&status, Some("image_uploading"));
    })
    .await
    {
        return;
    }
    super::glance::set_status(&os, &image_id, "saving");
    tokio::time::sleep(os.step()).await;
    let killed = os.fault(&OpenStackFault::SnapshotKilled);
    super::glance::finish_snapshot(&os, &image_id, !killed).await;
    advance(&os, &id, |s| {
        let status = s.status.clone();
        s.set(&status, None);
    })
    .await;
}

async fn rebuild_task(
    os: OpenStack,
    id: String,
    vm: Option<String>,
    image_id: String,
    was_stopped: bool,
) {
    if !advance(&os, &id, |s| {
        s.set("REBUILD", Some("rebuild_block_device_mapping"))
    })
    .await
    {
        return;
    }
    if fail_if_faulted(&os, &id, "rebuild") {
        return;
    }
    if !advance(&os, &id, |s| s.set("REBUILD", Some("rebuild_spawning"))).await {
        return;
    }
    if let Some(vm) = vm.as_deref() {
        install(&os, vm, &image_id);
    }
    let done = advance(&os, &id, |s| {
        s.launched_at = Some(model::now_iso());
        if was_stopped {
            s.vm_state = "stopped".into();
            s.power_state = 4;
            s.set("SHUTOFF", None);
        } else {
            s.vm_state = "active".into();
            s.power_state = 1;
            s.set("ACTIVE", None);
        }
    })
    .await;
    if done && !was_stopped {
        os.set_vm_running(vm.as_deref(), true);
    }
}

async fn delete(State(os): State<OpenStack>, Path(id): Path<String>) -> Response {
    let vm = {
        let mut inner = os.lock();
        let Some(s) = inner.servers.iter_mut().find(|s| s.id == id) else {
            return not_found(&id);
        };
        if s.task_state.as_deref() == Some("deleting") {
            return StatusCode::NO_CONTENT.into_response();
        }
        let status = s.status.clone();
        s.set(&status, Some("deleting"));
        s.vm.clone()
    };
    os.set_vm_running(vm.as_deref(), false);
    let task_os = os.clone();
    tokio::spawn(async move {
        tokio::time::sleep(task_os.step()).await;
        task_os.lock().servers.retain(|s| s.id != id);
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn create(
    State(os): State<OpenStack>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mv = microversion(&headers);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Malformed request body");
    };
    let Some(req) = body.get("server") else {
        return bad_request("Invalid input: 'server' is a required property");
    };
    let Some(name) = req.get("name").and_then(Value::as_str) else {
        return bad_request(
            "Invalid input for field/attribute name. 'name' is a required property",
        );
    };
    if os.fault(&OpenStackFault::OverQuota) {
        return over_limit(
            "Quota exceeded for instances: Requested 1, but already used 11 of 11 instances",
        );
    }
    // The image: imageRef, or the image of a block device mapping.
    let image_ref = req
        .get("imageRef")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            req.get("block_device_mapping_v2")
                .and_then(Value::as_array)
                .and_then(|b| {
                    b.iter().find_map(|m| {
                        (m.get("source_type").and_then(Value::as_str) == Some("image"))
                            .then(|| m.get("uuid").and_then(Value::as_str))
                            .flatten()
                    })
                })
        });
    let Some(image_ref) = image_ref else {
        return bad_request("Block Device Mapping is Invalid: You specified more local devices than the limit allows or no image.");
    };
    let image_ref = image_ref
        .rsplit('/')
        .next()
        .unwrap_or(image_ref)
        .to_string();
    if os.image_status(&image_ref).as_deref() != Some("active") {
        return bad_request(format!("Image {image_ref} could not be found."));
    }
    let flavor_ref = req.get("flavorRef").and_then(Value::as_str).unwrap_or("");
    let flavor_ref = flavor_ref.rsplit('/').next().unwrap_or(flavor_ref);
    let Some(flavor) = model::flavors()
        .into_iter()
        .find(|f| f.id == flavor_ref || f.name == flavor_ref)
    else {
        return bad_request(format!("Flavor {flavor_ref} could not be found."));
    };
    // Networks by id, as Nova takes them (clients look names up in Neutron).
    if let Some(unknown) = req
        .get("networks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("uuid").and_then(Value::as_str))
        .find(|id| !super::neutron::known(id))
    {
        return bad_request(format!("Network {unknown} could not be found."));
    }
    let vm = topology::vm(name).map(|v| v.name.to_string());
    let fixed_ip = req
        .get("networks")
        .and_then(Value::as_array)
        .and_then(|n| {
            n.iter()
                .find_map(|n| n.get("fixed_ip").and_then(Value::as_str))
        })
        .map(str::to_string);
    let ip = fixed_ip
        .or_else(|| topology::vm(name).map(|v| v.ip.to_string()))
        .unwrap_or_else(|| format!("172.16.2.{}", 200 + rand::random::<u8>() % 50));
    let az = req
        .get("availability_zone")
        .and_then(Value::as_str)
        .map(|a| a.split(':').next().unwrap_or(a).to_string())
        .unwrap_or_else(|| "nova".into());
    let metadata = req
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let now = model::now_iso();
    let id = model::new_id();
    let server = Server {
        id: id.clone(),
        name: name.to_string(),
        vm: vm.clone(),
        status: "BUILD".into(),
        task_state: Some("scheduling".into()),
        vm_state: "building".into(),
        power_state: 0,
        image_id: image_ref.clone(),
        flavor_id: flavor.id.clone(),
        ip,
        availability_zone: az,
        created: now.clone(),
        updated: now,
        launched_at: None,
        fault: None,
        metadata,
        history: vec![("BUILD".into(), Some("scheduling".into()))],
    };
    os.lock().servers.push(server);
    os.set_vm_running(vm.as_deref(), false);
    tokio::spawn(build_task(os.clone(), id.clone(), vm, image_ref));
    let href = format!("{}/compute/v2.1/servers/{id}", os.0.base);
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({"server": {
            "id": id,
            "links": [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}],
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": hex::encode(rand::random::<[u8; 6]>()),
        }})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&href) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    with_version(r, mv)
}

async fn build_task(os: OpenStack, id: String, vm: Option<String>, image_id: String) {
    if !advance(&os, &id, |s| s.set("BUILD", Some("block_device_mapping"))).await {
        return;
    }
    if !advance(&os, &id, |s| s.set("BUILD", Some("spawning"))).await {
        return;
    }
    if fail_if_faulted(&os, &id, "spawn") {
        return;
    }
    if let Some(vm) = vm.as_deref() {
        install(&os, vm, &image_id);
    }
    let done = advance(&os, &id, |s| {
        s.vm_state = "active".into();
        s.power_state = 1;
        s.launched_at = Some(model::now_iso());
        s.set("ACTIVE", None);
    })
    .await;
    if done {
        os.set_vm_running(vm.as_deref(), true);
    }
}
