//! Building and running the portal: database pool, migrations, and the HTTP server.

use crate::config::{ConfigError, DatabaseUrl, Settings};
use crate::web::{
    activity, audit_export, csrf, headers, health, limits, live, page_guard, run_report,
};
use app::ssr::state::AuthSettings;
use app::ssr::AppState;
use app::{shell, App};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Why the portal could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("session store: {0}")]
    SessionStore(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Service(#[from] app::ssr::ServiceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Opens the connection pool and checks that the database answers. Connections
/// are tested before use and a checkout waits at most three seconds, so the portal
/// recovers on its own after the database restarts.
pub async fn connect(settings: &Settings) -> Result<PgPool, StartupError> {
    let database = settings.database()?;
    let url = database.redacted();
    ensure_database(database).await?;
    let options =
        PgConnectOptions::from_str(database.expose()).map_err(|source| StartupError::Connect {
            url: url.clone(),
            source,
        })?;
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(true)
        .connect_with(options)
        .await
        .map_err(|source| StartupError::Connect { url, source })
}

/// Creates the configured database if the server does not have it yet, so a first
/// start needs nothing but a reachable PostgreSQL.
async fn ensure_database(database: &DatabaseUrl) -> Result<(), StartupError> {
    use sqlx::migrate::MigrateDatabase;
    let url = database.expose();
    let exists = sqlx::Postgres::database_exists(url)
        .await
        .map_err(|source| StartupError::Connect {
            url: database.redacted(),
            source,
        })?;
    if !exists {
        tracing::info!(database = %database.redacted(), "creating the database");
        sqlx::Postgres::create_database(url)
            .await
            .map_err(|source| StartupError::Connect {
                url: database.redacted(),
                source,
            })?;
    }
    Ok(())
}

/// Applies the portal's migrations and the session store's schema.
pub async fn migrate(pool: &PgPool) -> Result<(), StartupError> {
    MIGRATOR.run(pool).await?;
    PostgresStore::new(pool.clone())
        .migrate()
        .await
        .map_err(|e| StartupError::SessionStore(e.to_string()))?;
    Ok(())
}

/// The HTTP server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and assembles the routes.
    pub async fn build(
        settings: &Settings,
        pool: PgPool,
        runbooks: Vec<runbook::Runbook>,
        executor: Arc<dyn app::ssr::engine::executor::Executor>,
        sites: Arc<dyn app::ssr::sites::SiteDirectory>,
    ) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen.to_string(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen.to_string(),
            source,
        })?;

        let mut notifications = settings.notifications();
        // A public URL derived from `listen` on port 0 links to the port bound.
        if let Ok(mut public) = url::Url::parse(&notifications.public_url) {
            if public.port() == Some(0) && public.set_port(Some(addr.port())).is_ok() {
                notifications.public_url = public.to_string();
            }
        }
        let notifier = app::ssr::notify::Notifier::new(notifications)?;
        let state = AppState {
            pool: pool.clone(),
            auth: Arc::new(AuthSettings {
                idle_timeout: chrono::Duration::minutes(settings.session_idle_minutes),
                absolute_lifetime: chrono::Duration::hours(settings.session_lifetime_hours),
                ..AuthSettings::default()
            }),
            engine: app::ssr::engine::Engine::new(
                pool.clone(),
                &runbooks,
                executor,
                chrono::Duration::seconds(settings.approval_validity_seconds),
                notifier.clone(),
            ),
            sites,
            runbooks: Arc::new(runbooks),
            notifier,
        };

        state
            .engine
            .limit_output(settings.max_output_bytes_per_attempt);
        state.engine.spawn_expiry();
        // Deliveries left pending by an earlier start are resumed at once.
        state.notifier.spawn(pool.clone());

        let store = PostgresStore::new(pool.clone());
        store
            .migrate()
            .await
            .map_err(|e| StartupError::SessionStore(e.to_string()))?;
        let cleaner = store.clone();
        tokio::spawn(async move {
            if let Err(e) = cleaner
                .continuously_delete_expired(tokio::time::Duration::from_secs(600))
                .await
            {
                tracing::warn!(error = %e, "expired-session cleanup stopped");
            }
        });
        let sessions = SessionManagerLayer::new(store)
            .with_name("portal_session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(settings.secure_cookies())
            .with_path("/")
            // The expiry slides when the session is saved, which is when a person's
            // request records its activity (`activity::track`); live streams and
            // background reads leave it alone, so an open tab cannot keep it alive.
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
                settings.session_idle_minutes,
            )));

        let leptos_options = LeptosOptions::builder()
            .output_name(Arc::<str>::from("recovery-portal"))
            .site_root(Arc::<str>::from(
                settings.site_root.to_string_lossy().as_ref(),
            ))
            .site_pkg_dir(Arc::<str>::from("pkg"))
            .site_addr(addr)
            .build();
        let routes = generate_route_list(App);
        let context_state = state.clone();
        let context = move || {
            provide_context(context_state.clone());
            headers::provide_nonce();
        };
        let pages = Router::new()
            .leptos_routes_with_context(&leptos_options, routes, context.clone(), {
                let options = leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler_with_context(
                context, shell,
            ))
            .with_state(leptos_options)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                page_guard::guard,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                activity::track,
            ))
            .layer(sessions.clone());
        let live_events = Router::new()
            .route("/api/runs/{id}/live", get(live::events))
            .route("/api/approvals/live", get(live::approvals))
            .route("/api/audit/live", get(live::audit_tail))
            .route("/api/audit/export.csv", get(audit_export::csv))
            .route("/api/audit/export.jsonl", get(audit_export::jsonl))
            .route("/api/runs/{id}/report.pdf", get(run_report::pdf))
            .route("/api/runs/{id}/report.jsonl", get(run_report::jsonl))
            .with_state(state.clone())
            .layer(axum::Extension(limits::Limits::new(
                settings.max_concurrent_exports,
                settings.max_live_streams_per_user,
            )))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                activity::track,
            ))
            .layer(sessions);

        let public_origin: Arc<str> = Arc::from(settings.public_origin());
        // The bundle and static files are served outside the session layer: its
        // sliding expiry saves the session on every request it sees.
        let router = Router::new()
            .route("/healthz", get(health::healthz).with_state(pool))
            .nest_service("/pkg", ServeDir::new(settings.site_root.join("pkg")))
            .route_service(
                "/favicon.svg",
                ServeFile::new(settings.site_root.join("favicon.svg")),
            )
            .merge(live_events)
            .merge(pages)
            .layer(axum::middleware::from_fn_with_state(
                public_origin,
                csrf::protect,
            ))
            .layer(axum::middleware::from_fn(headers::secure))
            .layer(TraceLayer::new_for_http());

        Ok(Self { listener, router })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes, then finishes the requests under way.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router.into_make_service())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
