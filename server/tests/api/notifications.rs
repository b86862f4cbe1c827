//! Approval notifications over HTTP, against the lab: admins manage each site's
//! channels (checked, audited, theirs alone); a request for approval reaches a
//! real HTTP receiver signed, and a real SMTP server (aiosmtpd from PyPI) as an
//! e-mail; failing receivers are retried on the schedule and end failed, shown
//! to admins, while the run goes on; a rolled-back request queues nothing; and
//! pending deliveries survive a restart and are sent once.

use crate::helpers::*;
use crate::lab_portal::*;
use app::model::approval::ApprovalView;
use app::model::notification::{ChannelKind, DeliveryState, DeliveryView, NotificationsOverview};
use app::model::run::StepState;
use app::model::Role;
use app::ssr::notify::validate::redacted_url;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as Status};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRET: &str = "a webhook secret for the tests";
/// The receivers run on this machine, which webhooks reach only when allowed.
const LOCAL: (&str, &str) = ("PORTAL_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1");
const CRONTAB: &str = "/var/spool/cron/root";
const INSTALL: &str = "crontab /var/tmp/crontab_pcrfclient01_2026-11-26.txt";

// ---------------------------------------------------------------- receivers

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Clone)]
struct Behaviour {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: usize,
    /// Answer this late.
    delay: Duration,
}

/// An HTTP receiver on 127.0.0.1, stopped when dropped.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    async fn until(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {} request(s) arrived, expected {n}",
                self.url,
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn hook(State(b): State<Behaviour>, headers: HeaderMap, body: Bytes) -> Status {
    let n = {
        let mut got = b.got.lock().unwrap();
        got.push(Received {
            at: Instant::now(),
            headers,
            body,
        });
        got.len()
    };
    tokio::time::sleep(b.delay).await;
    if n <= b.fail_first {
        Status::INTERNAL_SERVER_ERROR
    } else {
        Status::NO_CONTENT
    }
}

async fn receiver(fail_first: usize, delay: Duration) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(Behaviour {
            got: got.clone(),
            fail_first,
            delay,
        });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Receiver {
        url,
        got,
        _stop: stop,
    }
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(bytes))
}

/// A server on 127.0.0.1 that records every request (any method, any path)
/// and answers each with `status`, `headers` and `body`.
async fn answering(
    status: Status,
    headers: &'static [(&'static str, String)],
    body: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(uri.to_string());
            let mut answer = axum::response::Response::builder().status(status);
            for (k, v) in headers {
                answer = answer.header(*k, v.as_str());
            }
            answer.body(axum::body::Body::from(body)).unwrap()
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    (base, got, stop)
}

/// Whether `header` is `sha256=` and the HMAC-SHA256 of `body` under `secret`,
/// computed here as a receiver would, not with the portal's code.
fn signed(secret: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    header == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------- the portal

async fn add_webhook(admin: &Browser, site: &str, url: &str, secret: &str) -> reqwest::Response {
    admin
        .call(
            "/api/notifications/add_webhook",
            &[("site", site), ("url", url), ("secret", secret)],
        )
        .await
}

async fn add_email(admin: &Browser, site: &str, address: &str) -> reqwest::Response {
    admin
        .call(
            "/api/notifications/add_email",
            &[("site", site), ("address", address)],
        )
        .await
}

async fn overview(admin: &Browser) -> NotificationsOverview {
    let r = admin.call("/api/notifications/overview", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Waits until the admin's overview satisfies `done`.
async fn overview_until(
    admin: &Browser,
    what: &str,
    done: impl Fn(&NotificationsOverview) -> bool,
) -> NotificationsOverview {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = overview(admin).await;
        if done(&o) {
            return o;
        }
        assert!(Instant::now() < deadline, "{what}: {o:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivery_to<'a>(o: &'a NotificationsOverview, target: &str) -> &'a DeliveryView {
    o.deliveries
        .iter()
        .find(|d| d.target == target)
        .unwrap_or_else(|| panic!("no delivery to {target}: {o:#?}"))
}

async fn audited(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar("SELECT details FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A cron restore of pcrfclient01 on the lab, its first two steps run, and its
/// destructive step's approval requested by `operator`.
async fn cron_request(p: &LabPortal, operator: &Browser, why: &str) -> (i64, ApprovalView) {
    p.lab
        .state()
        .write_file("pcrfclient01", CRONTAB, b"")
        .unwrap();
    let run = start(
        operator,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;
    for position in 0..2 {
        let r = command(operator, run, position, "run", "").await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let v = settled(operator, run, position as usize).await;
        assert_eq!(v.steps[position as usize].state, StepState::Succeeded);
    }
    let a = request(operator, run, 2, why).await;
    (run, a)
}

// ---------------------------------------------------------------- tests

#[sqlx::test(migrations = "../migrations")]
async fn a_webhook_receives_the_request_signed_with_every_fact(pool: PgPool) {
    let p = portal_with_lab_and(pool, &[LOCAL]).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let hook = receiver(0, Duration::ZERO).await;

    let r = add_webhook(&ada, "lab", &hook.url, SECRET).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The secret is never shown back, only its last characters.
    let r = ada.call("/api/notifications/overview", &[]).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let o: NotificationsOverview = serde_json::from_str(&text).unwrap();
    assert_eq!(o.channels.len(), 1);
    assert_eq!(o.channels[0].kind, ChannelKind::Webhook);
    // Shown without its path, which may hold a token.
    assert_eq!(o.channels[0].target, redacted_url(&hook.url));
    assert!(o.channels[0].target.ends_with("/…/…hook"));
    assert_eq!(o.channels[0].secret_hint.as_deref(), Some("…ests"));
    assert!(o.deliveries.is_empty());

    let (run, a) = cron_request(&p, &olga, "crontab lost in the VM rebuild").await;
    let got = hook.until(1).await;
    let m = &got[0];

    // Signed over the exact body bytes, with the headers receivers dedupe and log by.
    assert!(
        signed(SECRET, &m.body, m.header("x-portal-signature")),
        "bad signature {:?}",
        m.header("x-portal-signature")
    );
    assert!(!signed(
        "another secret, not the channel's",
        &m.body,
        m.header("x-portal-signature")
    ));
    assert_eq!(m.header("content-type"), "application/json");
    assert_eq!(m.header("x-portal-event"), "approval.requested");
    assert_eq!(m.header("x-portal-delivery-attempt"), "1");
    let sent_at: i64 = m.header("x-portal-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
    let body = m.json();
    assert_eq!(m.header("x-portal-event-id"), body["event_id"]);
    assert_eq!(body["event_id"].as_str().unwrap().len(), 36);

    // Everything a supervisor needs to decide.
    assert_eq!(body["event"], "approval.requested");
    assert_eq!(body["site"], "lab");
    assert_eq!(body["approval_id"], a.id);
    assert_eq!(body["run_id"], run);
    assert_eq!(body["runbook_id"], "restore-cron");
    assert_eq!(body["runbook_title"], "4. Restore cron jobs");
    assert_eq!(body["step_id"], "install-crontab");
    assert_eq!(body["step_title"], "Install the saved crontab");
    assert_eq!(body["step_number"], 3);
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["host"], "pcrfclient01");
    assert_eq!(body["action"], a.action);
    assert!(a.action.contains(INSTALL));
    assert_eq!(body["action_hash"], a.action_hash);
    assert_eq!(body["requested_by"], "olga");
    assert_eq!(body["justification"], "crontab lost in the VM rebuild");
    assert_eq!(body["quorum"], 1);
    assert_eq!(
        body["approval_url"],
        format!("{}/approvals#approval-{}", p.app.base, a.id)
    );

    // Delivered once, recorded as such.
    let o = overview_until(&ada, "delivered", |o| {
        o.deliveries.first().map(|d| d.state) == Some(DeliveryState::Delivered)
    })
    .await;
    let d = delivery_to(&o, &redacted_url(&hook.url));
    assert_eq!(d.attempts, 1);
    assert_eq!((d.approval_id, d.run_id), (a.id, run));
    assert_eq!(d.event_id, body["event_id"]);
    assert!(d.last_error.is_none() && d.next_attempt_at.is_none());
    assert_eq!((o.failed, o.pending), (0, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.got().len(), 1, "sent once");

    // The channel's addition is audited, without its secret.
    let added = audited(&p.app, "notification.channel_added").await;
    assert_eq!(added.len(), 1);
    // Of the URL, only scheme, host, port and its SHA-256.
    let url = url::Url::parse(&hook.url).unwrap();
    assert!(added[0].get("target").is_none(), "{}", added[0]);
    assert_eq!(added[0]["scheme"], "http");
    assert_eq!(added[0]["host"], "127.0.0.1");
    assert_eq!(added[0]["port"], url.port().unwrap());
    assert_eq!(added[0]["url_sha256"], sha256_hex(hook.url.as_bytes()));
    assert!(!added[0].to_string().contains(SECRET));
}

#[sqlx::test(migrations = "../migrations")]
async fn failing_receivers_are_retried_on_the_schedule_and_end_failed_for_admins_to_see(
    pool: PgPool,
) {
    let p = portal_with_lab_and(
        pool,
        &[
            ("PORTAL_NOTIFY_ATTEMPTS", "3"),
            ("PORTAL_NOTIFY_RETRY_BASE_MS", "300"),
            ("PORTAL_NOTIFY_TIMEOUT_SECONDS", "1"),
            LOCAL,
        ],
    )
    .await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let sam = p.app.signed_in("sam", Role::Supervisor).await;
    let flaky = receiver(2, Duration::ZERO).await;
    let slow = receiver(0, Duration::from_secs(3)).await;
    let dead = dead_url().await;
    for url in [&flaky.url, &slow.url, &dead] {
        let r = add_webhook(&ada, "lab", url, SECRET).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    let (run, a) = cron_request(&p, &olga, "restore the jobs").await;
    // The run does not wait for any receiver: approved and run at once.
    assert_eq!(
        decide(&sam, a.id, "approve", "go", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        run_under(&olga, run, 2, a.id).await.status(),
        StatusCode::OK
    );
    let v = settled(&olga, run, 2).await;
    assert_eq!(v.steps[2].state, StepState::Succeeded, "{}", output(&v, 2));

    // The flaky receiver gets the same signed bytes three times, 300 ms then
    // 600 ms apart, and takes the third.
    let got = flaky.until(3).await;
    for (n, m) in got.iter().enumerate() {
        assert_eq!(m.body, got[0].body, "every attempt sends the same bytes");
        assert!(signed(SECRET, &m.body, m.header("x-portal-signature")));
        assert_eq!(m.header("x-portal-delivery-attempt"), (n + 1).to_string());
        assert_eq!(
            m.header("x-portal-event-id"),
            got[0].header("x-portal-event-id")
        );
    }
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(300),
        "{:?}",
        got[1].at - got[0].at
    );
    assert!(
        got[2].at - got[1].at >= Duration::from_millis(600),
        "{:?}",
        got[2].at - got[1].at
    );

    let o = overview_until(&ada, "two failed, one delivered", |o| {
        o.failed == 2 && o.pending == 0
    })
    .await;
    let d = delivery_to(&o, &redacted_url(&flaky.url));
    assert_eq!((d.state, d.attempts), (DeliveryState::Delivered, 3));
    assert!(d.last_error.is_none());
    let d = delivery_to(&o, &redacted_url(&dead));
    assert_eq!((d.state, d.attempts), (DeliveryState::Failed, 3));
    let error = d.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("cannot connect"), "{error}");
    let d = delivery_to(&o, &redacted_url(&slow.url));
    assert_eq!((d.state, d.attempts), (DeliveryState::Failed, 3));
    let error = d.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    assert!(d.finished_at.is_some() && d.next_attempt_at.is_none());
    assert_eq!(o.max_attempts, 3);
    // A fourth attempt never comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slow.got().len(), 3);
    assert_eq!(flaky.got().len(), 3);

    // The Sites page shows the admin each delivery with its state and error.
    let r = ada.get("/sites").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for needle in [
        "Approval notifications",
        "2 failed for good, 0 waiting for an attempt",
        "data-state=\"failed\"",
        "data-state=\"delivered\"",
        "cannot connect",
        "3 of 3",
        "…ests",
    ] {
        assert!(
            html.contains(needle),
            "{needle:?} missing from the Sites page"
        );
    }
    assert!(!html.contains(SECRET));

    // Each final failure is in the audit trail.
    let failed = audited(&p.app, "notification.delivery_failed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed
        .iter()
        .all(|f| f["approval"] == a.id && f["attempts"] == 3));
    // Only admins see deliveries.
    for who in [&olga, &sam] {
        assert_eq!(
            who.call("/api/notifications/overview", &[]).await.status(),
            StatusCode::FORBIDDEN
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_that_is_rolled_back_queues_nothing(pool: PgPool) {
    let p = portal_with_lab_and(pool, &[LOCAL]).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let hook = receiver(0, Duration::ZERO).await;
    assert_eq!(
        add_webhook(&ada, "lab", &hook.url, SECRET).await.status(),
        StatusCode::OK
    );
    p.lab
        .state()
        .write_file("pcrfclient01", CRONTAB, b"")
        .unwrap();
    let run = start(
        &olga,
        "restore-cron",
        &[
            ("site", "lab"),
            ("backup_date", "2026-11-26"),
            ("target", "pcrfclient01"),
        ],
    )
    .await;
    for position in 0..2 {
        assert_eq!(
            command(&olga, run, position, "skip", "drill")
                .await
                .status(),
            StatusCode::OK
        );
    }

    // The request's audit record cannot be written: the request rolls back, and
    // its notification with it.
    sqlx::query(
        "CREATE FUNCTION refuse_requested() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'audit store unavailable'; END; $$",
    )
    .execute(&p.app.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_requested BEFORE INSERT ON audit_events FOR EACH ROW \
         WHEN (NEW.action = 'approval.requested') EXECUTE FUNCTION refuse_requested()",
    )
    .execute(&p.app.pool)
    .await
    .unwrap();
    let r = command(&olga, run, 2, "request_approval", "drill").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(show(&olga, run).await.steps[2].state, StepState::Pending);
    let count = |table: &'static str| {
        let pool = p.app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("notification_events").await, 0);
    assert_eq!(count("notification_deliveries").await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.got().is_empty(), "nothing was sent");

    // Committed, it is queued and sent.
    sqlx::query("DROP TRIGGER refuse_requested ON audit_events")
        .execute(&p.app.pool)
        .await
        .unwrap();
    let a = request(&olga, run, 2, "drill").await;
    assert_eq!(count("notification_deliveries").await, 1);
    let got = hook.until(1).await;
    assert_eq!(got[0].json()["approval_id"], a.id);
}

#[sqlx::test(migrations = "../migrations")]
async fn pending_deliveries_survive_a_restart_and_are_sent_once(pool: PgPool) {
    // The first attempt fails; the next is due in an hour.
    let p = portal_with_lab_and(
        pool.clone(),
        &[("PORTAL_NOTIFY_RETRY_BASE_MS", "3600000"), LOCAL],
    )
    .await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let hook = receiver(1, Duration::ZERO).await;
    assert_eq!(
        add_webhook(&ada, "lab", &hook.url, SECRET).await.status(),
        StatusCode::OK
    );
    let (_, a) = cron_request(&p, &olga, "before the restart").await;
    let o = overview_until(&ada, "first attempt failed", |o| {
        o.deliveries
            .first()
            .is_some_and(|d| d.attempts == 1 && d.last_error.is_some())
    })
    .await;
    let d = &o.deliveries[0];
    assert_eq!(d.state, DeliveryState::Pending);
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{d:?}"
    );
    assert!(d.next_attempt_at.is_some());

    // The portal stops; the hour passes.
    drop((ada, olga, p));
    sqlx::query("UPDATE notification_deliveries SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();

    // Two portals start on the database: one of them sends it, once.
    let one = spawn_app_with(pool.clone(), &[LOCAL]).await;
    let two = spawn_app_with(pool.clone(), &[LOCAL]).await;
    let got = hook.until(2).await;
    assert_eq!(got[1].json()["approval_id"], a.id);
    assert_eq!(got[1].header("x-portal-delivery-attempt"), "2");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM notification_deliveries")
            .fetch_one(&pool)
            .await
            .unwrap();
        if state == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "still {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.got().len(), 2, "sent once after the restart");
    drop((one, two));
}

#[sqlx::test(migrations = "../migrations")]
async fn admins_manage_channels_with_field_errors_and_an_audit_trail(pool: PgPool) {
    let p = portal_with_lab(pool).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;

    // Each mistake is named at its field.
    let cases: [(&str, reqwest::Response, &str, &str); 6] = [
        (
            "scheme",
            add_webhook(&ada, "lab", "ftp://example.net/hook", SECRET).await,
            "url",
            "must start with https:// or http://",
        ),
        (
            "relative",
            add_webhook(&ada, "lab", "example.net/hook", SECRET).await,
            "url",
            "is not a URL",
        ),
        (
            "empty secret",
            add_webhook(&ada, "lab", "https://example.net/hook", "  ").await,
            "secret",
            "Secret: is required",
        ),
        (
            "short secret",
            add_webhook(&ada, "lab", "https://example.net/hook", "short").await,
            "secret",
            "at least 16 characters",
        ),
        (
            "address",
            add_email(&ada, "lab", "oncall at example.net").await,
            "address",
            "is not an e-mail address",
        ),
        (
            "display name",
            add_email(&ada, "lab", "On call <oncall@example.net>").await,
            "address",
            "is not an e-mail address",
        ),
    ];
    for (case, r, field, says) in cases {
        let (status, body) = error_text(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        let fields = body["Fields"]
            .as_array()
            .unwrap_or_else(|| panic!("{case}: {body}"));
        assert!(
            fields
                .iter()
                .any(|f| f[0] == field && f[1].as_str().unwrap().contains(says)),
            "{case}: {body}"
        );
    }
    let (status, body) = error_text(add_email(&ada, "nowhere", "oncall@example.net").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Added once; the same target again is refused at its field.
    let r = add_email(&ada, "lab", "oncall@example.net").await;
    assert_eq!(r.status(), StatusCode::OK);
    let id: i64 = r.json().await.unwrap();
    let (status, body) = error_text(add_email(&ada, "lab", " oncall@example.net").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("already notified"), "{body}");
    let r = add_webhook(&ada, "lab", "https://hooks.example.net/portal", SECRET).await;
    assert_eq!(r.status(), StatusCode::OK);
    let o = overview(&ada).await;
    assert_eq!(o.channels.len(), 2);
    assert_eq!(o.sites, vec!["lab".to_string()]);
    assert!(o.smtp_relay.is_none());

    // Nobody but an admin manages channels or sees deliveries.
    for role in [Role::Operator, Role::Supervisor, Role::Auditor] {
        let b = p.app.signed_in(&format!("as-{role}"), role).await;
        for (path, form) in [
            ("/api/notifications/overview", vec![]),
            (
                "/api/notifications/add_webhook",
                vec![
                    ("site", "lab"),
                    ("url", "https://evil.example.net/"),
                    ("secret", SECRET),
                ],
            ),
            (
                "/api/notifications/add_email",
                vec![("site", "lab"), ("address", "me@evil.example.net")],
            ),
            ("/api/notifications/remove", vec![("id", "1")]),
        ] {
            assert_eq!(
                b.call(path, &form).await.status(),
                StatusCode::FORBIDDEN,
                "{role} {path}"
            );
        }
    }
    assert_eq!(overview(&ada).await.channels.len(), 2, "nothing changed");

    // Removal: audited, gone from the list, not removable twice.
    let r = ada
        .call("/api/notifications/remove", &[("id", &id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o = overview(&ada).await;
    assert_eq!(o.channels.len(), 1);
    assert_eq!(o.channels[0].kind, ChannelKind::Webhook);
    let r = ada
        .call("/api/notifications/remove", &[("id", &id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let added = audited(&p.app, "notification.channel_added").await;
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["target"], "oncall@example.net");
    assert_eq!(added[1]["kind"], "webhook");
    let removed = audited(&p.app, "notification.channel_removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["channel"], id);
    let actors: Vec<(String, String)> = p.app.audit_actions().await;
    assert!(actors
        .iter()
        .filter(|(_, action)| action.starts_with("notification."))
        .all(|(actor, _)| actor == "ada"));
}

#[sqlx::test(migrations = "../migrations")]
async fn webhooks_reach_neither_this_machine_nor_the_metadata_service_unless_allowed(pool: PgPool) {
    let p = portal_with_lab_and(pool, &[("PORTAL_NOTIFY_ATTEMPTS", "1")]).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let hook = receiver(0, Duration::ZERO).await;

    // Refused when added, at the URL field, without the allow-list.
    for (url, says) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        (hook.url.as_str(), "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://localhost:8080/hook", "is this machine"),
        (
            "ftp://example.net/hook",
            "must start with https:// or http://",
        ),
        ("file:///etc/passwd", "must start with https:// or http://"),
    ] {
        let (status, body) = error_text(add_webhook(&ada, "lab", url, SECRET).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        let fields = body["Fields"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f[0] == "url" && f[1].as_str().unwrap().contains(says)),
            "{url}: {body}"
        );
    }
    assert!(overview(&ada).await.channels.is_empty());

    // A channel that got into the database another way (added while an older
    // allow-list admitted it) is checked again before sending: nothing is sent.
    sqlx::query(
        "INSERT INTO notification_channels (site, kind, target, secret, added_by) VALUES ('lab', 'webhook', $1, $2, 'ada')",
    )
    .bind(&hook.url)
    .bind(SECRET)
    .execute(&p.app.pool)
    .await
    .unwrap();
    cron_request(&p, &olga, "crontab lost").await;
    let o = overview_until(&ada, "refused", |o| o.failed == 1).await;
    let d = delivery_to(&o, &redacted_url(&hook.url));
    assert_eq!(d.state, DeliveryState::Failed);
    let error = d.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("not sent") && error.contains("loopback"),
        "{error}"
    );
    assert!(hook.got().is_empty(), "nothing reached the receiver");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_listed_name_that_resolves_to_this_machine_is_not_reached(pool: PgPool) {
    // `localhost` is on the list, its addresses are not: as if an allowed name
    // were re-pointed at 127.0.0.1 (DNS rebinding).
    let p = portal_with_lab_and(
        pool,
        &[
            ("PORTAL_NOTIFY_ATTEMPTS", "1"),
            ("PORTAL_WEBHOOK_ALLOWED_HOSTS", "localhost"),
        ],
    )
    .await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let hook = receiver(0, Duration::ZERO).await;
    let by_name = hook.url.replace("127.0.0.1", "localhost");
    // The literal address is not on the list.
    let (status, body) = error_text(add_webhook(&ada, "lab", &hook.url, SECRET).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("loopback"), "{body}");
    let r = add_webhook(&ada, "lab", &by_name, SECRET).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    cron_request(&p, &olga, "crontab lost").await;
    let o = overview_until(&ada, "failed", |o| o.failed == 1).await;
    let error = o.deliveries[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("resolves only to addresses webhooks may not reach"),
        "{error}"
    );
    assert!(hook.got().is_empty(), "nothing reached the receiver");
}

#[sqlx::test(migrations = "../migrations")]
async fn redirects_are_not_followed_and_answers_are_not_echoed(pool: PgPool) {
    let p = portal_with_lab_and(pool, &[("PORTAL_NOTIFY_ATTEMPTS", "1"), LOCAL]).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    // The second server is where the first one redirects.
    let target = receiver(0, Duration::ZERO).await;
    let location: &'static [(&'static str, String)] =
        Box::leak(Box::new([("location", target.url.clone())]));
    let (redirecting, redirected, _stop1) = answering(Status::FOUND, location, "").await;
    let (chatty, asked, _stop2) = answering(
        Status::UNAUTHORIZED,
        &[],
        "internal admin console v1.2 - login required",
    )
    .await;
    for url in [format!("{redirecting}/hook"), format!("{chatty}/hook")] {
        let r = add_webhook(&ada, "lab", &url, SECRET).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    cron_request(&p, &olga, "crontab lost").await;
    let o = overview_until(&ada, "both failed", |o| o.failed == 2).await;
    assert_eq!(redirected.lock().unwrap().len(), 1);
    assert_eq!(asked.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(target.got().is_empty(), "the redirect was not followed");
    let error = delivery_to(&o, &redacted_url(&format!("{redirecting}/hook")))
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains("HTTP 302") && error.contains("not followed"),
        "{error}"
    );
    let error = delivery_to(&o, &redacted_url(&format!("{chatty}/hook")))
        .last_error
        .clone()
        .unwrap_or_default();
    assert_eq!(error, "the receiver answered HTTP 401 Unauthorized");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_token_in_a_webhook_url_never_reaches_the_audit_trail(pool: PgPool) {
    let p = portal_with_lab_and(pool, &[("PORTAL_NOTIFY_ATTEMPTS", "1"), LOCAL]).await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    // No such path: the receiver answers 404, so the delivery fails (audited).
    let hook = receiver(0, Duration::ZERO).await;
    let url = format!("{}/TOPSECRET/x?token=TOPSECRET", hook.url);
    let r = add_webhook(&ada, "lab", &url, SECRET).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id: i64 = r.json().await.unwrap();
    // Added twice: the refusal does not echo it either.
    let (_, body) = error_text(add_webhook(&ada, "lab", &url, SECRET).await).await;
    assert!(body.to_string().contains("already notified"), "{body}");
    assert!(!body.to_string().contains("TOPSECRET"), "{body}");
    cron_request(&p, &olga, "crontab lost").await;
    overview_until(&ada, "failed", |o| o.failed == 1).await;
    let r = ada
        .call("/api/notifications/remove", &[("id", &id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let events: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT action, details FROM audit_events WHERE action LIKE 'notification.%' ORDER BY id",
    )
    .fetch_all(&p.app.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "notification.channel_added",
            "notification.delivery_failed",
            "notification.channel_removed"
        ]
    );
    for (_, details) in &events {
        assert_eq!(
            details["url_sha256"],
            sha256_hex(url.as_bytes()),
            "{details}"
        );
        assert_eq!(details["host"], "127.0.0.1");
    }
    let leaked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events e WHERE e::text LIKE '%TOPSECRET%'")
            .fetch_one(&p.app.pool)
            .await
            .unwrap();
    assert_eq!(leaked, 0);
    // Nor does the admin's page show it.
    let html = ada.get("/sites").await.text().await.unwrap();
    assert!(!html.contains("TOPSECRET"));
}

// ---------------------------------------------------------------- e-mail

/// A real SMTP server: aiosmtpd from PyPI (installed by scripts/test), writing
/// what it receives to a Maildir; killed when dropped.
struct Smtpd {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn smtpd() -> Smtpd {
    let python = std::env::var_os("AIOSMTPD_PYTHON").unwrap_or_else(|| {
        panic!(
            "AIOSMTPD_PYTHON is not set: the e-mail test needs a real SMTP server. Run ./scripts/test \
             (it installs aiosmtpd from PyPI into target/aiosmtpd-venv), or set \
             AIOSMTPD_PYTHON=target/aiosmtpd-venv/bin/python after `python3 -m venv target/aiosmtpd-venv \
             && target/aiosmtpd-venv/bin/pip install aiosmtpd`"
        )
    });
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let child = Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python:?} -m aiosmtpd: {e}"));
    let mut server = Smtpd {
        child,
        port,
        maildir,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("aiosmtpd exited at start ({status}): is it installed in {python:?}?");
        }
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

/// The messages of a Maildir, as text.
fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

/// A message's headers (unfolded, names lowercased) and its decoded body.
fn parse_mail(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let encoding = headers
        .iter()
        .find(|(n, _)| n == "content-transfer-encoding")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let body = match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        }
        _ => body.to_string(),
    };
    (headers, body)
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'=', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[sqlx::test(migrations = "../migrations")]
async fn an_email_reaches_the_recipient_through_a_real_smtp_server(pool: PgPool) {
    let smtp = smtpd().await;
    let relay = format!("smtp://127.0.0.1:{}", smtp.port);
    let p = portal_with_lab_and(
        pool,
        &[
            ("PORTAL_SMTP_URL", &relay),
            ("PORTAL_SMTP_FROM", "Recovery Portal <portal@example.net>"),
        ],
    )
    .await;
    let ada = p.app.signed_in("ada", Role::Admin).await;
    let olga = p.app.signed_in("olga", Role::Operator).await;
    let r = add_email(&ada, "lab", "oncall@example.net").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        overview(&ada).await.smtp_relay.as_deref(),
        Some(relay.as_str())
    );

    let (run, a) = cron_request(&p, &olga, "crontab lost in the VM rebuild").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let raw = loop {
        if let Some(m) = mails(&smtp.maildir).pop() {
            break m;
        }
        assert!(Instant::now() < deadline, "no e-mail arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (headers, body) = parse_mail(&raw);
    assert_eq!(header(&headers, "to"), "oncall@example.net", "{raw}");
    assert_eq!(header(&headers, "x-rcptto"), "oncall@example.net", "{raw}");
    assert!(
        header(&headers, "from").contains("portal@example.net"),
        "{raw}"
    );
    assert_eq!(
        header(&headers, "subject"),
        format!("[Recovery Portal] Approval needed: Install the saved crontab on lab (run #{run})"),
        "{raw}"
    );
    let event_id = header(&headers, "x-portal-event-id");
    assert_eq!(event_id.len(), 36, "{raw}");
    for expected in [
        "olga asks for approval of a destructive step",
        INSTALL,
        "host=pcrfclient01",
        a.action_hash.as_str(),
        "crontab lost in the VM rebuild",
        "Host          pcrfclient01",
        &format!("{}/approvals#approval-{}", p.app.base, a.id),
    ] {
        assert!(body.contains(expected), "{expected:?} missing from\n{body}");
    }
    let o = overview_until(&ada, "delivered", |o| {
        o.deliveries.first().map(|d| d.state) == Some(DeliveryState::Delivered)
    })
    .await;
    assert_eq!(o.deliveries[0].kind, ChannelKind::Email);
    assert_eq!(o.deliveries[0].event_id, event_id);
    assert_eq!(mails(&smtp.maildir).len(), 1);
}
