//! The harness: starts the real application on a random port with its own
//! database, and a cookie-keeping HTTP client that behaves like a browser tab.

use app::model::Role;
use app::ssr::audit::Actor;
use app::ssr::users;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use server::config::Settings;
use server::exec::executor::SiteExecutor;
use server::startup::Application;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running portal.
pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    _stop: oneshot::Sender<()>,
}

/// Settings for a test server: loopback, a random port.
pub fn test_settings(extra: &[(&str, &str)]) -> Settings {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    // The pool is handed over directly; the URL is only checked for shape.
    env.insert(
        "DATABASE_URL".into(),
        "postgres://unused@127.0.0.1:1/unused".into(),
    );
    env.insert("PORTAL_LISTEN".into(), "127.0.0.1:0".into());
    // Each portal signs its checkpoints with a key of its own, in a file of its own.
    env.insert(
        "PORTAL_AUDIT_KEY_FILE".into(),
        scratch_key_file().display().to_string(),
    );
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_sources(None, &env).expect("test settings are valid")
}

/// A fresh path for a checkpoint key (and its checkpoint file) under the
/// system's temporary directory.
pub fn scratch_key_file() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("portal-test-{}-{n}", std::process::id()))
        .join("audit-checkpoint.key")
}

/// The runbooks in `runbooks/`.
pub fn shipped_runbooks() -> Vec<runbook::Runbook> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
    runbook::load_dir(&dir).expect("the shipped runbooks are valid")
}

/// Starts the portal on `pool`'s database.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, &[]).await
}

/// Starts the portal with extra `PORTAL_*` settings and no sites.
pub async fn spawn_app_with(pool: PgPool, extra: &[(&str, &str)]) -> TestApp {
    let executor = SiteExecutor::new(Vec::new(), std::env::temp_dir()).expect("no sites");
    spawn_app_on(pool, extra, Arc::new(executor)).await
}

/// Starts the portal reaching sites through `executor`.
pub async fn spawn_app_on(
    pool: PgPool,
    extra: &[(&str, &str)],
    executor: Arc<SiteExecutor>,
) -> TestApp {
    let settings = test_settings(extra);
    server::startup::migrate(&pool).await.expect("migrations");
    app::ssr::sites::apply_stored_sites(&pool, executor.as_ref())
        .await
        .expect("stored sites apply");
    app::ssr::sites::apply_stored_keys(&pool, executor.as_ref())
        .await
        .expect("stored host keys apply");
    let app = Application::build(
        &settings,
        pool.clone(),
        shipped_runbooks(),
        executor.clone(),
        executor,
    )
    .await
    .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        pool,
        _stop: stop,
    }
}

/// A browser-like client: keeps cookies, does not follow redirects, and sends the
/// `Origin` header a browser sends with a POST.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_str(&self.base).unwrap());
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    /// Creates a user directly (as the CLI would), with a password they need not change.
    pub async fn add_user(&self, name: &str, role: Role) {
        users::create(
            &self.pool,
            &Actor::System,
            name,
            role,
            PASSWORD.to_string(),
            false,
        )
        .await
        .expect("user created");
    }

    /// A browser signed in as a new user of `role`.
    pub async fn signed_in(&self, name: &str, role: Role) -> Browser {
        self.add_user(name, role).await;
        let b = self.browser();
        let r = b.sign_in(name, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "sign-in of {name}");
        b
    }

    /// Audit actions recorded so far, oldest first.
    pub async fn audit_actions(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT actor, action FROM audit_events ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

impl Browser {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap()
    }

    /// Calls a server function with form-encoded arguments, as the app's forms do.
    pub async fn call(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_in(&self, name: &str, password: &str) -> reqwest::Response {
        self.call(
            "/api/auth/sign_in",
            &[("username", name), ("password", password)],
        )
        .await
    }

    /// Who the server thinks this browser is.
    pub async fn me(&self) -> Option<String> {
        let r = self.call("/api/auth/me", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: serde_json::Value = r.json().await.unwrap();
        v.get("username")
            .and_then(|u| u.as_str())
            .map(str::to_string)
    }
}

/// The JSON error body of a failed server function call, as text.
pub async fn error_text(r: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = r.status();
    let body = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// Starts the portal with `runbooks`, executing through `executor` (a fake, for
/// tests of the engine's side) and no configured sites to manage.
pub async fn spawn_app_with_executor(
    pool: PgPool,
    extra: &[(&str, &str)],
    runbooks: Vec<runbook::Runbook>,
    executor: Arc<dyn app::ssr::engine::executor::Executor>,
) -> TestApp {
    let settings = test_settings(extra);
    server::startup::migrate(&pool).await.expect("migrations");
    let sites = SiteExecutor::new(Vec::new(), std::env::temp_dir()).expect("no sites");
    let app = Application::build(&settings, pool.clone(), runbooks, executor, Arc::new(sites))
        .await
        .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        pool,
        _stop: stop,
    }
}
