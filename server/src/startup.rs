//! Building and running the portal: database pool, migrations, and the HTTP server.

use crate::config::{ConfigError, DatabaseUrl, Settings};
use crate::web::{
    activity, audit_export, client, csrf, headers, health, limits, live, page_guard, run_report,
};
use app::ssr::audit::checkpoint::Checkpoints;
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
    #[error("{0}; the portal does not start without its checkpoint key")]
    CheckpointKey(#[from] app::ssr::audit::checkpoint::KeyFileError),
    #[error("database migration as the runtime role failed: {0} (when DATABASE_URL is a role that may not change the schema, set MIGRATION_DATABASE_URL to the URL of the role that owns it)")]
    MigrateAsRuntime(sqlx::migrate::MigrateError),
    #[error("cannot grant the runtime role `{role}` its rights: {source}")]
    Grant { role: String, source: sqlx::Error },
}

/// Opens the connection pool and checks that the database answers. Connections
/// are tested before use and a checkout waits at most three seconds, so the portal
/// recovers on its own after the database restarts.
pub async fn connect(settings: &Settings) -> Result<PgPool, StartupError> {
    connect_to(settings.database()?, 16).await
}

/// A pool of at most `max` connections to `database`, created first if missing.
async fn connect_to(database: &DatabaseUrl, max: u32) -> Result<PgPool, StartupError> {
    let url = database.redacted();
    ensure_database(database).await?;
    let options =
        PgConnectOptions::from_str(database.expose()).map_err(|source| StartupError::Connect {
            url: url.clone(),
            source,
        })?;
    PgPoolOptions::new()
        .max_connections(max)
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

/// The runtime pool on an up-to-date schema. With `migration_database_url`, the
/// migrations run as that role (the schema's owner), which then grants the
/// runtime role ([`grant_runtime`]); without it, they run as `database_url`.
pub async fn prepare(settings: &Settings) -> Result<PgPool, StartupError> {
    let Some(owner_url) = &settings.migration_database_url else {
        let pool = connect(settings).await?;
        migrate(&pool).await.map_err(|e| match e {
            StartupError::Migrate(e) => StartupError::MigrateAsRuntime(e),
            other => other,
        })?;
        return Ok(pool);
    };
    let owner = connect_to(owner_url, 2).await?;
    migrate(&owner).await?;
    let pool = connect(settings).await?;
    let whoami = "SELECT current_user::text";
    let owner_role: String = sqlx::query_scalar(whoami).fetch_one(&owner).await?;
    let runtime: String = sqlx::query_scalar(whoami).fetch_one(&pool).await?;
    if runtime != owner_role {
        grant_runtime(&owner, &runtime).await?;
    }
    owner.close().await;
    Ok(pool)
}

/// Gives the runtime role what the portal needs and no more: on the audit trail
/// and its checkpoints only SELECT and INSERT (no UPDATE, DELETE, TRUNCATE, and
/// not the ownership that could disable the append-only triggers); on the other
/// tables the usual reads and writes; on the migrations' bookkeeping, reading.
/// Run as the owner after every migration, so new tables are covered.
pub async fn grant_runtime(owner: &PgPool, role: &str) -> Result<(), StartupError> {
    let r = format!("\"{}\"", role.replace('"', "\"\""));
    let statements = [
        format!("GRANT USAGE ON SCHEMA public TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}"),
        format!("REVOKE ALL ON audit_events, audit_checkpoints, _sqlx_migrations FROM {r}"),
        format!("GRANT SELECT, INSERT ON audit_events, audit_checkpoints TO {r}"),
        format!("GRANT SELECT ON _sqlx_migrations TO {r}"),
        format!("GRANT USAGE ON SCHEMA tower_sessions TO {r}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tower_sessions TO {r}"
        ),
    ];
    let fail = |source| StartupError::Grant {
        role: role.to_string(),
        source,
    };
    let mut tx = owner.begin().await.map_err(fail)?;
    for sql in &statements {
        sqlx::query(sql).execute(&mut *tx).await.map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    tracing::debug!(
        role,
        "runtime database role granted SELECT and INSERT on the audit trail"
    );
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
    checkpoints: Arc<Checkpoints>,
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
        let checkpoints = Arc::new(Checkpoints::open(&settings.audit_key_file)?);
        checkpoints.clone().spawn_periodic(
            pool.clone(),
            Duration::from_secs(settings.audit_checkpoint_seconds),
        );
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
                app::ssr::approvals::ApprovalTimes {
                    validity: chrono::Duration::seconds(settings.approval_validity_seconds),
                    decide_within: chrono::Duration::hours(settings.approval_request_hours),
                    break_glass_for: chrono::Duration::minutes(settings.break_glass_minutes),
                },
                notifier.clone(),
            ),
            sites,
            runbooks: Arc::new(runbooks),
            notifier,
            sign_in_gate: Arc::new(app::ssr::throttle::SignInGate::for_this_machine()),
            checkpoints: checkpoints.clone(),
        };

        state
            .engine
            .limit_output(settings.max_output_bytes_per_attempt);
        state.engine.spawn_expiry();
        app::ssr::throttle::spawn_housekeeping(
            pool.clone(),
            state.auth.throttle.per_user_and_address.window,
            std::time::Duration::from_secs(60),
        );
        // Deliveries left pending by an earlier start are resumed at once.
        state.notifier.spawn(pool.clone());

        // Its schema is made by `migrate` (as the schema's owner): the runtime
        // role may not create it.
        let store = PostgresStore::new(pool.clone());
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
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(client::ClientSettings {
                    trusted_proxies: settings.trusted_proxies.clone(),
                    https_by_default: settings.secure_cookies(),
                }),
                client::identify,
            ))
            .layer(axum::middleware::from_fn(headers::secure))
            .layer(TraceLayer::new_for_http());

        Ok(Self {
            listener,
            router,
            checkpoints,
        })
    }

    /// The signed checkpoints of the audit chain's head.
    pub fn checkpoints(&self) -> Arc<Checkpoints> {
        self.checkpoints.clone()
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
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
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
