//! `recovery-portal bench audit`: on a scratch database beside the configured
//! one, appends events with the hash chain from 8 concurrent writers and prints
//! the rate; then fills the trail to a million events and exports them as CSV
//! through the portal's streaming export, timed and with the peak memory, beside
//! PostgreSQL's own `COPY … TO STDOUT (FORMAT csv)` of the same rows (psql) in
//! the same run. The scratch database is dropped at the end.

use super::CommandError;
use crate::web::audit_export::{lines, Format};
use app::model::audit::AuditAction;
use app::model::audit_query::AuditQuery;
use app::ssr::audit::{self, chain, Actor, NewEvent};
use futures_util::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor};
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn service(e: impl std::fmt::Display) -> CommandError {
    CommandError::Service(e.to_string())
}

/// Runs the benchmark against the server of `database_url`.
pub async fn audit(
    database_url: &str,
    appends: u64,
    export_events: u64,
) -> Result<ExitCode, CommandError> {
    let admin = PgConnectOptions::from_str(database_url).map_err(service)?;
    let scratch = format!("portal_bench_audit_{}", std::process::id());
    let mut conn = admin
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(service)?;
    conn.execute(format!("CREATE DATABASE {scratch}").as_str())
        .await
        .map_err(service)?;
    let options = admin.clone().database(&scratch);
    let mut url = url::Url::parse(database_url).map_err(service)?;
    url.set_path(&scratch);
    let result = run(options.clone(), url.as_str(), appends, export_events).await;
    let _ = conn
        .execute(format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)").as_str())
        .await;
    result
}

async fn run(
    options: PgConnectOptions,
    url: &str,
    appends: u64,
    export_events: u64,
) -> Result<ExitCode, CommandError> {
    let pool = PgPoolOptions::new()
        .max_connections(12)
        .connect_with(options.clone())
        .await
        .map_err(service)?;
    crate::startup::MIGRATOR.run(&pool).await.map_err(service)?;
    println!(
        "audit benchmark on a scratch database ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // 8 writers, each event its own transaction, chained under the lock.
    let writers = 8u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        let n = appends / writers;
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                audit::append_alone(
                    &pool,
                    NewEvent::new(
                        &Actor::User(format!("writer{w}")),
                        AuditAction::Step(app::model::run::StepEvent::Run),
                        format!("run:{w}/step:s{i}"),
                        serde_json::json!({"host": "pcrfclient01", "command": "crontab -l", "attempt": i}),
                    ),
                )
                .await?;
            }
            Ok::<(), app::ssr::ServiceError>(())
        }));
    }
    for t in tasks {
        t.await.map_err(service)?.map_err(service)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let appended = (appends / writers) * writers;
    println!(
        "  appends, {writers} concurrent writers, one transaction each: {appended} in {seconds:.2} s = {:.0} events/s",
        appended as f64 / seconds
    );

    // Fill to `export_events` with a valid chain, in batches.
    let started = Instant::now();
    let (mut id, mut prev): (i64, String) =
        sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .map_err(service)?;
    let at = chain::to_stored_precision(chrono::Utc::now());
    while (id as u64) < export_events {
        let batch = (export_events - id as u64).min(5000);
        let mut ids = Vec::new();
        let mut subjects = Vec::new();
        let mut details = Vec::new();
        let mut prevs = Vec::new();
        let mut hashes = Vec::new();
        for _ in 0..batch {
            id += 1;
            let e = chain::ChainedEvent {
                id,
                at,
                actor: "olga".into(),
                action: "step.run".into(),
                subject: format!("run:{}/step:s", id % 1000),
                details: serde_json::json!({"host": "pcrfclient01", "command": "svn info http://pcrfclient02/repos | grep UUID", "n": id}),
                prev_hash: prev.clone(),
            };
            let h = chain::event_hash(&e);
            ids.push(e.id);
            subjects.push(e.subject);
            details.push(e.details);
            prevs.push(e.prev_hash);
            hashes.push(h.clone());
            prev = h;
        }
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor, action, subject, details, prev_hash, hash) \
             SELECT i, $2, 'olga', 'step.run', s, d, p, h FROM UNNEST($1::bigint[], $3::text[], $4::jsonb[], $5::text[], $6::text[]) AS t(i, s, d, p, h)",
        )
        .bind(&ids)
        .bind(at)
        .bind(&subjects)
        .bind(&details)
        .bind(&prevs)
        .bind(&hashes)
        .execute(&pool)
        .await
        .map_err(service)?;
        eprint!("\r  filling the trail: {id} events…");
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    println!(
        "  trail filled to {id} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The portal's export, CSV, to a file.
    let dir = tempfile::tempdir().map_err(service)?;
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(dir.path().join("portal.csv")).map_err(service)?,
    );
    let mut stream = Box::pin(lines(
        Format::Csv,
        Default::default(),
        None,
        audit::query::stream(pool.clone(), AuditQuery::default()),
    ));
    let mut rows = 0u64;
    let mut bytes = 0u64;
    while let Some(line) = stream.next().await {
        let line = line.map_err(service)?;
        bytes += line.len() as u64;
        rows += 1;
        out.write_all(line.as_bytes()).map_err(service)?;
    }
    out.flush().map_err(service)?;
    let portal = started.elapsed().as_secs_f64();
    let rss_after = peak_rss_mib();

    // PostgreSQL's COPY of the same columns, through psql.
    let started = Instant::now();
    let copy = tokio::process::Command::new("psql")
        .arg(url)
        .args(["-q", "-c", "\\copy (SELECT id, at, actor, action, subject, details, prev_hash, hash FROM audit_events ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)", "-o"])
        .arg(dir.path().join("copy.csv"))
        .status()
        .await;
    let copy_seconds = started.elapsed().as_secs_f64();
    println!(
        "  export of {} events as CSV, streamed by the portal: {portal:.2} s ({:.0} events/s, {:.1} MB)",
        rows - 1,
        (rows - 1) as f64 / portal,
        bytes as f64 / 1e6
    );
    match copy {
        Ok(s) if s.success() => println!(
            "  PostgreSQL COPY … TO STDOUT (FORMAT csv) via psql, same rows: {copy_seconds:.2} s (ratio portal/COPY {:.2})",
            portal / copy_seconds
        ),
        _ => println!("  PostgreSQL COPY via psql: not measured (psql not available)"),
    }
    let mib = |m: Option<f64>| {
        m.map(|m| format!("{m:.1} MiB"))
            .unwrap_or_else(|| "unknown".into())
    };
    println!(
        "  peak RSS of this process: {} before the export, {} after",
        mib(rss_before),
        mib(rss_after)
    );
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}
