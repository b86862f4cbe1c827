//! `GET /healthz`: the portal's version and whether the database answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How long the database may take to answer before it counts as down.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when the database answers `SELECT 1` within two seconds, 503 otherwise.
pub async fn healthz(State(pool): State<PgPool>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let probe = tokio::time::timeout(
        DATABASE_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool),
    )
    .await;
    let version = env!("CARGO_PKG_VERSION");
    match probe {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "version": version,
                "database": { "state": "up", "latency_ms": started.elapsed().as_millis() as u64 },
            })),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "version": version, "database": { "state": "down", "error": "the database refused or dropped the connection" } }),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "version": version, "database": { "state": "down", "error": "the database did not answer within 2 s" } }),
            ),
        ),
    }
}
