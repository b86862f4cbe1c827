//! The portal's Keystone session against a real Keystone (keystone 30 from PyPI,
//! on sqlite, served by uwsgi on 127.0.0.1), installed by `./scripts/test` into
//! `target/keystone-venv` (or `KEYSTONE_VENV`).

use server::exec::openstack::cloud::{self, Cloud};
use server::exec::openstack::session::{OpenStackError, Session};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "keystone test secret";

struct Keystone {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv() -> PathBuf {
    std::env::var_os("KEYSTONE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/keystone-venv"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn manage(bin: &Path, conf: &Path, args: &[&str]) {
    let out = Command::new(bin.join("keystone-manage"))
        .arg("--config-file")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keystone-manage {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh Keystone with user `admin` (password [`PASSWORD`]) in project `admin`.
async fn start_keystone() -> Keystone {
    let bin = venv().join("bin");
    assert!(
        bin.join("keystone-manage").exists() && bin.join("uwsgi").exists(),
        "a real Keystone is needed: ./scripts/test installs it with `pip install keystone uwsgi` into {}",
        venv().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("keystone.conf");
    std::fs::write(
        &conf,
        format!(
            "[database]\nconnection = sqlite:///{db}\n[fernet_tokens]\nkey_repository = {f}\n[fernet_receipts]\nkey_repository = {r}\n[credential]\nkey_repository = {c}\n",
            db = d.join("keystone.db").display(),
            f = d.join("fernet-keys").display(),
            r = d.join("fernet-receipts").display(),
            c = d.join("credential-keys").display(),
        ),
    )
    .unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let group = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v3/");
    manage(&bin, &conf, &["db_sync"]);
    for setup in ["fernet_setup", "credential_setup"] {
        manage(
            &bin,
            &conf,
            &[setup, "--keystone-user", &user, "--keystone-group", &group],
        );
    }
    manage(
        &bin,
        &conf,
        &[
            "bootstrap",
            "--bootstrap-password",
            PASSWORD,
            "--bootstrap-public-url",
            &url,
            "--bootstrap-region-id",
            "RegionOne",
        ],
    );
    let child = Command::new(bin.join("uwsgi"))
        .args([
            "--http11-socket",
            &format!("127.0.0.1:{port}"),
            "--module",
            "keystone.wsgi.api:application",
            "--master",
            "--processes",
            "1",
            "--threads",
            "2",
            "--die-on-term",
        ])
        .env("OS_KEYSTONE_CONFIG_FILES", &conf)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("uwsgi.log")).unwrap())
        .spawn()
        .unwrap();
    let keystone = Keystone {
        child,
        url,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&keystone.url).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "keystone did not start: {}",
            std::fs::read_to_string(keystone._dir.path().join("uwsgi.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    keystone
}

fn lab_cloud(url: &str, password: &str) -> Cloud {
    let yaml = format!(
        "clouds:\n  lab:\n    auth:\n      auth_url: {url}\n      username: admin\n      password: {password:?}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n"
    );
    cloud::from_clouds_yaml("clouds.yaml", &yaml, None, "lab", Path::new(".")).unwrap()
}

/// Registers a service and its public endpoint, as an operator would with
/// `openstack service create` and `openstack endpoint create`.
async fn register(keystone: &Keystone, kind: &str, url: &str) {
    let http = reqwest::Client::new();
    let auth = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = http
        .post(format!("{}auth/tokens", keystone.url))
        .json(&auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.headers()["X-Subject-Token"].to_str().unwrap().to_string();
    let service: serde_json::Value = http
        .post(format!("{}services", keystone.url))
        .header("X-Auth-Token", &token)
        .json(&serde_json::json!({"service": {"type": kind, "name": kind}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .post(format!("{}endpoints", keystone.url))
        .header("X-Auth-Token", &token)
        .json(&serde_json::json!({"endpoint": {"service_id": service["service"]["id"], "interface": "public", "url": url, "region_id": "RegionOne"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn the_session_authenticates_against_a_real_keystone_and_finds_services_in_its_catalog() {
    let keystone = start_keystone().await;
    let compute = format!("{}compute/v2.1", keystone.url.trim_end_matches("v3/"));
    register(&keystone, "compute", &compute).await;

    let session =
        Session::new(lab_cloud(&keystone.url, PASSWORD), Duration::from_secs(30)).unwrap();
    let project = session.project_id().await.unwrap();
    assert!(
        project.is_some_and(|p| p.len() == 32),
        "a Keystone project id"
    );

    // Requests go to the service the catalog names, with the token.
    let r = session
        .send(&["identity"], reqwest::Method::GET, "projects", |r| r)
        .await
        .unwrap();
    let projects: serde_json::Value = r.json().await.unwrap();
    assert_eq!(projects["projects"][0]["name"], "admin");
    // The compute endpoint registered above is used, not guessed: nothing answers
    // there, and the error says which service and URL.
    let err = session
        .send(&["compute"], reqwest::Method::GET, "servers/detail", |r| r)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            OpenStackError::Api { status: 404, .. } | OpenStackError::Unreachable { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("compute"), "{err}");
    // A service the catalog lacks is named.
    let err = session
        .send(&["orchestration"], reqwest::Method::GET, "stacks", |r| r)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the cloud's catalog has no orchestration service"),
        "{err}"
    );

    // Wrong credentials: Keystone's own message, and where the credentials came from.
    let wrong = Session::new(
        lab_cloud(&keystone.url, "not the password"),
        Duration::from_secs(30),
    )
    .unwrap();
    let err = wrong.project_id().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OpenStackError::Unauthorized { .. }), "{text}");
    assert!(text.contains("clouds.yaml cloud \"lab\""), "{text}");
    assert!(text.contains("requires authentication"), "{text}");
    assert!(!text.contains("not the password"), "{text}");
}
