//! Audit exports over HTTP and from the command line: streamed CSV and JSONL
//! with the viewer's filters, checked offline (a tampered export is refused at
//! the right event), and who may export.

use crate::helpers::*;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::process::Command;

fn verify_file(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "verify", "--file"])
        .arg(path)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn exports_stream_filter_and_verify_offline(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    for name in ["olga", "oscar", "sam"] {
        app.signed_in(name, Role::Operator).await;
    }
    // The whole trail as JSONL: header, events, trailer; checks out offline.
    let r = ann.get("/api/audit/export.jsonl").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".jsonl"));
    let whole = r.text().await.unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    assert!(lines[0].contains("\"complete\":true"), "{}", lines[0]);
    assert!(lines.last().unwrap().contains("\"type\":\"trailer\""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    std::fs::write(&file, &whole).unwrap();
    let out = verify_file(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("the whole chain from event 1"),
        "{}",
        text(&out)
    );

    // Tampered: one event's actor changed; the check names that event's line.
    let victim = lines
        .iter()
        .position(|l| l.contains("\"actor\":\"oscar\""))
        .unwrap();
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[victim] = tampered[victim].replace("\"actor\":\"oscar\"", "\"actor\":\"mallory\"");
    std::fs::write(&file, tampered.join("\n") + "\n").unwrap();
    let out = verify_file(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let id: serde_json::Value = serde_json::from_str(lines[victim]).unwrap();
    assert!(
        text(&out).contains(&format!(
            "export BROKEN: line {}: event {}: its content does not match its hash",
            victim + 1,
            id["id"]
        )),
        "{}",
        text(&out)
    );
    // A line taken out of a complete export.
    let mut cut: Vec<&str> = lines.clone();
    cut.remove(2);
    std::fs::write(&file, cut.join("\n") + "\n").unwrap();
    let out = verify_file(&file);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("events are missing or reordered"),
        "{}",
        text(&out)
    );

    // Filtered: only olga's events; a filtered export is not the whole chain.
    let r = ann.get("/api/audit/export.jsonl?actor=olga").await;
    let olga = r.text().await.unwrap();
    let events: Vec<serde_json::Value> = olga
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "event")
        .collect();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["actor"] == "olga"));
    std::fs::write(&file, &olga).unwrap();
    let out = verify_file(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("filtered (actor=olga)"),
        "{}",
        text(&out)
    );

    // CSV with the same filter: a header and one record per event.
    let csv = ann
        .get("/api/audit/export.csv?actor=olga")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("id,at,actor,action,subject,details,prev_hash,hash\r\n"));
    assert_eq!(csv.lines().count(), events.len() + 1);

    // Bad filters are refused with what is wrong.
    let r = ann.get("/api/audit/export.csv?run=abc&colour=red").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(body.contains("run: \"abc\" is not a run number"), "{body}");
    assert!(body.contains("colour: not a filter"), "{body}");

    // Each export is itself in the trail.
    let exported: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'audit.exported'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(exported, 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn only_auditors_supervisors_and_admins_export(pool: PgPool) {
    let app = spawn_app(pool).await;
    let olga = app.signed_in("olga", Role::Operator).await;
    for path in ["/api/audit/export.csv", "/api/audit/export.jsonl"] {
        assert_eq!(olga.get(path).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            app.browser().get(path).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for (name, role) in [("sue", Role::Supervisor), ("ada", Role::Admin)] {
        let b = app.signed_in(name, role).await;
        assert_eq!(
            b.get("/api/audit/export.csv").await.status(),
            StatusCode::OK
        );
    }
    // The viewer's filters are checked on the server too.
    let ann = app.signed_in("ann", Role::Auditor).await;
    let r = ann
        .call(
            "/api/audit/events",
            &[("filters[run]", "12"), ("filters[text]", "crontab")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = ann
        .call("/api/audit/events", &[("filters[from]", "someday")])
        .await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("is not a time"), "{body}");
    assert_eq!(
        olga.call("/api/audit/events", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_command_line_exports_what_the_page_would(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in("olga", Role::Operator).await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&name);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cli.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "export", "--format", "jsonl", "--out"])
        .arg(&file)
        .env("DATABASE_URL", url.as_str())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = verify_file(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "export", "--format", "csv", "--run", "x"])
        .env("DATABASE_URL", url.as_str())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--run: \"x\" is not a run number"),
        "{}",
        text(&out)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_download_another_site_starts_is_refused_and_not_recorded(pool: PgPool) {
    let app = spawn_app(pool).await;
    let sue = app.signed_in("sue", Role::Supervisor).await;
    let exported = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit_events WHERE action IN ('audit.exported', 'report.exported')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let get = |path: &'static str, site: &'static str| {
        sue.http
            .get(format!("{}{path}", sue.base))
            .header("sec-fetch-site", site)
            .send()
    };
    // A link or form on another site (the Lax cookie goes along): refused
    // before anything is read or recorded.
    for path in [
        "/api/audit/export.csv",
        "/api/audit/export.jsonl",
        "/api/runs/1/report.pdf",
        "/api/runs/1/report.jsonl",
    ] {
        for site in ["cross-site", "same-site"] {
            let r = get(path, site).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {site}");
            let text = r.text().await.unwrap();
            assert!(text.contains("another site"), "{text}");
        }
    }
    assert_eq!(exported().await, 0);
    // The portal's own link, a typed address or bookmark, or a script: served.
    for site in ["same-origin", "none"] {
        let r = get("/api/audit/export.csv", site).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{site}");
        // There is no run 1: past the check, the report says so.
        let r = get("/api/runs/1/report.pdf", site).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{site}");
    }
    assert_eq!(
        sue.get("/api/audit/export.jsonl").await.status(),
        StatusCode::OK
    );
    assert_eq!(exported().await, 3);
}
