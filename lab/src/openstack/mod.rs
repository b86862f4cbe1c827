//! A simulated OpenStack API over HTTP on 127.0.0.1, on the lab's site state:
//! enough Keystone v3, Nova v2.1, Glance v2, Heat v1 and Neutron (networks) for the recovery
//! procedures, for python-openstackclient and for the portal's own client.
//! Shapes follow `shared/openstack-api-notes.md` (observed from the real
//! services and clients).
//!
//! - [`keystone`]: `/identity`: version documents, password and
//!   application-credential tokens with the catalog.
//! - [`nova`]: `/compute/v2.1`: servers (one per lab VM) and their actions,
//!   flavors, limits, hypervisor statistics.
//! - [`glance`]: `/image`: images with their bytes on disk (or generated),
//!   streamed upload and download with ranges.
//! - [`heat`]: `/heat/v1/{project}`: the CPS stack and its resources.
//! - [`neutron`]: `/network/v2.0`: the site's networks, to find them by name.
//! - [`model`]: the records and shared helpers.
//!
//! Every request but the version documents and authentication needs a valid
//! `X-Auth-Token` (401 otherwise). Servers are coupled to the SSH side: a
//! server that is not running makes its VM refuse connections (the same check
//! as the `host-down` fault, [`crate::Faults::host_down`]); rebuilding or
//! re-creating a VM replaces its state with what the image holds.

pub mod glance;
pub mod heat;
pub mod keystone;
pub mod model;
pub mod neutron;
pub mod nova;

use crate::faults::{Faults, OpenStackFault};
use crate::state::topology::VMS;
use crate::state::SiteState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use model::{Image, ImageData, Server, Timing, Token};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the simulated cloud holds.
pub struct Inner {
    pub servers: Vec<Server>,
    /// Newest last.
    pub images: Vec<Image>,
    pub tokens: HashMap<String, Token>,
    pub timing: Timing,
    pub password: String,
    /// Maximum number of servers (`GET /limits`).
    pub max_instances: u64,
    /// The VM each snapshot's bytes hold, by their SHA-512: an upload of the
    /// same bytes (a restore from the backup store) holds it again.
    pub disks: HashMap<String, Box<crate::state::Host>>,
}

/// The cloud behind the API; [`OpenStack`] is the handle.
pub struct Cloud {
    /// `http://127.0.0.1:PORT`, the root of every endpoint.
    pub base: String,
    /// Where image files are kept.
    pub images_dir: PathBuf,
    pub site: SiteState,
    pub faults: Faults,
    inner: Mutex<Inner>,
}

/// A handle to the simulated OpenStack; clones share it.
#[derive(Clone)]
pub struct OpenStack(pub(crate) Arc<Cloud>);

/// How a client logs in: what `clouds.yaml` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub region_name: String,
    /// An application credential (`methods: ["application_credential"]`).
    pub application_credential_id: String,
    pub application_credential_secret: String,
}

/// A server as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub id: String,
    pub name: String,
    pub status: String,
    pub task_state: Option<String>,
    pub image_id: String,
    /// Every (status, task_state) it went through.
    pub history: Vec<(String, Option<String>)>,
}

impl OpenStack {
    /// The cloud of a lab whose state is `site`, serving at `base`, with its
    /// image files under `dir/openstack/images`. Registers the base images and
    /// one server per lab VM, all ACTIVE.
    pub fn new(
        base: String,
        dir: &Path,
        site: SiteState,
        faults: Faults,
        step: Duration,
    ) -> std::io::Result<Self> {
        let images_dir = dir.join("openstack").join("images");
        // The cloud starts anew with the lab: files of an earlier run's
        // images belong to no image any more.
        if images_dir.exists() {
            std::fs::remove_dir_all(&images_dir)?;
        }
        std::fs::create_dir_all(&images_dir)?;
        let mut inner = Inner {
            servers: Vec::new(),
            images: Vec::new(),
            tokens: HashMap::new(),
            timing: Timing {
                token_lifetime: Duration::from_secs(3600),
                step,
            },
            password: model::DEFAULT_PASSWORD.to_string(),
            max_instances: 20,
            disks: HashMap::new(),
        };
        for (name, seed) in [(nova::CPS_IMAGE, 1), (nova::ESC_IMAGE, 2)] {
            inner
                .images
                .push(glance::generated_image(name, seed, glance::BASE_IMAGE_SIZE));
        }
        let created = model::now_iso();
        for vm in VMS {
            inner.servers.push(nova::initial_server(vm, &created));
        }
        let cloud = OpenStack(Arc::new(Cloud {
            base,
            images_dir,
            site: site.clone(),
            faults,
            inner: Mutex::new(inner),
        }));
        // ESC powers VMs through the cloud; weakly, so that the site state does
        // not keep a stopped lab's cloud alive.
        let weak = Arc::downgrade(&cloud.0);
        site.set_power_hook(Arc::new(move |vm, action| match weak.upgrade() {
            Some(c) => nova::power(&OpenStack(c), vm, action),
            None => Err("the VIM is not reachable".into()),
        }));
        Ok(cloud)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.0.base.clone()
    }

    /// Keystone's URL for clients (`.../identity/v3`).
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.0.base)
    }

    /// The credentials the lab accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            auth_url: self.auth_url(),
            username: model::USERNAME.into(),
            password: self.lock().password.clone(),
            project_name: model::PROJECT.into(),
            user_domain_name: model::DOMAIN.into(),
            project_domain_name: model::DOMAIN.into(),
            region_name: model::REGION.into(),
            application_credential_id: keystone::app_credential_id(),
            application_credential_secret: model::APP_CREDENTIAL_SECRET.into(),
        }
    }

    /// How long tokens issued from now on live (default one hour).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().timing.token_lifetime = lifetime;
    }

    /// How long each intermediate state of an action lasts.
    pub fn set_step_delay(&self, step: Duration) {
        self.lock().timing.step = step;
    }

    /// The project id (Heat's URLs contain it).
    pub fn project_id(&self) -> String {
        keystone::project_id()
    }

    /// A server by name or id.
    pub fn server(&self, name_or_id: &str) -> Option<ServerInfo> {
        self.lock()
            .servers
            .iter()
            .find(|s| s.id == name_or_id || s.name == name_or_id)
            .map(|s| ServerInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                status: s.status.clone(),
                task_state: s.task_state.clone(),
                image_id: s.image_id.clone(),
                history: s.history.clone(),
            })
    }

    /// An image's status, if the image exists.
    pub fn image_status(&self, id: &str) -> Option<String> {
        self.lock()
            .images
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.status.clone())
    }

    /// Registers an image of `size` bytes whose content is deterministic
    /// pseudo-random data made on the fly when downloaded (nothing is stored);
    /// its md5 and sha512 are computed here, once. Returns its id.
    pub async fn add_generated_image(&self, name: &str, size: u64) -> String {
        let seed: u64 = rand::random();
        let name = name.to_string();
        let mut image =
            tokio::task::spawn_blocking(move || glance::generated_image(&name, seed, size))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        image.id = model::new_id();
        image.visibility = "private".into();
        let id = image.id.clone();
        self.lock().images.push(image);
        id
    }

    /// The routes of every service.
    pub fn router(&self) -> Router {
        let authed = Router::new()
            .nest("/compute/v2.1", nova::router())
            .nest("/image/v2", glance::router())
            .nest("/heat/v1/{project_id}", heat::router())
            .nest("/network/v2.0", neutron::router())
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                require_token,
            ));
        Router::new()
            .merge(keystone::router())
            .merge(nova::version_routes())
            .merge(glance::version_routes())
            .merge(authed)
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Whether a token is valid now.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        let revoked_since = self.0.faults.openstack_since(&OpenStackFault::TokenExpired);
        let inner = self.lock();
        match inner.tokens.get(token) {
            Some(t) => {
                t.scoped
                    && Instant::now() < t.expires
                    && revoked_since.is_none_or(|since| t.issued > since)
            }
            None => false,
        }
    }

    /// Marks the VM of a server as running or not: SSH follows, and ESC
    /// (which monitors the VMs it deployed) sees and logs the change.
    pub(crate) fn set_vm_running(&self, vm: Option<&str>, running: bool) {
        let Some(vm) = vm else {
            return;
        };
        self.0.faults.set_vm_off(vm, !running);
        let (event, state) = if running {
            ("VM_ALIVE", "VM_ALIVE_STATE")
        } else {
            ("VM_SHUTOFF", "VM_SHUTOFF_STATE")
        };
        self.0.site.with(|s| {
            let Some(current) = s.esc.vm_states.get_mut(vm) else {
                return;
            };
            if current == state {
                return;
            }
            *current = state.to_string();
            let now = crate::state::vfs::now();
            let mut lines = crate::state::initial::esc_log_line(now, event, state, vm);
            if running {
                lines.push_str(&crate::state::initial::esc_log_line(
                    now,
                    "SERVICE_ALIVE",
                    "SERVICE_ALIVE_STATE",
                    vm,
                ));
            }
            let master = s.esc.master.clone();
            if let Some(h) = s.host_mut(&master) {
                let _ =
                    h.fs.write(crate::commands::esc::YANG_LOG, lines.as_bytes(), true);
            }
        });
    }

    pub(crate) fn step(&self) -> Duration {
        self.lock().timing.step
    }

    pub(crate) fn image_path(&self, id: &str) -> PathBuf {
        self.0.images_dir.join(id)
    }

    /// Whether an OpenStack fault is on.
    pub(crate) fn fault(&self, f: &OpenStackFault) -> bool {
        self.0.faults.openstack_on(f)
    }

    /// Removes an image's file, if it has one.
    pub(crate) fn remove_data(data: &ImageData) {
        if let ImageData::File(p) = data {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Keystone-style 401, as keystonemiddleware answers for every service.
pub fn unauthorized(base: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{base}/identity\"")) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn require_token(State(os): State<OpenStack>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| os.token_valid(t));
    if ok {
        next.run(req).await
    } else {
        unauthorized(&os.0.base)
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"code": 404, "title": "Not Found",
            "message": "The resource could not be found."}})),
    )
        .into_response()
}

/// A header's value as text.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
