//! The trail cannot be shortened unseen (review finding F4): signed checkpoints
//! of the head, verification against them and against a head the auditor kept,
//! forged checkpoints, and a runtime database role that cannot rewrite events.

use crate::audit_store::tamper;
use crate::cli::{database_url, key_file_of, portal, portal_env, stderr, stdout};
use crate::helpers::*;
use crate::run_report::{verification, verify_to_end};
use app::model::audit::AuditAction;
use app::model::Role;
use app::ssr::audit::checkpoint::{CheckpointKey, Checkpoints, Written, KEY_LEN};
use app::ssr::audit::{self, verification as verifications, Actor, NewEvent};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

async fn append_events(pool: &PgPool, n: usize) {
    for i in 0..n {
        audit::append_alone(
            pool,
            NewEvent::new(
                &Actor::System,
                AuditAction::PortalStarted,
                "portal",
                serde_json::json!({ "n": i }),
            ),
        )
        .await
        .unwrap();
    }
}

async fn head(pool: &PgPool) -> (i64, String) {
    audit::store::head(pool).await.unwrap().unwrap()
}

/// What the finding's reproduction does: as the database's owner, with the
/// triggers skipped, delete the newest events.
async fn cut_after(pool: &PgPool, keep: i64) {
    tamper(pool, &format!("DELETE FROM audit_events WHERE id > {keep}")).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn audit_verify_names_the_events_cut_from_the_end_after_a_checkpoint(pool: PgPool) {
    let db = database_url(&pool).await;
    append_events(&pool, 20).await;
    // The first verification checkpoints the head (its own event included).
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("audit chain intact: 20 events verified"),
        "{}",
        stdout(&out)
    );
    let (top, top_hash) = head(&pool).await;
    assert_eq!(top, 21);
    let signed: i64 = sqlx::query_scalar("SELECT max(head_id) FROM audit_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(signed, 21);

    // Before this fix: still "intact" (the finding's reproduction).
    cut_after(&pool, top - 10).await;
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "audit chain BROKEN: events 12–21 are missing: the last checkpoint (signed "
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "recorded head 21 with hash {top_hash}, the chain now ends at 11"
        )),
        "{text}"
    );

    // Deleting the checkpoint rows too does not help: the file next to the key has them.
    tamper(&pool, "DELETE FROM audit_checkpoints").await;
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    // The broken verification's own event took id 12 since.
    assert!(
        text.contains("events 13–21 are missing") && text.contains("the chain now ends at 12"),
        "{text}"
    );
    assert!(text.contains("audit-checkpoint.jsonl"), "{text}");
}

#[sqlx::test(migrations = "../migrations")]
async fn expect_head_accepts_the_true_head_and_refuses_a_wrong_one(pool: PgPool) {
    let db = database_url(&pool).await;
    append_events(&pool, 5).await;
    let (id, hash) = head(&pool).await;
    let kept = format!("{id}:{hash}");
    let out = portal(&db, &["audit", "verify", "--expect-head", &kept], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("the expected head {kept} is in the chain")),
        "{}",
        stdout(&out)
    );

    let wrong = format!("{id}:{}", "ab".repeat(32));
    let out = portal(&db, &["audit", "verify", "--expect-head", &wrong], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "event {id} was rewritten: the head you expected (--expect-head) is head {id} with hash {}",
            "ab".repeat(32)
        )),
        "{}",
        stdout(&out)
    );

    let beyond = format!("{}:{hash}", id + 100);
    let out = portal(&db, &["audit", "verify", "--expect-head", &beyond], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("events {}–{} are missing", id + 3, id + 100)),
        "{}",
        stdout(&out)
    );

    for bad in ["5", "five:abc", "5:xyz"] {
        let out = portal(&db, &["audit", "verify", "--expect-head", bad], None);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("expected ID:HASH"),
            "{}",
            stderr(&out)
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn forged_checkpoints_are_reported_and_never_trusted(pool: PgPool) {
    let db = database_url(&pool).await;
    append_events(&pool, 5).await;
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A row claiming a far higher head, with a MAC made without the key: the
    // runtime role may INSERT checkpoints, but not sign them.
    sqlx::query(
        "INSERT INTO audit_checkpoints (database, first_hash, head_id, head_hash, at, mac) \
         SELECT current_database(), (SELECT hash FROM audit_events WHERE id = 1), 999, $1, now(), $2",
    )
    .bind("cd".repeat(32))
    .bind("00".repeat(32))
    .execute(&pool)
    .await
    .unwrap();
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("a forged checkpoint row ")
            && text.contains("of audit_checkpoints: its MAC does not check"),
        "{text}"
    );
    assert!(
        !text.contains("missing"),
        "the forged head was trusted: {text}"
    );

    // A line of the checkpoint file that is not a signed checkpoint is named by line.
    let log = key_file_of(&db).with_extension("jsonl");
    let mut lines = std::fs::read_to_string(&log).unwrap();
    let count = lines.lines().count();
    lines.push_str("{\"database\":\"x\"}\n");
    std::fs::write(&log, lines).unwrap();
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("line {} of {}", count + 1, log.display())),
        "{}",
        stdout(&out)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_verification_page_reports_a_cut_trail_and_no_checkpoint_hides_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    append_events(&pool, 20).await;
    let s = verify_to_end(&ann).await;
    assert_eq!(s.last_finished.unwrap().state, "intact");
    // The verification checkpoints the head after itself.
    let (top, top_hash) = head(&pool).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let s = loop {
        let s = verification(&ann).await;
        if s.checkpoint.as_ref().is_some_and(|c| c.head_id == top) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of head {top}: {s:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(s.checkpoint.clone().unwrap().head_hash, top_hash);
    assert_eq!(s.head.unwrap().id, top);
    // The test harness serves as the superuser: the page says what that means.
    assert!(
        s.role_warnings.iter().any(|w| w.contains("is a superuser")),
        "{:?}",
        s.role_warnings
    );

    cut_after(&pool, top - 10).await;
    let v = verify_to_end(&ann).await.last_finished.unwrap();
    assert_eq!(v.state, "broken", "{v:?}");
    assert_eq!(v.broken_at, Some(top - 9));
    let reason = v.reason.clone().unwrap();
    assert!(
        reason.starts_with(&format!(
            "events {}–{top} are missing: the last checkpoint (signed ",
            top - 9
        )) && reason.ends_with(&format!(
            "recorded head {top} with hash {top_hash}, the chain now ends at {}",
            top - 10
        )),
        "{reason}"
    );
    assert_eq!(v.anchor_head_id, Some(top));
    // The broken verification added an event above the cut; no checkpoint is
    // signed over the shortened chain, so the next verification still sees it.
    assert_eq!(verification(&ann).await.checkpoint.unwrap().head_id, top);
    let v = verify_to_end(&ann).await.last_finished.unwrap();
    assert_eq!(v.state, "broken");
    assert_eq!(v.anchor_head_id, Some(top));

    let page = ann.get("/audit/verify").await.text().await.unwrap();
    assert!(page.contains(&format!("–{top} are missing")), "{page}");
    assert!(page.contains("is a superuser"), "{page}");
    assert!(page.contains("Last signed checkpoint"), "{page}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_portal_checkpoints_the_head_while_it_moves(pool: PgPool) {
    let _app = spawn_app_with(pool.clone(), &[("PORTAL_AUDIT_CHECKPOINT_SECONDS", "1")]).await;
    for round in 0..2 {
        append_events(&pool, 3).await;
        let (top, hash) = head(&pool).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let signed: Option<(i64, String)> = sqlx::query_as(
                "SELECT head_id, head_hash FROM audit_checkpoints ORDER BY head_id DESC LIMIT 1",
            )
            .fetch_optional(&pool)
            .await
            .unwrap();
            if signed.as_ref() == Some(&(top, hash.clone())) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: head {top} not checkpointed: {signed:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_writer_refuses_to_sign_a_shortened_or_rewritten_chain(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = Checkpoints::with_key(
        CheckpointKey::from_bytes([7; KEY_LEN]),
        dir.path().join("checkpoints.jsonl"),
    );
    assert_eq!(checkpoints.write(&pool).await.unwrap(), Written::Empty);
    append_events(&pool, 12).await;
    let Written::Signed(c) = checkpoints.write(&pool).await.unwrap() else {
        panic!("the head is signed");
    };
    assert_eq!(c.head_id, 12);
    assert_eq!(checkpoints.write(&pool).await.unwrap(), Written::Unchanged);

    // Cut, then append again past the old head: the new head is not signed.
    cut_after(&pool, 5).await;
    append_events(&pool, 10).await;
    let Written::Refused(b) = checkpoints.write(&pool).await.unwrap() else {
        panic!("a rewritten chain must not be checkpointed");
    };
    assert!(b.to_string().starts_with("event 12 was rewritten"), "{b}");

    // The service compares the same way, from a fresh process's view (the file).
    let fresh = Checkpoints::with_key(
        CheckpointKey::from_bytes([7; KEY_LEN]),
        dir.path().join("checkpoints.jsonl"),
    );
    tamper(&pool, "DELETE FROM audit_checkpoints").await;
    let by = Actor::System;
    let (id, _) = verifications::begin(&pool, &by).await.unwrap();
    let anchors = verifications::Anchors {
        checkpoints: Some(&fresh),
        expected: None,
    };
    let v = verifications::run(&pool, id, &by, anchors, |_| {})
        .await
        .unwrap();
    assert_eq!(v.state, "broken");
    assert_eq!(v.broken_at, Some(12));
    assert!(
        v.anchor_source
            .as_deref()
            .is_some_and(|s| s.starts_with("line 1 of ")),
        "{v:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn exports_carry_the_chain_head_for_later_checks(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ann = app.signed_in("ann", Role::Auditor).await;
    append_events(&pool, 3).await;

    // CSV: in a response header, so the file stays plain CSV.
    let r = ann.get("/api/audit/export.csv").await;
    let header = r
        .headers()
        .get("x-audit-chain-head")
        .expect("the chain head header")
        .to_str()
        .unwrap()
        .to_string();
    let csv = r.text().await.unwrap();
    assert!(!csv.contains(&header), "the head is not a CSV line");
    // The head includes the export's own audit event.
    let (id, hash) = head(&pool).await;
    assert_eq!(header, format!("{id}:{hash}"));

    // JSONL: in the header and in the trailer, which the offline check reports.
    let r = ann.get("/api/audit/export.jsonl?actor=system").await;
    let header = r.headers()["x-audit-chain-head"]
        .to_str()
        .unwrap()
        .to_string();
    let body = r.text().await.unwrap();
    let trailer: serde_json::Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    let (id, hash) = head(&pool).await;
    assert_eq!(header, format!("{id}:{hash}"));
    assert_eq!(trailer["chain_head"]["id"], id);
    assert_eq!(trailer["chain_head"]["hash"], hash.as_str());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &body).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["audit", "verify", "--file"])
        .arg(&file)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "the chain's head when exported: {id}:{hash} (`recovery-portal audit verify --expect-head {id}:{hash}`"
        )),
        "{}",
        stdout(&out)
    );

    // The command line prints it beside the file.
    let db = database_url(&pool).await;
    let out = portal(&db, &["audit", "export", "--format", "csv"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let (id, hash) = head(&pool).await;
    assert!(
        stderr(&out).contains(&format!("chain head when exported: {id}:{hash}")),
        "{}",
        stderr(&out)
    );
}

/// A URL of the test server for `user` on database `db`.
fn url_as(user: &str, db: &str) -> String {
    let mut url =
        url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL is set for tests"))
            .unwrap();
    url.set_username(user).unwrap();
    url.set_password(None).unwrap();
    url.set_path(db);
    url.to_string()
}

/// Two roles and a database of their own (roles are cluster-wide: unique
/// names, dropped at the end).
struct Roles {
    admin: PgPool,
    owner: String,
    app: String,
    db: String,
}

impl Roles {
    async fn create(admin: &PgPool, tag: &str) -> Self {
        let suffix = format!("{}_{}", std::process::id(), tag);
        let r = Roles {
            admin: admin.clone(),
            owner: format!("rp_owner_{suffix}"),
            app: format!("rp_app_{suffix}"),
            db: format!("rp_roles_{suffix}"),
        };
        for role in [&r.owner, &r.app] {
            sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
                .execute(admin)
                .await
                .unwrap();
        }
        sqlx::query(&format!("CREATE DATABASE {} OWNER {}", r.db, r.owner))
            .execute(admin)
            .await
            .unwrap();
        r
    }

    async fn drop(self) {
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            format!("DROP ROLE IF EXISTS {}", self.app),
            format!("DROP ROLE IF EXISTS {}", self.owner),
        ] {
            sqlx::query(&sql).execute(&self.admin).await.unwrap();
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_runtime_role_may_only_read_and_add_audit_events(pool: PgPool) {
    let roles = Roles::create(&pool, "grants").await;
    let key = scratch_key_file();
    let settings = test_settings(&[
        ("DATABASE_URL", &url_as(&roles.app, &roles.db)),
        ("MIGRATION_DATABASE_URL", &url_as(&roles.owner, &roles.db)),
        ("PORTAL_AUDIT_KEY_FILE", &key.display().to_string()),
    ]);
    // Migrations as the owner, then the runtime role is granted its rights; twice,
    // as every start does.
    server::startup::prepare(&settings)
        .await
        .unwrap()
        .close()
        .await;
    let app = server::startup::prepare(&settings).await.unwrap();
    assert_eq!(
        audit::privileges::runtime_role_problems(&app)
            .await
            .unwrap(),
        Vec::<String>::new()
    );

    // What the portal does works: reading, appending, signing checkpoints,
    // the other tables.
    append_events(&app, 3).await;
    app::ssr::users::create(
        &app,
        &Actor::System,
        "ann",
        Role::Auditor,
        PASSWORD.to_string(),
        false,
    )
    .await
    .unwrap();
    let checkpoints = Checkpoints::open(&key).unwrap();
    assert!(matches!(
        checkpoints.write(&app).await.unwrap(),
        Written::Signed(_)
    ));
    let by = Actor::System;
    let (id, _) = verifications::begin(&app, &by).await.unwrap();
    let anchors = verifications::Anchors {
        checkpoints: Some(&checkpoints),
        expected: None,
    };
    let v = verifications::run(&app, id, &by, anchors, |_| {})
        .await
        .unwrap();
    assert_eq!(v.state, "intact", "{v:?}");

    // What would shorten or rewrite the trail is refused by PostgreSQL itself.
    let single = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url_as(&roles.app, &roles.db))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 1",
        "DELETE FROM audit_events WHERE id > 2",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
        "SET session_replication_role = replica",
        "DROP TABLE audit_events",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET head_id = 1",
        "TRUNCATE audit_checkpoints",
        "ALTER TABLE audit_checkpoints OWNER TO CURRENT_USER",
    ] {
        let err = sqlx::query(sql)
            .execute(&single)
            .await
            .expect_err(sql)
            .to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&single)
        .await
        .unwrap();
    assert!(count >= 5, "{count}");

    // The owner itself is refused as the runtime role.
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url_as(&roles.owner, &roles.db))
        .await
        .unwrap();
    let problems = audit::privileges::runtime_role_problems(&owner)
        .await
        .unwrap();
    assert_eq!(
        problems,
        vec![format!(
            "the database role `{}` owns audit_events: it can disable the append-only triggers and delete or rewrite events",
            roles.owner
        )]
    );
    for p in [single, owner, app] {
        p.close().await;
    }
    roles.drop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn serve_refuses_a_role_that_could_rewrite_the_trail(pool: PgPool) {
    let db = database_url(&pool).await;
    let runbooks = concat!(env!("CARGO_MANIFEST_DIR"), "/../runbooks");
    let out = portal_env(
        &db,
        &["serve", "--listen", "127.0.0.1:0"],
        None,
        &[("PORTAL_RUNBOOKS_DIR", runbooks)],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing to serve: the database role `postgres` is a superuser"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("allow_owner_role"),
        "{}",
        stderr(&out)
    );

    // A bad key file stops the start too, naming the file.
    let key = key_file_of(&db);
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, b"too short").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = portal_env(
        &db,
        &["serve", "--listen", "127.0.0.1:0"],
        None,
        &[
            ("PORTAL_RUNBOOKS_DIR", runbooks),
            ("PORTAL_ALLOW_OWNER_ROLE", "true"),
            ("PORTAL_SITES_FILE", "/nonexistent/sites.toml"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "audit checkpoint key {}: holds 9 bytes",
            key.display()
        )),
        "{}",
        stderr(&out)
    );
}
