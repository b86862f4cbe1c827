//! The portal's OpenStack client and actions against the lab's OpenStack API, over
//! real HTTP: Keystone from the lab's clouds.yaml, server actions with their
//! status transitions, snapshots, verified and resumed downloads, streamed
//! uploads, renewal of a refused token, and the API's errors.

use crate::lab_portal::*;
use app::model::progress::{Progress, ProgressUnit};
use app::model::run::StepState;
use app::model::Role;
use lab::OpenStackFault;
use reqwest::StatusCode;
use runbook::model::OpenStackAction as A;
use server::exec::openstack::actions::{self, ActionError};
use server::exec::openstack::cloud;
use server::exec::openstack::session::Session;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

async fn lab() -> (lab::Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab::Lab::start_with_pace(&dir.path().join("lab"), lab::Pace::instant())
        .await
        .unwrap();
    (lab, dir)
}

fn session(lab: &lab::Lab) -> Session {
    let cloud = cloud::from_clouds_yaml(
        "clouds.yaml",
        &lab.clouds_yaml(),
        None,
        "lab",
        Path::new("."),
    )
    .unwrap();
    Session::new(cloud, Duration::from_secs(30)).unwrap()
}

/// Runs `action` with `args`; answers its lines and result.
async fn act(
    s: &Session,
    store: &Path,
    action: A,
    args: &[(&str, &str)],
) -> (Vec<String>, Result<actions::Done, ActionError>) {
    let (lines, _, result) = act_watched(s, store, action, args).await;
    (lines, result)
}

/// Runs `action` with `args`; answers its lines, progress readings and result.
async fn act_watched(
    s: &Session,
    store: &Path,
    action: A,
    args: &[(&str, &str)],
) -> (
    Vec<String>,
    Vec<Progress>,
    Result<actions::Done, ActionError>,
) {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lines = Mutex::new(Vec::new());
    let readings = Mutex::new(Vec::new());
    let say = |l: String| lines.lock().unwrap().push(l);
    let progress = |p: Progress| readings.lock().unwrap().push(p);
    let report = actions::Report {
        say: &say,
        progress: &progress,
        cancelled: &|| false,
    };
    let result = actions::run(s, action, &args, store, &report).await;
    (
        lines.into_inner().unwrap(),
        readings.into_inner().unwrap(),
        result,
    )
}

#[tokio::test]
async fn servers_stop_and_start_through_their_states() {
    let (lab, dir) = lab().await;
    let s = session(&lab);
    let (lines, r) = act(&s, dir.path(), A::ServerList, &[]).await;
    r.unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("pcrfclient01")),
        "{lines:?}"
    );

    let (lines, r) = act(&s, dir.path(), A::ServerStop, &[("server", "pcrfclient01")]).await;
    r.unwrap();
    assert!(lines.last().unwrap().contains("SHUTOFF"), "{lines:?}");
    let (_, r) = act(
        &s,
        dir.path(),
        A::ServerWaitStatus,
        &[("server", "pcrfclient01"), ("status", "SHUTOFF")],
    )
    .await;
    r.unwrap();
    // Stopping it again: Nova's own message, and what to do.
    let (_, r) = act(&s, dir.path(), A::ServerStop, &[("server", "pcrfclient01")]).await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("409"), "{e}");

    let (lines, r) = act(
        &s,
        dir.path(),
        A::ServerStart,
        &[("server", "pcrfclient01")],
    )
    .await;
    r.unwrap();
    assert!(lines.last().unwrap().contains("ACTIVE"), "{lines:?}");

    let (_, r) = act(&s, dir.path(), A::ServerShow, &[("server", "nosuchvm")]).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("there is no server"), "{e}");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_is_downloaded_verified_and_resumed_when_the_connection_drops() {
    let (lab, dir) = lab().await;
    let s = session(&lab);
    let store = dir.path().join("store");
    let (lines, readings, r) = act_watched(
        &s,
        &store,
        A::ServerSnapshot,
        &[("server", "cluman"), ("name", "cluman_snapshot_test")],
    )
    .await;
    r.unwrap();
    assert!(lines.iter().any(|l| l.contains("active")), "{lines:?}");
    // The bar follows Nova's phases and ends full.
    let last = readings.last().expect("the snapshot reports progress");
    assert!(last.finished && last.percent() == Some(100), "{readings:?}");
    assert_eq!(last.unit, ProgressUnit::Phases);

    let (lines, readings, r) = act_watched(
        &s,
        &store,
        A::ImageDownload,
        &[
            ("image", "cluman_snapshot_test"),
            ("store", "lab/cluman.qcow2"),
        ],
    )
    .await;
    let done = r.unwrap();
    let t = done.transfer.unwrap();
    let data = std::fs::read(store.join("lab/cluman.qcow2")).unwrap();
    assert_eq!(t.bytes, data.len() as u64);
    use sha2::Digest;
    assert_eq!(t.sha256, hex::encode(sha2::Sha256::digest(&data)));
    assert!(
        lines.last().unwrap().contains("MD5 and SHA-512 match"),
        "{lines:?}"
    );
    let last = readings.last().expect("the download reports progress");
    assert!(last.finished, "{readings:?}");
    assert_eq!((last.done, last.total), (t.bytes, Some(t.bytes)));
    assert!(last.text().contains("(100 %)"), "{}", last.text());

    // A larger generated image, with the connection dropped halfway: resumed.
    lab.add_generated_image("big", 24 * 1024 * 1024).await;
    lab.faults()
        .set_openstack(OpenStackFault::DownloadDrops, true);
    let (lines, r) = act(
        &s,
        &store,
        A::ImageDownload,
        &[("image", "big"), ("store", "lab/big.raw")],
    )
    .await;
    lab.faults()
        .set_openstack(OpenStackFault::DownloadDrops, false);
    let done = r.unwrap();
    assert_eq!(done.transfer.unwrap().bytes, 24 * 1024 * 1024);
    assert!(lines.last().unwrap().contains("resumed"), "{lines:?}");
    assert!(!store.join("lab/big.raw.portal-part").exists());

    // Store paths stay inside the store.
    let (_, r) = act(
        &s,
        &store,
        A::ImageDownload,
        &[("image", "big"), ("store", "../x")],
    )
    .await;
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("inside the backup store"));
    lab.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_is_renewed_and_uploads_are_checked() {
    let (lab, dir) = lab().await;
    let s = session(&lab);
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("lab")).unwrap();
    std::fs::write(store.join("lab/up.qcow2"), vec![7u8; 3 * 1024 * 1024 + 5]).unwrap();
    // A token is held now; the cloud then refuses it: the session renews once.
    act(&s, &store, A::ImageList, &[]).await.1.unwrap();
    lab.faults()
        .set_openstack(OpenStackFault::TokenExpired, true);
    let (lines, readings, r) = act_watched(
        &s,
        &store,
        A::ImageUpload,
        &[("store", "lab/up.qcow2"), ("name", "uploaded")],
    )
    .await;
    let last = readings.last().expect("the upload reports progress");
    assert!(
        last.finished && last.done == 3 * 1024 * 1024 + 5,
        "{readings:?}"
    );
    lab.faults()
        .set_openstack(OpenStackFault::TokenExpired, false);
    let done = r.unwrap();
    assert_eq!(done.transfer.unwrap().bytes, 3 * 1024 * 1024 + 5);
    assert!(
        lines.iter().any(|l| l.contains("checksum matches")),
        "{lines:?}"
    );

    // Over quota: the API's message and what to do.
    lab.faults().set_openstack(OpenStackFault::OverQuota, true);
    let (_, r) = act(
        &s,
        &store,
        A::ImageUpload,
        &[("store", "lab/up.qcow2"), ("name", "again")],
    )
    .await;
    let e = r.unwrap_err();
    let ActionError::OpenStack(api) = &e else {
        panic!("{e}")
    };
    assert!(actions::advice(api).unwrap().contains("over quota"), "{e}");
    lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_wizard_runs_openstack_steps_on_the_lab(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let run = start_on_lab(&olga, "cps-backup").await;
    let v = show(&olga, run).await;
    assert_eq!(v.steps[0].kind, "openstack");
    assert_eq!(v.steps[0].blocked, None, "the lab site has a cloud");
    let r = command(&olga, run, 0, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, 0).await;
    assert_eq!(v.steps[0].state, StepState::Succeeded, "{}", output(&v, 0));
    assert!(output(&v, 0).contains("pcrfclient01"), "{}", output(&v, 0));
    p.lab.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn procedure_2_creates_the_cluster_manager_anew_when_it_is_gone(pool: PgPool) {
    const VOLUME: &str = "2edbac5e-55de-4d4c-a427-ab24ebe66181";
    let p = portal_with_lab(pool).await;
    let s = session(&p.lab);
    // A network name Neutron does not know: the API's answer and what to do.
    let (_, r) = act(
        &s,
        &p.store,
        A::ServerCreate,
        &[
            ("name", "spare"),
            ("image", "CPS_18.2.0_Base.qcow2"),
            ("flavor", "cps-cluman"),
            ("networks", "nosuchnet=172.20.67.99"),
        ],
    )
    .await;
    let e = r.unwrap_err();
    assert!(
        e.to_string().contains("no network named \"nosuchnet\""),
        "{e}"
    );
    let ActionError::OpenStack(api) = &e else {
        panic!("{e}")
    };
    assert!(actions::advice(api).is_some(), "{e}");
    // A bad fixed IP never reaches Nova.
    let (_, r) = act(
        &s,
        &p.store,
        A::ServerCreate,
        &[
            ("name", "spare"),
            ("image", "CPS_18.2.0_Base.qcow2"),
            ("flavor", "cps-cluman"),
            ("networks", "management=172.20.67.300"),
        ],
    )
    .await;
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("is not an IPv4 address"));

    // The Cluster Manager is gone.
    act(&s, &p.store, A::ServerDelete, &[("server", "cluman")])
        .await
        .1
        .unwrap();
    assert!(p.lab.openstack().server("cluman").is_none());

    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let run = start_on_lab_with(
        &olga,
        "restore-cluman",
        &[
            ("backup_date", "2026-11-26"),
            ("cluman_instance", "absent"),
            ("mgmt_ip", "172.20.67.34"),
            ("internal_ip", "172.16.2.5"),
            ("data_volume", VOLUME),
        ],
    )
    .await;
    let approvals = drive(
        &olga,
        &[&sam],
        "restore-cluman",
        run,
        Some("copy-config-backup"),
    )
    .await
    .unwrap();
    assert_eq!(approvals, 1, "the create, not the rebuild");
    let v = show(&olga, run).await;
    let create = v
        .steps
        .iter()
        .position(|s| s.id == "create-cluman")
        .unwrap();
    let rebuild = v
        .steps
        .iter()
        .position(|s| s.id == "rebuild-cluman")
        .unwrap();
    assert_eq!(v.steps[create].state, StepState::Succeeded);
    assert_eq!(v.steps[rebuild].state, StepState::Skipped);
    let text = output(&v, create);
    assert!(
        text.contains("NICs management=172.20.67.34, internal=172.16.2.5"),
        "{text}"
    );
    assert!(
        text.contains(&format!("volume {VOLUME} at /dev/vdb")),
        "{text}"
    );
    let cluman = p.lab.openstack().server("cluman").unwrap();
    assert_eq!(cluman.status, "ACTIVE");
    assert_eq!(cluman.history.first().map(|h| h.0.as_str()), Some("BUILD"));
    // The new VM answers SSH again.
    let r = command(&olga, run, (create + 3) as i32, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, create + 3).await;
    assert_eq!(
        v.steps[create + 3].state,
        StepState::Succeeded,
        "{}",
        output(&v, create + 3)
    );
    p.lab.shutdown().await;
}

#[tokio::test]
async fn a_server_in_error_and_a_killed_snapshot_say_why_and_what_next() {
    let (lab, dir) = lab().await;
    let s = session(&lab);
    lab.faults().set_openstack(
        OpenStackFault::ServerError {
            host: "qns02".into(),
        },
        true,
    );
    let (lines, r) = act(&s, dir.path(), A::ServerReboot, &[("server", "qns02")]).await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("qns02 went to ERROR"), "{e}");
    assert!(e.contains("libvirtError"), "Nova's fault message: {e}");
    assert!(e.contains("rebuild or recreate it"), "what to do: {e}");
    assert!(lines.iter().any(|l| l.contains("ERROR")), "{lines:?}");
    lab.faults().set_openstack(
        OpenStackFault::ServerError {
            host: "qns02".into(),
        },
        false,
    );

    lab.faults()
        .set_openstack(OpenStackFault::SnapshotKilled, true);
    let (_, readings, r) = act_watched(
        &s,
        dir.path(),
        A::ServerSnapshot,
        &[("server", "qns03"), ("name", "qns03_snap")],
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("ended killed"), "{e}");
    assert!(e.contains("take the snapshot again"), "{e}");
    assert!(readings.iter().all(|p| !p.finished), "{readings:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn image_lists_follow_pages_and_a_corrupted_download_is_refused() {
    let (lab, dir) = lab().await;
    let s = session(&lab);
    // More images than one page of 100: the list follows Glance's `next`.
    for i in 0..105 {
        lab.add_generated_image(&format!("page-{i:03}"), 1024).await;
    }
    let (lines, r) = act(&s, dir.path(), A::ImageList, &[("name", "page-")]).await;
    r.unwrap();
    assert_eq!(lines.last().unwrap(), "105 image(s)", "{lines:?}");

    // An image whose stored bytes no longer match its checksum.
    act(
        &s,
        dir.path(),
        A::ServerSnapshot,
        &[("server", "qns04"), ("name", "qns04_snap")],
    )
    .await
    .1
    .unwrap();
    let image = server::exec::openstack::glance::find(&s, "qns04_snap")
        .await
        .unwrap();
    let file = dir.path().join("lab/openstack/images").join(&image.id);
    let mut data = std::fs::read(&file).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&file, &data).unwrap();
    let store = dir.path().join("store");
    let (_, r) = act(
        &s,
        &store,
        A::ImageDownload,
        &[("image", "qns04_snap"), ("store", "lab/qns04.qcow2")],
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("is not the image"), "{e}");
    assert!(e.contains("MD5"), "{e}");
    assert!(!store.join("lab/qns04.qcow2").exists());
    assert!(!store.join("lab/qns04.qcow2.portal-part").exists());
    lab.shutdown().await;
}

/// What a test server heard: each request's path and its `X-Auth-Token`.
type Heard = std::sync::Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server on 127.0.0.1 that records every request and answers with `answer`
/// (given the path and this server's base URL).
async fn recording(
    answer: fn(&str, &str) -> axum::response::Response,
) -> (String, Heard, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heard: Heard = Default::default();
    let (log, me) = (heard.clone(), base.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (log, me) = (log.clone(), me.clone());
        async move {
            let path = req.uri().path().to_string();
            let token = req
                .headers()
                .get("x-auth-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            log.lock().unwrap().push((path.clone(), token));
            answer(&path, &me)
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    (base, heard, stop)
}

fn redirect(to: &str) -> axum::response::Response {
    axum::response::Response::builder()
        .status(302)
        .header("location", to)
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_token_never_follows_a_redirect_to_another_origin() {
    use axum::response::IntoResponse;
    // Where a compute endpoint redirects; it must hear nothing.
    let (elsewhere, elsewhere_heard, _s1) =
        recording(|_, _| axum::Json(serde_json::json!({"servers": []})).into_response()).await;
    static ELSEWHERE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ELSEWHERE.set(elsewhere.clone()).unwrap();
    // The compute endpoint: /v2.1/servers moves within itself, /v2.1/moved to
    // the other server.
    let (compute, compute_heard, _s2) = recording(|path, me| match path {
        "/v2.1/servers" => redirect(&format!("{me}/v2.1/servers/detail")),
        "/v2.1/servers/detail" => {
            axum::Json(serde_json::json!({"servers": [{"id": "x"}]})).into_response()
        }
        _ => redirect(&format!("{}/v2.1/servers", ELSEWHERE.get().unwrap())),
    })
    .await;
    static COMPUTE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COMPUTE.set(compute.clone()).unwrap();
    let (keystone, _, _s3) = recording(|_, _| {
        let body = serde_json::json!({"token": {
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "project": {"id": "p1", "name": "core"},
            "catalog": [{"type": "compute", "name": "nova", "endpoints": [
                {"interface": "public", "region_id": "r1", "url": format!("{}/v2.1", COMPUTE.get().unwrap())}
            ]}]
        }});
        let mut r = (axum::http::StatusCode::CREATED, axum::Json(body)).into_response();
        r.headers_mut()
            .insert("x-subject-token", "the-secret-token".parse().unwrap());
        r
    })
    .await;
    let cloud = cloud::Cloud {
        origin: "test".into(),
        auth_url: format!("{keystone}/v3").parse().unwrap(),
        credentials: cloud::Credentials::Password {
            username: "u".into(),
            password: cloud::Secret::new("p"),
            user_domain: "Default".into(),
            project_name: "core".into(),
            project_domain: "Default".into(),
        },
        interface: "public".into(),
        region: None,
        cacert: None,
    };
    let s = Session::new(cloud, Duration::from_secs(10)).unwrap();

    // Within the endpoint's origin a redirect is followed, token and all.
    let r = s
        .send(&["compute"], reqwest::Method::GET, "servers", |r| r)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        compute_heard.lock().unwrap().clone(),
        [
            ("/v2.1/servers".into(), Some("the-secret-token".into())),
            (
                "/v2.1/servers/detail".into(),
                Some("the-secret-token".into())
            )
        ]
    );
    // To another origin it is not: an error that says why, and the other
    // server never hears the token (nor anything else).
    let e = s
        .send(&["compute"], reqwest::Method::GET, "moved", |r| r)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("302") && e.contains(&elsewhere) && e.contains("does not follow"),
        "{e}"
    );
    assert!(elsewhere_heard.lock().unwrap().is_empty());
}
