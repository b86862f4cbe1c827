//! The `recovery-portal` binary, run as an operator would run it.

use crate::audit_store::tamper;
use sqlx::PgPool;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The URL of the test's own database.
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut url =
        url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL is set for tests"))
            .unwrap();
    url.set_path(&name);
    url.to_string()
}

/// The checkpoint key the commands on database `db` share (one per database,
/// as one portal has one).
pub fn key_file_of(db: &str) -> std::path::PathBuf {
    let name = db.rsplit('/').next().unwrap_or("db");
    std::env::temp_dir()
        .join(format!("portal-cli-{}-{name}", std::process::id()))
        .join("audit-checkpoint.key")
}

pub fn portal(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    portal_env(db, args, stdin, &[])
}

pub fn portal_env(db: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("PORTAL_AUDIT_KEY_FILE", key_file_of(db))
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn users_are_managed_from_the_command_line(pool: PgPool) {
    let db = database_url(&pool).await;
    let out = portal(
        &db,
        &[
            "user",
            "add",
            "bob",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Created user bob with role operator.\n");

    let out = portal(&db, &["user", "role", "bob", "supervisor"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = portal(&db, &["user", "disable", "bob"], None);
    assert!(out.status.success());
    let out = portal(&db, &["user", "list"], None);
    let listing = stdout(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("bob") && l.contains("supervisor") && l.contains("disabled")),
        "{listing}"
    );
    let out = portal(&db, &["user", "enable", "bob"], None);
    assert!(out.status.success());
    let out = portal(
        &db,
        &["user", "passwd", "bob", "--password-stdin"],
        Some("another long passphrase\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let actors: Vec<String> = sqlx::query_scalar("SELECT DISTINCT actor FROM audit_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(actors.iter().all(|a| a.starts_with("cli:")), "{actors:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn command_line_errors_are_clear(pool: PgPool) {
    let db = database_url(&pool).await;
    let out = portal(
        &db,
        &["user", "add", "bob", "--role", "boss", "--password-stdin"],
        Some("a long enough passphrase\n"),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("Role: unknown role \"boss\""),
        "{}",
        stderr(&out)
    );
    let out = portal(
        &db,
        &[
            "user",
            "add",
            "bob",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some(""),
    );
    assert!(
        stderr(&out).contains("no password on standard input"),
        "{}",
        stderr(&out)
    );
    let out = portal(&db, &["user", "disable", "ghost"], None);
    assert!(
        stderr(&out).contains("There is no user named ghost."),
        "{}",
        stderr(&out)
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["migrate"])
        .env("DATABASE_URL", &db)
        .env("PORTAL_SESSION_IDLE_MINUTES", "forever")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(
        stderr(&bad).contains("`session_idle_minutes`"),
        "{}",
        stderr(&bad)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn audit_verify_reports_the_altered_event(pool: PgPool) {
    let db = database_url(&pool).await;
    for name in ["ann", "ben", "cat"] {
        let out = portal(
            &db,
            &["user", "add", name, "--role", "auditor", "--password-stdin"],
            Some("a long enough passphrase\n"),
        );
        assert!(out.status.success());
    }
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("audit chain intact: 3 events verified"),
        "{}",
        stdout(&out)
    );

    tamper(
        &pool,
        "UPDATE audit_events SET actor = 'someone-else' WHERE id = 2",
    )
    .await;
    let out = portal(&db, &["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out)
            .starts_with("audit chain BROKEN: event 2: its content does not match its hash"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn help_documents_every_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve", "migrate", "user", "audit", "runbook", "site", "bench",
    ] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["user", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["add", "list", "disable", "enable", "passwd", "role"] {
        assert!(help.contains(cmd), "{help}");
    }
}

/// The benchmark prints its figures (what they are is not asserted: it is a
/// benchmark); here only that it runs and prints them, on a small image.
#[test]
fn the_image_transfer_benchmark_prints_both_rates() {
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["bench", "image-transfer", "--size-mb", "4"])
        .env_remove("PORTAL_LAB_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "portal (stream to file",
        "curl (stream to file)",
        "ratio portal/curl",
        "peak RSS",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

/// The audit benchmark runs on a scratch database it drops again, and prints
/// its figures beside PostgreSQL's COPY; here on a small trail.
#[test]
fn the_audit_benchmark_prints_its_figures_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["bench", "audit", "--appends", "80", "--events", "3000"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "8 concurrent writers",
        "export of 3000 events as CSV",
        "PostgreSQL COPY",
        "peak RSS",
    ] {
        assert!(text.contains(line), "{text}");
    }
    let left = Command::new("psql")
        .arg(std::env::var("DATABASE_URL").unwrap())
        .args([
            "-Atc",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'portal_bench_audit_%'",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portal-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const BAD_RUNBOOK: &str = "id = \"bad\"\ntitle = \"Bad\"\ndescription = \"d\"\nexpected_duration_minutes = 5\n\n[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"db01\"\ncommand = \"true\"\n";

#[test]
fn runbook_check_accepts_the_shipped_runbooks_and_locates_errors() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["runbook", "check"])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("12 runbooks valid\n"),
        "{}",
        stdout(&out)
    );

    let dir = temp_dir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, BAD_RUNBOOK).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["runbook", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = format!("{}:10:8: unknown host \"db01\"", bad.display());
    assert!(stdout(&out).starts_with(&expected), "{}", stdout(&out));
}

#[test]
fn serve_refuses_to_start_on_an_invalid_runbook() {
    let dir = temp_dir("serve");
    std::fs::write(dir.join("bad.toml"), BAD_RUNBOOK).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PORTAL_RUNBOOKS_DIR", &dir)
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/never-reached",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("invalid runbooks; the portal does not start with them"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:10:8: unknown host \"db01\""),
        "{err}"
    );
}

#[test]
fn site_check_loads_keys_and_known_hosts_and_names_problems() {
    let dir = temp_dir("sites");
    let key = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    std::fs::write(
        dir.join("known_hosts"),
        format!(
            "cluman {}",
            public
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
    .unwrap();
    let sites = dir.join("sites.toml");
    let good = "[[sites]]\nname = \"fra1\"\nuser = \"cps\"\nkey = \"id_ed25519\"\nknown_hosts = \"known_hosts\"\njump_host = \"cluman\"\n\n[[sites.hosts]]\nname = \"cluman\"\naddress = \"10.10.1.5\"\n";
    std::fs::write(&sites, good).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
            .args(["site", "check"])
            .arg(&sites)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with(
            "ok  site fra1 (1 hosts, jump host cluman)\n    note: runbook steps on pcrfclient01"
        ),
        "{}",
        stdout(&out)
    );

    std::fs::write(
        &sites,
        good.replace("key = \"id_ed25519\"", "key = \"missing_key\""),
    )
    .unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("site fra1: cannot use the SSH key"),
        "{}",
        stdout(&out)
    );
}

/// Without a terminal (a journal, a CI log), the first admin's password is not
/// printed: it is in a file only this user can read, whose path is printed.
#[sqlx::test(migrations = "../migrations")]
async fn without_a_terminal_the_first_password_goes_to_a_private_file(pool: PgPool) {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let db = database_url(&pool).await;
    let dir = temp_dir("first-admin");
    let data = dir.join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_recovery-portal"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "warn")
        .env("PORTAL_DATA_DIR", &data)
        .env("PORTAL_AUDIT_KEY_FILE", data.join("audit-checkpoint.key"))
        .env("PORTAL_ALLOW_OWNER_ROLE", "true")
        .env("PORTAL_SITES_FILE", dir.join("no-sites.toml"))
        .env("PORTAL_BACKUP_STORE", dir.join("store"))
        .env(
            "PORTAL_RUNBOOKS_DIR",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Up to the line that says it serves (the box comes before it).
    let out = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut tx = Some(tx);
        // Read to the end, so the portal never writes into a closed pipe.
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            lines.push(line);
            if lines.last().is_some_and(|l| l.contains("listening on")) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(lines.join("\n"));
                }
            }
        }
    });
    let printed = tokio::time::timeout(std::time::Duration::from_secs(60), rx)
        .await
        .expect("the portal started")
        .expect("the portal printed that it serves");
    let file = printed
        .lines()
        .find_map(|l| l.split("Password file: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no password file in:\n{printed}"));
    assert_eq!(
        std::path::Path::new(file),
        data.canonicalize().unwrap().join("initial-admin-password")
    );
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(file).unwrap().trim().to_string();
    assert!(password.len() >= 12);
    assert!(!printed.contains(&password), "{printed}");
    assert!(!printed.contains("Password: "), "{printed}");

    // It is the admin's password.
    let base = printed
        .lines()
        .find_map(|l| l.split("URL:").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let r = reqwest::Client::new()
        .post(format!("{base}api/auth/sign_in"))
        .header("origin", base.trim_end_matches('/'))
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    let status = r.status();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "{}",
        r.text().await.unwrap()
    );
}
