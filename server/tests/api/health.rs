//! `/healthz`, including a real PostgreSQL that stops and comes back.

use crate::helpers::*;
use reqwest::StatusCode;
use server::config::Settings;
use server::startup::{self, Application};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[sqlx::test(migrations = "../migrations")]
async fn healthz_reports_version_and_database(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.browser().get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["database"]["state"], "up");
}

/// A throwaway PostgreSQL cluster, run as the `postgres` user when we are root.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (or set PG_BIN)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Cluster {
    fn create() -> Self {
        let bin = pg_bin();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("portal-health-pg-{}-{port}", std::process::id()));
        let dir_s = dir.to_string_lossy().to_string();
        as_postgres(
            &bin.join("initdb"),
            &["-D", &dir_s, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let cluster = Cluster { bin, dir, port };
        cluster.start();
        cluster
    }
    fn start(&self) {
        let dir = self.dir.to_string_lossy().to_string();
        let opts = format!(
            "-k {dir} -p {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &dir,
                "-o",
                &opts,
                "-l",
                &format!("{dir}/log"),
                "-w",
                "start",
            ],
        );
    }
    fn stop(&self) {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.dir.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().to_string();
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&pg_ctl)
            .args(["-D", &dir, "-m", "immediate", "stop"])
            .output();
        let _ = Command::new(&pg_ctl)
            .args(["-D", &dir, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    want: StatusCode,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = client.get(url).send().await.map(|r| r.status()).ok();
        if status == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "healthz did not become {want} within {within:?} (last {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn healthz_follows_the_database_down_and_back_up() {
    let cluster = Cluster::create();
    let mut env = BTreeMap::new();
    env.insert("DATABASE_URL".to_string(), cluster.url());
    env.insert("PORTAL_LISTEN".to_string(), "127.0.0.1:0".to_string());
    env.insert(
        "PORTAL_AUDIT_KEY_FILE".to_string(),
        crate::helpers::scratch_key_file().display().to_string(),
    );
    let settings = Settings::from_sources(None, &env).unwrap();
    let pool = startup::connect(&settings).await.unwrap();
    startup::migrate(&pool).await.unwrap();
    let executor = std::sync::Arc::new(
        server::exec::executor::SiteExecutor::new(Vec::new(), std::env::temp_dir()).unwrap(),
    );
    let app = Application::build(&settings, pool, Vec::new(), executor.clone(), executor)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}/healthz", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    wait_for(&client, &url, StatusCode::OK, Duration::from_secs(5)).await;
    cluster.stop();
    let down = wait_for(
        &client,
        &url,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    cluster.start();
    let up = wait_for(&client, &url, StatusCode::OK, Duration::from_secs(10)).await;
    eprintln!(
        "healthz: 503 after {down:?} without the database, 200 again {up:?} after it returned"
    );
}
