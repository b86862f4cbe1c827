//! The lab's simulated OpenStack API over real HTTP: Keystone tokens and the
//! catalog, Nova servers and their actions coupled to the VMs' SSH servers,
//! Glance streamed upload and download with ranges, Heat, and the OpenStack
//! faults.

use lab::{Lab, OpenStackFault, Pace};
use md5::Md5;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;

struct Cloud {
    lab: Lab,
    dir: TempDir,
    http: Client,
    token: String,
    base: String,
}

impl Cloud {
    async fn start() -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::start_with_pace(dir.path(), Pace::instant())
            .await
            .unwrap();
        lab.write_out(dir.path()).unwrap();
        let http = Client::new();
        let base = lab.openstack_url();
        let token = issue(&http, &lab, &lab.openstack_credentials().password)
            .await
            .headers()
            .get("x-subject-token")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        Cloud {
            lab,
            dir,
            http,
            token,
            base,
        }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.79")
    }

    async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    fn server_id(&self, name: &str) -> String {
        self.lab.openstack().server(name).unwrap().id
    }

    async fn action(&self, name: &str, body: Value) -> Response {
        let id = self.server_id(name);
        self.req(Method::POST, &format!("/compute/v2.1/servers/{id}/action"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Polls the server until its status is `status` with no task.
    async fn wait_server(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.json(&format!("/compute/v2.1/servers/{id}")).await;
            if s["server"]["status"] == status && s["server"]["OS-EXT-STS:task_state"].is_null() {
                return s["server"].clone();
            }
            assert!(Instant::now() < deadline, "still {s}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_image(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let i = self.json(&format!("/image/v2/images/{id}")).await;
            if i["status"] == status {
                return i;
            }
            assert!(Instant::now() < deadline, "still {i}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn download(&self, id: &str) -> Vec<u8> {
        let r = self.get(&format!("/image/v2/images/{id}/file")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.bytes().await.unwrap().to_vec()
    }

    async fn snapshot(&self, server: &str, name: &str) -> String {
        let r = self
            .action(
                server,
                json!({"createImage": {"name": name, "metadata": {}}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        body["image_id"].as_str().unwrap().to_string()
    }

    async fn ssh(&self, host: &str, command: &str) -> std::process::Output {
        ssh(self.dir.path(), host, command).await
    }
}

async fn issue(http: &Client, lab: &Lab, password: &str) -> Response {
    http.post(format!("{}/auth/tokens", lab.openstack_auth_url()))
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }}))
        .send()
        .await
        .unwrap()
}

async fn ssh(dir: &Path, host: &str, command: &str) -> std::process::Output {
    tokio::process::Command::new("/usr/bin/ssh")
        .arg("-F")
        .arg(dir.join("ssh_config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            host,
            command,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

fn hashes(data: &[u8]) -> (String, String) {
    (
        hex::encode(Md5::digest(data)),
        hex::encode(Sha512::digest(data)),
    )
}

fn history(c: &Cloud, name: &str) -> Vec<(String, Option<String>)> {
    c.lab.openstack().server(name).unwrap().history
}

fn step(status: &str, task: Option<&str>) -> (String, Option<String>) {
    (status.to_string(), task.map(str::to_string))
}

#[tokio::test]
async fn tokens_are_issued_and_refused() {
    let c = Cloud::start().await;
    let v: Value = c
        .http
        .get(c.lab.openstack_auth_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"]["id"], "v3.14");
    let root = c
        .http
        .get(format!("{}/identity", c.base))
        .send()
        .await
        .unwrap();
    let v: Value = root.json().await.unwrap();
    assert_eq!(v["versions"]["values"][0]["id"], "v3.14");

    let ok = issue(&c.http, &c.lab, "lab-secret").await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert!(ok.headers().contains_key("x-subject-token"));
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token"]["project"]["name"], "admin");
    assert_eq!(body["token"]["user"]["domain"]["name"], "Default");
    assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));

    let bad = issue(&c.http, &c.lab, "wrong").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["title"], "Unauthorized");

    // No token, a made-up token: 401 with Keystone's body.
    let r = c
        .http
        .get(format!("{}/compute/v2.1/servers", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    let r = c
        .http
        .get(format!("{}/image/v2/images", c.base))
        .header("X-Auth-Token", "gAAAAAforged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get("/compute/v2.1/servers").await.status(),
        StatusCode::OK
    );

    // A token outlives its lifetime: refused.
    c.lab
        .openstack()
        .set_token_lifetime(Duration::from_millis(200));
    let short = issue(&c.http, &c.lab, "lab-secret").await;
    let short = short.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let with = |t: &str| {
        c.http
            .get(format!("{}/compute/v2.1/servers", c.base))
            .header("X-Auth-Token", t.to_string())
            .send()
    };
    assert_eq!(with(&short).await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        with(&short).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Application credential.
    let creds = c.lab.openstack_credentials();
    let r = c
        .http
        .post(format!("{}/auth/tokens", creds.auth_url))
        .json(
            &json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": creds.application_credential_id,
                                       "secret": creds.application_credential_secret}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let app_token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    c.lab
        .openstack()
        .set_token_lifetime(Duration::from_secs(3600));
    let r = c
        .http
        .post(format!("{}/auth/tokens", creds.auth_url))
        .json(
            &json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": creds.application_credential_id, "secret": "x"}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!app_token.is_empty());
    c.lab.shutdown().await;
}

#[tokio::test]
async fn the_catalog_has_public_endpoints() {
    let c = Cloud::start().await;
    let body: Value = issue(&c.http, &c.lab, "lab-secret")
        .await
        .json()
        .await
        .unwrap();
    let catalog = body["token"]["catalog"].as_array().unwrap();
    let url = |ty: &str| {
        let svc = catalog.iter().find(|s| s["type"] == ty).unwrap();
        let ep = &svc["endpoints"][0];
        assert_eq!(ep["interface"], "public");
        assert_eq!(ep["region_id"], "RegionOne");
        ep["url"].as_str().unwrap().to_string()
    };
    let project = body["token"]["project"]["id"].as_str().unwrap();
    assert_eq!(url("identity"), format!("{}/identity", c.base));
    assert_eq!(url("compute"), format!("{}/compute/v2.1", c.base));
    assert_eq!(url("image"), format!("{}/image", c.base));
    assert_eq!(
        url("orchestration"),
        format!("{}/heat/v1/{project}", c.base)
    );

    let v: Value = c
        .http
        .get(url("compute"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"]["version"], "2.96");
    assert_eq!(v["version"]["min_version"], "2.1");
    let v: Value = c
        .http
        .get(url("image"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["versions"][0]["id"], "v2.16");

    // clouds.yaml from write_out.
    let yaml = std::fs::read_to_string(c.dir.path().join("clouds.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("auth_url: {}/identity/v3", c.base)),
        "{yaml}"
    );
    assert!(yaml.contains("region_name: RegionOne") && yaml.contains("password: lab-secret"));
    c.lab.shutdown().await;
}

#[tokio::test]
async fn servers_page_with_a_marker_and_filter() {
    let c = Cloud::start().await;
    let mut names = Vec::new();
    let mut next = Some(format!("{}/compute/v2.1/servers/detail?limit=5", c.base));
    let mut pages = 0;
    while let Some(url) = next {
        let page: Value = c
            .http
            .get(&url)
            .header("X-Auth-Token", &c.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in page["servers"].as_array().unwrap() {
            names.push(s["name"].as_str().unwrap().to_string());
        }
        next = page["servers_links"][0]["href"]
            .as_str()
            .map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 13, "{names:?}");
    assert!(
        names.contains(&"pcrfclient01".to_string()) && names.contains(&"esc-master".to_string())
    );

    let bad = c.get("/compute/v2.1/servers/detail?marker=nope").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["badRequest"]["code"], 400);

    let v = c.json("/compute/v2.1/servers/detail?name=%5Epcrf").await;
    assert_eq!(v["servers"].as_array().unwrap().len(), 2);
    let s = &v["servers"][0];
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["addresses"]["internal"][0]["addr"], "172.16.2.20");
    assert_eq!(s["flavor"]["original_name"], "cps-pcrfclient");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(
        c.json("/compute/v2.1/servers?status=SHUTOFF").await["servers"],
        json!([])
    );

    // Old microversion: flavor by id.
    let old: Value = c
        .http
        .get(format!(
            "{}/compute/v2.1/servers/{}",
            c.base,
            c.server_id("qns01")
        ))
        .header("X-Auth-Token", &c.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(old["server"]["flavor"]["id"].is_string());

    let flavors = c.json("/compute/v2.1/flavors/detail").await;
    assert_eq!(flavors["flavors"].as_array().unwrap().len(), 6);
    let limits = c.json("/compute/v2.1/limits").await;
    assert_eq!(limits["limits"]["absolute"]["totalInstancesUsed"], 13);
    let stats = c.json("/compute/v2.1/os-hypervisors/statistics").await;
    assert_eq!(stats["hypervisor_statistics"]["running_vms"], 13);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn an_unknown_server_is_404() {
    let c = Cloud::start().await;
    let r = c.get("/compute/v2.1/servers/pcrfclient01").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["itemNotFound"]["code"], 404);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn stop_and_start_take_the_vm_off_and_on_ssh() {
    let c = Cloud::start().await;
    let id = c.server_id("pcrfclient01");
    assert_eq!(
        c.ssh("pcrfclient01", "hostname").await.status.code(),
        Some(0)
    );

    let r = c.action("pcrfclient01", json!({"os-stop": null})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let s = c.json(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(s["server"]["OS-EXT-STS:task_state"], "powering-off");
    let s = c.wait_server(&id, "SHUTOFF").await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "stopped");
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    assert_eq!(
        history(&c, "pcrfclient01"),
        [
            step("ACTIVE", None),
            step("ACTIVE", Some("powering-off")),
            step("SHUTOFF", None)
        ]
    );
    let out = c.ssh("pcrfclient01", "hostname").await;
    assert_eq!(
        out.status.code(),
        Some(255),
        "SSH to a SHUTOFF VM must fail"
    );
    let esc_state = |c: &Cloud| c.lab.state().snapshot().esc.vm_states["pcrfclient01"].clone();
    assert_eq!(esc_state(&c), "VM_SHUTOFF_STATE");

    // Stopping a stopped server: 409.
    let r = c.action("pcrfclient01", json!({"os-stop": null})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["conflictingRequest"]["code"], 409);

    let r = c.action("pcrfclient01", json!({"os-start": null})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    c.wait_server(&id, "ACTIVE").await;
    assert!(history(&c, "pcrfclient01").contains(&step("SHUTOFF", Some("powering-on"))));
    let out = c.ssh("pcrfclient01", "hostname").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ESC saw it come back, as runbook 00 waits for.
    assert_eq!(esc_state(&c), "VM_ALIVE_STATE");
    let log = c
        .lab
        .state()
        .read_file("esc-master", "/var/log/esc/yangesc.log")
        .unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.lines().last().unwrap().contains("SERVICE_ALIVE_STATE"),
        "{log}"
    );
    assert!(log.contains("VM_SHUTOFF_STATE"), "{log}");

    // Reboot goes through REBOOT.
    let r = c.action("qns01", json!({"reboot": {"type": "SOFT"}})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    c.wait_server(&c.server_id("qns01"), "ACTIVE").await;
    assert!(history(&c, "qns01").contains(&step("REBOOT", Some("reboot_started"))));
    c.lab.shutdown().await;
}

#[tokio::test]
async fn esc_vm_action_powers_the_server_through_nova() {
    let c = Cloud::start().await;
    let id = c.server_id("pcrfclient01");
    let out = c
        .ssh("esc-master", "sudo esc_nc_cli vm-action STOP pcrfclient01")
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<ok/>"));
    let s = c.wait_server(&id, "SHUTOFF").await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "stopped");
    assert!(history(&c, "pcrfclient01").contains(&step("ACTIVE", Some("powering-off"))));
    assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(255));

    // Stopping it again: ESC passes on the VIM's refusal.
    let out = c
        .ssh("esc-master", "sudo esc_nc_cli vm-action STOP pcrfclient01")
        .await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refused to stop pcrfclient01"), "{text}");

    let out = c
        .ssh("esc-master", "sudo esc_nc_cli vm-action START pcrfclient01")
        .await;
    assert_eq!(out.status.code(), Some(0));
    c.wait_server(&id, "ACTIVE").await;
    assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(0));
    c.lab.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_becomes_an_active_image_whose_hashes_match() {
    let c = Cloud::start().await;
    let id = c.server_id("pcrfclient01");
    let r = c
        .action(
            "pcrfclient01",
            json!({"createImage": {"name": "pcrfclient01_backup"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().contains_key("location"));
    let image_id = r.json::<Value>().await.unwrap()["image_id"]
        .as_str()
        .unwrap()
        .to_string();
    let image = c.wait_image(&image_id, "active").await;
    c.wait_server(&id, "ACTIVE").await;
    let tasks: Vec<Option<String>> = history(&c, "pcrfclient01")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for t in ["image_snapshot", "image_pending_upload", "image_uploading"] {
        assert!(tasks.contains(&Some(t.to_string())), "{tasks:?}");
    }
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["image_type"], "snapshot");
    assert_eq!(image["instance_uuid"], id.as_str());

    let r = c.get(&format!("/image/v2/images/{image_id}/file")).await;
    let md5_header = r.headers()["content-md5"].to_str().unwrap().to_string();
    let data = r.bytes().await.unwrap();
    let (md5, sha) = hashes(&data);
    assert_eq!(image["size"], data.len());
    assert_eq!(image["checksum"], md5.as_str());
    assert_eq!(image["os_hash_value"], sha.as_str());
    assert_eq!(md5_header, md5);

    // Found by name, listed.
    let list = c.json("/image/v2/images?name=pcrfclient01_backup").await;
    assert_eq!(list["images"][0]["id"], image_id.as_str());
    // Older microversion: the id comes in Location only.
    let r = c
        .http
        .post(format!(
            "{}/compute/v2.1/servers/{}/action",
            c.base,
            c.server_id("qns02")
        ))
        .header("X-Auth-Token", &c.token)
        .json(&json!({"createImage": {"name": "qns02_backup"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/images/"));
    c.lab.shutdown().await;
}

#[tokio::test]
async fn downloads_resume_with_a_range() {
    let c = Cloud::start().await;
    let size = 3 * 1024 * 1024 + 17;
    let id = c.lab.add_generated_image("big.qcow2", size).await;
    let image = c.json(&format!("/image/v2/images/{id}")).await;
    assert_eq!(image["size"], size);
    let whole = c.download(&id).await;
    assert_eq!(whole.len() as u64, size);
    let (md5, sha) = hashes(&whole);
    assert_eq!(image["checksum"], md5.as_str());
    assert_eq!(image["os_hash_value"], sha.as_str());

    let at = 1_000_003u64;
    let r = c
        .req(Method::GET, &format!("/image/v2/images/{id}/file"))
        .header("Range", format!("bytes={at}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes {at}-{}/{size}", size - 1)
    );
    let tail = r.bytes().await.unwrap();
    let mut joined = whole[..at as usize].to_vec();
    joined.extend_from_slice(&tail);
    assert_eq!(joined, whole);

    let r = c
        .req(Method::GET, &format!("/image/v2/images/{id}/file"))
        .header("Range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // An image with no data: 204.
    let r = c
        .req(Method::POST, "/image/v2/images")
        .json(&json!({"name": "empty", "disk_format": "qcow2", "container_format": "bare"}))
        .send()
        .await
        .unwrap();
    let empty: Value = r.json().await.unwrap();
    let r = c
        .get(&format!(
            "/image/v2/images/{}/file",
            empty["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn an_upload_is_streamed_and_downloads_identical() {
    let c = Cloud::start().await;
    let r = c
        .req(Method::POST, "/image/v2/images")
        .json(&json!({"name": "uploaded", "disk_format": "qcow2",
                      "container_format": "bare", "visibility": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let image: Value = r.json().await.unwrap();
    assert_eq!(image["status"], "queued");
    let id = image["id"].as_str().unwrap().to_string();

    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = c
        .req(Method::PUT, &format!("/image/v2/images/{id}/file"))
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let image = c.wait_image(&id, "active").await;
    let (md5, sha) = hashes(&data);
    assert_eq!(image["checksum"], md5.as_str());
    assert_eq!(image["os_hash_value"], sha.as_str());
    assert!(c.lab.dir().join("openstack/images").join(&id).exists());
    assert_eq!(c.download(&id).await, data);

    // Uploading again: 409. Protected: no delete. Delete: 204 then 404.
    let r = c
        .req(Method::PUT, &format!("/image/v2/images/{id}/file"))
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = c
        .req(Method::PATCH, &format!("/image/v2/images/{id}"))
        .header(
            "Content-Type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(r#"[{"op":"replace","path":"/protected","value":true}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .req(Method::DELETE, &format!("/image/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    c.req(Method::PATCH, &format!("/image/v2/images/{id}"))
        .body(r#"[{"op":"replace","path":"/protected","value":false}]"#)
        .send()
        .await
        .unwrap();
    let r = c
        .req(Method::DELETE, &format!("/image/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&format!("/image/v2/images/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!c.lab.dir().join("openstack/images").join(&id).exists());
    c.lab.shutdown().await;
}

#[tokio::test]
async fn images_page_with_next() {
    let c = Cloud::start().await;
    for n in 0..3 {
        c.lab.add_generated_image(&format!("g{n}"), 1000).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/v2/images?limit=2".to_string());
    while let Some(path) = next {
        let v = c.json(&format!("/image{path}")).await;
        for i in v["images"].as_array().unwrap() {
            seen.push(i["name"].as_str().unwrap().to_string());
        }
        next = v["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(&seen[..3], ["g2", "g1", "g0"]);
    let base = c.server_id("qns01");
    let image_id = c.lab.openstack().server(&base).unwrap().image_id;
    let v = c.json(&format!("/image/v2/images?id=in:{image_id}")).await;
    assert_eq!(v["images"][0]["name"], "CPS_18.2.0_Base.qcow2");
    c.lab.shutdown().await;
}

#[tokio::test]
async fn rebuild_restores_the_vm_as_snapshotted() {
    let c = Cloud::start().await;
    let id = c.server_id("pcrfclient01");
    let state = c.lab.state();
    state
        .write_file("pcrfclient01", "/root/marker.txt", b"before\n")
        .unwrap();
    let image_id = c.snapshot("pcrfclient01", "pcrfclient01_snap").await;
    c.wait_image(&image_id, "active").await;
    c.wait_server(&id, "ACTIVE").await;

    state
        .write_file("pcrfclient01", "/root/marker.txt", b"after\n")
        .unwrap();
    state
        .write_file("pcrfclient01", "/root/later.txt", b"later\n")
        .unwrap();
    // Slow enough to see the VM refuse SSH while it is rebuilt.
    c.lab.openstack().set_step_delay(Duration::from_millis(400));
    let r = c
        .action("pcrfclient01", json!({"rebuild": {"imageRef": image_id}}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["server"]["status"], "REBUILD");
    assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(255));
    let s = c.wait_server(&id, "ACTIVE").await;
    assert_eq!(s["image"]["id"], image_id.as_str());
    let h = history(&c, "pcrfclient01");
    for t in [
        "rebuilding",
        "rebuild_block_device_mapping",
        "rebuild_spawning",
    ] {
        assert!(h.contains(&step("REBUILD", Some(t))), "{h:?}");
    }
    let out = c
        .ssh("pcrfclient01", "cat /root/marker.txt; ls /root/later.txt")
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\n");
    assert_ne!(out.status.code(), Some(0));

    // Rebuild with an unknown image: 400.
    let r = c
        .action("pcrfclient01", json!({"rebuild": {"imageRef": "nope"}}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn a_deleted_vm_comes_back_from_its_image() {
    let c = Cloud::start().await;
    let state = c.lab.state();
    state
        .write_file("pcrfclient01", "/root/marker.txt", b"kept\n")
        .unwrap();
    let snap = c.snapshot("pcrfclient01", "pcrfclient01_snap").await;
    c.wait_image(&snap, "active").await;
    let flavor = c.json("/compute/v2.1/flavors/detail").await["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "cps-pcrfclient")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base_image = c.lab.openstack().server("pcrfclient01").unwrap().image_id;
    // Clients find the network's id by name in Neutron.
    let networks = c.json("/network/v2.0/networks?name=internal").await;
    assert_eq!(networks["networks"].as_array().unwrap().len(), 1);
    let internal = networks["networks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.get("/network/v2.0/networks/no-such-net").await.status(),
        StatusCode::NOT_FOUND
    );

    for (image, marker, svn_revision) in [(&snap, true, 1042), (&base_image, false, 0)] {
        let id = c.server_id("pcrfclient01");
        c.wait_server(&id, "ACTIVE").await;
        let r = c
            .req(Method::DELETE, &format!("/compute/v2.1/servers/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.get(&format!("/compute/v2.1/servers/{id}")).await.status() != StatusCode::NOT_FOUND
        {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(255));

        let r = c
            .req(Method::POST, "/compute/v2.1/servers")
            .json(&json!({"server": {
                "name": "pcrfclient01", "imageRef": image, "flavorRef": flavor,
                "networks": [{"uuid": internal, "fixed_ip": "172.16.2.20"}],
                "availability_zone": "nova", "config_drive": true,
                "security_groups": [{"name": "default"}],
                "user_data": "I2Nsb3VkLWNvbmZpZw==",
                "block_device_mapping_v2": [{"boot_index": 0, "uuid": image,
                    "source_type": "image", "destination_type": "local"}],
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let new_id = r.json::<Value>().await.unwrap()["server"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(new_id, id);
        let s = c.wait_server(&new_id, "ACTIVE").await;
        assert_eq!(s["addresses"]["internal"][0]["addr"], "172.16.2.20");
        let h = history(&c, &new_id);
        assert!(h.contains(&step("BUILD", Some("spawning"))), "{h:?}");
        let out = c.ssh("pcrfclient01", "cat /root/marker.txt").await;
        assert_eq!(out.status.code() == Some(0), marker, "{out:?}");
        let repo = state.snapshot().svn_repo("pcrfclient01").unwrap();
        assert_eq!(repo.revision, svn_revision);
    }
    c.lab.shutdown().await;
}

#[tokio::test]
async fn heat_shows_the_cps_stack() {
    let c = Cloud::start().await;
    let project = c.lab.openstack().project_id();
    let heat = format!("/heat/v1/{project}");
    let list = c.json(&format!("{heat}/stacks")).await;
    assert_eq!(list["stacks"][0]["stack_name"], "cps");
    assert_eq!(list["stacks"][0]["stack_status"], "CREATE_COMPLETE");
    let id = list["stacks"][0]["id"].as_str().unwrap().to_string();

    let no_follow = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(format!("{}{heat}/stacks/cps", c.base))
        .header("X-Auth-Token", &c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/stacks/cps/{id}")));
    // Followed (same host: the token goes along).
    let stack = c.json(&format!("{heat}/stacks/cps")).await;
    assert_eq!(stack["stack"]["id"], id.as_str());
    assert!(stack["stack"]["parameters"].is_object());

    let res = c.json(&format!("{heat}/stacks/cps/{id}/resources")).await;
    let res = res["resources"].as_array().unwrap();
    assert_eq!(res.len(), 13);
    let pcrf = res
        .iter()
        .find(|r| r["resource_name"] == "pcrfclient01")
        .unwrap();
    assert_eq!(
        pcrf["physical_resource_id"],
        c.server_id("pcrfclient01").as_str()
    );
    assert_eq!(pcrf["resource_type"], "OS::Nova::Server");
    assert_eq!(
        c.get(&format!("{heat}/stacks/other")).await.status(),
        StatusCode::NOT_FOUND
    );
    c.lab.shutdown().await;
}

#[tokio::test]
async fn fault_snapshot_killed() {
    let c = Cloud::start().await;
    c.lab
        .faults()
        .set_openstack(OpenStackFault::SnapshotKilled, true);
    let image = c.snapshot("qns01", "qns01_snap").await;
    c.wait_image(&image, "killed").await;
    c.wait_server(&c.server_id("qns01"), "ACTIVE").await;
    c.lab.shutdown().await;
}

#[tokio::test]
async fn fault_server_error_on_next_action() {
    let c = Cloud::start().await;
    // Through the control API, as `recovery-portal lab fault on` does.
    let r = c
        .http
        .put(format!("{}/faults/server-error:lb01", c.lab.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let active: Vec<String> = r.json().await.unwrap();
    assert_eq!(active, ["server-error:lb01"]);
    let id = c.server_id("lb01");
    c.action("lb01", json!({"reboot": {"type": "HARD"}})).await;
    let s = c.wait_server(&id, "ERROR").await;
    assert!(s["fault"]["message"].as_str().unwrap().contains("lb01"));
    assert_eq!(s["fault"]["code"], 500);
    assert_eq!(c.ssh("lb01", "true").await.status.code(), Some(255));
    let r = c.action("lb01", json!({"os-start": null})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Fault off, a hard reboot brings it back.
    c.lab.faults().set_openstack(
        OpenStackFault::ServerError {
            host: "lb01".into(),
        },
        false,
    );
    c.action("lb01", json!({"reboot": {"type": "HARD"}})).await;
    let s = c.wait_server(&id, "ACTIVE").await;
    assert!(s.get("fault").is_none());
    assert_eq!(c.ssh("lb01", "true").await.status.code(), Some(0));
    c.lab.shutdown().await;
}

#[tokio::test]
async fn fault_download_drops_halfway_then_resumes() {
    let c = Cloud::start().await;
    let size = 2 * 1024 * 1024;
    let id = c.lab.add_generated_image("drop.qcow2", size).await;
    let full = c.download(&id).await;
    c.lab
        .faults()
        .set_openstack(OpenStackFault::DownloadDrops, true);
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut got = Vec::new();
    let mut stream = r.bytes_stream();
    use futures_util::StreamExt;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the download must fail");
    assert_eq!(got.len() as u64, size / 2);
    c.lab
        .faults()
        .set_openstack(OpenStackFault::DownloadDrops, false);
    let r = c
        .req(Method::GET, &format!("/image/v2/images/{id}/file"))
        .header("Range", format!("bytes={}-", got.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    got.extend_from_slice(&r.bytes().await.unwrap());
    assert_eq!(got, full);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn fault_token_expired_mid_transfer() {
    let c = Cloud::start().await;
    let size = 4 * 1024 * 1024;
    let id = c.lab.add_generated_image("long.qcow2", size).await;
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.status(), StatusCode::OK);
    c.lab
        .faults()
        .set_openstack(OpenStackFault::TokenExpired, true);
    // The running stream goes on; the next request needs a new token.
    let data = r.bytes().await.unwrap();
    assert_eq!(data.len() as u64, size);
    let r = c
        .req(Method::GET, &format!("/image/v2/images/{id}/file"))
        .header("Range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = issue(&c.http, &c.lab, "lab-secret").await;
    let fresh = fresh.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let r = c
        .http
        .get(format!("{}/image/v2/images/{id}/file", c.base))
        .header("X-Auth-Token", fresh)
        .header("Range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), data[100..]);
    c.lab.shutdown().await;
}

#[tokio::test]
async fn fault_over_quota() {
    let c = Cloud::start().await;
    c.lab
        .faults()
        .set_openstack(OpenStackFault::OverQuota, true);
    let r = c
        .req(Method::POST, "/image/v2/images")
        .json(&json!({"name": "x", "disk_format": "qcow2", "container_format": "bare"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("overLimit"));
    let r = c
        .req(Method::POST, "/compute/v2.1/servers")
        .json(&json!({"server": {"name": "extra", "imageRef": "x", "flavorRef": "cps-qns"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["overLimit"]["code"], 413);
    let r = c
        .action("qns01", json!({"createImage": {"name": "q"}}))
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    c.lab.shutdown().await;
}

/// A venv with python-openstackclient and python-heatclient under the target
/// directory (made once, reused); None when PyPI cannot be reached.
async fn openstack_cli() -> Option<std::path::PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let venv = target.join("osc-venv");
    let cli = venv.join("bin/openstack");
    if cli.exists() {
        return Some(cli);
    }
    let ok = |s: std::io::Result<std::process::ExitStatus>| s.is_ok_and(|s| s.success());
    if !ok(tokio::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await)
    {
        return None;
    }
    let pip = tokio::process::Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "-q",
            "python-openstackclient",
            "python-heatclient",
        ])
        .status()
        .await;
    (ok(pip) && cli.exists()).then_some(cli)
}

struct Osc {
    cli: std::path::PathBuf,
    clouds: std::path::PathBuf,
}

impl Osc {
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(&self.cli)
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds)
            .env_remove("OS_CLOUD")
            .arg("--os-cloud")
            .arg("lab")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "openstack {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.run(&all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    async fn wait_status(&self, server: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.json(&["server", "show", server]).await;
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return;
            }
            assert!(Instant::now() < deadline, "{s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The real python-openstackclient (with heatclient) against the lab, logged
/// in through the `clouds.yaml` that `write_out` writes. Needs PyPI once to
/// make the venv (under the target directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openstackclient_drives_the_lab() {
    let Some(cli) = openstack_cli().await else {
        panic!("cannot make a venv with python-openstackclient (is PyPI reachable?)");
    };
    let c = Cloud::start().await;
    let osc = Osc {
        cli,
        clouds: c.dir.path().join("clouds.yaml"),
    };

    let list = osc.json(&["server", "list"]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 13, "{list:?}");
    assert!(list.iter().all(|s| s["Status"] == "ACTIVE"));
    let show = osc.json(&["server", "show", "pcrfclient01"]).await;
    assert_eq!(show["status"], "ACTIVE");
    assert_eq!(show["id"], c.server_id("pcrfclient01").as_str());
    assert!(
        show["addresses"].to_string().contains("172.16.2.20"),
        "{show}"
    );
    assert!(
        show["flavor"].to_string().contains("cps-pcrfclient"),
        "{show}"
    );

    osc.run(&["server", "stop", "pcrfclient01"]).await;
    osc.wait_status("pcrfclient01", "SHUTOFF").await;
    assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(255));
    osc.run(&["server", "start", "pcrfclient01"]).await;
    osc.wait_status("pcrfclient01", "ACTIVE").await;
    assert_eq!(c.ssh("pcrfclient01", "true").await.status.code(), Some(0));

    let image = osc
        .json(&[
            "server",
            "image",
            "create",
            "--name",
            "pcrf_snap",
            "--wait",
            "pcrfclient01",
        ])
        .await;
    assert_eq!(image["name"], "pcrf_snap");
    let shown = osc.json(&["image", "show", "pcrf_snap"]).await;
    assert_eq!(shown["status"], "active");
    let images = osc.json(&["image", "list"]).await;
    assert!(images
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["Name"] == "pcrf_snap"));
    let saved = c.dir.path().join("saved.qcow2");
    osc.run(&[
        "image",
        "save",
        "--file",
        saved.to_str().unwrap(),
        "pcrf_snap",
    ])
    .await;
    let (md5, _) = hashes(&std::fs::read(&saved).unwrap());
    assert_eq!(shown["checksum"], md5.as_str());

    c.lab
        .state()
        .write_file("pcrfclient01", "/root/after-snapshot", b"x")
        .unwrap();
    osc.run(&[
        "server",
        "rebuild",
        "--image",
        "pcrf_snap",
        "--wait",
        "pcrfclient01",
    ])
    .await;
    osc.wait_status("pcrfclient01", "ACTIVE").await;
    assert!(c
        .lab
        .state()
        .read_file("pcrfclient01", "/root/after-snapshot")
        .is_err());

    osc.run(&["server", "delete", "--wait", "qns04"]).await;
    assert!(c.lab.openstack().server("qns04").is_none());
    let created = osc
        .json(&[
            "server",
            "create",
            "--image",
            "CPS_18.2.0_Base.qcow2",
            "--flavor",
            "cps-qns",
            "--nic",
            "net-id=internal,v4-fixed-ip=172.16.2.34",
            "--wait",
            "qns04",
        ])
        .await;
    assert_eq!(created["status"], "ACTIVE", "{created}");
    assert_eq!(c.ssh("qns04", "true").await.status.code(), Some(0));

    let upload = c.dir.path().join("upload.qcow2");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &data).unwrap();
    let created = osc
        .json(&[
            "image",
            "create",
            "--file",
            upload.to_str().unwrap(),
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "uploaded",
        ])
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let shown = osc.json(&["image", "show", &id]).await;
    assert_eq!(shown["checksum"], hashes(&data).0.as_str());
    osc.run(&["image", "delete", "uploaded"]).await;
    assert_eq!(
        c.get(&format!("/image/v2/images/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );

    let stacks = osc.json(&["stack", "list"]).await;
    assert_eq!(stacks[0]["Stack Name"], "cps", "{stacks}");
    let stack = osc.json(&["stack", "show", "cps"]).await;
    assert_eq!(stack["stack_status"], "CREATE_COMPLETE", "{stack}");
    let resources = osc.json(&["stack", "resource", "list", "cps"]).await;
    assert_eq!(resources.as_array().unwrap().len(), 13, "{resources}");
    c.lab.shutdown().await;
}

#[tokio::test]
async fn stopping_a_server_ends_its_open_ssh_sessions() {
    let c = Cloud::start().await;
    let dir = c.dir.path().to_path_buf();
    let long = tokio::spawn(async move { ssh(&dir, "sessionmgr01", "sleep 60").await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!long.is_finished());
    let r = c.action("sessionmgr01", json!({"os-stop": null})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let out = tokio::time::timeout(Duration::from_secs(10), long)
        .await
        .expect("the session must end when the VM stops")
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    c.lab.shutdown().await;
}
