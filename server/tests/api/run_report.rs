//! A run's report: the PDF is parsed back (text extraction) and must name the
//! parameters, the approval chain, the outputs' digests and the chain hashes; its
//! attached JSONL checks out offline; a tampered trail shows in the report; who
//! may download it. Also the chain verification page's service, one event's
//! page, and the live tail of the audit trail.

use crate::audit_store::tamper;
use crate::helpers::*;
use crate::lab_portal::*;
use app::model::audit::{AuditEventDetail, VerificationStatus};
use app::model::run_report::RunReport;
use app::model::Role;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::time::{Duration, Instant};

async fn report_of(b: &Browser, run: i64) -> RunReport {
    let r = b
        .call("/api/runs/report", &[("id", &run.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// The file attached to a PDF under `name`, read back with lopdf.
fn attachment(pdf: &[u8], name: &str) -> Option<Vec<u8>> {
    use lopdf::{Document, Object};
    let doc = Document::load_mem(pdf).ok()?;
    let catalog = doc.catalog().ok()?;
    let names = match catalog.get(b"Names").ok()? {
        Object::Reference(r) => doc.get_dictionary(*r).ok()?,
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let tree = match names.get(b"EmbeddedFiles").ok()? {
        Object::Reference(r) => doc.get_dictionary(*r).ok()?,
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let entries = tree.get(b"Names").ok()?.as_array().ok()?;
    for pair in entries.chunks(2) {
        let key = match &pair[0] {
            Object::String(bytes, _) => String::from_utf8_lossy(bytes).to_string(),
            _ => continue,
        };
        if !key.contains(name) {
            continue;
        }
        let spec = match &pair[1] {
            Object::Reference(r) => doc.get_dictionary(*r).ok()?,
            Object::Dictionary(d) => d,
            _ => return None,
        };
        let ef = spec.get(b"EF").ok()?.as_dict().ok()?;
        let stream = doc
            .get_object(ef.get(b"F").ok()?.as_reference().ok()?)
            .ok()?
            .as_stream()
            .ok()?;
        return stream
            .decompressed_content()
            .ok()
            .or_else(|| Some(stream.content.clone()));
    }
    None
}

/// Collapses runs of whitespace, so a value the layout wrapped still matches.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[sqlx::test(migrations = "../migrations")]
async fn the_pdf_report_names_parameters_approvals_outputs_and_chain_hashes(pool: PgPool) {
    let p = portal_with_lab(pool.clone()).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    p.lab.seed_backup_store(&p.store, "lab", &date).unwrap();
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let ann = p.app.signed_in("ann", Role::Auditor).await;
    let run = start_on_lab_with(&olga, "restore-cron", &[("target", "pcrfclient01")]).await;
    let approvals = drive(&olga, &[&sam], "restore-cron", run, None)
        .await
        .unwrap();
    assert!(approvals >= 1);

    let report = report_of(&ann, run).await;
    assert!(report.chain.intact(), "{:?}", report.chain);
    let first = report.chain.first.clone().unwrap();
    let last = report.chain.last.clone().unwrap();
    assert!(first.id < last.id);
    assert_eq!(report.events.first().unwrap().action, "run.started");

    let r = ann.get(&format!("/api/runs/{run}/report.pdf")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("run-{run}-report.pdf")));
    let pdf = r.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    // Kept for a look at it (target/run-report-test.pdf).
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/run-report-test.pdf"),
        &pdf,
    );
    let text = pdf_extract::extract_text_from_mem(&pdf).expect("the PDF's text can be extracted");
    let flat = squash(&text);
    for needle in [
        format!("Run #{run}"),
        "Parameters".to_string(),
        "target".to_string(),
        "pcrfclient01".to_string(),
        "backup_date".to_string(),
        // The approval chain: requester, justification, approver.
        "Requested".to_string(),
        "by olga".to_string(),
        "rehearsal of the whole procedure".to_string(),
        "Approved".to_string(),
        "by sam".to_string(),
        // The action as it ran, in the monospace block.
        "crontab /var/tmp/crontab_pcrfclient01_".to_string(),
        // The chain's ends and the verification's result.
        first.hash.clone(),
        last.hash.clone(),
        format!(
            "Audit chain verified intact from event {} to event {}",
            first.id, last.id
        ),
    ] {
        assert!(flat.contains(&needle), "the PDF lacks {needle:?}:\n{text}");
    }
    // Every attempt's output is named by its length and SHA-256.
    for digest in report.outputs.iter().filter(|d| d.bytes > 0) {
        assert!(
            flat.contains(&digest.sha256),
            "the PDF lacks the output digest {}",
            digest.sha256
        );
    }

    // The attachment is the JSONL the report offers, and it checks out offline.
    let attached = attachment(&pdf, &format!("run-{run}-report.jsonl"))
        .expect("the PDF has the JSONL attached");
    let r = ann.get(&format!("/api/runs/{run}/report.jsonl")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let jsonl = r.bytes().await.unwrap().to_vec();
    assert_eq!(attached, jsonl);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "verify", "--file"])
        .arg(&file)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{said}");
    // An output changed in the file is caught at its line.
    let text = String::from_utf8(jsonl).unwrap();
    let (n, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("\"type\":\"attempt\"") && l.contains("crontab"))
        .unwrap();
    let forged = text.replace(
        line,
        &line.replacen("\"output\":\"", "\"output\":\"forged ", 1),
    );
    std::fs::write(&file, forged).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "verify", "--file"])
        .arg(&file)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("line {}", n + 1)) && said.contains("output was altered"),
        "{said}"
    );

    // Each download is in the trail, outside the run's own events.
    let downloads: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'format' FROM audit_events WHERE action = 'report.exported' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(downloads, vec!["pdf", "jsonl"]);
    assert_eq!(report_of(&ann, run).await.chain.last.unwrap(), last);

    // An event of the run altered in the database: the report says so.
    tamper(
        &pool,
        &format!(
            "UPDATE audit_events SET actor = 'mallory' WHERE id = {}",
            first.id + 1
        ),
    )
    .await;
    let broken = report_of(&ann, run).await;
    assert!(!broken.chain.intact());
    assert!(
        broken
            .chain
            .sentence()
            .contains(&format!("BROKEN at event {}", first.id + 1)),
        "{}",
        broken.chain.sentence()
    );
    let pdf = ann
        .get(&format!("/api/runs/{run}/report.pdf"))
        .await
        .bytes()
        .await
        .unwrap();
    let text = squash(&pdf_extract::extract_text_from_mem(&pdf).unwrap());
    assert!(
        text.contains(&format!("Audit chain BROKEN at event {}", first.id + 1)),
        "{text}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn only_readers_of_the_audit_trail_get_reports(pool: PgPool) {
    let app = spawn_app(pool).await;
    let olga = app.signed_in("olga", Role::Operator).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    for path in ["/api/runs/1/report.pdf", "/api/runs/1/report.jsonl"] {
        assert_eq!(olga.get(path).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            app.browser().get(path).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let r = ann.get(path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(r.text().await.unwrap().contains("run"), "{path}");
    }
    // The page is refused to an operator before it renders.
    let r = olga.get("/runs/1/report").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

pub async fn verification(b: &Browser) -> VerificationStatus {
    let r = b.call("/api/audit/verification", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

pub async fn verify_to_end(b: &Browser) -> VerificationStatus {
    let r = b.call("/api/audit/verify", &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = verification(b).await;
        if s.latest.as_ref().is_some_and(|v| !v.running()) {
            return s;
        }
        assert!(Instant::now() < deadline, "the verification did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_chain_is_verified_in_the_background_and_the_result_is_kept(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    for n in 0..30 {
        app.signed_in(&format!("user{n}"), Role::Operator).await;
    }
    assert_eq!(verification(&ann).await.last_finished, None);

    let s = verify_to_end(&ann).await;
    let v = s.last_finished.unwrap();
    assert_eq!(v.state, "intact", "{v:?}");
    assert_eq!(v.started_by, "ann");
    assert!(v.checked >= 60, "{v:?}");
    assert_eq!(v.checked, v.total);
    assert!(v.finished_at.is_some());
    // The result is itself an audit event.
    let recorded: String = sqlx::query_scalar(
        "SELECT details->>'result' FROM audit_events WHERE action = 'audit.verified'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(recorded, "intact");

    tamper(
        &pool,
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 7",
    )
    .await;
    let v = verify_to_end(&ann).await.last_finished.unwrap();
    assert_eq!(v.state, "broken");
    assert_eq!(v.broken_at, Some(7));
    assert_eq!(v.checked, 6);
    assert!(v.reason.unwrap().contains("altered"));

    // One event's page says what is wrong with it, and what is right.
    let r = ann.call("/api/audit/event", &[("id", "7")]).await;
    let d: AuditEventDetail = r.json().await.unwrap();
    assert!(!d.hash_matches);
    assert_eq!(d.linked, Some(true));
    assert_eq!(d.next, Some(8));
    let d: AuditEventDetail = ann
        .call("/api/audit/event", &[("id", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert!(d.hash_matches);
    assert_eq!(d.linked, Some(true));
    let r = ann.call("/api/audit/event", &[("id", "100000")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The page shows the last result.
    let page = ann.get("/audit/verify").await.text().await.unwrap();
    assert!(page.contains("BROKEN at event 7"), "{page}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_live_tail_announces_matching_events_as_they_are_written(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    let mut r = ann.get("/api/audit/live?actor=later").await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut seen = String::new();
    let announced = |seen: &str| -> Vec<i64> {
        seen.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| d.trim().parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wrote = false;
    while announced(&seen).len() < 2 {
        if announced(&seen).len() == 1 && !wrote {
            // An event that does not match is not announced; one that does, is.
            app.signed_in("someone", Role::Operator).await;
            app.signed_in("later", Role::Operator).await;
            wrote = true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, r.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            other => panic!("the tail stopped: {other:?}; {seen:?}"),
        }
    }
    let ids = announced(&seen);
    assert!(ids[1] > ids[0], "{seen}");
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_events WHERE id = $1")
        .bind(ids[1])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actor, "later");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_verification_reports_its_progress_as_it_goes(pool: PgPool) {
    use app::model::audit::AuditAction;
    use app::ssr::audit::{self, Actor, NewEvent};
    let mut tx = pool.begin().await.unwrap();
    for n in 0..3_000 {
        audit::append(
            &mut tx,
            NewEvent::new(
                &Actor::System,
                AuditAction::PortalStarted,
                "portal",
                serde_json::json!({ "n": n }),
            ),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let by = Actor::User("ann".into());
    let (id, new) = audit::verification::begin(&pool, &by).await.unwrap();
    assert!(new);
    // A second start joins the running verification instead of starting another.
    assert_eq!(
        audit::verification::begin(&pool, &by).await.unwrap(),
        (id, false)
    );
    let mut readings = Vec::new();
    let v = audit::verification::run(
        &pool,
        id,
        &by,
        audit::verification::Anchors::default(),
        |n| readings.push(n),
    )
    .await
    .unwrap();
    assert_eq!(readings, vec![1_000, 2_000, 3_000]);
    assert_eq!(
        (v.state.as_str(), v.checked, v.total),
        ("intact", 3_000, 3_000)
    );
    // Finished, a new one can start; one the portal left running is failed at start.
    let (again, new) = audit::verification::begin(&pool, &by).await.unwrap();
    assert!(new && again > id);
    assert_eq!(
        audit::verification::abandon_running(&pool).await.unwrap(),
        1
    );
    let s = audit::verification::status(&pool, None).await.unwrap();
    let last = s.last_finished.unwrap();
    assert_eq!(last.id, again);
    assert_eq!(last.state, "failed");
    assert!(last.reason.unwrap().contains("stopped"));
}
